"""Pair records: a wide pointwise layer's weights widened once, by the compiler, into flash.

The DSP pointwise kernels multiply int16 pairs (SMLAD), so an int8 weight must be widened
before use. For layers of up to 96 input channels the runtime widens a part of the channels
onto the stack and reuses it for every pixel; past 96 those parts get so small that each
pixel's columns are widened again for every part. For those layers the compiler writes the
widened weights themselves into the generated C, in the layout the runtime's two-channel
kernel streams (docs/design.md §4.3; `pair_records` in firmware/runtime/pc_conv.c):

    per pair of output channels (c0, c1), kpad + 10 uint32 words:
      4   the accumulators' start: 2 * bias of c0, c0, c1, c1
      K   per group of four input channels k0..k3, the doubled int16 pairs
          (c0's k0, k2), (c1's k0, k2), (c0's k1, k3), (c1's k1, k3)   (low lane first)
      6   the requantisation constants of c0 then c1: mult, rnd, rsh (pc_rq_t, pc_dsp.h)

Flash: 2 bytes a weight and 40 a pair, where the int8 filter (then left out) took 1 a weight.
So the layers with the most output pixels (the most MACs a weight) get records first, while
the model's parameters stay within FLASH_FOR_WEIGHTS; a model already past it (MobileNetV2
1.0 @224) gets none. The constants are pc_rq_prepare's (firmware/runtime/pc_dsp.h), mirrored
here; a layer any of whose channels is not on that fast path, or whose activation clamps
inside int8, keeps its int8 filter. A graph whose meta says `"pair_records": false` keeps
every int8 filter: how a runtime without these kernels (CMSIS-NN) must run it.
"""

from __future__ import annotations

import numpy as np

from patchcam.compiler import memplan
from patchcam.compiler.ir import Graph, Op
from patchcam.compiler.qparams import MacParams, op_params

KEY = "pair_records"  # Graph.meta switch
MIN_CIN = 97  # below: the runtime's own records on the stack (PW_NARROW_K in pc_conv.c)
MAX_CIN = 384  # four pixels' widened columns on the stack (PW4_MAX_CIN in pc_conv.c)
EXTRA_WORDS = 10  # a record's words besides the weights: 4 starts, 6 constants
# The parameters' share of a 1 MB flash (STM32F746, nRF52840), the rest for code.
FLASH_FOR_WEIGHTS = 768 * 1024


def chosen(g: Graph, budget: int = FLASH_FOR_WEIGHTS) -> frozenset[int]:
    """The indices of the ops whose weights go to flash as pair records: eligible ones, most
    output pixels first, each while all the parameters stay within `budget` bytes."""
    if g.meta.get(KEY, True) is False:
        return frozenset()
    total = sum(_param_bytes(op) for op in g.ops)
    picked = []
    ops = [(i, op) for i, op in enumerate(g.ops) if op.kind == "conv2d"]
    for i, op in sorted(ops, key=lambda io: -int(np.prod(g.tensors[io[1].output].shape[:2]))):
        cout, cin = _filter(op).shape
        extra = 4 * cout // 2 * (cin + EXTRA_WORDS) - cin * cout
        if total + extra <= budget and eligible(g, op, op_params(g, op)):
            picked.append(i)
            total += extra
    return frozenset(picked)


def eligible(g: Graph, op: Op, p: MacParams) -> bool:
    """Whether the runtime's kernels can take op's weights as pair records (its records_fit,
    the fast requantisation on every channel, no clamp inside int8)."""
    if g.meta.get(KEY, True) is False or not memplan.is_pointwise(op):
        return False
    cout, cin = _filter(op).shape
    shape_ok = MIN_CIN <= cin <= MAX_CIN and cin % 8 == 0 and cout % 2 == 0
    return (shape_ok and p.act_min == -128 and p.act_max == 127
            and all(_fast(int(b), int(s), cin) for b, s in zip(op.bias, p.shifts, strict=True)))


def pair_records(op: Op, p: MacParams) -> np.ndarray:
    """op's pair records as uint32 words (the caller checked `eligible`)."""
    w = _filter(op).astype(np.int64) * 2  # doubled: the accumulators come out as 2 * acc
    cout, cin = w.shape
    bias = np.asarray(op.bias, np.int64)
    mult = np.asarray(p.multipliers, np.int64)
    rsh = -np.asarray(p.shifts, np.int64)  # fast: a right shift of 1..22
    rnd = (1 << (rsh - 1)) + p.output_offset * (1 << rsh)
    groups = w.reshape(cout // 2, 2, cin // 4, 4)  # pair, channel, group, k in the group
    low, high = groups[..., :2], groups[..., 2:]  # (k0, k1) and (k2, k3)
    words = (low & 0xFFFF) | ((high & 0xFFFF) << 16)  # (k0, k2) and (k1, k3)
    # per group: c0's (k0, k2), c1's (k0, k2), c0's (k1, k3), c1's (k1, k3)
    weights = words.transpose(0, 2, 3, 1).reshape(cout // 2, cin)
    starts = np.repeat(2 * bias, 2).reshape(cout // 2, 4)
    consts = np.stack([mult, rnd, rsh], axis=1).reshape(cout // 2, 6)
    records = np.concatenate([starts, weights, consts], axis=1)
    return (records & 0xFFFFFFFF).astype(np.uint32).reshape(-1)


def _param_bytes(op: Op) -> int:
    """About the flash of op's int8 parameters: its weights, and per output channel the int32
    bias, multiplier and shift."""
    w = 0 if op.weights is None else np.asarray(op.weights).size
    b = 0 if op.bias is None else np.asarray(op.bias).size
    return int(w + 12 * b)


def _filter(op: Op) -> np.ndarray:
    w = np.asarray(op.weights, np.int8)
    return w.reshape(w.shape[0], -1)


def _fast(bias: int, shift: int, k: int) -> bool:
    """pc_rq_prepare's test (pc_dsp.h): a right shift of 1..22, and |acc| < 2^30."""
    right = -shift if shift < 0 else 0
    left = shift if shift > 0 else 0
    return 1 <= right <= 22 and (abs(bias) + k * 255 * 128) << left < 1 << 30
