"""Quantised vs float on real photos: the int8 VWW model that ships (apps/vww/generated, from
quantisation-aware training) is within 1 point of the float weights' accuracy on the
held-out test split of the vww_* folders, and takes the same decision on >= 97% of them."""

from pathlib import Path

import numpy as np
import pytest

from patchcam.compiler import reference
from patchcam.compiler.ir import Graph
from patchcam.training import checkpoint, imagesets, quickfit

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
APP = Path(__file__).resolve().parents[1] / "apps" / "vww"


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/datasets is not present")
def test_shipped_int8_vww_within_one_point_of_float():
    model, _ = checkpoint.load_classifier(APP / "weights" / "float.pt")
    g = Graph.load(APP / "generated" / "model.json")
    samples = [s for d in sorted(DATA.glob("vww_*")) for s in imagesets.read_folder(d)]
    samples = [s for s in samples if imagesets.split_of(s.path) == "test"]
    test_x, samples = imagesets.load_images(samples, model.cfg.resolution, desc="vww-test")
    labels = np.array([int(s.label == "person") for s in samples])
    assert len(test_x) > 500
    float_top1 = quickfit.predict(model, test_x).argmax(1)
    int8_top1 = np.array([reference.run(g, (x.astype(np.int16) - 128).astype(np.int8)).argmax()
                          for x in test_x])
    acc_f, acc_q = (float((p == labels).mean()) for p in (float_top1, int8_top1))
    agreement = float((float_top1 == int8_top1).mean())
    print(f"{len(test_x)} test photos: float {acc_f:.4f}, int8 {acc_q:.4f}, "
          f"agreement {agreement:.4f}")
    assert acc_q >= acc_f - 0.01
    assert agreement >= 0.97
