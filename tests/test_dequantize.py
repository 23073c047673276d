"""int8 graph -> float PyTorch network (patchcam.compiler.dequantize): every layer computes what the
int8 op computes, up to the int8 rounding; a real imported model keeps its decisions."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from patchcam.compiler import dequantize, models, quantize, randgraph, reference, zoo
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.ir import Graph, Op
from patchcam.compiler.qparams import AddParams, MacParams, MeanParams, op_params

# an int8 op rounds to the nearest step: half a step of error, plus a few hundredths for the
# fixed-point multiplier and float32, plus TFLite's double rounding (`_step_bound`); a wrong
# weight, bias, padding or activation costs whole steps
SLACK = 0.02
MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
PERSON_DETECT = MODELS / "person_detect.tflite"
MOBILENET_V2 = MODELS / "mobilenet_v2_quantized_1x3x224x224.tflite"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _deq(g: Graph, name: str, q: np.ndarray) -> torch.Tensor:
    t = g.tensors[name]
    d = torch.from_numpy((q.astype(np.float32) - t.zero_point) * t.scale)
    return d.permute(2, 0, 1)[None] if d.dim() == 3 else d.reshape(1, -1)


def _pixels(q: np.ndarray) -> torch.Tensor:
    """The int8 input q = p - 128 as the float network's x = p / 255."""
    x = torch.from_numpy((q.astype(np.float32) + 128) / 255)
    return x.permute(2, 0, 1)[None] if x.dim() == 3 else x.reshape(1, -1)


def _inside(g: Graph, i: int) -> np.ndarray:
    """(Ho, Wo) mask of op i's outputs whose window lies inside its input (no padding)."""
    op = g.ops[i]
    (h, w, _), (ho, wo, _) = g.tensors[op.inputs[0]].shape, g.tensors[op.output].shape
    t, left = op.pads[:2]

    def axis(n: int, no: int, k: int, s: int, before: int) -> np.ndarray:
        start = np.arange(no) * s - before
        return (start >= 0) & (start + k <= n)
    return axis(h, ho, op.kernel[0], op.stride[0], t)[:, None] & \
        axis(w, wo, op.kernel[1], op.stride[1], left)[None, :]


def _step_bound(g: Graph, op: Op) -> float:
    """The most a correct float layer can differ from its int8 op, in output steps. TFLite's
    high multiply rounds to 2^-s of an output step before its rounding right shift by s, which
    adds up to 2^-(s+1) to the final half step (MobileNetV2 has s = 4: 1/32 of a step)."""
    p = op_params(g, op)
    shift = {MacParams: lambda: int(np.max(p.shifts)), MeanParams: lambda: p.shift,
             AddParams: lambda: p.output_shift}.get(type(p), lambda: 0)()
    return 0.5 + (0.5 * 2.0 ** shift if shift < 0 else 0.0) + SLACK


def _assert_layers_match(g: Graph, net: dequantize.GraphNet, x_int8: np.ndarray,
                         allq: dict[str, np.ndarray] | None = None, what: object = "") -> None:
    errs = _per_layer_errors(g, net, x_int8, allq)
    assert len(errs) == len(g.ops)
    bounds = [_step_bound(g, op) for op in g.ops]
    bad = [(i, op.kind, op.pads, round(e, 3), round(bd, 3))
           for i, (op, e, bd) in enumerate(zip(g.ops, errs, bounds, strict=True)) if e > bd]
    assert not bad, (what, "op, kind, pads, error, bound:", bad)


def _per_layer_errors(g: Graph, net: dequantize.GraphNet, x_int8: np.ndarray,
                      allq: dict[str, np.ndarray] | None = None) -> list[float]:
    """Each float layer fed the int8 op's own (dequantised) input: its error in output steps,
    after clamping to the int8 range (int8 saturates, float does not). The layer that holds the
    folded input map reads the pixels x = p / 255 and is compared only where its window lies
    inside the image (it pads x = 0, TFLite the float input 0; see dequantize)."""
    allq = allq if allq is not None else reference.run_all(g, x_int8)
    errs = []
    with torch.no_grad():
        for i, (kind, key, inputs, output) in enumerate(net.steps):
            folded = key == net.folded
            a = _pixels(allq[inputs[0]]) if folded else _deq(g, inputs[0], allq[inputs[0]])
            if kind == "add":
                y = net.layers[key](a + _deq(g, inputs[1], allq[inputs[1]])) \
                    if key in net.layers else a + _deq(g, inputs[1], allq[inputs[1]])
            elif kind == "fully_connected":
                y = net.layers[key](torch.flatten(a, 1))
            elif kind == "mean":
                y = a.mean((2, 3))
            else:
                y = net.layers[key](a)
            t = g.tensors[output]
            lo, hi = (-128 - t.zero_point) * t.scale, (127 - t.zero_point) * t.scale
            want = _deq(g, output, allq[output]).reshape(y.shape)
            err = (y.clamp(lo, hi) - want).abs()
            if folded and kind != "fully_connected":
                err = err[..., torch.from_numpy(_inside(g, i))]
            errs.append(float(err.max()) / t.scale)
    return errs


