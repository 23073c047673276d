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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from patchcam.compiler.ir import Graph, IRError, Op, Tensor, out_size, same_pads

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
             "MAX_POOL_2D", "MEAN", "PAD", "RESHAPE", "TRANSPOSE", "SOFTMAX")
_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
_ACTIVATIONS = {fb.ActivationFunctionType.NONE: "none", fb.ActivationFunctionType.RELU: "relu",
                fb.ActivationFunctionType.RELU6: "relu6"}


class TFLiteImportError(IRError):
    """The file is not a .tflite this importer can read exactly; the message says why."""


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
        except Exception as e:  # a damaged flatbuffer raises anything
            raise TFLiteImportError(f"{source}: cannot parse the flatbuffer "
                                    f"({type(e).__name__}: {e})") from None
        if not self.model.subgraphs or len(self.model.subgraphs) != 1:
            raise TFLiteImportError(f"{source}: {len(self.model.subgraphs or [])} subgraphs; "
                                    "only single-subgraph models are supported")
        self.sub = self.model.subgraphs[0]
        if len(self.sub.inputs) != 1 or len(self.sub.outputs) != 1:
            raise TFLiteImportError(f"{source}: {len(self.sub.inputs)} inputs and "
                                    f"{len(self.sub.outputs)} outputs; need one of each")
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.names: dict[int, str] = {}  # TFLite tensor index -> IR tensor
        self.pads: dict[int, _Pad] = {}  # TFLite tensor index of a PAD output
        self.meta: dict = {"source": "tflite", "file": source, "quirks": [], "dropped": []}
        operators = self.sub.operators or []
        self.kinds = [self._op_name(o) for o in operators]
        self.consumers: dict[int, list[int]] = {}
        for i, o in enumerate(operators):
            for t in o.inputs:
                self.consumers.setdefault(int(t), []).append(i)

    # ---- helpers -----------------------------------------------------------------------------
    def _op_name(self, o: fb.OperatorT) -> str:
        oc = self.model.operatorCodes[o.opcodeIndex]
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code == fb.BuiltinOperator.CUSTOM:
            return f"CUSTOM({_text(oc.customCode)})"
        return _OP_NAMES.get(code, f"builtin {code}")

    def where(self, i: int) -> str:
        return f"{self.source}: op {i} ({self.kinds[i]})"

    def t(self, index: int) -> fb.TensorT:
        return self.sub.tensors[index]

    def tname(self, index: int) -> str:
        return _text(self.t(index).name) or f"tensor{index}"

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.t(index).shape)

    def quant(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        q = self.t(index).quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
        zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.int64)
        return np.asarray(q.scale, np.float32), zps, int(q.quantizedDimension)

    def const(self, index: int, where: str) -> np.ndarray:
        t = self.t(index)
        buf = self.model.buffers[t.buffer]
        raw = None
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, np.uint8).tobytes()
        elif getattr(buf, "offset", 0) > 1:  # large models keep buffers after the flatbuffer
            raw = self.data[buf.offset:buf.offset + buf.size]
        if raw is None:
            raise TFLiteImportError(f"{where}: tensor '{self.tname(index)}' should be a "
                                    "constant but has no data")
        dtypes = {fb.TensorType.INT8: "<i1", fb.TensorType.INT32: "<i4",
                  fb.TensorType.INT64: "<i8"}
        if t.type not in dtypes:
            raise TFLiteImportError(f"{where}: constant '{self.tname(index)}' has type "
                                    f"{_TYPE_NAMES.get(t.type, t.type)}; need INT8/INT32")
        a = np.frombuffer(raw, dtypes[t.type]).reshape(self.shape(index))
        return a.astype(np.dtype(dtypes[t.type][1:]))

    def activation_tensor(self, index: int, where: str) -> tuple[float, int]:
        t = self.t(index)
        if t.type != fb.TensorType.INT8:
            raise TFLiteImportError(f"{where}: tensor '{self.tname(index)}' is "
                                    f"{_TYPE_NAMES.get(t.type, t.type)}; activations must be "
                                    "INT8 (a fully int8-quantised model)")
        scales, zps, _ = self.quant(index)
        if len(scales) != 1 or len(zps) != 1:
            raise TFLiteImportError(f"{where}: activation '{self.tname(index)}' needs one "
                                    f"scale and zero point, has {len(scales)} / {len(zps)}")
        return float(scales[0]), int(zps[0])

    def new_tensor(self, index: int, shape: tuple[int, ...], where: str) -> str:
        """The IR tensor for TFLite tensor `index` (batch dimension dropped)."""
        scale, zp = self.activation_tensor(index, where)
        name, base, k = self.tname(index), self.tname(index), 1
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

    def output_of(self, i: int, o: fb.OperatorT, shape: tuple[int, ...]) -> str:
        """Create the op's output tensor, checking TFLite's shape against ours."""
        index = int(o.outputs[0])
        got = self.shape(index)
        flat = tuple(d for d in got[1:]) if got and got[0] == 1 else got
        if int(np.prod(got)) != int(np.prod(shape)) or (len(flat) == len(shape) and
                                                        flat != tuple(shape)):
            raise TFLiteImportError(f"{self.where(i)}: output shape {list(got)} != computed "
                                    f"{list(shape)}")
        return self.new_tensor(index, shape, self.where(i))

    def activation(self, i: int, options: object) -> str:
        act = getattr(options, "fusedActivationFunction", fb.ActivationFunctionType.NONE)
        if act not in _ACTIVATIONS:
            raise TFLiteImportError(f"{self.where(i)}: fused activation {act} is not supported "
                                    "(only NONE, RELU, RELU6)")
        return _ACTIVATIONS[act]

    def op_name(self, o: fb.OperatorT, weights: int | None = None) -> str:
        if weights is not None:
            w = self.tname(weights)
            if w.endswith("/weights"):  # what patchcam's exporter writes: keep round trips exact
                return w.removesuffix("/weights")
        return self.tname(int(o.outputs[0]))

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
        if len(scales) == 1:
            return np.repeat(scales, channels).astype(np.float32)
        if len(scales) != channels or qdim != axis:
            raise TFLiteImportError(f"{where}: weights '{self.tname(index)}' have "
                                    f"{len(scales)} scales on axis {qdim}; expected 1, or "
                                    f"{channels} on axis {axis}")
        return scales.astype(np.float32)

    def bias(self, i: int, o: fb.OperatorT, channels: int) -> np.ndarray:
        if len(o.inputs) < 3 or int(o.inputs[2]) < 0:
            return np.zeros(channels, np.int32)
        index = int(o.inputs[2])
        if self.t(index).type != fb.TensorType.INT32:
            raise TFLiteImportError(f"{self.where(i)}: bias '{self.tname(index)}' is "
                                    f"{_TYPE_NAMES.get(self.t(index).type)}; need INT32")
        b = self.const(index, self.where(i)).reshape(-1)
        if b.shape != (channels,):
            raise TFLiteImportError(f"{self.where(i)}: bias has {b.size} values, need "
                                    f"{channels}")
        _, _, qdim = self.quant(index)
        if qdim >= len(self.shape(index)) and "bias quantized_dimension" not in str(
                self.meta["quirks"]):
            self.meta["quirks"].append(
                f"bias quantized_dimension {qdim} on a 1-D tensor (e.g. '{self.tname(index)}', "
                "old TOCO per-channel metadata that LiteRT rejects; biases' quantisation is "
                "unused, as in TFLite Micro)")
        return b.astype(np.int32)

    def spatial(self, i: int, x: int, kernel: tuple[int, int], stride: tuple[int, int],
                padding: int) -> tuple[str, tuple[int, int, int, int], tuple[int, int, int]]:
        """(IR input, explicit pads, padded HWC input shape) of a conv or pool; a PAD that
        feeds a conv is folded here."""
        where = self.where(i)
        extra = (0, 0, 0, 0)
        if x in self.pads:
            p = self.pads[x]
            name, extra = p.source, p.pads
        else:
            name = self.input_of(x, where)
        h, w, c = self.tensors[name].shape
        hp, wp = h + extra[0] + extra[2], w + extra[1] + extra[3]
        if padding == fb.Padding.SAME:
            own = same_pads(hp, wp, kernel, stride)
        elif padding == fb.Padding.VALID:
            own = (0, 0, 0, 0)
        else:
            raise TFLiteImportError(f"{where}: unknown padding {padding}")
        pads = tuple(a + b for a, b in zip(own, extra, strict=True))
        return name, pads, (h, w, c)


