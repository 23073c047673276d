""".tflite import: every supported op, the quirks of older files, exact round trips, and the
two real models we did not write, bit for bit against TensorFlow Lite Micro on real images in
the numpy reference, the C runtime on the host and the Cortex-M7 under QEMU (docs/design.md §5).

Small models are made with our exporter and edited by hand (ops the exporter never writes:
RESHAPE, SOFTMAX, TRANSPOSE, DEPTHWISE_CONV_2D with a multiplier, per-tensor weights, old
metadata). The real models are read from ../shared/models (never copied into the repository).
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

from patchcam.cli import main as cli_main
from patchcam.compiler import memplan, reference
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.ir import Graph
from patchcam.compiler.randgraph import random_graph, random_input
from patchcam.compiler.tflite_export import export_tflite
from patchcam.compiler.tflite_import import (
    SUPPORTED,
    TFLiteImportError,
    image_to_input,
    import_tflite,
)
from patchcam.compiler.tflm import run_tflm, run_tflm_tensors

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models"
DATASETS = ROOT.parent / "shared" / "datasets"
PERSON = MODELS / "person_detect.tflite"
MBV2 = MODELS / "mobilenet_v2_quantized_1x3x224x224.tflite"
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
SKIMAGE = ("astronaut", "camera", "chelsea", "coffee", "rocket")


def needs(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.is_file(), reason=f"{path} is absent (the real models "
                              "live outside the repository, in ../shared/models)")


# ---- hand-editing exported models ---------------------------------------------------------
def unpack(data: bytes) -> fb.ModelT:
    return fb.ModelT.InitFromPackedBuf(data, 0)


def pack(m: fb.ModelT) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def add_tensor(m: fb.ModelT, name: str, shape: list[int], dtype: int = fb.TensorType.INT8,
               quant: tuple[float, int] | None = None, data: np.ndarray | None = None) -> int:
    t = fb.TensorT()
    t.name, t.shape, t.type, t.buffer = name, shape, dtype, 0
    if quant is not None:
        t.quantization = fb.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [quant[0]], [quant[1]]
    if data is not None:
        buf = fb.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        t.buffer = len(m.buffers)
        m.buffers.append(buf)
    m.subgraphs[0].tensors.append(t)
    return len(m.subgraphs[0].tensors) - 1


def make_op(m: fb.ModelT, code: int, inputs: list[int], outputs: list[int],
            options_type: int = 0, options: object = None) -> fb.OperatorT:
    oc = fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    m.operatorCodes.append(oc)
    o = fb.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = len(m.operatorCodes) - 1, inputs, outputs
    o.builtinOptionsType, o.builtinOptions = options_type, options
    return o


def quant_of(m: fb.ModelT, index: int) -> tuple[float, int]:
    q = m.subgraphs[0].tensors[index].quantization
    return float(q.scale[0]), int(q.zeroPoint[0])


def conv_graph(c_in: int = 3, c_out: int = 4, seed: int = 0, pads="same",
               depthwise: bool = False) -> Graph:
    rng = np.random.default_rng(seed)
    b = GraphBuilder("small", (9, 10, c_in), 0.04, 5)
    if depthwise:
        w = rng.integers(-127, 128, (3, 3, c_in))
        y = b.depthwise_conv2d(b.input, w, rng.uniform(0.005, 0.02, c_in),
                               rng.integers(-900, 900, c_in), 0.08, -3, 2, pads, "relu6")
    else:
        w = rng.integers(-127, 128, (c_out, 3, 3, c_in))
        y = b.conv2d(b.input, w, rng.uniform(0.005, 0.02, c_out),
                     rng.integers(-900, 900, c_out), 0.12, -7, 2, pads, "relu")
    return b.finish(y)


def assert_matches_tflm(g: Graph, model: bytes, n: int = 3, nchw: bool = False,
                        tensor: int | None = None) -> None:
    """The reference on g == TFLite Micro on model (its output, or TFLite tensor `tensor`)."""
    for k in range(n):
        x = random_input(g, k)
        want = reference.run(g, x).reshape(-1)
        xt = x.transpose(2, 0, 1) if nchw else x
        if tensor is None:
            got = run_tflm(model, xt)
        else:
            got = run_tflm_tensors(model, xt[np.newaxis], [tensor])[0]
        np.testing.assert_array_equal(got.reshape(-1), want, err_msg=f"input {k}")


def graphs_equal(a: Graph, b: Graph) -> None:
    assert (a.name, a.input, a.output) == (b.name, b.input, b.output)
    assert a.tensors == b.tensors
    assert len(a.ops) == len(b.ops)
    for x, y in zip(a.ops, b.ops, strict=True):
        for f in ("kind", "name", "inputs", "output", "kernel", "stride", "pads", "activation"):
            assert getattr(x, f) == getattr(y, f), (x.name, f)
        for f in ("weights", "weight_scales", "bias"):
            u, v = getattr(x, f), getattr(y, f)
            assert (u is None) == (v is None), (x.name, f)
            if u is not None:
                assert u.dtype == v.dtype and np.array_equal(u, v), (x.name, f)


# ---- round trips and the ops our exporter writes -------------------------------------------
@pytest.mark.parametrize("seed", range(24))
def test_export_import_export_is_exact(seed: int) -> None:
    g = random_graph(seed)
    data = export_tflite(g)
    h = import_tflite(data)
    graphs_equal(g, h)
    assert export_tflite(h) == data


@pytest.mark.parametrize("pads, depthwise", [((1, 0, 2, 1), False), ((0, 2, 1, 0), True),
                                             ((2, 2, 2, 2), False)])
def test_pad_folds_into_the_conv(pads, depthwise) -> None:
    g = conv_graph(pads=pads, depthwise=depthwise)
    data = export_tflite(g)  # explicit pads that are not SAME/VALID: PAD + VALID conv
    kinds = [unpack(data).operatorCodes[o.opcodeIndex].builtinCode
             for o in unpack(data).subgraphs[0].operators]
    assert kinds[0] == fb.BuiltinOperator.PAD
    h = import_tflite(data)
    assert len(h.ops) == 1 and h.ops[0].pads == pads
    graphs_equal(g, h)
    assert_matches_tflm(h, data)


def test_pad_before_a_same_conv_adds_both_paddings() -> None:
    g = conv_graph(pads=(1, 1, 0, 0))  # PAD (1, 1, 0, 0) then a VALID conv
    m = unpack(export_tflite(g))
    conv = m.subgraphs[0].operators[1]
    conv.builtinOptions.padding = fb.Padding.SAME  # 10x11 padded input, SAME, stride 2
    m.subgraphs[0].tensors[conv.outputs[0]].shape = [1, 5, 6, 4]
    data = pack(m)
    h = import_tflite(data)
    # SAME on the 10x11 padded input pads (0, 1, 1, 1); PAD adds (1, 1, 0, 0).
    assert h.ops[0].pads == (1, 2, 1, 1)
    assert_matches_tflm(h, data)


def test_pad_with_another_value_is_refused() -> None:
    m = unpack(export_tflite(conv_graph(pads=(1, 1, 1, 1))))
    padded = m.subgraphs[0].operators[0].outputs[0]
    m.subgraphs[0].tensors[padded].quantization.zeroPoint = [0]  # pads with 0, not with 5
    with pytest.raises(TFLiteImportError, match=r"op 0 \(PAD\).*quantisation"):
        import_tflite(pack(m))


@pytest.mark.parametrize("keep_dims", [True, False])
def test_mean_keeps_tflites_arithmetic(keep_dims: bool) -> None:
    rng = np.random.default_rng(3)
    b = GraphBuilder("mean", (7, 5, 6), 0.05, -9)
    w = rng.integers(-127, 128, (12, 1, 1, 6))
    y = b.conv2d(b.input, w, rng.uniform(0.005, 0.02, 12), rng.integers(-900, 900, 12),
                 0.1, 4, activation="relu6")
    g = b.finish(b.mean(y, 0.037, -20))  # another scale and zero point: MEAN requantises
    data = export_tflite(g)
    if not keep_dims:
        m = unpack(data)
        sub = m.subgraphs[0]
        sub.operators[-1].builtinOptions.keepDims = False
        sub.tensors[sub.outputs[0]].shape = [1, 12]
        data = pack(m)
    h = import_tflite(data)
    assert [op.kind for op in h.ops] == ["conv2d", "mean"]
    assert h.tensors[h.output].shape == (1, 1, 12)
    assert_matches_tflm(h, data, n=6)


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_with_mean_match_tflm(seed: int) -> None:
    g = random_graph(seed, mean_head=True)
    data = export_tflite(g)
    h = import_tflite(data)
    graphs_equal(g, h)
    assert export_tflite(h) == data
    assert_matches_tflm(h, data, n=2)


def test_mean_is_not_an_average_pool() -> None:
    """Why `mean` is its own op: TFLite's MEAN rounds differently from AVERAGE_POOL_2D even
    when the scales agree, so mapping it onto avg_pool2d would not be bit-exact."""
    b = GraphBuilder("m", (7, 7, 64), 0.05, -9)
    g_mean = b.finish(b.mean(b.input, 0.05, -9))
    b = GraphBuilder("m", (7, 7, 64), 0.05, -9)
    g_pool = b.finish(b.global_avg_pool(b.input))
    x = random_input(g_mean, 1)
    assert not np.array_equal(reference.run(g_mean, x).reshape(-1),
                              reference.run(g_pool, x).reshape(-1))


def with_reshape_and_softmax(g: Graph) -> tuple[bytes, int]:
    """g's export with RESHAPE (1x1x1xC -> 1xC) + SOFTMAX appended; returns the bytes and
    the TFLite index of the logits tensor."""
    m = unpack(export_tflite(g))
    sub = m.subgraphs[0]
    y = sub.outputs[0]
    n = sub.tensors[y].shape[-1]
    shape = add_tensor(m, "shape", [2], fb.TensorType.INT32, data=np.array([1, n], np.int32))
    flat = add_tensor(m, "logits", [1, n], quant=quant_of(m, y))
    probs = add_tensor(m, "probs", [1, n], quant=(1 / 256, -128))
    opts = fb.ReshapeOptionsT()
    opts.newShape = [1, n]
    sub.operators.append(make_op(m, fb.BuiltinOperator.RESHAPE, [y, shape], [flat],
                                 fb.BuiltinOptions.ReshapeOptions, opts))
    sm = fb.SoftmaxOptionsT()
    sm.beta = 1.0
    sub.operators.append(make_op(m, fb.BuiltinOperator.SOFTMAX, [flat], [probs],
                                 fb.BuiltinOptions.SoftmaxOptions, sm))
    sub.outputs = [probs]
    return pack(m), flat


def test_reshape_aliases_and_a_final_softmax_is_dropped() -> None:
    rng = np.random.default_rng(5)
    b = GraphBuilder("head", (6, 6, 8), 0.03, 2)
    y = b.mean(b.input, 0.02, -1)
    w = rng.integers(-127, 128, (5, 1, 1, 8))
    g = b.finish(b.conv2d(y, w, rng.uniform(0.005, 0.02, 5), rng.integers(-900, 900, 5),
                          0.05, 3))
    data, logits = with_reshape_and_softmax(g)
    h = import_tflite(data)
    assert [op.kind for op in h.ops] == ["mean", "conv2d"]  # RESHAPE is no op
    assert h.meta["dropped"] and "SOFTMAX" in h.meta["dropped"][0]
    assert h.meta["tflite_output_tensor"] == logits
    assert_matches_tflm(h, data, n=4, tensor=logits)
    # Softmax keeps the order: TFLite Micro's top class is ours.
    for k in range(4):
        x = random_input(h, k)
        probs = run_tflm(data, x)
        ours = reference.run(h, x).reshape(-1)
        assert probs[np.argmax(ours)] == probs.max()


def test_reshape_into_fully_connected() -> None:
    rng = np.random.default_rng(6)
    b = GraphBuilder("flat", (3, 4, 5), 0.03, 2)
    w = rng.integers(-127, 128, (7, 60))
    g = b.finish(b.fully_connected(b.input, w, 0.01, rng.integers(-900, 900, 7), 0.3, 1))
    m = unpack(export_tflite(g))
    sub = m.subgraphs[0]
    x = sub.inputs[0]
    shape = add_tensor(m, "shape", [2], fb.TensorType.INT32, data=np.array([1, 60], np.int32))
    flat = add_tensor(m, "flat", [1, 60], quant=quant_of(m, x))
    opts = fb.ReshapeOptionsT()
    opts.newShape = [1, 60]
    sub.operators.insert(0, make_op(m, fb.BuiltinOperator.RESHAPE, [x, shape], [flat],
                                    fb.BuiltinOptions.ReshapeOptions, opts))
    sub.operators[1].inputs = [flat, *sub.operators[1].inputs[1:]]
    data = pack(m)
    h = import_tflite(data)
    assert [op.kind for op in h.ops] == ["fully_connected"]
    assert_matches_tflm(h, data)


def test_leading_nchw_transpose_is_folded_into_the_input() -> None:
    g = conv_graph(c_in=3)
    m = unpack(export_tflite(g))
    sub = m.subgraphs[0]
    x = sub.inputs[0]
    _, h, w, c = sub.tensors[x].shape
    nchw = add_tensor(m, "input_nchw", [1, c, h, w], quant=quant_of(m, x))
    perm = add_tensor(m, "perm", [4], fb.TensorType.INT32,
                      data=np.array([0, 2, 3, 1], np.int32))
    sub.operators.insert(0, make_op(m, fb.BuiltinOperator.TRANSPOSE, [nchw, perm], [x],
                                    fb.BuiltinOptions.TransposeOptions, fb.TransposeOptionsT()))
    sub.inputs = [nchw]
    data = pack(m)
    imported = import_tflite(data)
    assert imported.tensors[imported.input].shape == (h, w, c)
    assert "NCHW" in imported.meta["input_layout"]
    assert_matches_tflm(imported, data, nchw=True)


def test_per_tensor_conv_weights() -> None:
    g = conv_graph()
    m = unpack(export_tflite(g))
    sub = m.subgraphs[0]
    wq = sub.tensors[sub.operators[0].inputs[1]].quantization
    wq.scale, wq.zeroPoint = [float(wq.scale[1])], [0]
    data = pack(m)
    h = import_tflite(data)
    scales = h.ops[0].weight_scales
    assert scales.shape == (4,) and np.all(scales == scales[0])
    assert_matches_tflm(h, data)


def test_old_per_channel_metadata_and_depth_multiplier() -> None:
    """person_detect.tflite's quirks, made by hand: its first op is a DEPTHWISE_CONV_2D with
    depth multiplier 8 on the 1-channel image (an ordinary conv), and every depthwise bias, a
    1-D tensor, carries quantized_dimension 3 (LiteRT refuses that; TFLite Micro ignores a
    bias's quantisation)."""
    g = conv_graph(c_in=1, c_out=8)
    m = unpack(export_tflite(g))
    sub = m.subgraphs[0]
    op = sub.operators[0]
    wt, bt = (sub.tensors[i] for i in op.inputs[1:3])
    w = np.frombuffer(m.buffers[wt.buffer].data.tobytes(), np.int8).reshape(8, 3, 3, 1)
    m.buffers[wt.buffer].data = np.frombuffer(w.transpose(3, 1, 2, 0).tobytes(), np.uint8)
    wt.shape, wt.quantization.quantizedDimension = [1, 3, 3, 8], 3
    bt.quantization.quantizedDimension = 3  # the old metadata
    dw = make_op(m, fb.BuiltinOperator.DEPTHWISE_CONV_2D, op.inputs, op.outputs,
                 fb.BuiltinOptions.DepthwiseConv2DOptions, fb.DepthwiseConv2DOptionsT())
    dw.builtinOptions.depthMultiplier = 8
    dw.builtinOptions.padding = op.builtinOptions.padding
    dw.builtinOptions.strideH = dw.builtinOptions.strideW = 2
    dw.builtinOptions.fusedActivationFunction = op.builtinOptions.fusedActivationFunction
    sub.operators[0] = dw
    data = pack(m)
    h = import_tflite(data)
    assert h.ops[0].kind == "conv2d" and np.array_equal(h.ops[0].weights, g.ops[0].weights)
    assert any("quantized_dimension 3" in q for q in h.meta["quirks"])
    assert any("depth multiplier 8" in q for q in h.meta["quirks"])
    assert_matches_tflm(h, data)


def test_unsupported_ops_are_named_with_their_position() -> None:
    g = conv_graph()
    m = unpack(export_tflite(g))
    sub = m.subgraphs[0]
    y = sub.outputs[0]
    t = add_tensor(m, "tanh", sub.tensors[y].shape, quant=(1 / 128, 0))
    sub.operators.append(make_op(m, fb.BuiltinOperator.TANH, [y], [t]))
    sub.outputs = [t]
    with pytest.raises(TFLiteImportError) as e:
        import_tflite(pack(m))
    msg = str(e.value)
    assert "op 1 (TANH)" in msg and "supported: " + ", ".join(SUPPORTED) in msg


def test_not_a_tflite() -> None:
    with pytest.raises(TFLiteImportError, match="not a .tflite"):
        import_tflite(b"hello, world")
    with pytest.raises(TFLiteImportError, match="no such"):
        import_tflite(ROOT / "nope.tflite")


# ---- the real models -----------------------------------------------------------------------
@functools.cache
def real_images(gray: bool) -> dict[str, np.ndarray]:
    """scikit-image's photos, TFLite Micro's two person_detection test images and the first
    two photos of three shared datasets (those present)."""
    import cv2
    import skimage.data

    imgs = {n: getattr(skimage.data, n)() for n in SKIMAGE}
    files = sorted((DATASETS / "tflm_person_detection_testdata" / "images").glob("*.bmp"))
    for d in ("vww_imagenet_sample", "penn_fudan_ped", "vww_neg_cats_dogs"):
        folder = DATASETS / d / "images"
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*")
                            if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:2]
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
        if img is not None:
            imgs[p.name] = img if gray else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return imgs


