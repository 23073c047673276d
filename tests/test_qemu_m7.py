"""The virtual Cortex-M7 board (qemu_m7): build, run under QEMU, count instructions.

The board is brought up with a stand-in model (firmware/boards/qemu_m7/selftest/: output =
-input) so these tests do not depend on the code generator; the end-to-end tests with real
generated models check the Cortex-M7 build against the numpy reference (docs/design.md §5 step 3).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from patchcam.targets import armbuild, qemu

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs gcc-arm-none-eabi and qemu-system-arm (make setup)")

SELFTEST = armbuild.BOARD_DIR / "selftest"
SELFTEST_MODEL = SELFTEST / "model"
SELFTEST_MAIN = SELFTEST / "selftest_main.c"
N = 256  # the stand-in model's input and output bytes


def selftest_build(out: Path, mode: int = 0, **kw) -> armbuild.ArmBuild:
    return armbuild.build(SELFTEST_MODEL, out, main_c=SELFTEST_MAIN,
                          defines=(f"SELFTEST_MODE={mode}", *kw.pop("defines", ())), **kw)


def negated(x: bytes) -> bytes:
    return (-np.frombuffer(x, np.int8)).astype(np.int8).tobytes()


@pytest.fixture(scope="module")
def selftest_elf(tmp_path_factory) -> Path:
    return selftest_build(tmp_path_factory.mktemp("selftest")).elf


def test_board_runs_the_model(selftest_elf):
    x = np.random.default_rng(0).integers(-128, 128, N, dtype=np.int8).tobytes()
    out, status, insns = qemu.run_qemu(selftest_elf, x, timeout_s=30)
    assert (out, status, insns) == (negated(x), 0, None)


def test_instruction_count_is_exact_and_deterministic(selftest_elf):
    x = bytes(range(N))
    n = qemu.count_instructions(selftest_elf, x)
    assert n == qemu.count_instructions(selftest_elf, x)
    # The stand-in's loop runs N times; a handful of instructions each, nothing else.
    assert 4 * N < n < 20 * N
    # Counting must not change what the firmware computes.
    out, _, n2 = qemu.run_qemu(selftest_elf, x, count=True)
    assert out == negated(x) and n2 == n


def test_instruction_count_is_exactly_model_invoke(tmp_path):
    # model_invoke in hand-written assembly: 303 instructions, one of them per loop an I/O read.
    elf = selftest_build(tmp_path, defines=("SELFTEST_EXACT_INVOKE",)).elf
    assert qemu.count_instructions(elf, bytes(N)) == 303


def test_sizes_and_budget_figures(tmp_path):
    b = selftest_build(tmp_path)
    s = b.sizes
    assert s.flash_bytes == s.text + s.data and s.ram_bytes == s.data + s.bss
    # The bss holds at least the stack and the stand-in's 1 kB arena.
    assert s.bss >= b.budget.stack_bytes + 1024
    assert s.flash_bytes < 16 * 1024


def test_model_over_ram_budget_fails_with_one_clear_line(tmp_path):
    with pytest.raises(armbuild.BudgetError) as e:
        selftest_build(tmp_path, defines=("MODEL_ARENA_BYTES=400000",))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("selftest: needs ") and "RAM" in msg
    assert "STM32F746 budget of 327680 bytes" in msg
    need = int(msg.split("needs ")[1].split()[0])
    assert need > 400000 + armbuild.STM32F746.stack_bytes
    # The same image links for a chip with more SRAM, and the figures agree with the message.
    roomy = armbuild.Budget("big", flash_bytes=1024 * 1024, ram_bytes=512 * 1024)
    b = selftest_build(tmp_path, defines=("MODEL_ARENA_BYTES=400000",), budget=roomy)
    assert b.sizes.ram_bytes == need


def test_model_over_flash_budget_fails(tmp_path):
    small = armbuild.Budget("tiny", flash_bytes=1024, ram_bytes=320 * 1024)
    with pytest.raises(armbuild.BudgetError, match=r"^selftest: needs \d+ bytes of flash .* "
                                                    r"tiny budget of 1024 bytes"):
        selftest_build(tmp_path, budget=small)


def test_runtime_is_compiled_once_per_flags_and_source(tmp_path, monkeypatch):
    # A copy of the runtime, so that editing it touches nothing shared.
    runtime = tmp_path / "runtime"
    shutil.copytree(armbuild.FIRMWARE / "runtime", runtime)
    monkeypatch.setattr(armbuild, "_runtime", lambda: (sorted(runtime.glob("*.c")), [runtime]))
    monkeypatch.setattr(armbuild, "RUNTIME_CACHE", tmp_path / "cache")
    flags = [*armbuild.CFLAGS, "-O2", "-DPC_PORTABLE"]  # the portable kernels compile fast
    first = armbuild._runtime_objects(flags)
    assert [o.stem for o in first] == [s.stem for s in sorted(runtime.glob("*.c"))]
    stamp = [o.stat().st_mtime_ns for o in first]
    again = armbuild._runtime_objects(flags)
    assert again == first and [o.stat().st_mtime_ns for o in again] == stamp  # not recompiled
    assert armbuild._runtime_objects([*flags, "-DX=1"])[0].parent != first[0].parent
    # Any header the runtime includes is part of the key.
    with (runtime / "pc_requant.h").open("a") as f:
        f.write("\n/* changed */\n")
    assert armbuild._runtime_objects(flags)[0].parent != first[0].parent
    (runtime / "pc_pool.c").write_text("#error broken\n")
    with pytest.raises(armbuild.BuildError, match="^runtime: arm build of pc_pool.c failed"):
        armbuild._runtime_objects(flags)
    assert not list((tmp_path / "cache").glob("tmp-*"))  # nothing half-built is left


def test_malloc_does_not_link(tmp_path):
    with pytest.raises(armbuild.BuildError, match="sbrk"):
        selftest_build(tmp_path, mode=5)


def test_hang_is_reported_as_timeout(tmp_path):
    elf = selftest_build(tmp_path, mode=1).elf
    with pytest.raises(qemu.QemuTimeout, match="hang"):
        qemu.run_qemu(elf, bytes(N), timeout_s=2)


def test_crash_is_reported_as_crash(tmp_path):
    elf = selftest_build(tmp_path, mode=2).elf
    with pytest.raises(qemu.QemuCrash, match=r"FAULT BusFault .*pc=[0-9a-f]{8}"):
        qemu.run_qemu(elf, bytes(N), timeout_s=30)


def test_nonzero_exit_is_an_error(tmp_path):
    elf = selftest_build(tmp_path, mode=3).elf
    with pytest.raises(qemu.QemuExitError, match="status 7") as e:
        qemu.run_qemu(elf, bytes(N), timeout_s=30)
    assert e.value.status == 7
    assert qemu.run_qemu(elf, bytes(N), timeout_s=30, check=False)[1] == 7


def test_short_input_is_an_error(selftest_elf):
    with pytest.raises(qemu.QemuExitError, match="status 2"):
        qemu.run_qemu(selftest_elf, bytes(N - 1), timeout_s=30)


def test_time_camera_and_uart(tmp_path):
    elf = selftest_build(tmp_path, mode=4).elf
    w, h = 8, 4
    frames = [bytes((i * 7 + j) & 0xFF for j in range(w * h * 2)) for i in range(3)]
    camera = b"PCAM" + struct.pack("<HHB7x", w, h, 2) + b"".join(frames) + b"\x01\x02"
    uart = tmp_path / "uart.txt"
    x = bytes(range(N))
    out, _, _ = qemu.run_qemu(elf, x, timeout_s=30, camera=camera, serial=f"file:{uart}")
    assert out[:N] == negated(x)
    (dt,) = struct.unpack("<I", out[N:N + 4])
    assert 0 <= dt < 100  # ~2k instructions at 1 ns each (-icount shift=0)
    assert out[N + 4] == 2  # RGB565; the trailing partial frame is not delivered
    assert out[N + 5:] == b"".join(frames)
    assert uart.read_bytes() == b"uart ok\n"
    # Virtual time is a function of the instructions run: the whole output repeats exactly.
    assert qemu.run_qemu(elf, x, timeout_s=30, camera=camera)[0] == out


def test_no_camera_file_means_no_camera(tmp_path):
    elf = selftest_build(tmp_path, mode=4).elf
    out, _, _ = qemu.run_qemu(elf, bytes(N), timeout_s=30)
    assert out[N + 4:] == bytes([0])  # BOARD_PIXFMT_NONE, no frames


def test_missing_qemu_says_how_to_install(monkeypatch, selftest_elf):
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    with pytest.raises(qemu.QemuNotFound, match="apt-get install --no-install-recommends "
                                                "qemu-system-arm"):
        qemu.run_qemu(selftest_elf, bytes(N))


# ---- real generated models (docs/design.md §5 step 3: Cortex-M7 build == numpy reference) ----

def _generated(tmp_path: Path, seed: int, **kw):
    codegen = pytest.importorskip("patchcam.compiler.codegen")
    from patchcam.compiler.randgraph import random_graph, random_input

    if not armbuild.DEFAULT_MAIN.exists():
        pytest.skip("firmware/app/infer_main.c not written yet")
    g = random_graph(seed, **kw)
    codegen.generate(g, tmp_path / "model")
    return g, random_input(g, seed)


def _check_model_on_m7(tmp_path: Path, seed: int, **kw) -> None:
    from patchcam.compiler import reference

    g, x = _generated(tmp_path, seed, **kw)
    want = reference.run(g, x).tobytes()
    for portable in (False, True):
        b = armbuild.build(tmp_path / "model", tmp_path / "build", portable=portable)
        assert b.model == g.name
        out, status, _ = qemu.run_qemu(b.elf, x.tobytes(), timeout_s=60)
        assert status == 0
        assert out == want, f"seed {seed} {'portable' if portable else 'dsp'}: differs"


@pytest.mark.parametrize("seed", range(6))
def test_random_graph_on_m7_matches_reference(tmp_path, seed):
    _check_model_on_m7(tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 30))
def test_more_random_graphs_on_m7_match_reference(tmp_path, seed):
    _check_model_on_m7(tmp_path, seed, n_blocks=6)


def test_generated_model_instruction_count(tmp_path):
    g, x = _generated(tmp_path, 0)
    counts = {}
    for portable in (False, True):
        elf = armbuild.build(tmp_path / "model", tmp_path / "build", portable=portable).elf
        n = qemu.count_instructions(elf, x.tobytes())
        assert n > 0 and n == qemu.count_instructions(elf, x.tobytes())
        counts[portable] = n
    assert counts[False] < counts[True]  # the DSP kernels are the point of having them


def test_generated_model_over_ram_budget(tmp_path):
    g, _ = _generated(tmp_path, 0)
    small = armbuild.Budget("tiny", flash_bytes=1024 * 1024, ram_bytes=20 * 1024)
    with pytest.raises(armbuild.BudgetError) as e:
        armbuild.build(tmp_path / "model", tmp_path / "build", budget=small)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{g.name}: needs ") and "tiny budget of 20480 bytes" in msg
