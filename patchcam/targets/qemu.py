"""Run qemu_m7 firmware under QEMU (mps2-an500, Cortex-M7) and count its instructions.

    out, status, _ = run_qemu(elf, x.tobytes(), timeout_s=60)
    n = count_instructions(elf, x.tobytes())      # instructions of one model_invoke()
    out, prof = profile_invoke(elf, x.tobytes(), {0x1234: 1, 0x1238: 0})  # split by marks

Each run gets a fresh temporary folder as QEMU's working directory: the input goes to
`input.bin`, the firmware writes `output.bin` (semihosting, see docs/qemu_m7.md). `-icount
shift=0` makes the guest's clock a function of the instructions executed, so runs are
deterministic. A fault, a hang (timeout) or a nonzero exit raises a QemuError subclass: a
broken firmware is never mistaken for a result.

Instruction counts come from our TCG plugin (firmware/tools/insn_count), built here with the
host's gcc on first use. It counts every executed instruction; for one inference it samples
the count at model_invoke's first instruction and at the return site of each `bl model_invoke`
(found in the ELF's disassembly), so the figure is exactly the instructions model_invoke
executed (interrupts are off on this board, so nothing else runs in between).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchcam.paths import REPO

PLUGIN_SRC = REPO / "firmware" / "tools" / "insn_count"
PLUGIN = REPO / "build" / "tools" / "insn_count" / "insn_count.so"
# Same flags as firmware/tools/insn_count/Makefile.
PLUGIN_CFLAGS = ["-std=c99", "-O2", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra",
                 "-Werror", "-shared"]

QEMU = "qemu-system-arm"
MACHINE = "mps2-an500"
INSTALL_HINT = "sudo apt-get install --no-install-recommends qemu-system-arm (or `make setup`)"
EXIT_FAULT = 250  # firmware/boards/qemu_m7/qemu_m7.h: QEMU_M7_EXIT_FAULT
INPUT_FILE, OUTPUT_FILE, CAMERA_FILE = "input.bin", "output.bin", "camera.raw"


class QemuError(RuntimeError):
    """QEMU or the firmware did not complete a run normally."""


class QemuNotFound(QemuError):
    pass


class QemuTimeout(QemuError):
    """The firmware did not exit in time (a hang)."""


class QemuCrash(QemuError):
    """The firmware took a fault (its handler exits with EXIT_FAULT) or QEMU itself died."""


class QemuExitError(QemuError):
    """The firmware exited with a nonzero status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise QemuNotFound(f"{QEMU} not found: {INSTALL_HINT}")
    return path


def qemu_command(elf: str | Path, *, serial: str | None = None,
                 cmdline: str | None = None) -> list[str]:
    """The QEMU command line that boots elf. serial: a QEMU chardev for UART0, e.g.
    "tcp:127.0.0.1:5555,server=on,wait=off" (default: QEMU's stdout). cmdline: the
    semihosting command line (`in=PATH out=PATH cam=PATH` overrides the file names)."""
    cmd = [qemu_binary(), "-M", MACHINE, "-nographic",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
           "-kernel", str(Path(elf).resolve())]
    if serial is not None:
        cmd += ["-serial", serial]
    if cmdline is not None:
        cmd += ["-append", cmdline]
    return cmd


def _fault_line(stderr: str) -> str:
    for line in stderr.splitlines():
        if "qemu_m7: FAULT" in line:
            return line.strip()
    return stderr.strip().splitlines()[-1] if stderr.strip() else "no message"


def run_qemu(elf: str | Path, x: bytes, timeout_s: float = 60.0, *, count: bool = False,
             camera: bytes | None = None, serial: str | None = None, check: bool = True,
             ) -> tuple[bytes, int, int | None]:
    """Boot elf with x as its input file; return (output bytes, exit status, instructions).

    instructions is None unless count: then it is the instructions of the first
    model_invoke() if the image has one, else of the whole run. camera: the virtual
    camera's file (header + frames, see docs/qemu_m7.md). check=False returns a nonzero
    exit status instead of raising QemuExitError (faults and timeouts always raise)."""
    out, status, insns, _ = _run(elf, x, timeout_s, count=count, camera=camera, serial=serial,
                                 check=check)
    return out, status, insns


@dataclass
class Profile:
    """One model_invoke() split into buckets (see profile_invoke)."""
    instructions: int  # of the whole model_invoke()
    buckets: dict[int, int]  # bucket -> instructions (only nonzero ones)
    cells: dict[int, dict[str, int]]  # bucket -> function -> its own instructions there