@pytest.fixture(scope="module")
def person() -> tuple[Graph, bytes]:
    if not PERSON.is_file():
        pytest.skip(f"{PERSON} is absent (the real models live in ../shared/models)")
    data = PERSON.read_bytes()
    return import_tflite(data), data


@needs(PERSON)
def test_person_detect_imports(person) -> None:
    g, _ = person
    assert g.tensors[g.input].shape == (96, 96, 1)
    assert g.tensors[g.output].shape == (1, 1, 2)  # the logits: SOFTMAX dropped
    assert [op.kind for op in g.ops].count("depthwise_conv2d") == 13
    assert g.ops[0].kind == "conv2d" and g.ops[-2].kind == "avg_pool2d"
    assert len(g.meta["quirks"]) == 2 and len(g.meta["dropped"]) == 1


@needs(PERSON)
def test_person_detect_reference_matches_tflm_on_real_images(person) -> None:
    g, data = person
    imgs = real_images(gray=True)
    assert len(imgs) >= 7
    for name, img in imgs.items():
        x = image_to_input(g, img)
        ours = reference.run(g, x).reshape(-1)
        logits, probs = run_tflm_tensors(data, x[np.newaxis],
                                         [g.meta["tflite_output_tensor"], 87])
        np.testing.assert_array_equal(ours, logits.reshape(-1), err_msg=name)
        assert probs.reshape(-1)[np.argmax(ours)] == probs.max(), name