@pytest.mark.parametrize("name", ["mcu-s-96", "mbv2-0.35-144"])
def test_every_layer_matches_its_int8_op(name):
    g = models.preset_graph(name)
    net = dequantize.to_torch(g)
    h, w, c = g.tensors[g.input].shape
    x = np.random.default_rng(0).integers(-128, 128, (h, w, c)).astype(np.int8)
    _assert_layers_match(g, net, x, what=name)
    # and the whole float network reads pixels p / 255 like every patchcam model
    with torch.no_grad():
        y = net(torch.from_numpy(x.astype(np.float32) + 128).permute(2, 0, 1)[None] / 255)
    assert y.shape == (1, g.tensors[g.output].size)


# ---- explicit padding: asymmetric, stride 2, pooling -------------------------------------
def _padded_graph(seed: int) -> Graph:
    """A random chain of convs, depthwise convs and pools, each with its own explicit pads
    (top, left, bottom, right), each below the kernel size, so asymmetric, symmetric, SAME
    and VALID all occur, at stride 1 and 2, with square and oblong kernels."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"padded{seed}", (int(rng.integers(8, 20)), int(rng.integers(8, 20)),
                                       int(rng.integers(1, 5))),
                     float(rng.uniform(0.01, 0.05)), int(rng.integers(-20, 20)))
    x = b.input
    for _ in range(5):
        t = b.tensors[x]
        hh, ww, cc = t.shape
        kind = str(rng.choice(["conv", "dw", "maxpool", "avgpool"]))
        kh, kw = (int(rng.choice([k for k in (1, 2, 3, 5) if k <= n])) for n in (hh, ww))
        if kind == "dw" or rng.random() < 0.6:
            kw = kh = min(kh, kw)
        stride = int(rng.choice([1, 2]))
        mode = str(rng.choice(["same", "valid", "random", "random", "random"]))
        pads = mode if mode != "random" else \
            tuple(int(rng.integers(0, k)) for k in (kh, kw, kh, kw))
        zp = int(rng.integers(-30, 30))
        if kind == "conv":
            cout = int(rng.integers(1, 9))
            wts, ws, bias = randgraph._mac_args(rng, (cout, kh, kw, cc), cout, t.scale)
            s = randgraph._out_scale(rng, t.scale, float(ws.mean()), kh * kw * cc)
            x = b.conv2d(x, wts, ws, bias, s, zp, stride, pads, randgraph._act(rng))
        elif kind == "dw":
            wts, ws, bias = randgraph._mac_args(rng, (kh, kw, cc), cc, t.scale)
            s = randgraph._out_scale(rng, t.scale, float(ws.mean()), kh * kw)
            x = b.depthwise_conv2d(x, wts, ws, bias, s, zp, stride, pads, randgraph._act(rng))
        else:
            x = b.pool2d(kind[:3], x, (kh, kw), stride, pads,
                         randgraph._act(rng) if kind == "maxpool" else "none")
    x = b.global_avg_pool(x)
    t = b.tensors[x]
    n = int(rng.integers(2, 6))
    wts, ws, _ = randgraph._mac_args(rng, (n, t.size), 1, t.scale)
    bias = rng.integers(-3000, 3000, size=n).astype(np.int32)
    x = b.fully_connected(x, wts, float(ws[0]), bias,
                          randgraph._out_scale(rng, t.scale, float(ws[0]), t.size), 0)
    return b.finish(x, {"source": "padded", "seed": seed})


PADDED_SEEDS = range(24)


def _first_module(net: dequantize.GraphNet, key: str) -> nn.Module:
    m = net.layers[key]
    return m[0] if isinstance(m, nn.Sequential) else m


def _padding_kind(m: nn.Module) -> str:
    """How a layer pads: its class, "+pad" for PyTorch's own (symmetric) padding."""
    padded = not isinstance(m, zoo.SameConv2d) and getattr(m, "padding", 0) not in (0, (0, 0))
    return type(m).__name__ + ("+pad" if padded else "")


