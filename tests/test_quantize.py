"""PyTorch -> int8: folding is exact, quantisation is close, errors name the layer."""

import numpy as np
import pytest
import torch
from torch import nn

from patchcam.compiler import quantize as Q
from patchcam.compiler import reference, zoo
from patchcam.compiler.models import preset_graph


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model.eval()


@pytest.mark.parametrize("name", ["mcu-s-96", "mbv2-0.35-144"])
def test_fused_net_equals_torch_model(name):
    torch.manual_seed(0)
    m = _randomise_bn(zoo.build_classifier(name))
    shape = (3, *m.cfg.resolution)
    x = torch.rand(2, *shape)
    fused = Q.fuse(m, shape)
    assert [op.kind for op in fused.ops].count("add") > 0
    with torch.no_grad():
        torch.testing.assert_close(fused(x), m(x), rtol=1e-4, atol=1e-5)


def test_int8_close_to_float_and_fake_quant_matches_reference():
    torch.manual_seed(1)
    m = _randomise_bn(zoo.build_classifier("mcu-s-96"), 1)
    shape = (3, 96, 96)
    gen = torch.Generator().manual_seed(2)
    fused = Q.calibrate(Q.fuse(m, shape), [torch.rand(16, *shape, generator=gen)])
    g = Q.to_int8(fused, "t")
    out = g.tensors[g.output]
    rng = np.random.default_rng(0)
    fused.qat = True
    for _ in range(4):
        xi = rng.integers(-128, 128, (96, 96, 3)).astype(np.int8)
        y = reference.run(g, xi).astype(np.int32)
        x = Q.to_nchw_float(xi)
        with torch.no_grad():
            fq = fused(x)[0].numpy() / out.scale + out.zero_point
            fl = m(x)[0].numpy() / out.scale + out.zero_point
        # The fake-quant forward pass models the integer one to a couple of LSB; the float
        # model is further away but of the same size.
        assert np.abs(fq - y).max() <= 3, (fq, y)
        assert np.abs(fl - y).max() <= 12, (fl, y)


def test_weights_per_channel_symmetric_and_bias_int32():
    g = preset_graph("mcu-s-96")
    for op in g.ops:
        if op.weights is not None:
            assert op.weights.min() >= -127  # symmetric: -128 is never used
            ch = op.weights.reshape(op.weights.shape[0], -1) if op.kind == "conv2d" else None
            if ch is not None:
                assert (np.abs(ch).max(1) == 127).all()  # every channel uses its full range
            assert op.bias.dtype == np.int32


def test_unsupported_layer_names_layer_and_supported_set():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 2))
    with pytest.raises(Q.ConversionError, match=r"layer '1' \(GELU\).*supported: nn.Conv2d"):
        Q.fuse(model, (3, 16, 16))


def test_grouped_conv_refused():
    with pytest.raises(Q.ConversionError, match="groups=2"):
        Q.fuse(nn.Sequential(nn.Conv2d(4, 8, 3, groups=2)), (4, 8, 8))


def test_calibration_with_no_images_refuses():
    fused = Q.fuse(zoo.build_classifier("mcu-s-96"), (3, 96, 96))
    with pytest.raises(Q.CalibrationError, match="at least one representative image"):
        Q.calibrate(fused, [])


def test_torch_symmetric_padding_and_plain_layers_convert():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(8, 8, 5, 1, 2, groups=8), nn.ReLU6(),
                          nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Dropout(0.1), nn.Linear(8, 3)).eval()
    _randomise_bn(model)
    x = torch.rand(3, 3, 32, 30)
    fused = Q.fuse(model, (3, 32, 30))
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-5)
    g = Q.to_int8(Q.calibrate(fused, [x]), "plain")
    assert [op.kind for op in g.ops] == ["conv2d", "max_pool2d", "depthwise_conv2d",
                                         "avg_pool2d", "avg_pool2d", "fully_connected"]
    assert g.ops[0].pads == (1, 1, 0, 0)  # torch's unused bottom/right padding is trimmed