def import_tflite(source: str | Path | bytes, name: str | None = None) -> Graph:
    """Read a `.tflite` (path or bytes) into a checked int8 graph; raise TFLiteImportError
    naming the op (index and builtin name) that cannot be imported exactly."""
    if isinstance(source, bytes | bytearray | memoryview):
        data, label = bytes(source), "<bytes>"
    else:
        p = Path(source)
        if not p.is_file():
            raise TFLiteImportError(f"{p}: no such .tflite file")
        data, label = p.read_bytes(), str(p)
    im = _Importer(data, label)
    operators = list(im.sub.operators or [])
    unsupported = [f"op {i} ({k})" for i, k in enumerate(im.kinds) if k not in SUPPORTED]
    if unsupported:
        raise TFLiteImportError(f"{label}: unsupported op(s): {', '.join(unsupported)}; "
                                f"supported: {', '.join(SUPPORTED)}")

    # A final SOFTMAX is dropped: the graph ends at its input (see the module docstring).
    out_index = int(im.sub.outputs[0])
    while operators and im.kinds[len(operators) - 1] == "SOFTMAX" and \
            int(operators[-1].outputs[0]) == out_index:
        i = len(operators) - 1
        sm = operators.pop()
        out_index = int(sm.inputs[0])
        im.meta["dropped"].append(f"op {i} (SOFTMAX, beta "
                                  f"{getattr(sm.builtinOptions, 'beta', 1.0):g}): the output is "
                                  "its input, the logits; softmax keeps their order")

    # The input, through a leading NCHW -> NHWC TRANSPOSE if there is one.
    in_index = int(im.sub.inputs[0])
    in_shape = im.shape(in_index)
    uses = im.consumers.get(in_index, [])
    first = uses[0] if len(uses) == 1 else None
    if first is not None and im.kinds[first] == "TRANSPOSE":
        o = operators[first]
        perm = im.const(int(o.inputs[1]), im.where(first)).reshape(-1).tolist()
        t_out = int(o.outputs[0])
        if len(in_shape) != 4 or perm != [0, 2, 3, 1] or \
                im.activation_tensor(t_out, im.where(first)) != \
                im.activation_tensor(in_index, im.where(first)):
            raise TFLiteImportError(f"{im.where(first)}: only an NCHW -> NHWC transpose "
                                    f"(perm [0, 2, 3, 1]) of a 4-D input that keeps its "
                                    f"quantisation can be folded; got perm {perm}")
        n, c, h, w = in_shape
        im.new_tensor(t_out, (h, w, c), im.where(first))
        im.names[in_index] = im.names[t_out]
        im.meta["input_layout"] = (f"HWC {h}x{w}x{c}: the .tflite input is NCHW "
                                   f"{list(in_shape)}; its leading TRANSPOSE (op {first}) is "
                                   "folded, so feed H x W x C")
        skip = {first}
    else:
        if len(in_shape) == 4 and in_shape[0] == 1:
            shape = in_shape[1:]
        elif len(in_shape) == 2 and in_shape[0] == 1:
            shape = in_shape[1:]
        else:
            raise TFLiteImportError(f"{label}: input shape {list(in_shape)}; need 1xHxWxC "
                                    "(or NCHW with a leading TRANSPOSE)")
        im.new_tensor(in_index, shape, f"{label}: input")
        im.meta["input_layout"] = "HWC"
        skip = set()

    for i, o in enumerate(operators):
        if i not in skip:
            _import_op(im, i, o, out_index)

    if out_index in im.pads or out_index not in im.names:
        raise TFLiteImportError(f"{label}: the output '{im.tname(out_index)}' is not computed")
    im.meta["tflite_output_tensor"] = out_index  # the TFLite tensor the IR output is
    g = Graph(name or _text(im.sub.name) or Path(label).stem, im.tensors, im.ops,
              im.names[in_index], im.names[out_index], im.meta)
    # Tensors that only aliased (RESHAPE) or were folded away are not in the IR.
    used = {g.input, g.output} | {n for op in g.ops for n in (*op.inputs, op.output)}
    g.tensors = {k: v for k, v in g.tensors.items() if k in used}
    try:
        return g.check()
    except IRError as e:
        raise TFLiteImportError(f"{label}: the imported graph is not valid: {e}") from None


