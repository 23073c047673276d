"""Detection head: converts to int8, and the integer decode + NMS equal the float ones."""

from pathlib import Path

import numpy as np
import pytest
import torch

from patchcam.app import config, detect
from patchcam.compiler import quantize, reference
from patchcam.training import imagesets, readers

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _images(app: config.AppConfig, n: int) -> np.ndarray:
    """n real photos of the app's first data source at its input size (random if absent)."""
    h, w = app.input.height, app.input.width
    root = app.data_path(app.data[0])
    if root.is_dir():
        ss = readers.read_dataset(root, app.data[0].format, **(
            {"class_names": app.data[0].class_names} if app.data[0].class_names else {}))
        return np.stack([imagesets.load_image(s.image_path, (h, w)) for s in ss.samples[:n]])
    return np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _detector(app: config.AppConfig, seed: int, x: torch.Tensor | None = None) -> detect.Detector:
    """Random weights; BatchNorm statistics taken from x so activations keep a unit scale."""
    torch.manual_seed(seed)
    m = app.build_model()
    if x is None:
        x = torch.rand(4, 3, app.input.height, app.input.width)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average over the batches seen
    with torch.no_grad():
        m.train()(x)
        m.head.out.weight.normal_(0, 0.3)  # a trained-looking spread of logits and boxes
        m.head.out.bias.zero_()
        m.head.out.bias[m.num_classes:] = 1.5
    return m.eval()


