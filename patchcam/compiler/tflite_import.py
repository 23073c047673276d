"""Read an int8 `.tflite` model (a model we did not write) into the int8 graph
(docs/design.md §4.2).

    g = import_tflite("person_detect.tflite")      # -> ir.Graph, checked

The arithmetic of every imported op is TFLite Micro's, so the numpy reference, the C runtime
and TFLite Micro agree bit for bit on the imported model. How TFLite's ops map:

| TFLite op           | IR                                                                     |
|---------------------|------------------------------------------------------------------------|
| CONV_2D             | `conv2d` (per-tensor weight scales are repeated per output channel)    |
| DEPTHWISE_CONV_2D   | `depthwise_conv2d` (depth multiplier 1); with one input channel and a  |
|                     | multiplier m it is an ordinary conv with m outputs: `conv2d`           |
| FULLY_CONNECTED     | `fully_connected` (one weight scale)                                   |
| ADD                 | `add` (equal shapes, no broadcasting)                                  |
| AVERAGE/MAX_POOL_2D | `avg_pool2d` / `max_pool2d`                                            |
| MEAN over H, W      | `mean` (TFLite's own rounding; an `avg_pool2d` would round differently)|
| PAD                 | folded into the explicit pads of the conv(s) reading it, when it pads  |
|                     | H and W only with the zero point (the value a conv's padding reads)    |
| RESHAPE             | no op: its output is its input (int8 HWC memory is already flat)      |
| TRANSPOSE           | only NCHW -> NHWC of the model input: folded, the IR input is HWC      |
| SOFTMAX             | only as the last op: the graph ends at its input (the logits; softmax  |
|                     | is monotone, so the top classes are the same) and `meta` says so       |

Quantisation: activations int8 per tensor; weights int8 symmetric, per channel (axis 0 for
conv, 3 for depthwise) or per tensor; biases int32 whose own quantisation is ignored, as
TFLite Micro ignores it. That is what lets older files through: TOCO-era models such as
TFLite Micro's person_detect.tflite give each depthwise *bias* (a 1-D tensor) the
`quantized_dimension` 3 of its filter, which LiteRT rejects as invalid and TFLite Micro never
reads. The graph's `meta` records the source file, dropped ops, folded layout and quirks.

A file is hostile input: a `.tflite` carries no checksum, so a damaged or hand-made one must be
refused, not run. Every way it can be wrong is one `TFLiteImportError` (a `ValueError`) whose
one-line message names the file, the op or tensor index and what is wrong. Before any op is
read, the structure is checked: operator-code, tensor and buffer indices in range, one output
per op written once, each op's input count and options table; each tensor's shape (dims
1..MAX_DIM, at most MAX_ELEMENTS), type and buffer size (elements x dtype size), finite scales.
Then each op: activations int8 with a positive scale and an int8 zero point and no constant
data, weights with positive scales, kernel / bias / output shapes equal to what the input,
strides and padding give, and no op whose output nobody reads; the finished graph must give
valid requantisation multipliers (`qparams`). What no check can see, a changed weight or scale
that is still in range, imports: only a checksum kept beside the file could tell.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from patchcam.compiler import qparams
from patchcam.compiler.ir import Graph, IRError, Op, Tensor, out_size, same_pads

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
             "MAX_POOL_2D", "MEAN", "PAD", "RESHAPE", "TRANSPOSE", "SOFTMAX")
# Per op: (fewest inputs, most inputs, its options table, must the table be there).
_SIGNATURES: dict[str, tuple[int, int, type, bool]] = {
    "CONV_2D": (2, 3, fb.Conv2DOptionsT, True),
    "DEPTHWISE_CONV_2D": (2, 3, fb.DepthwiseConv2DOptionsT, True),
    "FULLY_CONNECTED": (2, 3, fb.FullyConnectedOptionsT, False),
    "ADD": (2, 2, fb.AddOptionsT, False),
    "AVERAGE_POOL_2D": (1, 1, fb.Pool2DOptionsT, True),
    "MAX_POOL_2D": (1, 1, fb.Pool2DOptionsT, True),
    "MEAN": (2, 2, fb.ReducerOptionsT, False),
    "PAD": (2, 3, fb.PadOptionsT, False),
    "RESHAPE": (1, 2, fb.ReshapeOptionsT, False),
    "TRANSPOSE": (2, 2, fb.TransposeOptionsT, False),
    "SOFTMAX": (1, 1, fb.SoftmaxOptionsT, False),
}
_OPTIONAL_INPUTS = {"CONV_2D": (2,), "DEPTHWISE_CONV_2D": (2,), "FULLY_CONNECTED": (2,)}  # bias
_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
_TYPE_BYTES = {fb.TensorType.INT8: 1, fb.TensorType.UINT8: 1, fb.TensorType.BOOL: 1,
               fb.TensorType.INT16: 2, fb.TensorType.UINT16: 2, fb.TensorType.FLOAT16: 2,
               fb.TensorType.INT32: 4, fb.TensorType.UINT32: 4, fb.TensorType.FLOAT32: 4,
               fb.TensorType.INT64: 8, fb.TensorType.UINT64: 8, fb.TensorType.FLOAT64: 8}
_ACTIVATIONS = {fb.ActivationFunctionType.NONE: "none", fb.ActivationFunctionType.RELU: "relu",
                fb.ActivationFunctionType.RELU6: "relu6"}
MAX_DIM = 1 << 16  # the largest tensor dimension a model for a microcontroller can have
MAX_ELEMENTS = 1 << 26  # the largest tensor (elements): far beyond any MCU's memory
MAX_LEFT_SHIFT = 30  # TFLite's `x * (1 << shift)` in int32 is defined up to 30
# The smallest scale accepted: a normal float32. Subnormal scales never come out of a converter
# and are flushed to zero by many FPUs, so executors would disagree on them.
MIN_SCALE = float(np.finfo(np.float32).tiny)
# What a damaged flatbuffer or an unforeseen inconsistency raises inside the importer; turned
# into TFLiteImportError at the one place that catches it (import_tflite).
_MALFORMED = (IndexError, KeyError, TypeError, AttributeError, ValueError, OverflowError,
              ZeroDivisionError, struct.error, MemoryError, RecursionError)


class TFLiteImportError(IRError):
    """The file is not a .tflite this importer can read exactly; the message (one line) says
    which file, op or tensor, and why."""


@dataclass
class _Pad:
    source: str  # IR tensor that was padded
    pads: tuple[int, int, int, int]  # top, left, bottom, right


class _Importer:
    def __init__(self, data: bytes, source: str):
        self.source = source
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise TFLiteImportError(f"{source}: not a .tflite flatbuffer (no 'TFL3' identifier)")
        try:
            self.data = data
            self.model = fb.ModelT.InitFromPackedBuf(data, 0)
        except Exception as e:  # noqa: BLE001 - a damaged flatbuffer raises anything
            raise TFLiteImportError(f"{source}: cannot parse the flatbuffer "
                                    f"({type(e).__name__}: {_line(e)})") from None
        self.at = f"{source}: model"  # where the import is (the message of a late failure)
        self._check_model()
        self.sub = self.model.subgraphs[0]
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.origin: list[int] = []  # TFLite op index of each IR op
        self.names: dict[int, str] = {}  # TFLite tensor index -> IR tensor
        self.pads: dict[int, _Pad] = {}  # TFLite tensor index of a PAD output
        self.meta: dict = {"source": "tflite", "file": source, "quirks": [], "dropped": []}
        operators = self.sub.operators
        self.kinds = [self._op_name(i, o) for i, o in enumerate(operators)]
        self.consumers: dict[int, list[int]] = {}
        for i, o in enumerate(operators):
            for t in o.inputs:
                self.consumers.setdefault(int(t), []).append(i)

    # ---- structure: every index in range before anything follows one -----------------------
    def _check_model(self) -> None:
        """Lists present, one subgraph with one input and one output, indices in range."""
        m, src = self.model, self.source
        m.buffers, m.operatorCodes = m.buffers or [], m.operatorCodes or []
        if not m.subgraphs or len(m.subgraphs) != 1:
            raise TFLiteImportError(f"{src}: {len(m.subgraphs or [])} subgraphs; only "
                                    "single-subgraph models are supported")
        sub = m.subgraphs[0]
        sub.tensors, sub.operators = sub.tensors or [], sub.operators or []
        sub.inputs = [] if sub.inputs is None else [int(t) for t in sub.inputs]
        sub.outputs = [] if sub.outputs is None else [int(t) for t in sub.outputs]
        if len(sub.inputs) != 1 or len(sub.outputs) != 1:
            raise TFLiteImportError(f"{src}: {len(sub.inputs)} inputs and "
                                    f"{len(sub.outputs)} outputs; need one of each")
        n = len(sub.tensors)
        for what, t in (("input", sub.inputs[0]), ("output", sub.outputs[0])):
            if not 0 <= t < n:
                raise TFLiteImportError(f"{src}: model {what} is tensor {t}, not in 0..{n - 1}")
        for i, o in enumerate(sub.operators):
            self._check_indices(i, o, n)

    def _check_indices(self, i: int, o: fb.OperatorT, n: int) -> None:
        src, codes = self.source, len(self.model.operatorCodes)
        if not 0 <= o.opcodeIndex < codes:
            raise TFLiteImportError(f"{src}: op {i}: operator code {o.opcodeIndex}, not in "
                                    f"0..{codes - 1}")
        o.inputs = [] if o.inputs is None else [int(t) for t in o.inputs]
        o.outputs = [] if o.outputs is None else [int(t) for t in o.outputs]
        if len(o.outputs) != 1 or not 0 <= o.outputs[0] < n:
            raise TFLiteImportError(f"{src}: op {i}: outputs {o.outputs}; need one tensor in "
                                    f"0..{n - 1}")
        bad = [t for t in o.inputs if not -1 <= t < n]
        if bad:
            raise TFLiteImportError(f"{src}: op {i}: input tensor {bad[0]}, not in 0..{n - 1}")

    def check_ops(self, operators: list[fb.OperatorT]) -> None:
        """Each op: input count and options table as its kind needs, its output a fresh
        activation (written once, not the model input, not a constant); then every tensor an
        op touches (shape, type, buffer size, scales)."""
        written = {self.sub.inputs[0]}
        for i, o in enumerate(operators):
            kind, where = self.kinds[i], self.where(i)
            lo, hi, options, required = _SIGNATURES[kind]
            if not lo <= len(o.inputs) <= hi:
                takes = f"{lo}..{hi}" if lo != hi else str(lo)
                raise TFLiteImportError(f"{where}: {len(o.inputs)} inputs; {kind} takes {takes}")
            missing = [k for k, t in enumerate(o.inputs)
                       if t < 0 and k not in _OPTIONAL_INPUTS.get(kind, ())]
            if missing:
                raise TFLiteImportError(f"{where}: input {missing[0]} is missing (-1)")
            opts = o.builtinOptions
            if (opts is None and required) or (opts is not None and type(opts) is not options):
                raise TFLiteImportError(f"{where}: options are {type(opts).__name__}; {kind} "
                                        f"needs {options.__name__}")
            y = o.outputs[0]
            if y in written or self.raw(y):
                raise TFLiteImportError(f"{where}: output tensor {y} ('{self.tname(y)}') is "
                                        "the model input, a constant or written twice")
            written.add(y)
        used = {self.sub.inputs[0], self.sub.outputs[0]}
        used |= {t for o in operators for t in (*o.inputs, *o.outputs) if t >= 0}
        for t in sorted(used):
            self.check_tensor(t)

    def check_tensor(self, index: int) -> None:
        """Shape, type, buffer and quantisation of one tensor, whatever its role."""
        t, where = self.t(index), f"{self.source}: tensor {index} ('{self.tname(index)}')"
        shape = [] if t.shape is None else [int(d) for d in t.shape]
        t.shape = shape
        if len(shape) > 6 or any(not 1 <= d <= MAX_DIM for d in shape) or \
                math.prod(shape) > MAX_ELEMENTS:
            raise TFLiteImportError(f"{where}: shape {_short(str(shape))}; need at most 6 "
                                    f"dims, each 1..{MAX_DIM}, at most {MAX_ELEMENTS} elements")
        if not 0 <= t.buffer < len(self.model.buffers):
            raise TFLiteImportError(f"{where}: buffer {t.buffer}, not in "
                                    f"0..{len(self.model.buffers) - 1}")
        raw = self.raw(index)
        if raw:
            size = _TYPE_BYTES.get(t.type)
            if size is None:
                raise TFLiteImportError(f"{where}: constant of type "
                                        f"{_TYPE_NAMES.get(t.type, t.type)} is not supported")
            if len(raw) != math.prod(shape) * size:
                raise TFLiteImportError(f"{where}: buffer {t.buffer} holds {len(raw)} bytes; "
                                        f"shape {shape} of {_TYPE_NAMES[t.type]} needs "
                                        f"{math.prod(shape) * size}")
        # Scales: never NaN or infinite, whatever the role. The rest of the quantisation is
        # checked where the role is known (activation_tensor, weights): a bias's is unused.
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale):
            scales = np.asarray(q.scale, np.float64)
            if not np.all(np.isfinite(scales)):
                bad = scales[~np.isfinite(scales)][0]
                raise TFLiteImportError(f"{where}: scale {bad:g} is not finite")

    # ---- helpers -----------------------------------------------------------------------------
    def _op_name(self, i: int, o: fb.OperatorT) -> str:
        oc = self.model.operatorCodes[o.opcodeIndex]
        if oc is None:
            raise TFLiteImportError(f"{self.source}: op {i}: operator code {o.opcodeIndex} "
                                    "is empty")
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code == fb.BuiltinOperator.CUSTOM:
            return f"CUSTOM({_short(_text(oc.customCode))})"
        return _OP_NAMES.get(code, f"builtin {code}")

    def where(self, i: int) -> str:
        return f"{self.source}: op {i} ({self.kinds[i]})"

    def t(self, index: int) -> fb.TensorT:
        return self.sub.tensors[index]

    def tname(self, index: int) -> str:
        """The tensor's name for a message (shortened)."""
        return _short(self.irname(index))

    def irname(self, index: int) -> str:
        return _text(self.t(index).name) or f"tensor{index}"

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.t(index).shape)

    def raw(self, index: int) -> bytes:
        """The constant bytes of a tensor (b"" for an activation)."""
        buffers, b = self.model.buffers, self.t(index).buffer
        if not 0 <= b < len(buffers) or buffers[b] is None:
            return b""
        buf = buffers[b]
        if buf.data is not None and len(buf.data):
            return np.asarray(buf.data, np.uint8).tobytes()
        if getattr(buf, "offset", 0) > 1:  # large models keep buffers after the flatbuffer
            return self.data[buf.offset:buf.offset + buf.size]
        return b""

    def quant(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        q = self.t(index).quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
        zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.int64)
        return np.asarray(q.scale, np.float32), zps, int(q.quantizedDimension)

    def const(self, index: int, where: str, rank: int | None = None) -> np.ndarray:
        """A constant tensor as numpy (its size was checked against its shape)."""
        t, raw = self.t(index), self.raw(index)
        if not raw:
            raise TFLiteImportError(f"{where}: tensor '{self.tname(index)}' should be a "
                                    "constant but has no data")
        dtypes = {fb.TensorType.INT8: "<i1", fb.TensorType.INT32: "<i4",
                  fb.TensorType.INT64: "<i8"}
        if t.type not in dtypes:
            raise TFLiteImportError(f"{where}: constant '{self.tname(index)}' has type "
                                    f"{_TYPE_NAMES.get(t.type, t.type)}; need INT8/INT32")
        if rank is not None and len(self.shape(index)) != rank:
            raise TFLiteImportError(f"{where}: constant '{self.tname(index)}' has shape "
                                    f"{list(self.shape(index))}; need {rank} dims")
        a = np.frombuffer(raw, dtypes[t.type]).reshape(self.shape(index))
        return a.astype(np.dtype(dtypes[t.type][1:]))

    def activation_tensor(self, index: int, where: str) -> tuple[float, int]:
        """(scale, zero point) of an int8 activation: one finite positive scale, one int8
        zero point, no constant data."""
        t, name = self.t(index), self.tname(index)
        if t.type != fb.TensorType.INT8:
            raise TFLiteImportError(f"{where}: tensor '{name}' is "
                                    f"{_TYPE_NAMES.get(t.type, t.type)}; activations must be "
                                    "INT8 (a fully int8-quantised model)")
        if self.raw(index):
            raise TFLiteImportError(f"{where}: activation '{name}' has constant data "
                                    f"(buffer {t.buffer})")
        scales, zps, _ = self.quant(index)
        if len(scales) != 1 or len(zps) != 1:
            raise TFLiteImportError(f"{where}: activation '{name}' needs one "
                                    f"scale and zero point, has {len(scales)} / {len(zps)}")
        scale, zp = float(scales[0]), int(zps[0])
        if not (math.isfinite(scale) and scale >= MIN_SCALE):
            raise TFLiteImportError(f"{where}: activation '{name}' has scale {scale:g}; "
                                    f"need a finite scale >= {MIN_SCALE:.3g}")
        if not -128 <= zp <= 127:
            raise TFLiteImportError(f"{where}: activation '{name}' has zero point {zp}; "
                                    "need -128..127")
        return scale, zp

    def new_tensor(self, index: int, shape: tuple[int, ...], where: str) -> str:
        """The IR tensor for TFLite tensor `index` (batch dimension dropped)."""
        scale, zp = self.activation_tensor(index, where)
        name, base, k = self.irname(index), self.irname(index), 1
        while name in self.tensors:
            name, k = f"{base}_{k}", k + 1
        self.tensors[name] = Tensor(name, tuple(shape), scale, zp)
        self.names[index] = name
        return name

    def input_of(self, index: int, where: str) -> str:
        if index in self.pads:
            raise TFLiteImportError(f"{where}: reads a PAD output, which only a conv can fold")
        if index not in self.names:
            raise TFLiteImportError(f"{where}: input '{self.tname(index)}' is neither the "
                                    "model input nor computed by an earlier op")
        return self.names[index]

    def output_of(self, i: int, o: fb.OperatorT, shape: tuple[int, ...],
                  exact: bool = True) -> str:
        """Create the op's output tensor, checking TFLite's shape against ours: exactly
        [1, *shape] (exact), or the same dims once the 1s are dropped (vectors: MEAN without
        keep_dims, FULLY_CONNECTED with keep_num_dims)."""
        index = o.outputs[0]
        got = self.shape(index)
        same = got == (1, *shape) or (not exact and
                                      [d for d in got if d != 1] == [d for d in shape if d != 1])
        if not same:
            raise TFLiteImportError(f"{self.where(i)}: output shape {list(got)} != computed "
                                    f"{[1, *shape]}")
        return self.new_tensor(index, shape, self.where(i))

    def add_op(self, i: int, op: Op) -> None:
        self.ops.append(op)
        self.origin.append(i)

    def activation(self, i: int, options: object) -> str:
        act = getattr(options, "fusedActivationFunction", fb.ActivationFunctionType.NONE)
        if act not in _ACTIVATIONS:
            raise TFLiteImportError(f"{self.where(i)}: fused activation {act} is not supported "
                                    "(only NONE, RELU, RELU6)")
        return _ACTIVATIONS[act]

    def op_name(self, o: fb.OperatorT, weights: int | None = None) -> str:
        if weights is not None:
            w = _text(self.t(weights).name)
            if w.endswith("/weights"):  # what patchcam's exporter writes: keep round trips exact
                return w.removesuffix("/weights")
        return self.irname(o.outputs[0])

    def weights(self, i: int, index: int, channels: int, axis: int) -> np.ndarray:
        """Per-channel weight scales (float32, `channels` of them) of an int8 weight tensor."""
        where = self.where(i)
        if self.t(index).type != fb.TensorType.INT8:
            raise TFLiteImportError(f"{where}: weights '{self.tname(index)}' are "
                                    f"{_TYPE_NAMES.get(self.t(index).type)}; need INT8")
        scales, zps, qdim = self.quant(index)
        if np.any(zps != 0):
            raise TFLiteImportError(f"{where}: weights '{self.tname(index)}' have nonzero zero "
                                    "points; only symmetric int8 weights are supported")
        if len(scales) == 0 or not np.all(scales >= MIN_SCALE):
            raise TFLiteImportError(f"{where}: weights '{self.tname(index)}' need finite scales "
                                    f">= {MIN_SCALE:.3g}, have "
                                    f"{_first_bad(scales) if len(scales) else 'none'}")
        if len(scales) == 1:
            return np.repeat(scales, channels).astype(np.float32)
        if len(scales) != channels or qdim != axis:
            raise TFLiteImportError(f"{where}: weights '{self.tname(index)}' have "
                                    f"{len(scales)} scales on axis {qdim}; expected 1, or "
                                    f"{channels} on axis {axis}")
        return scales.astype(np.float32)

    def bias(self, i: int, o: fb.OperatorT, channels: int) -> np.ndarray:
        if len(o.inputs) < 3 or o.inputs[2] < 0:
            return np.zeros(channels, np.int32)
        index = o.inputs[2]
        if self.t(index).type != fb.TensorType.INT32:
            raise TFLiteImportError(f"{self.where(i)}: bias '{self.tname(index)}' is "
                                    f"{_TYPE_NAMES.get(self.t(index).type)}; need INT32")
        b = self.const(index, self.where(i))
        if b.shape != (channels,):
            raise TFLiteImportError(f"{self.where(i)}: bias has shape {list(b.shape)}, need "
                                    f"[{channels}] (one per output channel)")
        _, _, qdim = self.quant(index)
        if qdim >= len(self.shape(index)) and "bias quantized_dimension" not in str(
                self.meta["quirks"]):
            self.meta["quirks"].append(
                f"bias quantized_dimension {qdim} on a 1-D tensor (e.g. '{self.tname(index)}', "
                "old TOCO per-channel metadata that LiteRT rejects; biases' quantisation is "
                "unused, as in TFLite Micro)")
        return b.astype(np.int32)

    def strides(self, i: int, opts: object) -> tuple[int, int]:
        s = (int(opts.strideH), int(opts.strideW))
        if not all(1 <= v <= MAX_DIM for v in s):
            raise TFLiteImportError(f"{self.where(i)}: strides {list(s)}; need 1..{MAX_DIM}")
        return s

    def spatial(self, i: int, x: int, kernel: tuple[int, int], stride: tuple[int, int],
                padding: int) -> tuple[str, tuple[int, int, int, int], tuple[int, int, int],
                                       tuple[int, int]]:
        """(IR input, explicit pads, HWC input shape, output H x W) of a conv or pool; a PAD
        that feeds a conv is folded here. An empty output (kernel over the padded input) is
        refused."""
        where = self.where(i)
        extra = (0, 0, 0, 0)
        if x in self.pads:
            p = self.pads[x]
            name, extra = p.source, p.pads
        else:
            name = self.input_of(x, where)
        if len(self.tensors[name].shape) != 3:
            raise TFLiteImportError(f"{where}: input {list(self.tensors[name].shape)} is not "
                                    "H x W x C")
        h, w, c = self.tensors[name].shape
        hp, wp = h + extra[0] + extra[2], w + extra[1] + extra[3]
        if padding == fb.Padding.SAME:
            own = same_pads(hp, wp, kernel, stride)
        elif padding == fb.Padding.VALID:
            own = (0, 0, 0, 0)
        else:
            raise TFLiteImportError(f"{where}: unknown padding {padding}")
        pads = tuple(a + b for a, b in zip(own, extra, strict=True))
        ho = out_size(h, kernel[0], stride[0], pads[0], pads[2])
        wo = out_size(w, kernel[1], stride[1], pads[1], pads[3])
        if ho < 1 or wo < 1 or min(kernel) < 1:
            raise TFLiteImportError(f"{where}: kernel {list(kernel)} on a {h}x{w} input "
                                    f"padded by {list(pads)} gives no output")
        return name, pads, (h, w, c), (ho, wo)


