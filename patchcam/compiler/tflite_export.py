"""Write an int8 graph as a `.tflite` flatbuffer (schema v3) of TFLite builtin int8 ops.

The file runs on TFLite Micro / LiteRT unchanged, which makes them an independent bit-exact
check of the reference executor (docs/design.md §4.1) and lets users compare against TFLite Micro.
Tensors become NHWC with batch 1; weights keep their IR layout (a depthwise kernel gains a
leading 1), per-channel scales go on axis 0 (conv) or 3 (depthwise), biases are int32 with
scale input_scale * weight_scale[c] and zero point 0. Explicit pads that are neither TFLite's
'SAME' nor 'VALID' become a PAD op (pad value = the input zero point, as the reference pads
after subtracting it) before a 'VALID' conv; pools cannot be rewritten that way and raise.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

from patchcam.compiler.ir import Graph, Op, same_pads

# IR op kind -> (builtin operator, op version TFLite's converter gives the int8 kernel)
_OPERATORS = {
    "conv2d": (fb.BuiltinOperator.CONV_2D, 3),
    "depthwise_conv2d": (fb.BuiltinOperator.DEPTHWISE_CONV_2D, 3),
    "fully_connected": (fb.BuiltinOperator.FULLY_CONNECTED, 4),
    "add": (fb.BuiltinOperator.ADD, 2),
    "avg_pool2d": (fb.BuiltinOperator.AVERAGE_POOL_2D, 2),
    "max_pool2d": (fb.BuiltinOperator.MAX_POOL_2D, 2),
    "mean": (fb.BuiltinOperator.MEAN, 2),
}
_PAD = (fb.BuiltinOperator.PAD, 3)
SUPPORTED = tuple(_OPERATORS)
_ACTIVATIONS = {"none": fb.ActivationFunctionType.NONE, "relu": fb.ActivationFunctionType.RELU,
                "relu6": fb.ActivationFunctionType.RELU6}


class _AlignedBuffer(fb.BufferT):
    """A buffer whose data starts on a 16-byte boundary, like the TFLite converter's (kernels
    read int32 biases and weights in place, and some MCUs fault on unaligned loads)."""

    def Pack(self, builder: flatbuffers.Builder) -> int:  # overrides the generated packer
        raw = self.data.tobytes()
        builder.StartVector(1, len(raw), 16)
        builder.head -= len(raw)
        builder.Bytes[builder.head:builder.head + len(raw)] = raw
        data = builder.EndVector()
        fb.BufferStart(builder)
        fb.BufferAddData(builder, data)
        return fb.BufferEnd(builder)


class _Writer:
    """Collects tensors, buffers, operator codes and operators of the one subgraph."""

    def __init__(self, g: Graph):
        self.g = g
        self.tensors: list[fb.TensorT] = []
        self.buffers: list[fb.BufferT] = [fb.BufferT()]  # buffer 0: the empty sentinel
        self.codes: dict[tuple[int, int], int] = {}
        self.operators: list[fb.OperatorT] = []
        self.index: dict[str, int] = {}

    def tensor(self, name: str, shape: tuple[int, ...], dtype: int, scales: list[float],
               zero_points: list[int], axis: int = 0, data: np.ndarray | None = None) -> int:
        t = fb.TensorT()
        t.name, t.shape, t.type = name, [int(d) for d in shape], dtype
        if scales:
            t.quantization = fb.QuantizationParametersT()
            t.quantization.scale = [float(s) for s in scales]
            t.quantization.zeroPoint = [int(z) for z in zero_points]
            t.quantization.quantizedDimension = axis
        if data is not None:
            buf = _AlignedBuffer()
            buf.data = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<"))
            t.buffer = len(self.buffers)
            self.buffers.append(buf)
        self.tensors.append(t)
        return len(self.tensors) - 1

    def activation(self, name: str) -> int:
        """The int8 NHWC (or 1xN) tensor of an IR tensor, created on first use."""
        if name not in self.index:
            t = self.g.tensors[name]
            self.index[name] = self.tensor(name, (1, *t.shape), fb.TensorType.INT8,
                                           [t.scale], [t.zero_point])
        return self.index[name]

    def constants(self, op: Op, weights: np.ndarray, axis: int) -> list[int]:
        """Weight and bias tensors; bias scale = input scale * weight scale, zero point 0."""
        x_scale = np.float32(self.g.tensors[op.inputs[0]].scale)
        w_scales = op.weight_scales.astype(np.float32)
        n = len(w_scales)
        w = self.tensor(f"{op.name}/weights", weights.shape, fb.TensorType.INT8,
                        list(w_scales), [0] * n, axis, weights)
        b = self.tensor(f"{op.name}/bias", op.bias.shape, fb.TensorType.INT32,
                        [float(x_scale) * float(s) for s in w_scales], [0] * n, 0, op.bias)
        return [w, b]

    def operator(self, code: tuple[int, int], inputs: list[int], output: int,
                 options_type: int, options: object) -> None:
        o = fb.OperatorT()
        o.opcodeIndex = self.codes.setdefault(code, len(self.codes))
        o.inputs, o.outputs = inputs, [output]
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.operators.append(o)

    def padded_input(self, op: Op, pads: tuple[int, int, int, int]) -> int:
        """PAD the op's input explicitly; the padded tensor keeps its scale and zero point,
        so TFLite pads with the zero point, i.e. with 0 after the input offset."""
        x = self.g.tensors[op.inputs[0]]
        (h, w, c), (pt, pl, pb, pr) = x.shape, pads
        paddings = np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]], np.int32)
        p = self.tensor(f"{op.name}/paddings", (4, 2), fb.TensorType.INT32, [], [], 0, paddings)
        out = self.tensor(f"{op.name}/padded", (1, h + pt + pb, w + pl + pr, c),
                          fb.TensorType.INT8, [x.scale], [x.zero_point])
        self.operator(_PAD, [self.activation(op.inputs[0]), p], out, fb.BuiltinOptions.PadOptions,
                      fb.PadOptionsT())
        return out


def export_tflite(g: Graph) -> bytes:
    """The graph as `.tflite` bytes (file identifier "TFL3")."""
    g.check()
    w = _Writer(g)
    for op in g.ops:
        _export_op(w, op)
    sub = fb.SubGraphT()
    sub.name, sub.tensors, sub.operators = g.name, w.tensors, w.operators
    sub.inputs, sub.outputs = [w.activation(g.input)], [w.activation(g.output)]
    model = fb.ModelT()
    model.version, model.description = 3, f"patchcam {g.name}"
    model.subgraphs, model.buffers = [sub], w.buffers
    model.operatorCodes = []
    for code, version in w.codes:  # dicts keep insertion order = opcode index
        oc = fb.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), version
        model.operatorCodes.append(oc)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def save_tflite(g: Graph, path: str | Path) -> None:
    Path(path).write_bytes(export_tflite(g))


def _export_op(w: _Writer, op: Op) -> None:
    if op.kind not in _OPERATORS:
        raise ValueError(f"op '{op.name}': kind {op.kind!r} cannot be exported to .tflite; "
                         f"supported: {', '.join(SUPPORTED)}")
    code, act = _OPERATORS[op.kind], _ACTIVATIONS[op.activation]
    out = w.activation(op.output)
    if op.kind == "fully_connected":
        opts = fb.FullyConnectedOptionsT()
        opts.fusedActivationFunction, opts.keepNumDims = act, False
        ins = [w.activation(op.inputs[0]), *w.constants(op, op.weights, 0)]
        w.operator(code, ins, out, fb.BuiltinOptions.FullyConnectedOptions, opts)
        return
    if op.kind == "mean":  # over H and W, keeping them (1x1xC)
        axes = w.tensor(f"{op.name}/axes", (2,), fb.TensorType.INT32, [], [], 0,
                        np.array([1, 2], np.int32))
        opts = fb.ReducerOptionsT()
        opts.keepDims = True
        w.operator(code, [w.activation(op.inputs[0]), axes], out,
                   fb.BuiltinOptions.ReducerOptions, opts)
        return
    if op.kind == "add":
        opts = fb.AddOptionsT()
        opts.fusedActivationFunction = act
        ins = [w.activation(n) for n in op.inputs]
        w.operator(code, ins, out, fb.BuiltinOptions.AddOptions, opts)
        return

    h, wd, _ = w.g.tensors[op.inputs[0]].shape
    if op.pads == same_pads(h, wd, op.kernel, op.stride):
        padding, x = fb.Padding.SAME, w.activation(op.inputs[0])
    elif op.pads == (0, 0, 0, 0):
        padding, x = fb.Padding.VALID, w.activation(op.inputs[0])
    elif op.kind in ("conv2d", "depthwise_conv2d"):
        padding, x = fb.Padding.VALID, w.padded_input(op, op.pads)
    else:
        raise ValueError(f"op '{op.name}' ({op.kind}): pads {op.pads} are neither TFLite's "
                         "'SAME' nor 'VALID', which a .tflite pool cannot express")

    if op.kind == "conv2d":
        opts, opts_type = fb.Conv2DOptionsT(), fb.BuiltinOptions.Conv2DOptions
        ins = [x, *w.constants(op, op.weights, 0)]
    elif op.kind == "depthwise_conv2d":
        opts, opts_type = fb.DepthwiseConv2DOptionsT(), fb.BuiltinOptions.DepthwiseConv2DOptions
        opts.depthMultiplier = 1
        ins = [x, *w.constants(op, op.weights[np.newaxis], 3)]
    else:
        opts, opts_type = fb.Pool2DOptionsT(), fb.BuiltinOptions.Pool2DOptions
        opts.filterHeight, opts.filterWidth = op.kernel
        ins = [x]
    opts.padding, opts.fusedActivationFunction = padding, act
    opts.strideH, opts.strideW = op.stride
    w.operator(code, ins, out, opts_type, opts)
