"""Zoo models: the numpy reference equals TensorFlow Lite Micro on the exported .tflite."""

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from patchcam.compiler import reference
from patchcam.compiler.models import preset_graph
from patchcam.compiler.tflite_export import export_tflite
from patchcam.compiler.tflm import run_tflm

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo_input(name: str, h: int, w: int) -> np.ndarray:
    img = cv2.resize(getattr(skdata, name)(), (w, h), interpolation=cv2.INTER_AREA)
    return (img.astype(np.int16) - 128).astype(np.int8)


@pytest.mark.parametrize("preset", ["mcu-s-96", "mbv2-0.35-144", "mcu-m-128"])
def test_zoo_model_bit_exact_with_tflite_micro(preset):
    g = preset_graph(preset)
    model = export_tflite(g)
    h, w, _ = g.tensors[g.input].shape
    for name in PHOTOS:
        x = photo_input(name, h, w)
        np.testing.assert_array_equal(reference.run_all(g, x)[g.output], run_tflm(model, x))


@pytest.mark.slow
def test_mobilenet_v2_224_bit_exact_with_tflite_micro():
    g = preset_graph("mbv2-1.0-224")
    x = photo_input("astronaut", 224, 224)
    np.testing.assert_array_equal(reference.run(g, x), run_tflm(export_tflite(g), x))
