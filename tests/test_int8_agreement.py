"""Quantised vs float on real photos: the shipped VWW weights, post-training quantised,
agree with the float model on >= 99% of the held-out test split (top-1)."""

from pathlib import Path

import numpy as np
import pytest

from patchcam import checkpoint, imagesets, quantize, reference, train

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
WEIGHTS = Path(__file__).resolve().parents[1] / "apps" / "vww" / "weights" / "float.pt"


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/datasets is not present")
def test_int8_agrees_with_float_on_vww_test_split():
    model, meta = checkpoint.load_classifier(WEIGHTS)
    samples = [s for d in sorted(DATA.glob("vww_*")) for s in imagesets.read_folder(d)]
    images, samples = imagesets.load_images(samples, model.cfg.resolution, desc="vww")
    split = np.array([imagesets.split_of(s.path) for s in samples])
    train_x, test_x = images[split == "train"], images[split == "test"]
    assert len(test_x) > 500
    g = quantize.quantize(model, (3, *model.cfg.resolution), [train.to_batch(train_x[:512])],
                          "vww")
    float_top1 = train.predict(model, test_x).argmax(1)
    int8_top1 = np.array([reference.run(g, (x.astype(np.int16) - 128).astype(np.int8)).argmax()
                          for x in test_x])
    agreement = float((float_top1 == int8_top1).mean())
    print(f"int8/float top-1 agreement on {len(test_x)} test images: {agreement:.4f}")
    assert agreement >= 0.99
