"""int8 graph -> float PyTorch network (patchcam.compiler.dequantize): every layer computes what the
int8 op computes, up to the int8 rounding; a real imported model keeps its decisions."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from patchcam.compiler import dequantize, models, quantize, reference
from patchcam.compiler.ir import Graph

# an int8 op rounds to the nearest step (half a step of error) after a fixed-point multiply
# and TFLite's double rounding, which add a few hundredths; a wrong weight, bias, padding or
# activation costs whole steps
STEP_ERROR = 0.52
PERSON_DETECT = Path(__file__).resolve().parents[2] / "shared" / "models" / "person_detect.tflite"


def _deq(g: Graph, name: str, q: np.ndarray) -> torch.Tensor:
    t = g.tensors[name]
    d = torch.from_numpy((q.astype(np.float32) - t.zero_point) * t.scale)
    return d.permute(2, 0, 1)[None] if d.dim() == 3 else d.reshape(1, -1)


def _per_layer_errors(g: Graph, net: dequantize.GraphNet, x_int8: np.ndarray,
                      skip: int = 0) -> list[float]:
    """Each float layer fed the int8 op's own (dequantised) input: its error in output steps,
    after clamping to the int8 range (int8 saturates, float does not)."""
    allq = reference.run_all(g, x_int8)
    errs = []
    with torch.no_grad():
        for i, (kind, key, inputs, output) in enumerate(net.steps):
            if i < skip:
                continue
            a = _deq(g, inputs[0], allq[inputs[0]])
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
            errs.append(float((y.clamp(lo, hi) - want).abs().max()) / t.scale)
    return errs


@pytest.mark.parametrize("name", ["mcu-s-96", "mbv2-0.35-144"])
def test_every_layer_matches_its_int8_op(name):
    g = models.preset_graph(name)
    net = dequantize.to_torch(g)
    h, w, c = g.tensors[g.input].shape
    x = np.random.default_rng(0).integers(-128, 128, (h, w, c)).astype(np.int8)
    errs = _per_layer_errors(g, net, x)
    assert len(errs) == len(g.ops)
    assert max(errs) <= STEP_ERROR
    # and the whole float network reads pixels p / 255 like every patchcam model
    with torch.no_grad():
        y = net(torch.from_numpy(x.astype(np.float32) + 128).permute(2, 0, 1)[None] / 255)
    assert y.shape == (1, g.tensors[g.output].size)


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
    # after the first layer (whose border pixels see a different padding value) every layer
    # is the int8 op up to rounding
    assert max(_per_layer_errors(g, net, x8[0], skip=1)) <= STEP_ERROR
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


def test_unsupported_op_is_named():
    g = models.preset_graph("mcu-s-96")
    g.ops[3].kind = "resize_bilinear"
    with pytest.raises(dequantize.DequantizeError, match=r"op 3 \(resize_bilinear"):
        dequantize.to_torch(g)