def import_tflite(source: str | Path | bytes, name: str | None = None) -> Graph:
    """Read a `.tflite` (path or bytes) into a checked int8 graph; raise TFLiteImportError
    naming the op (index and builtin name) or tensor that cannot be imported exactly."""
    if isinstance(source, bytes | bytearray | memoryview):
        data, label = bytes(source), "<bytes>"
    else:
        p = Path(source)
        if not p.is_file():
            raise TFLiteImportError(f"{p}: no such .tflite file")
        data, label = p.read_bytes(), str(p)
    im = _Importer(data, label)
    try:
        return _import(im, name)
    except TFLiteImportError:
        raise
    except _MALFORMED as e:  # a check this importer lacks: still one error, naming the place
        raise TFLiteImportError(f"{im.at}: malformed ({type(e).__name__}: {_line(e)})") \
            from None


def _import(im: _Importer, name: str | None) -> Graph:
    label = im.source
    operators = list(im.sub.operators)
    unsupported = [f"op {i} ({k})" for i, k in enumerate(im.kinds) if k not in SUPPORTED]
    if unsupported:
        raise TFLiteImportError(f"{label}: unsupported op(s): {', '.join(unsupported)}; "
                                f"supported: {', '.join(SUPPORTED)}")
    im.check_ops(operators)

    # A final SOFTMAX is dropped: the graph ends at its input (see the module docstring).
    out_index = im.sub.outputs[0]
    while operators and im.kinds[len(operators) - 1] == "SOFTMAX" and \
            operators[-1].outputs[0] == out_index:
        i = len(operators) - 1
        sm = operators.pop()
        out_index = sm.inputs[0]
        im.meta["dropped"].append(f"op {i} (SOFTMAX, beta "
                                  f"{getattr(sm.builtinOptions, 'beta', 1.0):g}): the output is "
                                  "its input, the logits; softmax keeps their order")

    in_index = im.sub.inputs[0]
    skip = _import_input(im, operators, in_index)
    for i, o in enumerate(operators):
        if i not in skip:
            im.at = im.where(i)
            _import_op(im, i, o, out_index)
    im.at = f"{label}: graph"
    _check_connected(im, operators, skip, out_index)

    if out_index in im.pads or out_index not in im.names:
        raise TFLiteImportError(f"{label}: the output '{im.tname(out_index)}' is not computed")
    im.meta["tflite_output_tensor"] = out_index  # the TFLite tensor the IR output is
    g = Graph(name or _text(im.sub.name) or Path(label).stem, im.tensors, im.ops,
              im.names[in_index], im.names[out_index], im.meta)
    # Tensors that only aliased (RESHAPE) or were folded away are not in the IR.
    used = {g.input, g.output} | {n for op in g.ops for n in (*op.inputs, op.output)}
    g.tensors = {k: v for k, v in g.tensors.items() if k in used}
    try:
        g.check()
    except IRError as e:
        raise TFLiteImportError(f"{label}: the imported graph is not valid: {_line(e)}") \
            from None
    _check_requantisation(im, g)
    return g


