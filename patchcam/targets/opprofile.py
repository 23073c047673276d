"""Per-op instruction profile of one inference on the emulated Cortex-M7.

    prof = profile_model(elf, x, g, model_c)   # elf built from the generated model.c
    for op in prof.ops: print(op.label, op.kind, op.instructions)

The firmware is not changed for this: the instructions are split by where they run. Every
call the generated `model_invoke` / `model_invoke_frame` / `model_invoke_source` makes to the
runtime is a call site (`bl pc_...`, a tail call `b.w pc_...`, or for a fused input the
`blx` of its input source's read); the site's source line in model.c (DWARF, via
`arm-none-eabi-addr2line`) lies after the `MODEL_CHECK_OP(row)` of its step, which names the
step: an op (row < number of ops), the patch stage's input copy (row = number of ops) or a
halo step of the cached schedule (the rows after it). The QEMU plugin counts the
instructions from each call to its return into the site's bucket, and everything the driver
itself executes between calls (argument set-up, the patch loop) into bucket 0, `driver`.
Per step the instructions are also split by function (each function's own instructions:
the kernel variant that ran, e.g. mat_mult_quad8 vs mat_mult_pw), and the steps plus the
driver sum exactly to the whole model_invoke() (qemu.profile_invoke checks it).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from patchcam.compiler import memplan
from patchcam.compiler.ir import Graph
from patchcam.targets import qemu

# the generated code's entry points (fused input: model_invoke -> model_invoke_frame ->
# model_invoke_source)
DRIVERS = ("model_invoke", "model_invoke_frame", "model_invoke_source")
INDIRECT = "input source"  # the callee of a fused input's source->read(...) (a `blx rN`)
CHECK = re.compile(r"^\s*MODEL_CHECK_OP\((\d+)\);")


@dataclass(frozen=True)
class CallSite:
    addr: int  # the call instruction
    callee: str
    tail: bool  # a tail call (b / b.w): it returns to the driver's caller
    size: int  # bytes of the call instruction (BL: 4; the return site is addr + size)


@dataclass
class StepProfile:
    """One step of the generated code: an op, the input copy or a halo step."""
    row: int  # its MODEL_CHECK_OP row (placement.CheckPoint.row)
    op: int  # the op's index; -1 for a copy / halo step
    label: str  # e.g. "13 pointwise 1x1/1 12x12x32->12x12x16", "input copy", "halo 2"
    kind: str  # "pointwise", "depthwise", "conv2d", "add", ..., "input_copy", "halo"
    callees: list[str]  # the runtime functions the driver called for it
    macs: int = 0
    instructions: int = 0
    functions: dict[str, int] = field(default_factory=dict)  # own instructions per function

    @property
    def instr_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None


@dataclass
class ModelProfile:
    instructions: int  # the whole model_invoke()
    driver: int  # the generated driver's own instructions between calls
    steps: list[StepProfile]

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind -> (MACs, instructions), plus "driver" (0 MACs)."""
        out: dict[str, tuple[int, int]] = {}
        for s in self.steps:
            m, n = out.get(s.kind, (0, 0))
            out[s.kind] = (m + s.macs, n + s.instructions)
        out["driver"] = (0, self.driver)
        return out


def op_kind(g: Graph, i: int) -> str:
    """The kernel type an op runs as: pointwise (1x1 conv), depthwise, conv2d, add, ..."""
    op = g.ops[i]
    if op.kind == "conv2d" and memplan.is_pointwise(op):
        return "pointwise"
    if op.kind == "depthwise_conv2d":
        return "depthwise"
    return op.kind


def op_label(g: Graph, i: int) -> str:
    """e.g. "13 pointwise 1x1/1 12x12x32->12x12x16"."""
    op = g.ops[i]
    shape = "x".join(map(str, g.tensors[op.inputs[0]].shape)) + "->" + \
        "x".join(map(str, g.tensors[op.output].shape))
    geom = ""
    if op.kind in ("conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d"):
        geom = f" {op.kernel[0]}x{op.kernel[1]}/{op.stride[0]}"
    return f"{i} {op_kind(g, i)}{geom} {shape}"