def test_random_graphs_with_explicit_padding_match_layer_by_layer():
    seen: set[str] = set()
    asymmetric_stride2 = 0
    for seed in PADDED_SEEDS:
        g = _padded_graph(seed)
        x = randgraph.random_input(g, seed)
        allq = reference.run_all(g, x)
        for fold in (True, False):
            net = dequantize.to_torch(g, fold_input=fold)
            _assert_layers_match(g, net, x, allq, (seed, fold, g.summary()))
        for i, op in enumerate(g.ops[:-2]):  # the global pool and FC are not padded
            m = _first_module(net, f"op{i}")
            seen.add(_padding_kind(m))
            explicit = isinstance(m, dequantize.PaddedConv2d | dequantize.PaddedPool2d)
            asymmetric_stride2 += explicit and op.stride == (2, 2)
    # every way of padding occurred: none, SAME, symmetric, and any other (asymmetric)
    assert {"Conv2d", "SameConv2d", "Conv2d+pad", "PaddedConv2d", "MaxPool2d", "AvgPool2d",
            "MaxPool2d+pad", "AvgPool2d+pad", "PaddedPool2d"} <= seen, seen
    assert asymmetric_stride2 >= 5


def test_unfolded_input_matches_the_int8_model_end_to_end():
    """fold_input=False: the border is exact too, so the whole float network tracks the
    int8 one (rounding differences only, no border that pads differently)."""
    for seed in range(6):
        g = _padded_graph(seed)
        net = dequantize.to_torch(g, fold_input=False)
        assert isinstance(net.input_map, dequantize.InputAffine) and net.folded is None
        x = randgraph.random_input(g, seed)
        out = g.tensors[g.output]
        want = (reference.run(g, x).astype(np.float32) - out.zero_point) * out.scale
        with torch.no_grad():
            y = net(_pixels(x)).numpy().ravel()
        assert np.abs(y - want).max() / out.scale <= 2, seed


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 6, 7])
def test_random_graphs_of_every_op_convert(seed):
    """randgraph covers every op kind, SAME pooling and pools that read the input first."""
    g = randgraph.random_graph(seed, mean_head=seed % 2 == 1)
    x = randgraph.random_input(g, seed)
    allq = reference.run_all(g, x)
    for fold in (True, False):
        net = dequantize.to_torch(g, fold_input=fold)
        _assert_layers_match(g, net, x, allq, (seed, fold))
        with torch.no_grad():
            assert net(_pixels(x)).shape == (1, g.tensors[g.output].size)


def test_symmetric_stride2_padding_is_a_plain_conv_that_requantises():
    """MobileNetV2 from PyTorch: stride 2, pads (1, 1, 1, 1) on an even size (the bottom row
    and right column are never read): nn.Conv2d(padding=1), which quantize folds again."""
    rng = np.random.default_rng(3)
    b = GraphBuilder("s2", (16, 16, 3), zoo.INPUT_SCALE, zoo.INPUT_ZERO_POINT)
    wts, ws, bias = randgraph._mac_args(rng, (8, 3, 3, 3), 8, zoo.INPUT_SCALE)
    x = b.conv2d(b.input, wts, ws, bias, 0.05, 0, 2, (1, 1, 1, 1), "relu6")
    wts, ws, bias = randgraph._mac_args(rng, (3, 3, 8), 8, 0.05)
    x = b.depthwise_conv2d(x, wts, ws, bias, 0.05, 0, 2, (1, 1, 1, 1), "relu6")
    g = b.finish(b.global_avg_pool(x))
    net = dequantize.to_torch(g)
    for key in ("op0", "op1"):
        conv = _first_module(net, key)
        assert type(conv) is nn.Conv2d and conv.padding == (1, 1) and conv.stride == (2, 2)
    xs = torch.rand(2, 3, 16, 16)
    fused = quantize.fuse(net, (3, 16, 16))
    assert [op.pads for op in fused.ops[:2]] == [(1, 1, 0, 0), (1, 1, 0, 0)]
    with torch.no_grad():
        torch.testing.assert_close(fused(xs).flatten(1), net(xs), atol=1e-5, rtol=1e-5)


def test_asymmetric_padding_is_named_when_requantising():
    rng = np.random.default_rng(4)
    b = GraphBuilder("asym", (10, 11, 2), zoo.INPUT_SCALE, zoo.INPUT_ZERO_POINT)
    wts, ws, bias = randgraph._mac_args(rng, (4, 3, 3, 2), 4, zoo.INPUT_SCALE)
    x = b.conv2d(b.input, wts, ws, bias, 0.05, 0, 2, (2, 0, 1, 2))
    g = b.finish(b.global_avg_pool(x))
    net = dequantize.to_torch(g)
    conv = _first_module(net, "op0")
    assert isinstance(conv, dequantize.PaddedConv2d) and conv.pads == (2, 0, 1, 2)
    assert "pads=(2, 0, 1, 2)" in repr(conv)
    with pytest.raises(quantize.ConversionError, match="pad"):
        quantize.fuse(net, (2, 10, 11))