def function_ranges(elf: str | Path) -> list[tuple[int, int, str]]:
    """(start, end, name) of every function with a size in elf, by address; names of
    aliases at one address are joined with '/'."""
    nm = subprocess.run(["arm-none-eabi-nm", "-S", "--defined-only", str(elf)],
                        capture_output=True, text=True, check=True).stdout
    by_start: dict[int, tuple[int, list[str]]] = {}
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[2] not in "tTwW":
            continue
        start, size = int(parts[0], 16) & ~1, int(parts[1], 16)
        if size == 0:
            continue
        end, names = by_start.setdefault(start, (start + size, []))
        names.append(parts[3])
    return [(s, e, "/".join(sorted(n))) for s, (e, n) in sorted(by_start.items())]


def profile_invoke(elf: str | Path, x: bytes, marks: dict[int, int], timeout_s: float = 120.0,
                   ) -> tuple[bytes, Profile]:
    """Run elf on x; split the instructions of its first model_invoke() into buckets.

    marks: instruction address -> bucket (1..65535): when that instruction executes, the
    instructions from it on count into that bucket; model_invoke starts in bucket 0. E.g. a
    call site's `bl` opens its op's bucket and the return site returns to 0. Each bucket is
    also split by the function the instructions belong to (function_ranges; "?" outside
    every function). The buckets sum exactly to the instructions of model_invoke() (checked),
    which are the same as count_instructions'."""
    elf = Path(elf).resolve()
    if _markers(elf, os.stat(elf).st_mtime_ns) is None:
        raise QemuError(f"{elf.name}: no model_invoke or no `bl model_invoke` to measure")
    fns = function_ranges(elf)
    lines = [f"fn {s:#x} {e:#x}" for s, e, _ in fns]
    lines += [f"mark {a:#x} {b}" for a, b in sorted(marks.items())]
    with tempfile.TemporaryDirectory(prefix="qemu_prof_") as tmp:
        spec = Path(tmp) / "profile.txt"
        spec.write_text("\n".join(lines) + "\n")
        out, _, n, text = _run(elf, x, timeout_s, count=True, profile=spec)
    assert n is not None and text is not None
    names = [name for _, _, name in fns] + ["?"]
    buckets = {int(b): int(v) for b, v in re.findall(r"^bucket (\d+) (\d+)$", text, re.M)}
    cells: dict[int, dict[str, int]] = {}
    for b, f, v in re.findall(r"^cell (\d+) (\d+) (\d+)$", text, re.M):
        row = cells.setdefault(int(b), {})
        row[names[int(f)]] = row.get(names[int(f)], 0) + int(v)
    if sum(buckets.values()) != n:
        raise QemuError(f"{elf.name}: the profile's buckets sum to {sum(buckets.values())}, "
                        f"model_invoke executed {n} instructions")
    return out, Profile(n, buckets, cells)


def _run(elf: str | Path, x: bytes, timeout_s: float, *, count: bool = False,
         camera: bytes | None = None, serial: str | None = None, check: bool = True,
         profile: Path | None = None) -> tuple[bytes, int, int | None, str | None]:
    """run_qemu, plus the plugin's report (count only) and an optional profile file."""
    elf = Path(elf).resolve()
    cmd = qemu_command(elf, serial=serial)
    markers = _markers(elf, os.stat(elf).st_mtime_ns) if count else None
    with tempfile.TemporaryDirectory(prefix="qemu_m7_") as tmp:
        work = Path(tmp)
        (work / INPUT_FILE).write_bytes(x)
        if camera is not None:
            (work / CAMERA_FILE).write_bytes(camera)
        counts = work / "insn_count.txt"
        if count:
            args = [f"out={counts}"]
            if markers is not None:
                begin, ends = markers
                args += [f"begin={begin:#x}", *(f"end={e:#x}" for e in ends)]
            if profile is not None:
                args.append(f"profile={profile}")
            cmd += ["-plugin", ",".join([str(plugin_path()), *args])]
        try:
            res = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise QemuTimeout(f"{elf.name}: no exit within {timeout_s:g} s (hang?)") from None
        stderr = res.stderr.decode(errors="replace")
        if res.returncode == EXIT_FAULT:
            raise QemuCrash(f"{elf.name}: firmware crashed: {_fault_line(stderr)}")
        if res.returncode < 0:  # e.g. "qemu: fatal: Lockup" (a fault inside the fault handler)
            raise QemuCrash(f"{elf.name}: QEMU died (signal {-res.returncode}): "
                            f"{_fault_line(stderr)}")
        if res.returncode != 0 and re.search(r"^qemu-system-arm: (?!warning)", stderr, re.M):
            raise QemuError(f"{elf.name}: QEMU failed: {_fault_line(stderr)}")
        if res.returncode != 0 and check:
            # The firmware's last words: semihosting console (stderr) or UART (stdout).
            said = (stderr + res.stdout.decode(errors="replace")).strip().splitlines()
            raise QemuExitError(f"{elf.name}: firmware exited with status {res.returncode}: "
                                f"{said[-1] if said else 'no message'}", res.returncode)
        out_file = work / OUTPUT_FILE
        out = out_file.read_bytes() if out_file.exists() else b""
        insns = text = None
        if count:
            insns = _read_count(counts, elf, want_region=markers is not None)
            text = counts.read_text()
    return out, res.returncode, insns, text


