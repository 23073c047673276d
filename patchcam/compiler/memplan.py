"""Layer-by-layer memory plan: where every activation and scratch buffer lives in the arena.

The rule (docs/design.md §4.3): while op i runs, its inputs, its output and its kernel scratch are
live, and so is every tensor that a later op still needs (residual branches). Tensors whose
lifetimes (op index ranges) overlap get disjoint byte ranges; the arena is the highest byte
any buffer reaches. That figure is "peak SRAM" for the layer-by-layer baseline, and the
generated C declares exactly `MemoryPlan.arena_bytes`.

In place: `add` writes over one of its inputs (when that input dies at the add), since its
kernel reads each element before writing it. A depthwise conv writes over its dying input
too (`pc_depthwise_conv2d_s8_in_place`): it runs four channels at a time, and in HWC output
channel c only ever lands on bytes of input channel c, so each group of four channels holds
back, in a small ring of output rows (its scratch, `dw_in_place_rows` rows of Wo x 4 bytes),
only the rows that would overwrite input rows a later output row still reads. Other
convolutions and pooling read a window of rows of every channel, so they always get a
separate output buffer.

Placement is greedy (as TFLite Micro's GreedyMemoryPlanner): buffers sorted by size, largest
first, each put at the lowest offset where it does not collide with an already placed buffer
of overlapping lifetime. A few orderings are tried and the smallest arena wins. The lower
bound (the most bytes live at one op) is reported next to it, so one sees how close it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patchcam.compiler.ir import Graph, Op
from patchcam.compiler.placement import Buffer, BufferKey

ALIGN = 8  # every buffer starts 8-byte aligned (word loads; exact AddressSanitizer checks)
IN_PLACE_KINDS = ("add", "depthwise_conv2d")
DW_GROUP = 4  # channels per pass of the in-place depthwise kernel (firmware/runtime)
DW_IN_PLACE_KEY = "depthwise_in_place"  # Graph.meta switch, see in_place_ok


def align_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def is_pointwise(op: Op) -> bool:
    """A 1x1 conv without padding runs on the pointwise kernel (a plain matrix product)."""
    return op.kind == "conv2d" and tuple(op.kernel) == (1, 1) and not any(op.pads)


def scratch_bytes(g: Graph, op: Op, in_place: bool = False) -> int:
    """Kernel scratch of one op, in bytes; mirrors the PC_..._BUFFER_SIZE macros in
    firmware/runtime/pc_kernels.h (the generated C checks both agree at compile time).
    in_place: the op writes over its input (a depthwise conv's ring of output rows)."""
    if op.kind == "depthwise_conv2d" and in_place:
        return dw_in_place_bytes(g.tensors[op.inputs[0]].shape, g.tensors[op.output].shape, op)
    if op.kind != "conv2d":
        return 0
    cin = g.tensors[op.inputs[0]].shape[2]
    if is_pointwise(op):
        return 4 * cin
    return 4 * op.kernel[0] * op.kernel[1] * cin


def dw_in_place_rows(in_shape: tuple[int, ...], out_shape: tuple[int, ...], kernel_h: int,
                     stride_h: int, pad_top: int) -> int:
    """Ring rows the in-place depthwise kernel needs (mirrors pc_depthwise_in_place_rows in
    firmware/runtime/pc_depthwise.c). Output pixel p lands on input pixel p's bytes; output
    row o may be stored once the last output row reading an input row it lands on
    (`ready(o)`) is computed. Rows with ready(o) < o go straight to their place; the others
    wait in the ring, in order, so the ring holds the most rows waiting at one time."""
    h, w = in_shape[0], in_shape[1]
    ho, wo = out_shape[0], out_shape[1]

    def last_reader(r: int) -> int:  # the last output row whose window covers input row r
        o = min(ho - 1, (r + pad_top) // stride_h)
        return o if o >= 0 and o * stride_h - pad_top + kernel_h - 1 >= r else -1

    ready = [max((last_reader(r) for r in range(o * wo // w, min(h - 1, ((o + 1) * wo - 1) // w)
                                                 + 1)), default=-1) for o in range(ho)]
    rows, waiting = 0, 0
    head = 0  # the oldest row still in the ring
    for j in range(ho):
        if ready[j] >= j:
            waiting += 1
        rows = max(rows, waiting)
        while head <= j:  # after row j: store the rows whose input rows are all read
            if ready[head] >= head and ready[head] > j:
                break
            if ready[head] >= head:
                waiting -= 1
            head += 1
    return rows


def dw_in_place_bytes(in_shape: tuple[int, ...], out_shape: tuple[int, ...], op: Op) -> int:
    """Scratch of an in-place depthwise conv: its ring of output rows, Wo x 4 channels each."""
    rows = dw_in_place_rows(in_shape, out_shape, op.kernel[0], op.stride[0], op.pads[0])
    return rows * out_shape[1] * min(DW_GROUP, out_shape[2])


def in_place_ok(g: Graph, op: Op, name: str) -> bool:
    """Whether op may write its output over input `name` (which must die at op). A graph
    whose meta says `"depthwise_in_place": false` keeps every depthwise output apart: how a
    runtime without the in-place kernel (TFLite Micro, CMSIS-NN) must run it."""
    if op.kind == "add":
        return g.tensors[name].size == g.tensors[op.output].size
    return op.kind == "depthwise_conv2d" and g.meta.get(DW_IN_PLACE_KEY, True) is not False


@dataclass
class MemoryPlan:
    graph: str
    arena_bytes: int
    tensors: dict[str, Buffer]  # every activation tensor -> its placement
    scratch: list[Buffer | None]  # per op: its kernel scratch, or None
    live_bytes: list[int]  # per op: bytes live while it runs (aligned; a lower bound)
    # placed storage: tensors (shared in place: keyed by the owner) and scratch
    buffers: list[Buffer] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # in-place output -> input it reuses

    @property
    def lower_bound(self) -> int:
        return max(self.live_bytes, default=0)

    @property
    def peak_op(self) -> int:
        return max(range(len(self.live_bytes)), key=self.live_bytes.__getitem__, default=0)

    def offset(self, tensor: str) -> int:
        return self.tensors[tensor].offset

    def op_regions(self, g: Graph, i: int) -> list[tuple[int, int]]:
        """(offset, size) of every buffer op i may touch: inputs, output, scratch."""
        op = g.ops[i]
        regions = [(self.tensors[n].offset, self.tensors[n].size) for n in op.inputs]
        regions.append((self.tensors[op.output].offset, self.tensors[op.output].size))
        if self.scratch[i] is not None:
            regions.append((self.scratch[i].offset, self.scratch[i].size))
        return regions

    def summary(self, g: Graph) -> str:
        rows = [f"{self.graph}: layer-by-layer arena {self.arena_bytes:,} bytes "
                f"(lower bound {self.lower_bound:,}, peak at op {self.peak_op})",
                f"{'#':>3} {'op':<18} {'name':<20} {'output @offset':>22} {'scratch':>16} "
                f"{'live bytes':>11}"]
        for i, op in enumerate(g.ops):
            t = self.tensors[op.output]
            s = self.scratch[i]
            scr = f"{s.size}@{s.offset}" if s else "-"
            alias = " (in place)" if op.output in self.aliases else ""
            rows.append(f"{i:>3} {op.kind:<18} {op.name[:20]:<20} "
                        f"{f'{t.size}@{t.offset}{alias}':>22} {scr:>16} {self.live_bytes[i]:>11,}")
        return "\n".join(rows)


def lifetimes(g: Graph) -> dict[str, tuple[int, int]]:
    """Tensor -> (first, last) op index at which it must be kept."""
    n = len(g.ops)
    span = {g.input: (0, 0)}
    for i, op in enumerate(g.ops):
        span[op.output] = (i, i)
        for name in op.inputs:
            span[name] = (span[name][0], i)
    span[g.output] = (span[g.output][0], n - 1)
    return span


def plan_layers(g: Graph, align: int = ALIGN, in_place: bool = True) -> MemoryPlan:
    """The layer-by-layer arena plan of a graph (see the module docstring)."""
    span = lifetimes(g)
    # In-place ops: the output shares its storage with an input that dies at this op.
    group = {name: name for name in span}  # tensor -> storage owner
    aliases: dict[str, str] = {}
    if in_place:
        for i, op in enumerate(g.ops):
            if op.kind not in IN_PLACE_KINDS:
                continue
            for name in op.inputs:
                if span[name][1] == i and name != g.output and in_place_ok(g, op, name):
                    group[op.output] = group[name]
                    aliases[op.output] = name
                    break
    storage: dict[str, tuple[int, int, int]] = {}  # owner -> (size, first, last)
    for name, (first, last) in span.items():
        owner = group[name]
        size = g.tensors[name].size
        s0, f0, l0 = storage.get(owner, (0, first, last))
        storage[owner] = (max(s0, size), min(f0, first), max(l0, last))
    bufs = [Buffer(BufferKey.tensor(owner), size, first, last)
            for owner, (size, first, last) in storage.items()]
    scratch_of: dict[int, BufferKey] = {}
    for i, op in enumerate(g.ops):
        nbytes = scratch_bytes(g, op, in_place=op.output in aliases)
        if nbytes:
            scratch_of[i] = BufferKey.scratch(i, op)
            bufs.append(Buffer(scratch_of[i], nbytes, i, i))

    placed = _best_placement(bufs, align)
    by_key = {b.key: b for b in placed}
    tensors = {}
    for name in span:
        owner = by_key[BufferKey.tensor(group[name])]
        tensors[name] = Buffer(BufferKey.tensor(name), g.tensors[name].size, span[name][0],
                               span[name][1], owner.offset)
    scratch = [by_key[scratch_of[i]] if i in scratch_of else None for i in range(len(g.ops))]
    live = [sum(align_up(b.size, align) for b in bufs if b.first <= i <= b.last)
            for i in range(len(g.ops))]
    arena = max((align_up(b.end, align) for b in placed), default=0)
    return MemoryPlan(g.name, arena, tensors, scratch, live, placed, aliases)


def _best_placement(bufs: list[Buffer], align: int) -> list[Buffer]:
    orders = [
        sorted(bufs, key=lambda b: (-b.size, b.first)),
        sorted(bufs, key=lambda b: (-(b.last - b.first + 1) * b.size, b.first)),
        sorted(bufs, key=lambda b: (b.first, -b.size)),
    ]
    best: list[Buffer] | None = None
    for order in orders:
        placed = _greedy(order, align)
        if best is None or _top(placed, align) < _top(best, align):
            best = placed
    return best or []


def _top(placed: list[Buffer], align: int) -> int:
    return max((align_up(b.end, align) for b in placed), default=0)


def _greedy(order: list[Buffer], align: int) -> list[Buffer]:
    """Put each buffer at the lowest aligned offset free during its whole lifetime."""
    placed: list[Buffer] = []
    for b in order:
        busy = sorted((p.offset, align_up(p.end, align)) for p in placed
                      if p.first <= b.last and b.first <= p.last)
        offset = 0
        for start, end in busy:
            if offset + b.size <= start:
                break
            offset = max(offset, end)
        placed.append(Buffer(b.key, b.size, b.first, b.last, offset))
    return placed


def check_plan(plan: MemoryPlan) -> None:
    """Raise AssertionError if two buffers live at the same op share a byte (a self-test)."""
    for b in plan.buffers:
        assert 0 <= b.offset and b.end <= plan.arena_bytes, f"{b.key} outside the arena"
        assert b.offset % ALIGN == 0, f"{b.key} misaligned"
    for i, b in enumerate(plan.buffers):
        for c in plan.buffers[i + 1:]:
            if b.first <= c.last and c.first <= b.last:
                assert b.end <= c.offset or c.end <= b.offset, f"{b.key} overlaps {c.key}"
