"""Per-op integer parameters, computed once from the graph's scales (TFLite Micro's "prepare").

The numpy reference and the C code generator both take their multipliers, shifts, offsets and
clamps from here, so the two can only differ in the arithmetic itself. The formulas are TFLite
Micro's, evaluated in double precision from the float32 scales the graph stores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchcam.compiler import qmath
from patchcam.compiler.ir import Graph, Op, clamp_range

ADD_LEFT_SHIFT = 20  # TFLite's headroom for int8 ADD before rescaling the inputs


@dataclass(frozen=True)
class MacParams:
    """conv2d / depthwise_conv2d / fully_connected."""
    input_offset: int  # -input zero point
    output_offset: int
    multipliers: np.ndarray  # int32, one per output channel
    shifts: np.ndarray  # int32, > 0 means left shift
    act_min: int
    act_max: int


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolParams:
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MeanParams:
    """mean over H and W, TFLite's int8 MEAN (`reference_ops::QuantizedMeanOrSum`):
    out = MultiplyByQuantizedMultiplier(sum - count * input zp, multiplier, shift) + output zp,
    where (multiplier, shift) is QuantizeMultiplier(input scale / output scale) with 1/count
    folded in: k = min(floor(log2 count), 32, 31 + shift), multiplier = (m << k) // count
    (integer division), shift -= k."""
    count: int  # H * W
    input_offset: int  # -input zero point
    output_offset: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


def f32(x: float) -> float:
    """The value a float32 field holds (what TFLite reads back from a .tflite)."""
    return float(np.float32(x))


def op_params(g: Graph, op: Op) -> MacParams | AddParams | PoolParams | MeanParams:
    out = g.tensors[op.output]
    act_min, act_max = clamp_range(g, op)
    if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
        x = g.tensors[op.inputs[0]]
        channels = op.bias.shape[0]
        scales = np.broadcast_to(op.weight_scales, (channels,))
        pairs = [qmath.quantize_multiplier(f32(x.scale) * f32(s) / f32(out.scale)) for s in scales]
        return MacParams(-x.zero_point, out.zero_point,
                         np.array([m for m, _ in pairs], np.int32),
                         np.array([s for _, s in pairs], np.int32), act_min, act_max)
    if op.kind == "add":
        a, b = (g.tensors[n] for n in op.inputs)
        twice_max = 2 * max(f32(a.scale), f32(b.scale))
        m1, s1 = qmath.quantize_multiplier(f32(a.scale) / twice_max)
        m2, s2 = qmath.quantize_multiplier(f32(b.scale) / twice_max)
        mo, so = qmath.quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * f32(out.scale)))
        return AddParams(-a.zero_point, -b.zero_point, out.zero_point, ADD_LEFT_SHIFT,
                         m1, s1, m2, s2, mo, so, act_min, act_max)
    if op.kind == "mean":
        x = g.tensors[op.inputs[0]]
        count = x.shape[0] * x.shape[1]
        m, shift = qmath.quantize_multiplier(f32(x.scale) / f32(out.scale))
        k = min(count.bit_length() - 1, 32, 31 + shift)
        return MeanParams(count, -x.zero_point, out.zero_point, (m << k) // count, shift - k,
                          act_min, act_max)
    return PoolParams(act_min, act_max)
