"""`make bench` records: every field the issue names, measured on the emulated Cortex-M7."""

import json

import pytest

from patchcam import bench
from patchcam.randgraph import random_graph


@pytest.mark.slow
def test_bench_records_have_measured_fields(tmp_path):
    g = random_graph(3, size=(24, 24), channels=4)
    path = tmp_path / "rand.json"
    g.save(path)
    records = bench.bench_model(str(path))
    assert [r.kernels for r in records] == ["dsp", "portable"]
    for r in records:
        assert r.model == g.name and r.schedule == "layer"
        assert r.macs == g.total_macs and r.params == g.total_params
        assert r.m7_instructions > r.macs  # every MAC costs at least one instruction
        assert r.instr_per_mac == pytest.approx(r.m7_instructions / r.macs, abs=1e-3)
        assert r.flash_bytes > r.params and r.fits_stm32f746
        assert r.tflm_arena_bytes > r.arena_bytes > 0
        assert r.patch_arena_bytes <= r.arena_bytes  # never worse than layer by layer
    dsp, portable = records
    assert dsp.m7_instructions < portable.m7_instructions
    assert "instr" in bench.table(records).splitlines()[0]
    out = tmp_path / "bench.json"
    assert bench.main([str(path), "--no-tflm", "--out", str(out)]) == 0
    keys = {"model", "schedule", "kernels", "macs", "params", "arena_bytes", "flash_bytes",
            "m7_instructions", "instr_per_mac"}
    assert keys <= set(json.loads(out.read_text())[0])