def _import_input(im: _Importer, operators: list[fb.OperatorT], in_index: int) -> set[int]:
    """The model input as an IR tensor, through a leading NCHW -> NHWC TRANSPOSE if there is
    one; returns the TFLite ops that are folded into it."""
    label = im.source
    in_shape = im.shape(in_index)
    uses = im.consumers.get(in_index, [])
    first = uses[0] if len(uses) == 1 and uses[0] < len(operators) else None
    if first is not None and im.kinds[first] == "TRANSPOSE":
        o = operators[first]
        im.at = im.where(first)
        perm = im.const(o.inputs[1], im.where(first)).reshape(-1).tolist()
        t_out = o.outputs[0]
        if len(in_shape) != 4 or perm != [0, 2, 3, 1] or in_shape[0] != 1 or \
                im.activation_tensor(t_out, im.where(first)) != \
                im.activation_tensor(in_index, im.where(first)):
            raise TFLiteImportError(f"{im.where(first)}: only an NCHW -> NHWC transpose "
                                    f"(perm [0, 2, 3, 1]) of a 1xCxHxW input that keeps its "
                                    f"quantisation can be folded; got perm {perm}")
        n, c, h, w = in_shape
        if im.shape(t_out) != (1, h, w, c):
            raise TFLiteImportError(f"{im.where(first)}: output shape {list(im.shape(t_out))} "
                                    f"!= computed {[1, h, w, c]}")
        im.new_tensor(t_out, (h, w, c), im.where(first))
        im.names[in_index] = im.names[t_out]
        im.meta["input_layout"] = (f"HWC {h}x{w}x{c}: the .tflite input is NCHW "
                                   f"{list(in_shape)}; its leading TRANSPOSE (op {first}) is "
                                   "folded, so feed H x W x C")
        return {first}
    if len(in_shape) in (2, 4) and in_shape[0] == 1:
        shape = in_shape[1:]
    else:
        raise TFLiteImportError(f"{label}: input shape {list(in_shape)}; need 1xHxWxC "
                                "(or NCHW with a leading TRANSPOSE)")
    im.new_tensor(in_index, shape, f"{label}: input")
    im.meta["input_layout"] = "HWC"
    return set()


