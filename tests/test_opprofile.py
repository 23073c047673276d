"""The per-op profile of `make bench`: every op's instructions on the emulated Cortex-M7, split
from one run without touching the firmware, summing exactly to the whole inference."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict

import pytest

from patchcam.compiler import patchplan, reference
from patchcam.compiler.randgraph import random_graph
from patchcam.targets import armbuild, bench, opprofile, qemu

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs gcc-arm-none-eabi and qemu-system-arm (make setup)")

STEP_KEYS = {"op", "label", "kind", "callees", "macs", "instructions", "instr_per_mac",
             "functions"}
KIND_KEYS = {"macs", "instructions", "instr_per_mac", "ops"}


@pytest.fixture(scope="module")
def graph():
    return random_graph(4, size=(32, 32), channels=4, n_blocks=6)


@pytest.mark.parametrize("schedule", ["layer", "cache-fused"])
def test_per_op_profile_sums_to_the_whole(graph, schedule, tmp_path):
    g = graph
    x = bench.photo_input(g)
    want = reference.run(g, x)
    s = bench.schedule_for(g, schedule)
    assert s.mode == ("layer" if schedule == "layer" else "cache")
    [r] = bench.measure(g, s, schedule, x, want, tmp_path, ("dsp",))  # output == reference
    # the profile splits the very count the bench always reported
    [elf] = (tmp_path / "m7").glob("*.elf")
    assert qemu.count_instructions(elf, x.tobytes()) == r.m7_instructions
    assert r.per_op and r.per_kind
    driver = r.per_kind["driver"]["instructions"]
    assert sum(st["instructions"] for st in r.per_op) + driver == r.m7_instructions
    assert sum(k["instructions"] for k in r.per_kind.values()) == r.m7_instructions
    assert 0 < driver < r.m7_instructions // 20  # argument set-up, the patch loop
    assert sum(st["macs"] for st in r.per_op) == r.macs == sum(patchplan.op_macs(g, s))
    assert sum(k["macs"] for k in r.per_kind.values()) == r.macs
    ops = [st["op"] for st in r.per_op if st["op"] >= 0]
    assert ops == list(range(len(g.ops)))  # every op once, in order
    for st in r.per_op:
        assert set(st) == STEP_KEYS
        assert sum(st["functions"].values()) == st["instructions"] > 0
        if st["kind"] == "input_copy" and schedule == "cache-fused":  # through source->read
            assert st["callees"] == [opprofile.INDIRECT]
            assert "pc_input_read_buffer" in st["functions"]  # model_invoke()'s source
        else:
            assert st["callees"] and all(c.startswith("pc_") for c in st["callees"])
        if st["op"] >= 0:
            assert st["kind"] == opprofile.op_kind(g, st["op"])
        if st["macs"]:
            assert st["instr_per_mac"] == pytest.approx(st["instructions"] / st["macs"],
                                                        abs=1e-3)
            assert st["instructions"] > st["macs"] // 2  # SMLAD: at most 2 MACs each
    for k in r.per_kind.values():
        assert set(k) == KIND_KEYS
    kinds = {st["kind"] for st in r.per_op}
    if schedule == "cache-fused":
        assert {"input_copy", "halo"} <= kinds  # the patch stage's own steps
        assert any("pc_patch_" in c for st in r.per_op for c in st["callees"])
    else:
        assert "input_copy" not in kinds and "halo" not in kinds
    assert {"pointwise", "depthwise"} <= kinds
    # the kernel variant is visible: the pointwise instructions run in the DSP helpers
    pw_fns = {f for st in r.per_op if st["kind"] == "pointwise" for f in st["functions"]}
    assert pw_fns & {"mat_mult_pw", "mat_mult_pw4_k8", "mat_mult_pw4_k16", "mat_mult_pw4_any",
                     "mat_mult_pw4_narrow8", "mat_mult_pw4_narrow16"}
    saved = json.loads(json.dumps(asdict(r)))
    assert saved["per_op"] == r.per_op and saved["per_kind"] == r.per_kind
    text = bench.op_table(r)
    assert "driver" in text and r.per_op[0]["label"] in text
    assert "pointwise i/MAC" in bench.kind_table([r]).splitlines()[0]


def test_step_rows_name_ops_copies_and_halos(graph, tmp_path):
    g = graph
    n = len(g.ops)
    assert opprofile.step_of_row(g, 0)[0] == 0
    assert opprofile.step_of_row(g, n) == (-1, "input copy", "input_copy")
    assert opprofile.step_of_row(g, n + 3) == (-1, "halo 2", "halo")
    c = tmp_path / "model.c"
    c.write_text("int x;\n    MODEL_CHECK_OP(4);\n    f();\n\n        MODEL_CHECK_OP(12);\n"
                 "    g(a,\n      b);\n")
    assert opprofile.check_rows(c) == {2: 4, 3: 4, 4: 4, 5: 12, 6: 12, 7: 12}


def test_marks_split_an_exact_count(tmp_path):
    # The board's hand-written model_invoke (tests/test_qemu_m7.py): 2 set-up instructions,
    # 100 x (ldr, subs, bne) with an I/O read in each, bx lr = 303 instructions.
    selftest = armbuild.BOARD_DIR / "selftest"
    elf = armbuild.build(selftest / "model", tmp_path, main_c=selftest / "selftest_main.c",
                         defines=("SELFTEST_MODE=0", "SELFTEST_EXACT_INVOKE")).elf
    entry = next(s for s, _, name in qemu.function_ranges(elf) if name == "model_invoke")
    _, whole = qemu.profile_invoke(elf, bytes(256), {})
    assert whole.instructions == 303 and whole.buckets == {0: 303}
    assert whole.cells == {0: {"model_invoke": 303}}
    # the loop (entry + 4) opens bucket 1, `bx lr` (entry + 10) bucket 2; a mark's own
    # instruction counts into the bucket it opens
    _, split = qemu.profile_invoke(elf, bytes(256), {entry + 4: 1, entry + 10: 2})
    assert split.instructions == 303
    assert split.buckets == {0: 2, 1: 300, 2: 1}