@needs(PERSON)
def test_person_detect_host_runtime_is_bit_exact(person, tmp_path) -> None:
    from patchcam.targets import hostbuild

    g, _ = person
    exe = hostbuild.build_host(g, tmp_path)  # AddressSanitizer + arena fences
    for name, img in real_images(gray=True).items():
        x = image_to_input(g, img)
        np.testing.assert_array_equal(hostbuild.run_host(exe, x),
                                      reference.run(g, x).reshape(-1), err_msg=name)


@needs(PERSON)
@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or
                    shutil.which("qemu-system-arm") is None,
                    reason="needs gcc-arm-none-eabi and qemu-system-arm (make setup)")
def test_person_detect_on_cortex_m7_fits_stm32f746_and_is_bit_exact(person, tmp_path) -> None:
    from patchcam.compiler import codegen
    from patchcam.targets import armbuild, qemu

    g, _ = person
    codegen.generate(g, tmp_path / "model")
    b = armbuild.build(tmp_path / "model", tmp_path / "out")  # 1 MB flash / 320 kB SRAM
    assert b.budget == armbuild.STM32F746
    assert b.sizes.bss >= memplan.plan_layers(g).arena_bytes
    imgs = real_images(gray=True)
    for name in ("astronaut", "chelsea", "person.bmp", "no_person.bmp"):
        if name not in imgs:
            continue
        x = image_to_input(g, imgs[name])
        out, status, _ = qemu.run_qemu(b.elf, x.tobytes(), timeout_s=60)
        assert status == 0
        np.testing.assert_array_equal(np.frombuffer(out, np.int8),
                                      reference.run(g, x).reshape(-1), err_msg=name)


