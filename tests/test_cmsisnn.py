"""CMSIS-NN side by side (`patchcam bench --cmsis-nn DIR`): the harness's own logic without
CMSIS-NN, and, when a checkout is at hand ($PATCHCAM_CMSIS_NN or build/cmsis-nn), the same
layers on its kernels, bit-exact with the reference and compared op kind by op kind."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from patchcam.compiler import codegen, memplan, patchplan, reference
from patchcam.compiler.randgraph import random_graph
from patchcam.paths import REPO
from patchcam.targets import bench, cmsisnn

HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None and \
    shutil.which("qemu-system-arm") is not None
CHECKOUT = Path(os.environ.get("PATCHCAM_CMSIS_NN", REPO / "build" / "cmsis-nn"))
HAVE_CMSIS = (CHECKOUT / "Include" / "arm_nnfunctions.h").is_file()


@pytest.fixture(scope="module")
def graph():
    return random_graph(4, size=(32, 32), channels=4, n_blocks=6)


def _generate(g, tmp_path: Path, schedule: patchplan.Schedule) -> str:
    codegen.generate(g, tmp_path, schedule=schedule)
    return (tmp_path / "model.c").read_text()


def _invoke_body(text: str) -> str:
    start = text.index("void model_invoke(void)\n{")
    return text[start:text.index("\n}\n", start)]


def test_rewrite_sends_every_kernel_call_to_the_adapter(graph, tmp_path):
    g = cmsisnn.cmsis_nn_graph(graph)
    text = _generate(g, tmp_path, patchplan.layer_schedule(g))
    new = cmsisnn.rewrite_model_c(text)
    body = _invoke_body(new)
    kernels = {op.kind for op in graph.ops}
    calls = re.findall(r"\b(pc|cnn)_(\w+)\(", body)
    assert calls and all(p == "cnn" for p, name in calls if name != "mean_s8")
    assert len(calls) == len(graph.ops)  # one call per op, none lost
    assert '#include "cnn_adapter.h"' in new
    # everything outside model_invoke (weights, requantisation tables, arena) is unchanged
    assert new.replace(body, "").replace('#include "cnn_adapter.h"\n', "") == \
        text.replace(_invoke_body(text), "")
    assert {"conv2d", "depthwise_conv2d", "add"} <= kernels


def test_in_place_depthwise_is_refused_and_planned_apart_for_cmsis_nn(graph, tmp_path):
    ours = patchplan.layer_schedule(graph)
    text = _generate(graph, tmp_path, ours)
    assert "pc_depthwise_conv2d_s8_in_place(" in text
    with pytest.raises(cmsisnn.CmsisNnError, match="in-place depthwise"):
        cmsisnn.rewrite_model_c(text)
    apart = patchplan.layer_schedule(cmsisnn.cmsis_nn_graph(graph))
    assert apart.arena_bytes > ours.arena_bytes  # the price of a separate output buffer
    assert memplan.DW_IN_PLACE_KEY not in graph.meta  # the caller's graph is untouched


def test_rewrite_refuses_patch_based_code(graph, tmp_path):
    s = patchplan.search(graph, max_overhead=bench.MAX_OVERHEAD, mode="recompute")
    assert s.mode == "recompute"
    with pytest.raises(cmsisnn.CmsisNnError, match="layer by layer"):
        cmsisnn.rewrite_model_c(_generate(graph, tmp_path, s))


def test_a_folder_that_is_not_cmsis_nn_is_refused(tmp_path, capsys):
    with pytest.raises(cmsisnn.CmsisNnError, match="not a CMSIS-NN checkout"):
        cmsisnn.check_dir(tmp_path)
    with pytest.raises(SystemExit) as e:
        bench.main(["vww", "--cmsis-nn", str(tmp_path), "--out", str(tmp_path / "b.json")])
    assert e.value.code == 2 and "not a CMSIS-NN checkout" in capsys.readouterr().err


def test_sources_leave_out_the_float_kernels(tmp_path):
    for d in cmsisnn.SOURCE_DIRS:
        (tmp_path / "Source" / d).mkdir(parents=True)
    conv = tmp_path / "Source" / "ConvolutionFunctions"
    for name in ("arm_convolve_s8.c", "arm_convolve_f32.c", "arm_convolve_1x1_f16.c",
                 "arm_nn_mat_mult_kernel_s8_s16.c", "arm_depthwise_conv_s4_opt.c"):
        (conv / name).write_text("")
    (tmp_path / "Include").mkdir()
    (tmp_path / "Include" / "arm_nnfunctions.h").write_text("")
    (tmp_path / "COMMIT").write_text("abc123\n")
    root = cmsisnn.check_dir(tmp_path)
    assert [p.name for p in cmsisnn.sources(root)] == [
        "arm_convolve_s8.c", "arm_depthwise_conv_s4_opt.c", "arm_nn_mat_mult_kernel_s8_s16.c"]
    assert cmsisnn.commit_of(root) == "abc123"


def _record(kernels: str, total: int, kinds: dict[str, int]) -> bench.Record:
    per_kind = {k: {"macs": 1000, "instructions": n, "instr_per_mac": n / 1000, "ops": 1}
                for k, n in kinds.items()}
    per_kind["driver"] = {"macs": 0, "instructions": total - sum(kinds.values()),
                          "instr_per_mac": None, "ops": 0}
    return bench.Record("m", "layer", kernels, 3000, 10, 100, 1000, 1000, True, total,
                        total / 3000, per_kind=per_kind,
                        cmsis_nn_commit="c0ffee" if kernels == "cmsis-nn" else None)


def test_ratios_per_kind_and_whole():
    ours = _record("dsp", 5000, {"pointwise": 2000, "depthwise": 2500})
    theirs = _record("cmsis-nn", 10000, {"pointwise": 4000, "depthwise": 5000, "add": 900})
    portable = _record("portable", 20000, {"pointwise": 9000, "depthwise": 9000})
    records = [ours, portable, theirs]
    bench.attach_cmsis_nn(records)
    assert portable.vs_cmsis_nn is None and theirs.vs_cmsis_nn is None
    v = ours.vs_cmsis_nn
    assert v["ratio"] == 0.5 and v["commit"] == "c0ffee"
    assert v["per_kind"]["pointwise"]["ratio"] == 0.5
    assert v["per_kind"]["depthwise"] == {"macs": 1000, "instructions": 2500,
                                          "cmsis_nn_instructions": 5000, "ratio": 0.5}
    assert "driver" not in v["per_kind"] and "add" not in v["per_kind"]
    text = bench.cmsis_table(records)
    assert "c0ffee" in text and "0.500" in text
    other = _record("cmsis-nn", 10000, {})
    other.model = "n"
    with pytest.raises(ValueError, match="not the same layers"):
        bench.compare_cmsis_nn(ours, other)


@pytest.mark.skipif(not (HAVE_ARM and HAVE_CMSIS),
                    reason="needs the ARM toolchain, QEMU and a CMSIS-NN checkout "
                           "($PATCHCAM_CMSIS_NN or build/cmsis-nn)")
def test_same_layers_on_cmsis_nn(graph, tmp_path):
    g = graph
    lib = cmsisnn.library(CHECKOUT)
    x = bench.photo_input(g)
    want = reference.run(g, x)
    s = patchplan.layer_schedule(g)
    records = bench.measure(g, s, "layer", x, want, tmp_path, ("dsp", "cmsis-nn"), None, lib)
    bench.attach_cmsis_nn(records)  # measure refused any output != the reference
    ours, theirs = records
    assert theirs.kernels == "cmsis-nn" and theirs.cmsis_nn_commit == lib.commit
    apart = patchplan.layer_schedule(cmsisnn.cmsis_nn_graph(g)).arena_bytes
    assert theirs.macs == ours.macs and theirs.arena_bytes == apart > ours.arena_bytes
    fns = {f for st in theirs.per_op for f in st["functions"]}
    assert {"arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8"} <= fns
    assert not any(f.startswith(("mat_mult", "pc_pointwise", "pc_depthwise")) for f in fns)
    v = ours.vs_cmsis_nn
    assert v["ratio"] == pytest.approx(ours.m7_instructions / theirs.m7_instructions, abs=1e-3)
    assert {"pointwise", "depthwise", "add"} <= set(v["per_kind"])
    assert np.isfinite(v["per_kind"]["pointwise"]["ratio"])