def _import_op(im: _Importer, i: int, o: fb.OperatorT, out_index: int) -> None:
    kind, where, opts = im.kinds[i], im.where(i), o.builtinOptions
    x = int(o.inputs[0])
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        if (getattr(opts, "dilationHFactor", 1), getattr(opts, "dilationWFactor", 1)) != (1, 1):
            raise TFLiteImportError(f"{where}: dilated convolutions are not supported")
        wi = int(o.inputs[1])
        wt = im.const(wi, where).astype(np.int8)
        stride = (int(opts.strideH), int(opts.strideW))
        kernel = (wt.shape[1], wt.shape[2])
        name, pads, (h, w, c) = im.spatial(i, x, kernel, stride, opts.padding)
        if kind == "CONV_2D":
            if wt.shape[3] != c:
                raise TFLiteImportError(f"{where}: weights {list(wt.shape)} for {c} input "
                                        "channels (grouped convolutions are not supported)")
            ir_kind, weights, scales = "conv2d", wt, im.weights(i, wi, wt.shape[0], 0)
            cout = wt.shape[0]
        else:
            cout = wt.shape[3]
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
        ho = out_size(h, kernel[0], stride[0], pads[0], pads[2])
        wo = out_size(w, kernel[1], stride[1], pads[1], pads[3])
        out = im.output_of(i, o, (ho, wo, cout))
        im.ops.append(Op(ir_kind, im.op_name(o, wi), [name], out, kernel, stride, pads,
                         im.activation(i, opts), weights, scales, im.bias(i, o, cout)))
    elif kind == "FULLY_CONNECTED":
        if getattr(opts, "weightsFormat", 0) != fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
            raise TFLiteImportError(f"{where}: shuffled FC weights are not supported")
        name = im.input_of(x, where)
        wi = int(o.inputs[1])
        wt = im.const(wi, where).astype(np.int8)
        n, k = wt.shape
        if im.tensors[name].size != k:
            raise TFLiteImportError(f"{where}: input of {im.tensors[name].size} values for "
                                    f"weights {list(wt.shape)} (batch > 1 is not supported)")
        scales = im.weights(i, wi, n, 0)
        if np.any(scales != scales[0]):
            raise TFLiteImportError(f"{where}: per-channel FULLY_CONNECTED weights are not "
                                    "supported (the IR's fully_connected has one scale)")
        out = im.output_of(i, o, (n,))
        im.ops.append(Op("fully_connected", im.op_name(o, wi), [name], out,
                         activation=im.activation(i, opts), weights=wt,
                         weight_scales=scales[:1].copy(), bias=im.bias(i, o, n)))
    elif kind == "ADD":
        a, b = (im.input_of(int(t), where) for t in o.inputs[:2])
        if im.tensors[a].shape != im.tensors[b].shape:
            raise TFLiteImportError(f"{where}: broadcasting ADD ({im.tensors[a].shape} + "
                                    f"{im.tensors[b].shape}) is not supported")
        out = im.output_of(i, o, im.tensors[a].shape)
        im.ops.append(Op("add", im.op_name(o), [a, b], out, activation=im.activation(i, opts)))
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        kernel = (int(opts.filterHeight), int(opts.filterWidth))
        stride = (int(opts.strideH), int(opts.strideW))
        name, pads, (h, w, c) = im.spatial(i, x, kernel, stride, opts.padding)
        ho = out_size(h, kernel[0], stride[0], pads[0], pads[2])
        wo = out_size(w, kernel[1], stride[1], pads[1], pads[3])
        out = im.output_of(i, o, (ho, wo, c))
        a, b = im.tensors[name], im.tensors[out]
        if (a.scale, a.zero_point) != (b.scale, b.zero_point):
            raise TFLiteImportError(f"{where}: pooling changes the quantisation ({a.scale:.6g}, "
                                    f"{a.zero_point}) -> ({b.scale:.6g}, {b.zero_point}); the "
                                    "IR's pooling keeps it, as TFLite requires")
        ir_kind = "avg_pool2d" if kind == "AVERAGE_POOL_2D" else "max_pool2d"
        im.ops.append(Op(ir_kind, im.op_name(o), [name], out, kernel, stride, pads,
                         im.activation(i, opts)))
    elif kind == "MEAN":
        name = im.input_of(x, where)
        shape = im.tensors[name].shape
        axes = sorted({int(a) % 4 for a in im.const(int(o.inputs[1]), where).reshape(-1)})
        if len(shape) != 3 or len(im.shape(x)) != 4 or axes != [1, 2]:
            raise TFLiteImportError(f"{where}: only MEAN over H and W of a 1xHxWxC tensor is "
                                    f"supported (axes {axes})")
        out = im.output_of(i, o, (1, 1, shape[2]))
        im.ops.append(Op("mean", im.op_name(o), [name], out, (shape[0], shape[1])))
    elif kind == "PAD":
        _pad(im, i, o, out_index)
    elif kind == "RESHAPE":
        _reshape(im, i, o, out_index)
    elif kind == "TRANSPOSE":
        raise TFLiteImportError(f"{where}: only a leading NCHW -> NHWC TRANSPOSE of the model "
                                "input is supported")
    elif kind == "SOFTMAX":
        raise TFLiteImportError(f"{where}: SOFTMAX is only supported as the last op (the "
                                "graph then ends at the logits)")
    else:  # unreachable: filtered by SUPPORTED
        raise TFLiteImportError(f"{where}: not supported; supported: {', '.join(SUPPORTED)}")


