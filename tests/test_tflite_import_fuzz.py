""".tflite import of damaged files: a small model of every kind of op the exporter writes
(PAD, CONV_2D, DEPTHWISE_CONV_2D, ADD, MAX_POOL_2D, MEAN, FULLY_CONNECTED), mutated 1,000 times
with a fixed seed (bit flips, random bytes, truncations and edits of single fields), must
either import or be refused with one TFLiteImportError on one line: never another exception.

Field edits that make the file structurally wrong (shapes, types, non-finite or non-positive
scales, zero points out of range, quantised dimensions, operator codes, truncated buffers) must
be refused, or leave the graph exactly as it was. Edits that keep the file consistent (a weight
byte, a scale still in range, another bias buffer of the same size, a fused activation) cannot
be told from a real model: a .tflite has no checksum. `pytest -s` prints the counts.
"""

from __future__ import annotations

import collections
import copy
import re
from collections.abc import Callable, Iterator

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

from patchcam.compiler import reference
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.ir import Graph
from patchcam.compiler.randgraph import random_input
from patchcam.compiler.tflite_export import export_tflite
from patchcam.compiler.tflite_import import TFLiteImportError, import_tflite

SEED = 2024
COUNTS = {"flip": 300, "byte": 200, "truncate": 150, "field": 350}
# Field edits that break the file's structure: refused, or the graph is unchanged.
STRUCTURAL = ("scale", "zero_point", "shape", "type", "quantized_dimension", "opcode",
              "buffer_data")


