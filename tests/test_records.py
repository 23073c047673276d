"""Pair records (patchcam/compiler/records.py): the layout the runtime's kernels read, which
layers get them, and what the generated C holds for them. That the kernels compute the same
outputs from them is tests/test_runtime_host.py's (host, every build, and the Cortex-M7)."""

import dataclasses
import re

import numpy as np
import pytest

from patchcam.compiler import codegen, records
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.qparams import op_params
from patchcam.targets import cmsisnn


def _pointwise(cin: int, cout: int, activation: str = "none", scale: float = 0.5, zp: int = 7):
    rng = np.random.default_rng(cin + cout)
    b = GraphBuilder(f"pw{cin}x{cout}", (5, 5, cin), 0.02, -3)
    w = rng.integers(-128, 128, (cout, 1, 1, cin)).astype(np.int8)
    y = b.conv2d(b.input, w, rng.uniform(0.002, 0.02, cout), rng.integers(-3000, 3000, cout),
                 scale, zp, activation=activation)
    g = b.finish(y)
    return g, g.ops[0]


def _lane(word: int, high: bool) -> int:
    v = (int(word) >> 16 if high else int(word)) & 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


def test_records_hold_the_doubled_weights_bias_and_constants_in_the_documented_order():
    g, op = _pointwise(104, 6)
    p = op_params(g, op)
    rec = records.pair_records(op, p).reshape(3, 104 + records.EXTRA_WORDS)
    w = np.asarray(op.weights).astype(int).reshape(6, 104)
    for pair in range(3):
        c0, c1 = 2 * pair, 2 * pair + 1
        r = rec[pair]
        starts = [int(v) - (1 << 32) if v >> 31 else int(v) for v in r[:4]]
        assert starts == [2 * op.bias[c0], 2 * op.bias[c0], 2 * op.bias[c1], 2 * op.bias[c1]]
        for g4 in range(26):
            e0, e1, o0, o1 = r[4 + 4 * g4: 8 + 4 * g4]
            k = 4 * g4
            assert (_lane(e0, False), _lane(e0, True)) == (2 * w[c0, k], 2 * w[c0, k + 2])
            assert (_lane(e1, False), _lane(e1, True)) == (2 * w[c1, k], 2 * w[c1, k + 2])
            assert (_lane(o0, False), _lane(o0, True)) == (2 * w[c0, k + 1], 2 * w[c0, k + 3])
            assert (_lane(o1, False), _lane(o1, True)) == (2 * w[c1, k + 1], 2 * w[c1, k + 3])
        for j, c in enumerate((c0, c1)):
            mult, rnd, rsh = (int(v) for v in r[4 + 104 + 3 * j: 4 + 104 + 3 * j + 3])
            e = -int(p.shifts[c])
            assert (mult, rsh) == (int(p.multipliers[c]), e)
            assert rnd == (1 << (e - 1)) + p.output_offset * (1 << e)  # pc_rq_prepare's


@pytest.mark.parametrize(("cin", "cout", "activation", "zp", "expected"), [
    (104, 6, "none", 7, True),
    (384, 2, "relu", -128, True),  # ReLU from the zero point -128: SSAT's own clamp
    (384, 2, "relu", 7, False),  # ReLU inside int8: a clamp the kernel does not do
    (96, 6, "none", 7, False),  # the runtime's own records on the stack
    (392, 6, "none", 7, False),  # four pixels' columns past the stack's room
    (108, 6, "none", 7, False),  # K % 8
    (104, 7, "none", 7, False),  # an odd last channel
])
def test_which_layers_get_records(cin, cout, activation, zp, expected):
    g, op = _pointwise(cin, cout, activation, zp=zp)
    assert records.eligible(g, op, op_params(g, op)) is expected


def test_a_clamp_inside_int8_or_a_slow_channel_keeps_the_int8_filter():
    g, op = _pointwise(104, 6, "relu6", scale=0.5)  # 6.0 / 0.5 = 12 < 127: a real clamp
    assert op_params(g, op).act_max < 127
    assert not records.eligible(g, op, op_params(g, op))
    g, op = _pointwise(104, 6)
    p = op_params(g, op)
    slow = dataclasses.replace(p, shifts=np.where(np.arange(6) == 3, 1, p.shifts))
    assert not records.eligible(g, op, slow)  # a left shift: not pc_rq_prepare's fast path


def test_generated_c_passes_records_instead_of_the_filter(tmp_path):
    g, _ = _pointwise(104, 6)
    text = codegen.render(g)["model.c"]
    assert "op0_conv0_records[" in text and "op0_conv0_filter[" not in text
    assert ".pair_records = op0_conv0_records," in text
    call = re.search(r"pc_pointwise_conv2d_s8\(([^;]*)\);", text)
    assert call is not None
    assert [a.strip() for a in call.group(1).split(",")][3] == "NULL"
    cnn = codegen.render(cmsisnn.cmsis_nn_graph(g))["model.c"]
    assert "pair_records" not in cnn and "op0_conv0_filter[" in cnn
    with pytest.raises(cmsisnn.CmsisNnError, match="pair records"):
        cmsisnn.rewrite_model_c(text)


def test_the_layers_with_the_most_pixels_get_records_within_the_flash_budget():
    rng = np.random.default_rng(5)
    b = GraphBuilder("two", (10, 10, 104), 0.02, -3)
    x = b.input
    for cout, stride in ((112, 1), (104, 2)):  # 100 pixels, then 25
        k = b.tensors[x].shape[2]
        x = b.conv2d(x, rng.integers(-128, 128, (cout, 1, 1, k)).astype(np.int8),
                     rng.uniform(0.002, 0.02, cout), rng.integers(-3000, 3000, cout), 0.5, 0,
                     stride=stride, padding="valid")
    g = b.finish(x)
    base = sum(records._param_bytes(op) for op in g.ops)
    extra = [4 * op.bias.size // 2 * (op.weights.shape[3] + records.EXTRA_WORDS)
             - op.weights.size for op in g.ops]
    assert records.chosen(g) == {0, 1}
    assert records.chosen(g, base + sum(extra)) == {0, 1}
    assert records.chosen(g, base + sum(extra) - 1) == {0}  # the 100 pixels first
    assert records.chosen(g, base + extra[1]) == {1}  # what still fits
    assert records.chosen(g, base + min(extra) - 1) == set()
    assert records.chosen(dataclasses.replace(g, meta={records.KEY: False})) == set()