@pytest.fixture(scope="module")
def mbv2() -> tuple[Graph, bytes]:
    if not MBV2.is_file():
        pytest.skip(f"{MBV2} is absent (the real models live in ../shared/models)")
    data = MBV2.read_bytes()
    return import_tflite(data), data


@needs(MBV2)
def test_mobilenet_v2_imports(mbv2) -> None:
    g, _ = mbv2
    kinds = [op.kind for op in g.ops]
    assert g.tensors[g.input].shape == (224, 224, 3) and "NCHW" in g.meta["input_layout"]
    assert g.tensors[g.output].shape == (1000,)
    assert kinds.count("add") == 10 and kinds.count("mean") == 1
    assert kinds.count("depthwise_conv2d") == 17 and kinds[-1] == "fully_connected"
    # The 18 PADs are folded into the convs that read them.
    assert sum(any(op.pads) for op in g.ops) == 18


@needs(MBV2)
@pytest.mark.slow
def test_mobilenet_v2_reference_matches_tflm_on_real_images(mbv2) -> None:
    g, data = mbv2
    imgs = real_images(gray=False)
    for name, img in imgs.items():
        x = image_to_input(g, img, **IMAGENET)
        np.testing.assert_array_equal(reference.run(g, x).reshape(-1),
                                      run_tflm(data, x.transpose(2, 0, 1)).reshape(-1),
                                      err_msg=name)
    x = image_to_input(g, imgs["chelsea"], **IMAGENET)
    assert np.argmax(reference.run(g, x)) in (281, 282, 285)  # tabby / tiger / Egyptian cat


