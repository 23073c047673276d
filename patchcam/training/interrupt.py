"""Ctrl-C in a training command: one line on stderr, exit status 130, no traceback.

Every command that trains (`patchcam train`, `pretrain`, `finetune`, `leave-sources-out`)
runs its body through `guard`:

    def main(argv: list[str] | None = None) -> int:
        a = parser.parse_args(argv)
        return interrupt.guard(lambda: run(a), lambda: [a.out / "last.pt"],
                               interrupt.rerun(["patchcam", "pretrain"], argv))

The line says where it stopped (inside `loop.train`: the phase, epoch and batch, from the
`loop.Interrupted` it raises; elsewhere: reading data, evaluating or exporting), which
checkpoint there is to go on from, and the command that goes on: the same command with
`--resume` when there is a checkpoint, without it when there is none. This module imports
nothing heavy, so `patchcam train` catches a Ctrl-C while PyTorch is still loading too.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

INTERRUPTED = 130  # what a shell reports for a command ended by SIGINT

GoOn = Callable[[bool], str]  # resumable -> "resume with `...`" / "start again with `...`"


def guard(body: Callable[[], int], checkpoints: Callable[[], Iterable[Path]],
          go_on: GoOn) -> int:
    """body()'s exit status; on Ctrl-C, the one line (`line`) and INTERRUPTED.
    checkpoints: the files the command writes that a rerun with --resume continues from
    (asked only after a Ctrl-C)."""
    try:
        return body()
    except KeyboardInterrupt as e:
        print(line(e, list(checkpoints()), go_on), file=sys.stderr, flush=True)
        return INTERRUPTED


def line(e: KeyboardInterrupt, checkpoints: Sequence[Path], go_on: GoOn) -> str:
    """One line for a Ctrl-C: where it stopped, what checkpoint there is, how to go on."""
    loop = sys.modules.get("patchcam.training.loop")  # not imported: not in the loop either
    existing = [Path(p) for p in checkpoints if Path(p).is_file()]
    if loop is not None and isinstance(e, loop.Interrupted):
        phase = "" if e.phase == "float" else f"{e.phase} "
        at = f"at {phase}epoch {e.epoch}" + (f" batch {e.batch}" if e.batch else
                                             " (between batches)")
        if e.saved is not None:
            state = f"{phase}checkpoint written after epoch {e.saved} ({e.ckpt})"
        elif e.phase == "qat":  # the float phase before it is complete in last.pt
            state = f"float model complete in {e.ckpt.parent / 'last.pt'}, no qat checkpoint yet"
        else:
            state = "no checkpoint yet"
        resumable = e.saved is not None or e.phase == "qat"
        # a command that trains several models in turn (leave-sources-out's arms): the
        # checkpoints of the ones before this are kept too
        others = [p for p in existing if p.parent != e.ckpt.parent]
        if others:
            state += f" in {e.ckpt.parent}; checkpoint in {', '.join(map(str, others))}"
            resumable = True
    else:
        at = "outside the training epochs (reading data, evaluating or exporting)"
        resumable = bool(existing)
        state = (f"checkpoint in {', '.join(map(str, existing))}" if existing
                 else "no checkpoint yet")
    return f"interrupted {at}; {state}; {go_on(resumable)}"


def rerun(command: Sequence[str], args: Sequence[str]) -> GoOn:
    """How to go on for `command args`: the same arguments, `--resume` added when there is a
    checkpoint to continue from and left out when there is none."""
    def go_on(resumable: bool) -> str:
        rest = [a for a in args if a != "--resume"]
        cmd = shlex.join([*command, *rest, *(["--resume"] if resumable else [])])
        return f"resume with `{cmd}`" if resumable else f"start again with `{cmd}`"
    return go_on


def while_starting(command: Sequence[str]) -> str:
    """The line for a Ctrl-C while a command's modules are still loading (PyTorch: seconds)."""
    return f"interrupted while starting; nothing done; start again with `{shlex.join(command)}`"
