"""The integer reference executor: the golden model every other part is tested against.

Pure integer semantics, vectorised with numpy. Dot products run as float64 matrix products
because BLAS has no int8 path: every product of two int8-range values and every partial sum
stays far below 2**53, so float64 holds them exactly and the result is the integer result.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from patchcam.compiler import qmath
from patchcam.compiler.ir import Graph, Op
from patchcam.compiler.qparams import AddParams, MacParams, MeanParams, PoolParams, op_params


class InputError(ValueError):
    """The input array does not match the model's input tensor."""


def run(g: Graph, x: np.ndarray) -> np.ndarray:
    """Run the graph on one int8 input (the input tensor's shape); return the int8 output."""
    return run_all(g, x)[g.output]


def run_all(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor the graph computes, by name (for debugging and per-layer comparisons)."""
    want = g.tensors[g.input].shape
    x = np.asarray(x)
    if x.shape != want or x.dtype != np.int8:
        raise InputError(f"{g.name}: input must be int8 {want}, got {x.dtype} {x.shape}")
    values = {g.input: x}
    for op in g.ops:
        values[op.output] = run_op(g, op, [values[n] for n in op.inputs])
    return values


def run_op(g: Graph, op: Op, ins: list[np.ndarray]) -> np.ndarray:
    p = op_params(g, op)
    if op.kind == "conv2d":
        acc = _conv_acc(ins[0], op, p)
    elif op.kind == "depthwise_conv2d":
        acc = _depthwise_acc(ins[0], op, p)
    elif op.kind == "fully_connected":
        xs = ins[0].reshape(-1).astype(np.float64) + p.input_offset
        acc = op.weights.astype(np.float64) @ xs
    elif op.kind == "add":
        return _add(ins[0], ins[1], p)
    elif op.kind == "avg_pool2d":
        return _avg_pool(ins[0], op, p)
    elif op.kind == "max_pool2d":
        return _max_pool(ins[0], op, p)
    elif op.kind == "mean":
        return _mean(ins[0], p)
    else:
        raise ValueError(f"op '{op.name}': unsupported kind {op.kind}")
    acc = np.rint(acc).astype(np.int64) + op.bias.astype(np.int64)
    out = qmath.multiply_by_quantized_multiplier(acc, p.multipliers, p.shifts) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def _windows(x: np.ndarray, op: Op, fill: float) -> np.ndarray:
    """(Ho, Wo, C, kh, kw) view of the padded input, one window per output pixel."""
    pt, pl, pb, pr = op.pads
    xp = np.pad(x, ((pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    w = sliding_window_view(xp, op.kernel, axis=(0, 1))
    return w[:: op.stride[0], :: op.stride[1]]


def _conv_acc(x: np.ndarray, op: Op, p: MacParams) -> np.ndarray:
    # Padding with 0 after the offset equals TFLite skipping the taps outside the image.
    win = _windows(x.astype(np.float64) + p.input_offset, op, 0.0)
    return np.tensordot(win, op.weights.astype(np.float64), axes=([2, 3, 4], [3, 1, 2]))


def _depthwise_acc(x: np.ndarray, op: Op, p: MacParams) -> np.ndarray:
    win = _windows(x.astype(np.float64) + p.input_offset, op, 0.0)
    return np.einsum("hwckl,klc->hwc", win, op.weights.astype(np.float64))


def _add(a: np.ndarray, b: np.ndarray, p: AddParams) -> np.ndarray:
    def scaled(v: np.ndarray, offset: int, m: int, s: int) -> np.ndarray:
        shifted = (v.astype(np.int64) + offset) * (1 << p.left_shift)
        return qmath.multiply_by_quantized_multiplier(shifted, m, s)

    raw = scaled(a, p.input1_offset, p.input1_multiplier, p.input1_shift) + \
        scaled(b, p.input2_offset, p.input2_multiplier, p.input2_shift)
    out = qmath.multiply_by_quantized_multiplier(raw, p.output_multiplier, p.output_shift)
    return np.clip(out + p.output_offset, p.act_min, p.act_max).astype(np.int8)


def _avg_pool(x: np.ndarray, op: Op, p: PoolParams) -> np.ndarray:
    # Only taps inside the image count, as in TFLite's reference AveragePool.
    total = _windows(x.astype(np.int64), op, 0).sum(axis=(3, 4))
    ones = np.ones(x.shape[:2] + (1,), np.int64)
    count = _windows(ones, op, 0).sum(axis=(3, 4))
    half = count // 2
    # Round half away from zero with C's truncating division.
    q = np.where(total > 0, (total + half) // count, -((-total + half) // count))
    return np.clip(q, p.act_min, p.act_max).astype(np.int8)


def _max_pool(x: np.ndarray, op: Op, p: PoolParams) -> np.ndarray:
    m = _windows(x.astype(np.int16), op, -129).max(axis=(3, 4))
    return np.clip(m, p.act_min, p.act_max).astype(np.int8)


def _mean(x: np.ndarray, p: MeanParams) -> np.ndarray:
    """TFLite's int8 MEAN over H and W (see `qparams.MeanParams`)."""
    total = x.astype(np.int64).sum(axis=(0, 1)) + p.input_offset * p.count
    out = qmath.multiply_by_quantized_multiplier(total, p.multiplier, p.shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(np.int8).reshape(1, 1, -1)