@pytest.mark.parametrize("name", ["person_detect", "mask_detect"])
def test_int_decode_equals_float_decode_on_quantised_detector(name):
    app = config.load_app(name)
    imgs = _images(app, 4)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0
    m = _detector(app, 1, x)
    shape = (3, app.input.height, app.input.width)
    g = quantize.quantize(m, shape, [x], name)
    out = g.tensors[g.output]
    k = len(app.classes.names)
    assert out.shape == (app.input.height // 8, app.input.width // 8, k + 4)
    compared = 0
    for img in imgs[:2]:
        q = reference.run(g, (img.astype(np.int16) - 128).astype(np.int8))
        y = detect.dequantize(q, out.scale, out.zero_point)
        for thr, iou in [(0.3, 0.45), (0.5, 0.5), (0.7, 0.3)]:
            p = detect.DecodeParams.prepare(out.scale, out.zero_point, k, 8, out.shape[:2],
                                            (app.input.width, app.input.height), thr, iou,
                                            max_candidates=48, max_detections=12,
                                            class_agnostic=(thr != 0.5))
            di = detect.decode_int8(q, p)
            df = detect.decode_float(y, 8, p.image, thr, iou, 48, 12, p.class_agnostic,
                                     round_pixels=True)
            assert len(di) > 0
            np.testing.assert_array_equal(di.cells, df.cells)
            np.testing.assert_array_equal(di.classes, df.classes)
            np.testing.assert_array_equal(detect.dequantize(di.scores, out.scale,
                                                            out.zero_point), df.scores)
            raw = detect.decode_float(y, 8, p.image, thr, 1.0, 10**6, 10**6, True)
            by_cell = dict(zip(raw.cells.tolist(), raw.boxes, strict=True))
            exact = np.array([by_cell[c] for c in di.cells.tolist()]).reshape(-1, 4)
            differs = di.boxes != df.boxes
            # the documented rounding: only edges within 2**-9 px of a half pixel may differ
            assert np.all(np.abs(di.boxes - df.boxes) <= 1)
            assert np.all(np.abs(np.abs(exact[differs] % 1 - 0.5)) < 2**-9)
            compared += len(di)
    assert compared > 10


def test_threshold_in_int8_space_matches_sigmoid():
    for scale, zp in [(0.05, -10), (0.11, 40), (0.3, 127)]:
        for thr in (0.05, 0.4, 0.5, 0.93):
            p = detect.DecodeParams.prepare(scale, zp, 1, 8, (4, 4), (32, 32), thr, 0.5)
            qs = np.arange(-128, 128)
            prob = 1 / (1 + np.exp(-detect.dequantize(qs, scale, zp).astype(np.float64)))
            passing = qs[prob >= thr]
            assert p.q_threshold == (passing[0] if len(passing) else 128)
    with pytest.raises(ValueError, match="overflow"):
        detect.DecodeParams.prepare(400.0, 0, 1, 32, (4, 4), (1000, 1000), 0.5, 0.5)
    d = detect.DecodeParams.prepare(0.1, 3, 2, 8, (16, 20), (160, 128), 0.5, 0.45).c_defines()
    assert d["PC_DET_Q_THRESHOLD"] == 3 and d["PC_DET_IOU_Q10"] == 461
    assert d["PC_DET_BOX_MULTIPLIER"] == round(8 * np.float32(0.1) * 65536)


def test_nms_hand_made_boxes():
    # candidates come in raster (cell), then class order; that order breaks score ties
    boxes = [(10, 10, 50, 50), (11, 9, 49, 51), (10, 10, 50, 50), (12, 12, 52, 52),
             (60, 10, 100, 50), (70, 60, 90, 80)]
    scores = [90, 100, 90, 100, 80, 20]
    classes = [1, 1, 0, 0, 0, 0]
    # order: (100, #1), (100, #3), (90, #0), (90, #2), 80, 20
    keep = detect.nms_int(boxes, scores, classes, 512, 64, 16, class_agnostic=True)
    assert keep == [1, 4, 5]
    keep = detect.nms_int(boxes, scores, classes, 512, 64, 16, class_agnostic=False)
    assert keep == [1, 3, 4, 5]
    assert detect.nms_int(boxes, scores, classes, 512, 64, 2) == [1, 4]
    assert detect.nms_int(boxes, scores, classes, 512, 2, 16) == [1]
    # IoU exactly at the threshold is kept (suppression needs IoU > threshold)
    half = [(0, 0, 10, 10), (0, 0, 10, 5)]
    assert detect.nms_int(half, [5, 4], [0, 0], 512, 8, 8) == [0, 1]
    assert detect.nms_int(half, [5, 4], [0, 0], 511, 8, 8) == [0]
    for agnostic in (True, False):
        kf = detect.nms_float(np.array(boxes, float), np.array(scores, float),
                              np.array(classes), 0.5, 64, 16, agnostic)
        assert list(kf) == detect.nms_int(boxes, scores, classes, 512, 64, 16, agnostic)
    iou = detect.iou_matrix(np.array(half, float), np.array(half, float))
    np.testing.assert_allclose(iou, [[1, 0.5], [0.5, 1]])


def test_every_class_above_the_threshold_is_a_candidate():
    """Classes are scored independently: a cell whose two classes both pass gives two
    candidates with the same box; class-agnostic NMS keeps the higher, per-class NMS both."""
    q = np.full((2, 3, 6), -128, np.int8)
    q[..., 2:] = 10  # every box: 10 * multiplier from the anchor on each side
    q[0, 1, :2] = (40, 60)  # both classes pass; class 1 scores higher
    q[1, 2, :2] = (50, -100)  # class 0 only
    q[1, 0, :2] = (60, 60)  # a tie: class 0 first
    # boxes are 8x8 around their anchors: neighbours touch, so only a cell's own classes
    # can suppress each other; order: 60 (cell 1), 60, 60 (cell 3), 50, 40
    for agnostic, want in [(True, [(1, 1), (3, 0), (5, 0)]),
                           (False, [(1, 1), (3, 0), (3, 1), (5, 0), (1, 0)])]:
        p = detect.DecodeParams.prepare(0.05, 0, 2, 8, (2, 3), (24, 16), 0.5, 0.5,
                                        class_agnostic=agnostic)
        assert p.q_threshold == 0
        di = detect.decode_int8(q, p)
        assert list(zip(di.cells.tolist(), di.classes.tolist(), strict=True)) == want
        df = detect.decode_float(detect.dequantize(q, 0.05, 0), 8, (24, 16), 0.5, 0.5,
                                 class_agnostic=agnostic, round_pixels=True)
        assert list(zip(df.cells.tolist(), df.classes.tolist(), strict=True)) == want


def test_head_converts_and_fused_equals_torch():
    app = config.load_app("mask_detect")
    m = _detector(app, seed=0)
    shape = (3, app.input.height, app.input.width)
    fused = quantize.fuse(m, shape)
    kinds = {op.kind for op in fused.ops}
    assert kinds <= {"conv2d", "depthwise_conv2d", "add"}
    x = torch.rand(1, *shape)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), m(x), rtol=1e-4, atol=1e-4)
    assert detect.feature_stride(m.cfg) == 8


