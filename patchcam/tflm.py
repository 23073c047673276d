"""Run a `.tflite` model on TensorFlow Lite Micro's Python interpreter (the `tflite-micro`
package, a test-only dependency): the independent bit-exact reference of DESIGN §4.1, and the
arena TFLite Micro needs for a model (the baseline of the memory benchmark)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np


def _interpreter(model: bytes, arena_size: int) -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:
        raise ImportError("TensorFlow Lite Micro's Python interpreter is missing: "
                          "`pip install tflite-micro` (or `make setup`)") from e
    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


def run_tflm(model: bytes, x: np.ndarray, arena_size: int = 4 << 20) -> np.ndarray:
    """Run one int8 input given without its batch dimension (HWC, or a vector) and return
    the int8 output without its batch dimension."""
    interp = _interpreter(model, arena_size)
    interp.set_input(np.asarray(x, np.int8)[np.newaxis], 0)
    interp.invoke()
    return np.asarray(interp.get_output(0))[0]


def tflm_min_arena(model: bytes) -> int:
    """The smallest `arena_size` in bytes with which TFLite Micro's interpreter allocates and
    invokes the model (binary search). Like on a board, it includes what TFLite Micro keeps
    in the arena besides activations (tensor structs, kernel data, scratch buffers)."""
    x = np.zeros(_input_shape(model), np.int8)
    with _c_stderr_silenced():  # every failed try prints TFLite Micro's allocation error
        hi = 1024
        while not _fits(model, hi, x):
            if hi >= 1 << 30:
                raise RuntimeError("TFLite Micro cannot run this model with a 1 GiB arena")
            hi *= 2
        lo = 0  # invariant: an arena of lo bytes fails, one of hi bytes works
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _fits(model, mid, x) else (mid, hi)
    return hi


def _fits(model: bytes, arena_size: int, x: np.ndarray) -> bool:
    try:
        interp = _interpreter(model, arena_size)
        interp.set_input(x, 0)
        interp.invoke()
    except RuntimeError:
        return False
    return True


def _input_shape(model: bytes) -> tuple[int, ...]:
    from ai_edge_litert import schema_py_generated as fb

    sub = fb.Model.GetRootAs(model, 0).Subgraphs(0)
    return tuple(int(d) for d in sub.Tensors(sub.Inputs(0)).ShapeAsNumpy())


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
