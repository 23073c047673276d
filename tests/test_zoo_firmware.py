"""Every zoo preset that fits the STM32F746 runs bit-exactly as C: on the host (ASan + UBSan,
portable and DSP-emulated kernels) and on the Cortex-M7 under QEMU (DSP and portable).

MobileNetV2 0.35 @144 misses the 320 kB SRAM layer by layer (by a few hundred bytes with the
stack), so it runs with the patch schedule the planner picks - the point of patchcam."""

import numpy as np
import pytest

from patchcam.compiler import codegen, patchplan, reference
from patchcam.compiler.models import preset_graph
from patchcam.targets import armbuild, hostbuild, qemu
from patchcam.targets.bench import photo_input

FITS = {"mcu-s-96": "layer", "mcu-m-128": "layer", "mbv2-0.35-144": "patch"}


@pytest.fixture(scope="module", params=list(FITS))
def preset(request, tmp_path_factory):
    g = preset_graph(request.param)
    out = tmp_path_factory.mktemp(request.param)
    schedule = None
    if FITS[request.param] == "patch":
        schedule = patchplan.search(g, max_overhead=0.2, mode="recompute")
        assert schedule.mode == "recompute"
    codegen.generate(g, out / "model", schedule=schedule)
    x = photo_input(g)
    return g, out, x, reference.run(g, x).reshape(-1)


@pytest.mark.slow
def test_preset_on_host_with_sanitizers(preset):
    g, out, x, want = preset
    for variant in ("portable", "dsp-emulated"):
        exe = hostbuild.build_host(out / "model", out / variant,
                                   hostbuild.HostConfig(sanitize=True, variant=variant))
        np.testing.assert_array_equal(hostbuild.run_host(exe, x), want, err_msg=variant)


@pytest.mark.slow
def test_preset_on_cortex_m7(preset):
    g, out, x, want = preset
    for portable in (False, True):
        build = armbuild.build(out / "model", out / "m7", portable=portable)
        assert build.sizes.flash_bytes > g.total_params  # weights live in flash
        got, status, _ = qemu.run_qemu(build.elf, x.tobytes(), timeout_s=300)
        assert status == 0
        np.testing.assert_array_equal(np.frombuffer(got, np.int8), want)


def test_mobilenet_v2_224_does_not_fit_and_says_so(tmp_path):
    g = preset_graph("mbv2-1.0-224")
    codegen.generate(g, tmp_path / "model")
    with pytest.raises(armbuild.BudgetError, match=r"mbv2-1.0-224: needs \d+ bytes of (RAM|flash)"
                       r".*STM32F746 budget of \d+ bytes"):
        armbuild.build(tmp_path / "model", tmp_path / "m7")