def call_sites(elf: str | Path) -> list[CallSite]:
    """The calls the driver functions make to other functions, in address order: `bl`, `blx`
    through a register (the fused input's source->read) and unconditional `b` / `b.w` to
    another function (a tail call)."""
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", "-j", ".text",
                          str(elf)], capture_output=True, text=True, check=True).stdout
    sites: list[CallSite] = []
    current = None
    for line in dis.splitlines():
        head = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if head:
            current = head.group(1)
            continue
        if current not in DRIVERS:
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+blx\s+r\d+\s*$", line)
        if m:  # a call through a pointer: the input source's read (Thumb BLX register: 2 bytes)
            sites.append(CallSite(int(m.group(1), 16), INDIRECT, False, 2))
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s+[0-9a-f]+ <([^>+]+)>\s*$", line)
        if m is None or m.group(3) == current:
            continue
        addr, mnemonic, target = int(m.group(1), 16), m.group(2), m.group(3)
        if mnemonic == "bl":
            sites.append(CallSite(addr, target, False, 4))  # Thumb-2 BL: 4 bytes
        elif mnemonic in ("b", "b.w", "b.n"):
            sites.append(CallSite(addr, target, True, 0))
    return sites


def source_lines(elf: str | Path, addrs: list[int]) -> list[tuple[str, int]]:
    """(file, line) of each address (DWARF line table)."""
    if not addrs:
        return []
    res = subprocess.run(["arm-none-eabi-addr2line", "-e", str(elf),
                          *(f"{a:#x}" for a in addrs)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    out = []
    for line in res:
        m = re.match(r"^(.*):(\d+)", line)
        out.append((m.group(1), int(m.group(2))) if m else ("??", 0))
    return out


def check_rows(model_c: str | Path) -> dict[int, int]:
    """Line number (1-based) -> the MODEL_CHECK_OP row in force on that line (the last one
    at or above it), for the lines after the first MODEL_CHECK_OP."""
    rows: dict[int, int] = {}
    row = None
    for n, text in enumerate(Path(model_c).read_text().splitlines(), start=1):
        m = CHECK.match(text)
        if m:
            row = int(m.group(1))
        if row is not None:
            rows[n] = row
    return rows


def step_of_row(g: Graph, row: int) -> tuple[int, str, str]:
    """(op index or -1, label, kind) of a MODEL_CHECK_OP row."""
    n = len(g.ops)
    if row < n:
        return row, op_label(g, row), op_kind(g, row)
    if row == n:
        return -1, "input copy", "input_copy"
    return -1, f"halo {row - n - 1}", "halo"


def profile_model(elf: str | Path, x: bytes, g: Graph, model_c: str | Path,
                  op_macs: list[int] | None = None, timeout_s: float = 1800.0,
                  ) -> tuple[bytes, ModelProfile]:
    """Run the image on x once; return its output and the per-step profile. op_macs: the
    schedule's MACs per op (default: the graph's)."""
    sites = call_sites(elf)
    lines = source_lines(elf, [s.addr for s in sites])
    rows = check_rows(model_c)
    model_name = Path(model_c).name
    marks: dict[int, int] = {}
    bucket_row: dict[int, int] = {}
    bucket_callee: dict[int, str] = {}
    for s, (path, line) in zip(sites, lines, strict=True):
        if s.callee in DRIVERS:  # model_invoke -> model_invoke_frame ...: stays in the driver
            if not s.tail:
                marks[s.addr + s.size] = 0
            continue
        if not path.endswith(model_name) or line not in rows:
            raise qemu.QemuError(f"{Path(elf).name}: call to {s.callee} at {s.addr:#x} is at "
                                 f"{path}:{line}, not after a MODEL_CHECK_OP of {model_name}")
        b = len(bucket_row) + 1
        bucket_row[b] = rows[line]
        bucket_callee[b] = s.callee
        marks[s.addr] = b
        if not s.tail:
            marks[s.addr + s.size] = 0
    out, prof = qemu.profile_invoke(elf, x, marks, timeout_s=timeout_s)
    macs = op_macs if op_macs is not None else [g.macs(op) for op in g.ops]
    steps: dict[int, StepProfile] = {}
    for b, row in bucket_row.items():
        if row not in steps:
            op, label, kind = step_of_row(g, row)
            steps[row] = StepProfile(row, op, label, kind, [], macs[op] if op >= 0 else 0)
        st = steps[row]
        if bucket_callee[b] not in st.callees:
            st.callees.append(bucket_callee[b])
        st.instructions += prof.buckets.get(b, 0)
        for fn, v in prof.cells.get(b, {}).items():
            st.functions[fn] = st.functions.get(fn, 0) + v
    ordered = sorted(steps.values(), key=lambda s: (s.op < 0, s.op if s.op >= 0 else s.row))
    return out, ModelProfile(prof.instructions, prof.buckets.get(0, 0), ordered)
