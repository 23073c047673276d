"""The zoo builds what its configs say, with the published sizes of MobileNetV2."""

import pytest

from patchcam.compiler import zoo
from patchcam.compiler.models import preset_graph


def test_mobilenet_v2_matches_published_size():
    g = preset_graph("mbv2-1.0-224")
    # MobileNetV2 1.0 @224: 300M MACs, 3.5M parameters (Sandler et al. 2018, Table 3).
    assert 295e6 < g.total_macs < 305e6
    assert 3.4e6 < g.total_params < 3.6e6
    # MCUNetV2's Figure 1 peak (1372 kB) is the input + output of block 2's expansion conv
    # (depthwise convs run in place there, so they do not count).
    sizes = [g.tensors[op.inputs[0]].size + g.tensors[op.output].size for op in g.ops
             if op.kind != "depthwise_conv2d"]
    assert max(sizes) == 112 * 112 * 16 + 112 * 112 * 96 == 1372 * 1024


@pytest.mark.parametrize("name", list(zoo.PRESETS))
def test_presets_build_and_have_valid_graphs(name):
    g = preset_graph(name)
    cfg = zoo.preset(name)
    assert g.tensors[g.input].shape == (*cfg.resolution, cfg.in_channels)
    assert g.tensors[g.output].shape == (cfg.num_classes,)
    assert g.total_macs > 0


def test_config_knobs_change_the_network():
    base = zoo.preset("mcu-s-96")
    wider = base.with_(width=0.5)
    k7 = base.with_(stages=tuple(s.__class__(s.expand, s.channels, s.repeats, s.stride, 7)
                                 for s in base.stages))
    n = [sum(p.numel() for p in zoo.build_classifier(c).parameters()) for c in (base, wider, k7)]
    assert n[1] > n[0] and n[2] > n[0]


def test_unknown_preset_lists_presets():
    with pytest.raises(KeyError, match="mbv2-1.0-224"):
        zoo.preset("resnet50")
