"""TensorFlow Lite's fixed-point requantisation, exactly (docs/design.md §4.1).

Every function here mirrors one in TFLite's `quantization_util.cc` / `common.h`
(double-rounding variant, the default of TFLite Micro's reference kernels), so the numpy
reference, the C runtime and TFLite Micro round every value the same way. The functions
take numpy arrays (any shape, int64 working precision) or Python ints.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Real multiplier -> (Q31 multiplier, shift), as TFLite's `QuantizeMultiplier`.

    The result satisfies real ~= multiplier * 2**(shift - 31); shift > 0 means a left shift.
    """
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantisation multiplier must be finite and >= 0, got {real}")
    q, shift = math.frexp(real)
    q_fixed = math.floor(q * (1 << 31) + 0.5)  # std::round: half away from zero, q > 0
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values (arrays or ints)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C's `/` truncates toward zero; numpy's >> floors, so divide the magnitude.
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent, rounding half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's `MultiplyByQuantizedMultiplier` (int32 x, Q31 multiplier, signed shift)."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = np.asarray(x, dtype=np.int64) * (np.int64(1) << left)
    # TFLite computes `x * (1 << left_shift)` in int32, and TFLite Micro's builds wrap on
    # overflow (a real multiplier >= 1 times an accumulator whose true result saturates).
    x = (x + 2**31) % 2**32 - 2**31
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), right)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """int8 clamp for a fused activation, as TFLite's `CalculateActivationRangeQuantized`."""
    qmin, qmax = -128, 127

    def q(v: float) -> int:
        # TfLiteRound (half away from zero) of v / scale, computed in float32 like TFLite.
        r = np.float32(v) / np.float32(scale)
        return zero_point + int(math.copysign(math.floor(abs(float(r)) + 0.5), float(r)))

    if activation == "none":
        return qmin, qmax
    if activation == "relu":
        return max(qmin, q(0.0)), qmax
    if activation == "relu6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    raise ValueError(f"unknown activation {activation!r}; supported: none, relu, relu6")
