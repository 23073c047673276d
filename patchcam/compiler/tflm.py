"""Run a `.tflite` model on TensorFlow Lite Micro's Python interpreter (the `tflite-micro`
package, a test-only dependency): the independent bit-exact reference of docs/design.md
§4.1, and the arena TFLite Micro needs for a model (the baseline of the memory benchmark)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np


def _interpreter(model: bytes, arena_size: int, preserve: bool = False) -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as e:
        raise ImportError("TensorFlow Lite Micro's Python interpreter is missing: "
                          "`pip install tflite-micro` (or `make setup`)") from e
    if preserve:
        return runtime.Interpreter.from_bytes(
            model, arena_size=arena_size,
            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


def run_tflm(model: bytes, x: np.ndarray, arena_size: int = 4 << 20) -> np.ndarray:
    """Run one int8 input given without its batch dimension (HWC, or a vector) and return
    the int8 output without its batch dimension."""
    interp = _interpreter(model, arena_size)
    interp.set_input(np.asarray(x, np.int8)[np.newaxis], 0)
    interp.invoke()
    return np.asarray(interp.get_output(0))[0]


def run_tflm_tensors(model: bytes, x: np.ndarray, tensors: list[int],
                     arena_size: int = 32 << 20) -> list[np.ndarray]:
    """Run one input (given with the model's own input shape, batch included) and return the
    listed tensors (TFLite tensor indices, e.g. the logits before a final softmax) as they
    are after the invoke; TFLite Micro keeps every tensor for this (kPreserveAllTensors)."""
    interp = _interpreter(model, arena_size, preserve=True)
    interp.set_input(np.asarray(x, np.int8), 0)
    interp.invoke()
    return [np.array(interp.GetTensor(int(t), 0)["tensor_data"]) for t in tensors]


def tflm_min_arena(model: bytes, invoke: bool = False) -> int:
    """The smallest `arena_size` in bytes with which TFLite Micro's interpreter allocates
    the model (binary search). Like on a board, it includes what TFLite Micro keeps in the
    arena besides activations (tensor structs, kernel data, scratch buffers).

    The interpreter plans the whole arena in AllocateTensors (its constructor): an invoke
    needs no more. invoke=True also invokes at every try (the same figure on every model
    checked - mcu-s-96, mbv2-0.35-144, mbv2-1.0-224 and the three apps - but ~20x slower on
    MobileNetV2-224); tests/test_tflite.py runs the model at the returned size."""
    x = np.zeros(_input_shape(model), np.int8)
    # No arena smaller than the largest activation can work, so the search starts there:
    # much smaller arenas are not only useless, some crash TFLite Micro's allocator
    # (MobileNetV2 at 16 kB segfaults in this version).
    lo = max(_largest_activation(model) - 1, 0)
    with _c_stderr_silenced():  # every failed try prints TFLite Micro's allocation error
        hi = max(1024, 2 * lo)
        while not _fits(model, hi, x, invoke):
            if hi >= 1 << 30:
                raise RuntimeError("TFLite Micro cannot run this model with a 1 GiB arena")
            lo, hi = hi, hi * 2
        # invariant: an arena of lo bytes fails, one of hi bytes works
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _fits(model, mid, x, invoke) else (mid, hi)
    return hi


def _fits(model: bytes, arena_size: int, x: np.ndarray, invoke: bool = True) -> bool:
    try:
        interp = _interpreter(model, arena_size)  # allocates the tensors, or raises
        if invoke:
            interp.set_input(x, 0)
            interp.invoke()
    except RuntimeError:
        return False
    return True


def _largest_activation(model: bytes) -> int:
    """Bytes of the largest tensor without constant data (int8: one byte per element)."""
    from ai_edge_litert import schema_py_generated as fb

    m = fb.Model.GetRootAs(model, 0)
    sub = m.Subgraphs(0)
    largest = 0
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        b = m.Buffers(t.Buffer())
        if t.Type() == fb.TensorType.INT8 and b.DataLength() == 0 and b.Offset() <= 1:
            largest = max(largest, int(np.prod(t.ShapeAsNumpy())))
    return largest


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