def _check_connected(im: _Importer, operators: list[fb.OperatorT], skip: set[int],
                     out_index: int) -> None:
    """Every op's output is read by a later op or is the model output: an op nobody reads
    (a damaged input index cut it off) is refused, not silently left out."""
    for i, o in enumerate(operators):
        y = o.outputs[0]
        if i not in skip and y != out_index and not any(j > i for j in im.consumers.get(y, [])):
            raise TFLiteImportError(f"{im.where(i)}: its output '{im.tname(y)}' is read by no "
                                    "later op and is not the model output (the graph is not "
                                    "connected)")


def _check_requantisation(im: _Importer, g: Graph) -> None:
    """Every op's integer parameters (TFLite Micro's "prepare") exist: its scales give
    finite multipliers whose left shift TFLite's int32 arithmetic can do."""
    for i, op in zip(im.origin, g.ops, strict=True):
        try:
            with np.errstate(all="ignore"):  # an overflow raises below or is refused
                p = qparams.op_params(g, op)
        except (ValueError, OverflowError, ZeroDivisionError) as e:
            raise TFLiteImportError(f"{im.where(i)}: its scales give no valid requantisation "
                                    f"({_line(e)})") from None
        shifts = [int(s) for s in np.ravel(getattr(p, "shifts", []))]
        shifts += [int(getattr(p, f)) for f in ("input1_shift", "input2_shift", "output_shift",
                                                "shift") if hasattr(p, f)]
        if shifts and max(shifts) > MAX_LEFT_SHIFT:
            raise TFLiteImportError(f"{im.where(i)}: its scales need a requantisation left "
                                    f"shift of {max(shifts)} (at most {MAX_LEFT_SHIFT}): the "
                                    "output scale is far too small for its input")


