"""Lab 3: requantise one output by hand (docs/labs/lab3_integers.md).

Fill in the two functions below, then check them against the integer reference:

    make lab N=3 CHECK=1        # or: .venv/bin/patchcam lab 3 --check

An int8 convolution ends with a 32-bit accumulator `acc` (the sum of (input + input_offset)
x weight, plus the bias). TensorFlow Lite turns it into an int8 output with

    out = clamp(round(acc * M) + output_zero_point, act_min, act_max)

where M = input_scale * weight_scale / output_scale is a real number. A microcontroller
does not use floating point for this: M is stored as a Q31 integer `multiplier` and a
power-of-two `shift` (M ~= multiplier * 2**(shift - 31)); patchcam.compiler.qmath has the
exact integer steps, and docs/int8.md explains them.
"""

from __future__ import annotations


def requantise_float(acc: int, real_multiplier: float, zero_point: int,
                     act_min: int, act_max: int) -> int:
    """Step 1: the textbook formula in floating point: scale, round, add the zero point,
    clamp to [act_min, act_max]. (Python's round() rounds halves to even: is that what you
    want?)"""
    raise NotImplementedError("fill in requantise_float")


def requantise_int(acc: int, multiplier: int, shift: int, zero_point: int,
                   act_min: int, act_max: int) -> int:
    """Step 2: the same with integers only, as the board does it. Hint: shift the
    accumulator left by max(shift, 0), take the rounded high half of the 64-bit product
    with the Q31 multiplier (qmath.saturating_rounding_doubling_high_mul), divide by
    2**max(-shift, 0) rounding half away from zero (qmath.rounding_divide_by_pot), then add
    the zero point and clamp. You may call the qmath functions."""
    raise NotImplementedError("fill in requantise_int")