def _pad(im: _Importer, i: int, o: fb.OperatorT, out_index: int) -> None:
    where, x, y = im.where(i), int(o.inputs[0]), int(o.outputs[0])
    name = im.input_of(x, where)
    p = im.const(int(o.inputs[1]), where).reshape(-1, 2)
    if len(o.inputs) > 2 and int(o.inputs[2]) >= 0:
        raise TFLiteImportError(f"{where}: PAD with a constant value is not supported")
    if p.shape != (4, 2) or np.any(p[0] != 0) or np.any(p[3] != 0) or np.any(p < 0):
        raise TFLiteImportError(f"{where}: only PAD of H and W can be folded, got "
                                f"{p.tolist()}")
    if im.activation_tensor(x, where) != im.activation_tensor(y, where):
        raise TFLiteImportError(f"{where}: PAD changes the quantisation; cannot fold it")
    readers = im.consumers.get(y, [])
    if y == out_index or not readers or \
            any(im.kinds[j] not in ("CONV_2D", "DEPTHWISE_CONV_2D") for j in readers):
        raise TFLiteImportError(f"{where}: a PAD can only be folded into the convs that read "
                                f"it; this one feeds {[im.kinds[j] for j in readers]}")
    # TFLite pads int8 with the output zero point = the input zero point (checked above):
    # exactly the value a conv's implicit padding reads (0 after the input offset).
    im.pads[y] = _Pad(name, (int(p[1, 0]), int(p[2, 0]), int(p[1, 1]), int(p[2, 1])))


def _reshape(im: _Importer, i: int, o: fb.OperatorT, out_index: int) -> None:
    where, x, y = im.where(i), int(o.inputs[0]), int(o.outputs[0])
    name = im.input_of(x, where)
    if im.activation_tensor(x, where) != im.activation_tensor(y, where):
        raise TFLiteImportError(f"{where}: RESHAPE changes the quantisation; not supported")
    old = tuple(d for d in im.tensors[name].shape if d != 1)
    new = tuple(d for d in im.shape(y) if d != 1)
    readers = [im.kinds[j] for j in im.consumers.get(y, [])]
    if old != new and not (y == out_index or all(k == "FULLY_CONNECTED" for k in readers)):
        raise TFLiteImportError(f"{where}: RESHAPE {list(im.shape(x))} -> {list(im.shape(y))} "
                                f"feeding {readers} is not supported (only reshapes that "
                                "drop 1s, or flatten for FULLY_CONNECTED / the output)")
    im.names[y] = name


def _text(s: bytes | str | None) -> str:
    if s is None:
        return ""
    return s.decode(errors="replace") if isinstance(s, bytes) else str(s)


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