def _import_op(im: _Importer, i: int, o: fb.OperatorT, out_index: int) -> None:
    kind = im.kinds[i]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        _conv(im, i, o)
    elif kind == "FULLY_CONNECTED":
        _fully_connected(im, i, o)
    elif kind == "ADD":
        _add(im, i, o)
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        _pool(im, i, o)
    elif kind == "MEAN":
        _mean(im, i, o)
    elif kind == "PAD":
        _pad(im, i, o, out_index)
    elif kind == "RESHAPE":
        _reshape(im, i, o, out_index)
    elif kind == "TRANSPOSE":
        raise TFLiteImportError(f"{im.where(i)}: only a leading NCHW -> NHWC TRANSPOSE of the "
                                "model input is supported")
    elif kind == "SOFTMAX":
        raise TFLiteImportError(f"{im.where(i)}: SOFTMAX is only supported as the last op (the "
                                "graph then ends at the logits)")
    else:  # unreachable: filtered by SUPPORTED
        raise TFLiteImportError(f"{im.where(i)}: not supported; supported: "
                                f"{', '.join(SUPPORTED)}")


def _conv(im: _Importer, i: int, o: fb.OperatorT) -> None:
    """CONV_2D (weights Cout x kh x kw x Cin) or DEPTHWISE_CONV_2D (1 x kh x kw x Cout)."""
    kind, where, opts = im.kinds[i], im.where(i), o.builtinOptions
    if (getattr(opts, "dilationHFactor", 1), getattr(opts, "dilationWFactor", 1)) != (1, 1):
        raise TFLiteImportError(f"{where}: dilated convolutions are not supported")
    wi = o.inputs[1]
    wt = im.const(wi, where, rank=4).astype(np.int8)
    stride = im.strides(i, opts)
    kernel = (wt.shape[1], wt.shape[2])
    name, pads, (h, w, c), (ho, wo) = im.spatial(i, o.inputs[0], kernel, stride, opts.padding)
    if kind == "CONV_2D":
        if wt.shape[3] != c:
            raise TFLiteImportError(f"{where}: weights {list(wt.shape)} for {c} input "
                                    "channels (grouped convolutions are not supported)")
        ir_kind, weights, scales = "conv2d", wt, im.weights(i, wi, wt.shape[0], 0)
        cout = wt.shape[0]
    else:
        cout = wt.shape[3]
        multiplier = int(getattr(opts, "depthMultiplier", 0))
        if wt.shape[0] != 1 or cout % c or multiplier not in (0, cout // c):
            raise TFLiteImportError(f"{where}: weights {list(wt.shape)} with depth "
                                    f"multiplier {multiplier} on {c} input channels; need "
                                    f"[1, kh, kw, {c} x multiplier]")
        scales = im.weights(i, wi, cout, 3)
        if cout == c:
            ir_kind, weights = "depthwise_conv2d", wt[0]
        elif c == 1:  # one input channel, multiplier m: an ordinary conv with m outputs
            weights = np.ascontiguousarray(wt[0].transpose(2, 0, 1)[..., np.newaxis])
            ir_kind = "conv2d"
            im.meta["quirks"].append(f"op {i}: DEPTHWISE_CONV_2D with depth multiplier "
                                     f"{cout} on a 1-channel input, imported as conv2d")
        else:
            raise TFLiteImportError(f"{where}: depth multiplier {cout // c} on {c} input "
                                    "channels is not supported (only 1, or any on a "
                                    "1-channel input)")
    out = im.output_of(i, o, (ho, wo, cout))
    im.add_op(i, Op(ir_kind, im.op_name(o, wi), [name], out, kernel, stride, pads,
                    im.activation(i, opts), weights, scales, im.bias(i, o, cout)))


def _fully_connected(im: _Importer, i: int, o: fb.OperatorT) -> None:
    where, opts = im.where(i), o.builtinOptions
    if getattr(opts, "weightsFormat", 0) != fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
        raise TFLiteImportError(f"{where}: shuffled FC weights are not supported")
    name = im.input_of(o.inputs[0], where)
    wi = o.inputs[1]
    wt = im.const(wi, where, rank=2).astype(np.int8)
    n, k = wt.shape
    if im.tensors[name].size != k:
        raise TFLiteImportError(f"{where}: input of {im.tensors[name].size} values for "
                                f"weights {list(wt.shape)} (batch > 1 is not supported)")
    scales = im.weights(i, wi, n, 0)
    if np.any(scales != scales[0]):
        raise TFLiteImportError(f"{where}: per-channel FULLY_CONNECTED weights are not "
                                "supported (the IR's fully_connected has one scale)")
    out = im.output_of(i, o, (n,), exact=False)
    im.add_op(i, Op("fully_connected", im.op_name(o, wi), [name], out,
                    activation=im.activation(i, opts), weights=wt,
                    weight_scales=scales[:1].copy(), bias=im.bias(i, o, n)))


def _add(im: _Importer, i: int, o: fb.OperatorT) -> None:
    where = im.where(i)
    a, b = (im.input_of(t, where) for t in o.inputs[:2])
    if im.tensors[a].shape != im.tensors[b].shape:
        raise TFLiteImportError(f"{where}: broadcasting ADD ({im.tensors[a].shape} + "
                                f"{im.tensors[b].shape}) is not supported")
    out = im.output_of(i, o, im.tensors[a].shape)
    im.add_op(i, Op("add", im.op_name(o), [a, b], out,
                    activation=im.activation(i, o.builtinOptions)))


def _pool(im: _Importer, i: int, o: fb.OperatorT) -> None:
    kind, where, opts = im.kinds[i], im.where(i), o.builtinOptions
    kernel = (int(opts.filterHeight), int(opts.filterWidth))
    stride = im.strides(i, opts)
    name, pads, (h, w, c), (ho, wo) = im.spatial(i, o.inputs[0], kernel, stride, opts.padding)
    out = im.output_of(i, o, (ho, wo, c))
    a, b = im.tensors[name], im.tensors[out]
    if (a.scale, a.zero_point) != (b.scale, b.zero_point):
        raise TFLiteImportError(f"{where}: pooling changes the quantisation ({a.scale:.6g}, "
                                f"{a.zero_point}) -> ({b.scale:.6g}, {b.zero_point}); the "
                                "IR's pooling keeps it, as TFLite requires")
    ir_kind = "avg_pool2d" if kind == "AVERAGE_POOL_2D" else "max_pool2d"
    im.add_op(i, Op(ir_kind, im.op_name(o), [name], out, kernel, stride, pads,
                    im.activation(i, opts)))


def _mean(im: _Importer, i: int, o: fb.OperatorT) -> None:
    where, x = im.where(i), o.inputs[0]
    name = im.input_of(x, where)
    shape = im.tensors[name].shape
    axes = sorted({int(a) % 4 for a in im.const(o.inputs[1], where).reshape(-1)})
    if len(shape) != 3 or len(im.shape(x)) != 4 or axes != [1, 2]:
        raise TFLiteImportError(f"{where}: only MEAN over H and W of a 1xHxWxC tensor is "
                                f"supported (axes {axes})")
    out = im.output_of(i, o, (1, 1, shape[2]), exact=False)
    im.add_op(i, Op("mean", im.op_name(o), [name], out, (shape[0], shape[1])))


def _pad(im: _Importer, i: int, o: fb.OperatorT, out_index: int) -> None:
    where, x, y = im.where(i), o.inputs[0], o.outputs[0]
    name = im.input_of(x, where)
    if len(o.inputs) > 2 and o.inputs[2] >= 0:
        raise TFLiteImportError(f"{where}: PAD with a constant value is not supported")
    p = im.const(o.inputs[1], where)
    if p.shape != (4, 2) or np.any(p[0] != 0) or np.any(p[3] != 0) or np.any(p < 0) or \
            np.any(p > MAX_DIM):
        raise TFLiteImportError(f"{where}: only PAD of H and W (0..{MAX_DIM}) can be folded, "
                                f"got {p.tolist()}")
    if im.activation_tensor(x, where) != im.activation_tensor(y, where):
        raise TFLiteImportError(f"{where}: PAD changes the quantisation; cannot fold it")
    readers = im.consumers.get(y, [])
    if y == out_index or not readers or \
            any(im.kinds[j] not in ("CONV_2D", "DEPTHWISE_CONV_2D") for j in readers):
        raise TFLiteImportError(f"{where}: a PAD can only be folded into the convs that read "
                                f"it; this one feeds {[im.kinds[j] for j in readers]}")
    h, w, c = im.tensors[name].shape if len(im.tensors[name].shape) == 3 else (0, 0, 0)
    padded = (1, h + int(p[1].sum()), w + int(p[2].sum()), c)
    if im.shape(y) != padded:
        raise TFLiteImportError(f"{where}: output shape {list(im.shape(y))} != computed "
                                f"{list(padded)}")
    # TFLite pads int8 with the output zero point = the input zero point (checked above):
    # exactly the value a conv's implicit padding reads (0 after the input offset).
    im.pads[y] = _Pad(name, (int(p[1, 0]), int(p[2, 0]), int(p[1, 1]), int(p[2, 1])))


def _reshape(im: _Importer, i: int, o: fb.OperatorT, out_index: int) -> None:
    where, x, y = im.where(i), o.inputs[0], o.outputs[0]
    name = im.input_of(x, where)
    if im.activation_tensor(x, where) != im.activation_tensor(y, where):
        raise TFLiteImportError(f"{where}: RESHAPE changes the quantisation; not supported")
    if math.prod(im.shape(y)) != im.tensors[name].size:
        raise TFLiteImportError(f"{where}: RESHAPE of {im.tensors[name].size} values to "
                                f"{list(im.shape(y))}")
    old = tuple(d for d in im.tensors[name].shape if d != 1)
    new = tuple(d for d in im.shape(y) if d != 1)
    readers = [im.kinds[j] for j in im.consumers.get(y, [])]
    if old != new and not (y == out_index or all(k == "FULLY_CONNECTED" for k in readers)):
        raise TFLiteImportError(f"{where}: RESHAPE {list(im.shape(x))} -> {list(im.shape(y))} "
                                f"feeding {readers} is not supported (only reshapes that "
                                "drop 1s, or flatten for FULLY_CONNECTED / the output)")
    im.names[y] = name


def _text(s: bytes | str | None) -> str:
    """A name from the file, printable: control characters become escapes, so a message
    naming it stays one line."""
    if s is None:
        return ""
    t = s.decode(errors="replace") if isinstance(s, bytes) else str(s)
    return t if t.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1]
                                             for c in t)


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[:n - 3] + "..."