def test_assign_and_loss():
    boxes = torch.tensor([[0.0, 0.0, 64.0, 64.0], [20.0, 20.0, 30.0, 30.0]])
    cls_t, box_t, pos = detect.assign(boxes, torch.tensor([0, 1]), 8, 8, 8, 2)
    assert pos[3, 3] and cls_t[1, 3, 3] == 1 and cls_t[0, 3, 3] == 0  # smaller box wins
    assert torch.equal(box_t[3, 3], boxes[1])
    assert pos[4, 4] and cls_t[0, 4, 4] == 1 and not pos[2, 2] and not pos[7, 7]  # radius
    tiny = torch.tensor([[41.0, 41.0, 43.0, 43.0]])  # smaller than a cell: centre cell only
    _, _, pos = detect.assign(tiny, torch.tensor([0]), 8, 8, 8, 1)
    assert pos.sum() == 1 and pos[5, 5]
    torch.manual_seed(0)
    head = detect.DetectHead(8, 2, channels=16)
    feats = torch.randn(2, 8, 8, 8)
    targets = [(boxes, torch.tensor([0, 1])), (torch.zeros(0, 4), torch.zeros(0))]
    opt = torch.optim.Adam(head.parameters(), 1e-2)
    losses = []
    for _ in range(20):
        loss, parts = detect.detection_loss(head(feats), targets, 8)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert parts["positives"] > 2 and np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0]
    out = head(feats).detach()
    d = detect.decode_float(out[0].permute(1, 2, 0).numpy(), 8, (64, 64), 0.3, 0.5)
    assert len(d) >= 1 and detect.iou_matrix(d.boxes, boxes.numpy()).max() > 0.5


def test_class_weights_scale_only_that_class_positive_cells():
    """train.balance_classes: a class's factor multiplies the focal term of the cells where it
    is the target; background cells and the other class keep weight 1."""
    torch.manual_seed(1)
    out = torch.randn(1, 6, 8, 8)
    boxes = torch.tensor([[0.0, 0.0, 24.0, 24.0], [40.0, 40.0, 56.0, 56.0]])
    targets = [(boxes, torch.tensor([0, 1]))]
    plain, _ = detect.detection_loss(out, targets, 8)
    same, _ = detect.detection_loss(out, targets, 8, class_weights=(1.0, 1.0))
    assert torch.equal(plain, same)
    cls_t, _, pos = detect.assign(boxes, torch.tensor([0, 1]), 8, 8, 8, 2)
    focal = detect.sigmoid_focal_loss(out[:, :2], cls_t[None], 0.25, 2.0)[0]
    num_pos = float(pos.sum())
    extra_no_mask = float((focal[1] * cls_t[1]).sum()) / num_pos  # class 1's positive cells
    heavier, _ = detect.detection_loss(out, targets, 8, class_weights=(1.0, 3.0))
    assert float(heavier - plain) == pytest.approx(2 * extra_no_mask, rel=1e-5)
    with pytest.raises(ValueError, match="2 classes"):
        detect.detection_loss(out, targets, 8, class_weights=(1.0,))


def test_class_weights_from_training_boxes():
    from patchcam.training import detector as td
    labels = [np.array([0, 0, 0]), np.zeros(0, np.int64), np.array([1, 0, 0])]
    data = td.DetData(images=np.zeros((3, 8, 8, 3), np.uint8),
                      boxes=[np.zeros((len(lb), 4), np.float32) for lb in labels],
                      labels=labels, sources=["a", "a", "a"])
    w = td.class_weights(data, 2)
    assert w == pytest.approx((6 / (2 * 5), 6 / (2 * 1)))
    with pytest.raises(ValueError, match="class \\[2\\]"):
        td.class_weights(data, 3)
