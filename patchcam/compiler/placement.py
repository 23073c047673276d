"""What the planners place and what the generated C checks, as data both sides import.

The memory planners (`memplan` layer by layer, `patchplan` for patch schedules) put buffers
into one arena; the code generator (`codegen`) reads where each one went. Both name a buffer
with a `BufferKey` (what it holds: a whole tensor, a tile, a halo cache, a crop temporary, a
kernel scratch ...) rather than a spelled string, and a planner's answer is a `Placement`:
every key it planned -> the placed `Buffer` (storage shared in place has one owner key).

The generated C fences each step into the arena bytes it may touch (`model_op_regions`, one row
per step, selected by `MODEL_CHECK_OP(row)` in AddressSanitizer host builds). `CheckPoint`
names those steps (an op, the patch stage's input copy, a halo step) and `fence_rows` lays
their regions out in the order the row numbers `CheckPoint.row` give.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from patchcam.compiler.ir import Op


class Role(Enum):
    """What a planned buffer holds. The value is the suffix of its legacy spelling."""
    TENSOR = ""  # a whole tensor (layer by layer; the full input of a patch stage)
    FULL = "full"  # op K's whole output tensor, written tile by tile by the patch stage
    TILE = "tile"  # a patch-stage tensor's tile (the stage input's: cropped from the input)
    ROW_CACHE = "row-cache"  # cache mode: the halo rows above the patch row, full width
    COL_CACHE = "col-cache"  # cache mode: the halo columns of the previous patch's tile
    CROP = "crop"  # an op's copy of a narrower window of one of its input tiles
    SCRATCH = "scratch"  # an op's kernel scratch


@dataclass(frozen=True)
class BufferKey:
    """One planned buffer. Tensor buffers are named by their tensor; CROP and SCRATCH by their
    op (its index, which identifies it, and its name, for reading)."""
    role: Role
    name: str  # the tensor's name, or for CROP / SCRATCH the op's
    op: int = -1  # CROP / SCRATCH: the op's index in the graph
    input: int = 0  # CROP: which input of the op the window is cut from

    @classmethod
    def tensor(cls, t: str) -> BufferKey:
        return cls(Role.TENSOR, t)

    @classmethod
    def full(cls, t: str) -> BufferKey:
        return cls(Role.FULL, t)

    @classmethod
    def tile(cls, t: str) -> BufferKey:
        return cls(Role.TILE, t)

    @classmethod
    def row_cache(cls, t: str) -> BufferKey:
        return cls(Role.ROW_CACHE, t)

    @classmethod
    def col_cache(cls, t: str) -> BufferKey:
        return cls(Role.COL_CACHE, t)

    @classmethod
    def crop(cls, i: int, op: Op, j: int = 0) -> BufferKey:
        return cls(Role.CROP, op.name, i, j)

    @classmethod
    def scratch(cls, i: int, op: Op) -> BufferKey:
        return cls(Role.SCRATCH, op.name, i)

    def __str__(self) -> str:  # "x", "x:tile", "conv1:crop0", "conv1:scratch" (reports only)
        if self.role is Role.TENSOR:
            return self.name
        suffix = f"{self.role.value}{self.input}" if self.role is Role.CROP else self.role.value
        return f"{self.name}:{suffix}"


@dataclass(frozen=True)
class Buffer:
    """One range of arena bytes: a planned buffer (possibly shared by in-place ops)."""
    key: BufferKey
    size: int  # bytes used (unaligned)
    first: int  # first op index / step at which it is live
    last: int  # last op index / step at which it is live
    offset: int = -1

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class Placement:
    """A planner's address map: every planned key -> the key of the placed storage holding it
    (in-place ops and op K's output share storage), and that storage by its key."""
    arena_bytes: int
    buffers: Mapping[BufferKey, Buffer]  # the placed storage, by owner key
    owners: Mapping[BufferKey, BufferKey]  # every planned key -> its owner key

    def __contains__(self, key: object) -> bool:
        """Whether key was planned and placed."""
        return isinstance(key, BufferKey) and self.owners.get(key, key) in self.buffers

    def __getitem__(self, key: BufferKey) -> Buffer:
        """The storage holding key (KeyError if it was not planned or not placed)."""
        return self.buffers[self.owners.get(key, key)]

    def offset(self, key: BufferKey) -> int:
        return self[key].offset

    def size(self, key: BufferKey) -> int:
        return self[key].size


# ---- arena fences of the generated C ---------------------------------------------------------
class Step(Enum):
    OP = "op"  # an op (in the patch stage: its call on one patch's tile)
    INPUT_COPY = "input copy"  # the patch stage copying a patch's input window into its tile
    HALO = "halo"  # cache mode: the halo step after an op (model_halos[patch][index])


@dataclass(frozen=True)
class CheckPoint:
    """A step the generated C fences (`MODEL_CHECK_OP(row)`); index: the op's index, or the
    halo step's number (stage order, = its column of `model_halos`)."""
    step: Step
    index: int = 0

    @classmethod
    def op(cls, i: int) -> CheckPoint:
        return cls(Step.OP, i)

    @classmethod
    def input_copy(cls) -> CheckPoint:
        return cls(Step.INPUT_COPY)

    @classmethod
    def halo(cls, h: int) -> CheckPoint:
        return cls(Step.HALO, h)

    def row(self, n_ops: int) -> int:
        """Its row of `model_op_regions`: the ops 0..n_ops-1, then the input copy, then the
        halo steps."""
        if self.step is Step.OP:
            return self.index
        if self.step is Step.INPUT_COPY:
            return n_ops
        return n_ops + 1 + self.index


Region = tuple[int, int]  # (arena offset, bytes)


def fence_rows(fences: Mapping[CheckPoint, list[Region]], n_ops: int) -> list[list[Region]]:
    """The rows of `model_op_regions`: each check point's regions at its row (rows 0..n-1
    must all be there)."""
    rows: dict[int, list[Region]] = {cp.row(n_ops): reg for cp, reg in fences.items()}
    if sorted(rows) != list(range(len(rows))) or len(rows) != len(fences):
        raise ValueError(f"check points {sorted(rows)} are not rows 0..{len(fences) - 1}")
    return [rows[r] for r in range(len(rows))]