# ---- real models -------------------------------------------------------------------------
def _gray(name: str) -> np.ndarray:
    im = getattr(skimage.data, name)()
    if im.ndim == 3:
        im = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)
    return cv2.resize(im, (96, 96), interpolation=cv2.INTER_AREA)


@pytest.mark.skipif(not PERSON_DETECT.is_file(), reason="../shared/models not present")
def test_imported_person_detect_float_and_requantised():
    from patchcam.compiler.tflite_import import import_tflite
    g = import_tflite(PERSON_DETECT)
    net = dequantize.to_torch(g)
    a, b = dequantize.input_affine(g)
    assert a == pytest.approx(2.0, rel=1e-5) and b == pytest.approx(-127 / 127.5, rel=1e-5)
    images = [_gray(n) for n in ("astronaut", "camera", "chelsea", "coffee", "rocket",
                                 "immunohistochemistry", "hubble_deep_field")]
    x8 = [(im.astype(np.int16) - 128).astype(np.int8)[..., None] for im in images]
    # every layer is the int8 op up to rounding (the first one inside the image: its border
    # pixels see a different padding value); with the input map unfolded, the border too
    allq = reference.run_all(g, x8[0])
    assert net.folded == "op0"
    _assert_layers_match(g, net, x8[0], allq)
    _assert_layers_match(g, dequantize.to_torch(g, fold_input=False), x8[0], allq)
    batch = torch.from_numpy(np.stack(images)).float()[:, None] / 255
    with torch.no_grad():
        logits = net(batch).numpy()
    int8 = np.array([reference.run(g, x).ravel() for x in x8]).astype(np.float32)
    agree = (logits.argmax(1) == int8.argmax(1)).mean()
    assert agree >= 6 / 7, (logits, int8)
    # quantised again by patchcam (p - 128 at scale 1/255): the same decisions
    g2 = quantize.quantize(net, (1, 96, 96), [batch], "person_detect-requantised")
    q2 = np.array([reference.run(g2, x).ravel() for x in x8])
    assert (q2.argmax(1) == logits.argmax(1)).mean() >= 6 / 7


@pytest.mark.skipif(not MOBILENET_V2.is_file(), reason="../shared/models not present")
def test_imported_mobilenet_v2_teacher_layer_by_layer():
    """MobileNetV2 (exported from PyTorch, PAD folded into its stride-2 convs as (1, 1, 1, 1))
    converts; on real photos every layer is its int8 op up to rounding and the top-1 class
    is the int8 model's. Its input is ImageNet-normalised per channel: the float network
    reads x = (r - b) / a for the normalised image r (dequantize.input_affine)."""
    from patchcam.compiler.tflite_import import image_to_input, import_tflite
    g = import_tflite(MOBILENET_V2)
    net, exact = dequantize.to_torch(g), dequantize.to_torch(g, fold_input=False)
    stride2 = [i for i, op in enumerate(g.ops) if op.stride == (2, 2)]
    assert len(stride2) == 5 and all(g.ops[i].pads == (1, 1, 1, 1) for i in stride2)
    assert all(type(_first_module(net, f"op{i}")) is nn.Conv2d for i in stride2)
    a, b = dequantize.input_affine(g)
    for name, want in (("chelsea", {281, 282, 285}), ("coffee", {967})):
        x = image_to_input(g, getattr(skimage.data, name)(), IMAGENET_MEAN, IMAGENET_STD)
        allq = reference.run_all(g, x)
        _assert_layers_match(g, net, x, allq, name)
        _assert_layers_match(g, exact, x, allq, name)
        r = _deq(g, g.input, x)
        with torch.no_grad():
            top = [int(m((r - b) / a).argmax()) for m in (net, exact)]
        assert top == [int(allq[g.output].argmax())] * 2 and top[0] in want, (name, top)
    # the folded teacher is made of layers quantize folds again
    fused = quantize.fuse(net, (3, 224, 224))
    assert len(fused.ops) == len(g.ops)


def test_unsupported_op_is_named():
    g = models.preset_graph("mcu-s-96")
    g.ops[3].kind = "resize_bilinear"
    with pytest.raises(dequantize.DequantizeError, match=r"op 3 \(resize_bilinear"):
        dequantize.to_torch(g)