def _line(e: BaseException) -> str:
    """An exception's message on one line (for wrapping it in TFLiteImportError)."""
    return _short(" ".join(str(e).split()) or type(e).__name__, 200)


def _first_bad(scales: np.ndarray) -> str:
    """The first scale that is not finite and > 0, for a message."""
    bad = scales[~(np.isfinite(scales) & (scales >= MIN_SCALE))]
    return f"{float(bad[0]):g}" if len(bad) else f"{float(scales[0]):g}"


def image_to_input(g: Graph, image: np.ndarray, mean: list[float] | None = None,
                   std: list[float] | None = None) -> np.ndarray:
    """An RGB (HxWx3) or grey (HxW) uint8 image -> the graph's int8 HWC input: resized
    (area), converted to grey for a 1-channel input, then quantised. Without mean/std each
    pixel p becomes p - 128, the usual uint8 -> int8 cast of TFLite Micro's examples (right
    for person_detect, whose float input range is [-1, 1]); with them the float input is
    (p / 255 - mean) / std per channel (ImageNet models), quantised with the input's scale
    and zero point."""
    import cv2

    x_t = g.tensors[g.input]
    if len(x_t.shape) != 3:
        raise TFLiteImportError(f"{g.name}: input {x_t.shape} is not an image (HxWxC)")
    h, w, c = x_t.shape
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise TFLiteImportError(f"image must be uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if c == 1 and img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    elif c == 3 and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_AREA)
    img = img.reshape(h, w, c)
    if mean is None and std is None:
        return (img.astype(np.int16) - 128).astype(np.int8)
    m = np.asarray(mean if mean is not None else [0.0], np.float32)
    s = np.asarray(std if std is not None else [1.0], np.float32)
    f = (img.astype(np.float32) / 255.0 - m) / s
    q = np.round(f / np.float32(x_t.scale)) + x_t.zero_point
    return np.clip(q, -128, 127).astype(np.int8)