@needs(MBV2)
@pytest.mark.slow
def test_mobilenet_v2_host_runtime_is_bit_exact(mbv2, tmp_path) -> None:
    """~1.5 MB arena: host only (no MCU of ours has that SRAM layer by layer)."""
    from patchcam.targets import hostbuild

    g, _ = mbv2
    assert memplan.plan_layers(g).arena_bytes > 1_000_000
    exe = hostbuild.build_host(g, tmp_path)
    imgs = real_images(gray=False)
    for name in ("chelsea", "coffee"):
        x = image_to_input(g, imgs[name], **IMAGENET)
        np.testing.assert_array_equal(hostbuild.run_host(exe, x, timeout=300),
                                      reference.run(g, x).reshape(-1), err_msg=name)


# ---- the command line ----------------------------------------------------------------------
@needs(PERSON)
def test_cli_summary_plan_and_run(capsys) -> None:
    image = DATASETS / "tflm_person_detection_testdata" / "images" / "person.png"
    assert cli_main(["summary", str(PERSON)]) == 0
    assert "depthwise_conv2d" in capsys.readouterr().out
    assert cli_main(["plan", str(PERSON), "--max-overhead", "0"]) == 0
    assert "layer-by-layer peak: 55,360 B" in capsys.readouterr().out
    if image.is_file():
        assert cli_main(["run", str(PERSON), str(image), "--top", "2"]) == 0
        out = capsys.readouterr().out
        assert "SOFTMAX" in out and "rank" in out


def test_cli_names_the_unsupported_op(tmp_path, capsys) -> None:
    m = unpack(export_tflite(conv_graph()))
    sub = m.subgraphs[0]
    y = sub.outputs[0]
    t = add_tensor(m, "sig", sub.tensors[y].shape, quant=(1 / 256, -128))
    sub.operators.append(make_op(m, fb.BuiltinOperator.LOGISTIC, [y], [t]))
    sub.outputs = [t]
    path = tmp_path / "logistic.tflite"
    path.write_bytes(pack(m))
    assert cli_main(["summary", str(path)]) == 2
    assert "op 1 (LOGISTIC)" in capsys.readouterr().err
