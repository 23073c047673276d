"""Layer-by-layer memory plan: no live buffers share a byte, residuals stay live, add runs in
place, the plan is near its lower bound, and the generated C declares exactly its arena."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from patchcam.compiler import codegen, memplan
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.randgraph import random_graph


def _w(rng, shape):
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def residual_graph():
    """input -> conv 1x1 -> dw 3x3 -> conv 1x1 -> add(input) -> global pool -> fc."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("resid", (8, 8, 4), 0.02, 0)
    x = b.input
    y = b.conv2d(x, _w(rng, (16, 1, 1, 4)), np.full(16, 0.01), np.zeros(16), 0.05, 0)
    y = b.depthwise_conv2d(y, _w(rng, (3, 3, 16)), np.full(16, 0.01), np.zeros(16), 0.05, 0)
    y = b.conv2d(y, _w(rng, (4, 1, 1, 16)), np.full(4, 0.01), np.zeros(4), 0.05, 0)
    z = b.add(x, y, 0.05, 0)
    z = b.global_avg_pool(z)
    z = b.fully_connected(z, _w(rng, (3, 4)), 0.01, np.zeros(3), 0.1, 0)
    return b.finish(z)


def test_residual_kept_live_and_add_in_place():
    g = residual_graph()
    plan = memplan.plan_layers(g)
    memplan.check_plan(plan)
    add = next(op for op in g.ops if op.kind == "add")
    # the skip tensor (the graph input) lives from op 0 to the add
    assert plan.tensors[g.input].first == 0 and plan.tensors[g.input].last == g.ops.index(add)
    # the add writes over an input that dies there
    assert plan.aliases[add.output] in add.inputs
    assert plan.offset(add.output) == plan.offset(plan.aliases[add.output])
    # the depthwise conv writes over its input too: while it runs the 256-byte input is kept,
    # the 1024-byte expanded tensor and the ring of 2 output rows x 8 pixels x 4 channels
    dw = g.ops[1]
    assert plan.aliases[dw.output] == dw.inputs[0]
    assert plan.offset(dw.output) == plan.offset(dw.inputs[0])
    assert plan.scratch[1].size == 2 * 8 * 4
    assert plan.live_bytes[1] == 256 + g.tensors[dw.output].size + 2 * 8 * 4
    assert plan.arena_bytes == plan.lower_bound
    assert memplan.plan_layers(g, in_place=False).arena_bytes >= plan.arena_bytes


def test_scratch_is_planned_per_op():
    g = residual_graph()
    plan = memplan.plan_layers(g)
    pw, conv = g.ops[0], g.ops[2]
    assert plan.scratch[0].size == 4 * 4 and memplan.is_pointwise(pw)
    assert plan.scratch[2].size == 4 * 16 and memplan.is_pointwise(conv)
    # depthwise needs none, except in place (the ring of output rows)
    assert memplan.plan_layers(g, in_place=False).scratch[1] is None


@pytest.mark.parametrize(("hw", "kernel", "stride", "pad_top", "rows"), [
    ((112, 112), 3, 1, 1, 2),  # an output row waits until the row below it is computed
    ((112, 112), 3, 2, 0, 1),  # stride 2: only the first row waits
    ((113, 113), 3, 2, 1, 1),
    ((14, 14), 5, 1, 2, 3),
    ((7, 7), 7, 1, 3, 4),
    ((9, 9), 1, 1, 0, 1),  # 1x1: a row reads the input row it lands on
])
def test_dw_in_place_rows(hw, kernel, stride, pad_top, rows):
    h, w = hw
    ho, wo = (h + stride - 1) // stride, (w + stride - 1) // stride
    assert memplan.dw_in_place_rows((h, w, 8), (ho, wo, 8), kernel, stride, pad_top) == rows


@pytest.mark.parametrize("seed", range(300))
def test_random_plans_valid_and_tight(seed):
    g = random_graph(seed)
    plan = memplan.plan_layers(g)
    memplan.check_plan(plan)
    assert plan.lower_bound <= plan.arena_bytes <= 1.15 * plan.lower_bound + 16
    for i in range(len(g.ops)):
        for off, size in plan.op_regions(g, i):
            assert off % memplan.ALIGN == 0 and off + size <= plan.arena_bytes


@pytest.mark.parametrize("seed", [0, 7, 19])
def test_declared_arena_equals_plan(seed, tmp_path):
    g = random_graph(seed)
    plan = memplan.plan_layers(g)
    files = codegen.generate(g, tmp_path)
    m = re.search(r"#define MODEL_ARENA_BYTES (\d+)", files["model.h"].read_text())
    assert int(m.group(1)) == plan.arena_bytes
    if shutil.which("nm") is None:
        return
    # ... and the object file's arena symbol has exactly that size
    obj = tmp_path / "model.o"
    inc = [f"-I{d}" for d in [tmp_path, *codegen.runtime_include_dirs()]]
    subprocess.run(["gcc", "-std=c99", "-O2", *inc, "-c", str(files["model.c"]), "-o", str(obj)],
                   check=True)
    syms = subprocess.run(["nm", "-S", str(obj)], capture_output=True, text=True, check=True)
    sizes = [int(line.split()[1], 16) for line in syms.stdout.splitlines()
             if line.endswith(" model_arena")]
    assert sizes == [plan.arena_bytes]