def small_model() -> Graph:
    rng = np.random.default_rng(0)
    b = GraphBuilder("fuzz", (8, 8, 3), 0.03, -5)

    def mac(shape: tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (rng.integers(-127, 128, shape), rng.uniform(0.005, 0.02, n),
                rng.integers(-900, 900, n))

    y = b.conv2d(b.input, *mac((6, 3, 3, 3), 6), 0.1, -3, 2, (1, 0, 1, 1), "relu")  # + PAD
    z = b.depthwise_conv2d(y, *mac((3, 3, 6), 6), 0.08, 2, 1, "same", "relu6")
    p = b.conv2d(z, *mac((6, 1, 1, 6), 6), 0.1, -3)
    m = b.pool2d("max", b.add(y, p, 0.12, 1, "relu"), 2, 2)
    w, _, bias = mac((4, 6), 4)
    return b.finish(b.fully_connected(b.mean(m, 0.05, -2), w, 0.01, bias, 0.2, 0))


def pack(m: fb.ModelT) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _edit(obj: object, attr: str, value: object) -> Callable[[], None]:
    """Set obj.attr = value; returns what puts the old value back."""
    old = copy.copy(getattr(obj, attr))
    setattr(obj, attr, value)
    return lambda: setattr(obj, attr, old)


def _field_edit(m: fb.ModelT, rng: np.random.Generator) -> tuple[str, Callable[[], None]]:
    """One field of the unpacked model changed: (what kind of field, undo)."""
    sub = m.subgraphs[0]
    t = sub.tensors[int(rng.integers(len(sub.tensors)))]
    o = sub.operators[int(rng.integers(len(sub.operators)))]
    q = t.quantization
    pick = lambda values: values[int(rng.integers(len(values)))]  # noqa: E731
    kind = pick(["scale", "zero_point", "shape", "type", "quantized_dimension", "opcode",
                 "buffer_data", "buffer", "op_input", "op_output", "options", "model_io"])
    if kind == "scale" and q is not None and q.scale is not None:
        return kind, _edit(q, "scale", [pick([np.nan, np.inf, -np.inf, -0.1, 0.0, 1e30,
                                              1e-40])] * len(q.scale))
    if kind == "zero_point" and q is not None and q.zeroPoint is not None:
        return kind, _edit(q, "zeroPoint", [pick([128, -129, 300, -(1 << 40)])] *
                           len(q.zeroPoint))
    if kind == "quantized_dimension" and q is not None:
        return kind, _edit(q, "quantizedDimension", pick([-1, 4, 5, 1000]))
    if kind == "shape" and t.shape is not None and len(t.shape):
        s = [int(d) for d in t.shape]
        s[int(rng.integers(len(s)))] = pick([0, -1, 2, 7, 1 << 20])
        return kind, _edit(t, "shape", s)
    if kind == "type":
        return kind, _edit(t, "type", int(rng.integers(0, 18)))
    if kind == "opcode":
        return kind, _edit(o, "opcodeIndex", pick([len(m.operatorCodes), 1 << 20,
                                                   int(rng.integers(len(m.operatorCodes)))]))
    if kind == "buffer_data":
        buf = m.buffers[t.buffer]
        if buf.data is not None and len(buf.data) > 1:
            return kind, _edit(buf, "data", buf.data[:int(rng.integers(len(buf.data)))])
    if kind == "buffer":
        return kind, _edit(t, "buffer", pick([len(m.buffers), 1 << 30, 0,
                                              int(rng.integers(len(m.buffers)))]))
    if kind in ("op_input", "op_output"):
        attr = "inputs" if kind == "op_input" else "outputs"
        ids = [int(v) for v in getattr(o, attr)]
        ids[int(rng.integers(len(ids)))] = pick([-1, len(sub.tensors),
                                                 int(rng.integers(len(sub.tensors)))])
        return kind, _edit(o, attr, ids)
    if kind == "options" and o.builtinOptions is not None:
        fields = [f for f in ("strideH", "strideW", "filterHeight", "filterWidth", "padding",
                              "fusedActivationFunction", "depthMultiplier", "dilationHFactor")
                  if hasattr(o.builtinOptions, f)]
        if fields:
            f = pick(fields)
            small = f in ("padding", "fusedActivationFunction")
            value = pick([0, 2, 3, 5, -1] if small else [0, -1, 2, 3, 1000])
            return kind, _edit(o.builtinOptions, f, value)
    if kind == "model_io":
        attr = pick(["inputs", "outputs"])
        return kind, _edit(sub, attr, [pick([-1, len(sub.tensors),
                                             int(rng.integers(len(sub.tensors)))])])
    return "none", lambda: None


def mutations(data: bytes, seed: int) -> Iterator[tuple[str, bytes]]:
    """(kind, damaged file) for COUNTS of each kind; field edits go through the object API
    (one unpacked model, each edit undone after packing)."""
    rng = np.random.default_rng(seed)
    for _ in range(COUNTS["flip"]):
        d = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            d[int(rng.integers(len(d)))] ^= 1 << int(rng.integers(8))
        yield "flip", bytes(d)
    for _ in range(COUNTS["byte"]):
        d = bytearray(data)
        d[int(rng.integers(len(d)))] = int(rng.integers(256))
        yield "byte", bytes(d)
    for _ in range(COUNTS["truncate"]):
        yield "truncate", data[:int(rng.integers(len(data)))]
    model = fb.ModelT.InitFromPackedBuf(data, 0)
    for _ in range(COUNTS["field"]):
        kind, undo = _field_edit(model, rng)
        while kind == "none":  # that field is absent from the picked tensor / op: another
            kind, undo = _field_edit(model, rng)
        try:
            yield kind, pack(model)
        finally:
            undo()


def same_graph(a: Graph, b: Graph) -> bool:
    """Every tensor and every op field (arrays included) equal."""
    if (a.input, a.output, a.tensors) != (b.input, b.output, b.tensors) or \
            len(a.ops) != len(b.ops):
        return False
    for x, y in zip(a.ops, b.ops, strict=True):
        for f in ("kind", "inputs", "output", "kernel", "stride", "pads", "activation"):
            if getattr(x, f) != getattr(y, f):
                return False
        for f in ("weights", "weight_scales", "bias"):
            u, v = getattr(x, f), getattr(y, f)
            if (u is None) != (v is None) or (u is not None and not np.array_equal(u, v)):
                return False
    return True


def test_damaged_files_import_or_are_refused_in_one_line() -> None:
    g = small_model()
    data = export_tflite(g)
    original = import_tflite(data)
    assert same_graph(g, original)
    x = random_input(g, 0)
    want = reference.run(g, x)
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    for kind, damaged in mutations(data, SEED):
        try:
            h = import_tflite(damaged)
        except TFLiteImportError as e:  # any other exception fails the test with its traceback
            msg = str(e)
            assert "\n" not in msg and msg.startswith("<bytes>: "), msg
            assert "malformed (" not in msg, f"{kind}: no explicit check caught it: {msg}"
            counts[f"{kind} refused"] += 1
            reasons[re.sub(r"\d+|'[^']*'", "#", msg.split(": ", 2)[-1])[:60]] += 1
            continue
        if same_graph(g, h):
            counts[f"{kind} imported, same graph"] += 1
            continue
        assert kind not in STRUCTURAL, f"a damaged {kind} imported as another graph"
        out = None
        if h.tensors[h.input].shape == g.tensors[g.input].shape:
            out = reference.run(h, x)
        same = out is not None and out.shape == want.shape and np.array_equal(out, want)
        counts[f"{kind} imported, other graph, {'same' if same else 'other'} output"] += 1
    total = sum(counts.values())
    refused = sum(v for k, v in counts.items() if k.endswith("refused"))
    print(f"\n{total} damaged files: {refused} refused, {total - refused} imported")
    for k, v in sorted(counts.items()):
        print(f"  {v:4d} {k}")
    print("most common reasons:", reasons.most_common(8))
    assert total == sum(COUNTS.values())
    assert counts["truncate refused"] == COUNTS["truncate"]  # a cut file never parses whole
    assert refused > total // 2 and total - refused > 50  # both outcomes are exercised