def count_instructions(elf: str | Path, x: bytes, timeout_s: float = 120.0) -> int:
    """Guest instructions executed by one model_invoke() on input x (exact, deterministic)."""
    elf = Path(elf).resolve()
    if _markers(elf, os.stat(elf).st_mtime_ns) is None:
        raise QemuError(f"{elf.name}: no model_invoke or no `bl model_invoke` to measure")
    _, _, n = run_qemu(elf, x, timeout_s, count=True)
    assert n is not None
    return n


def _read_count(path: Path, elf: Path, *, want_region: bool) -> int:
    if not path.exists():
        raise QemuError(f"{elf.name}: the insn_count plugin wrote no result")
    text = path.read_text()
    regions = re.findall(r"^region (\d+)$", text, re.M)
    if want_region:
        if not regions:
            raise QemuError(f"{elf.name}: model_invoke never returned during the run")
        return int(regions[0])
    return int(re.search(r"^total (\d+)$", text, re.M).group(1))


@functools.lru_cache(maxsize=64)
def _markers(elf: Path, mtime_ns: int) -> tuple[int, tuple[int, ...]] | None:
    """(model_invoke's address, return sites of its calls), or None without model_invoke."""
    del mtime_ns  # only part of the cache key
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                        check=True).stdout
    m = re.search(r"^([0-9a-f]+) [Tt] model_invoke$", nm, re.M)
    if m is None:
        return None
    entry = int(m.group(1), 16) & ~1
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-j", ".text", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    ends = []
    for line in dis.splitlines():
        call = re.match(r"\s*([0-9a-f]+):\s+(?:[0-9a-f]{4} ?){1,2}\s+(\S+)\s+([0-9a-f]+) "
                        r"<model_invoke>", line)
        if call is None:
            continue
        where, mnemonic = int(call.group(1), 16), call.group(2)
        if not mnemonic.startswith("bl"):
            raise QemuError(f"{elf.name}: model_invoke is reached by `{mnemonic}` at "
                            f"{where:#x} (a tail call), cannot find its return")
        ends.append(where + 4)  # Thumb-2 BL is 4 bytes
    if not ends:
        return None
    return entry, tuple(ends)


def plugin_path() -> Path:
    """The instruction-counting plugin, built with the host's gcc when missing or stale."""
    src = [PLUGIN_SRC / "insn_count.c", PLUGIN_SRC / "qemu_plugin_api.h"]
    if PLUGIN.exists() and PLUGIN.stat().st_mtime >= max(s.stat().st_mtime for s in src):
        return PLUGIN
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise QemuError("no host C compiler to build the insn_count plugin: "
                        "sudo apt-get install gcc")
    if "-plugin" not in subprocess.run([qemu_binary(), "-help"], capture_output=True,
                                       text=True).stdout:
        raise QemuError(f"{QEMU} was built without TCG plugin support: cannot count")
    PLUGIN.parent.mkdir(parents=True, exist_ok=True)
    tmp = PLUGIN.with_suffix(f".{os.getpid()}.tmp")  # parallel test workers may race here
    res = subprocess.run([cc, *PLUGIN_CFLAGS, "-o", str(tmp), str(src[0])],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise QemuError(f"building the insn_count plugin failed:\n{res.stderr}")
    os.replace(tmp, PLUGIN)
    return PLUGIN
