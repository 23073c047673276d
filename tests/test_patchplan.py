"""Patch-based planner (docs/design.md §4.4): regions by hand, MACs, halo caching, the search never
worse than layer by layer, budget errors, the CLI, and the MobileNetV2 headline figures."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchcam import cli
from patchcam.app import export
from patchcam.compiler import memplan, patchplan, reference
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.patchplan import (
    PlanError,
    derive_axis,
    input_interval,
    split_even,
    tile_pads,
)
from patchcam.compiler.randgraph import random_graph, random_input
from patchcam.paths import REPO


def _w(rng, shape):
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def chain(size, layers, channels=3, residual=False):
    """Convs given as (kernel, stride, padding); optionally an inverted residual block."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("chain", (*size, channels), 0.02, 0)
    x = b.input
    for k, s, pad in layers:
        c = b.tensors[x].shape[2]
        x = b.conv2d(x, _w(rng, (4, k, k, c)), np.full(4, 0.01), np.zeros(4), 0.5, 0, s, pad)
    if residual:
        c = b.tensors[x].shape[2]
        y = b.conv2d(x, _w(rng, (8, 1, 1, c)), np.full(8, 0.01), np.zeros(8), 0.5, 0)
        y = b.depthwise_conv2d(y, _w(rng, (3, 3, 8)), np.full(8, 0.01), np.zeros(8), 0.5, 0)
        y = b.conv2d(y, _w(rng, (c, 1, 1, 8)), np.full(c, 0.01), np.zeros(c), 0.5, 0)
        x = b.add(x, y, 0.5, 0)
    x = b.global_avg_pool(x)
    x = b.fully_connected(x, _w(rng, (2, b.tensors[x].size)), 0.01, np.zeros(2), 0.1, 0)
    return b.finish(x)


# ---- regions by hand ------------------------------------------------------------------------
def test_split_even_uneven_sizes():
    assert split_even(7, 3) == [(0, 2), (3, 4), (5, 6)]
    assert split_even(8, 2) == [(0, 3), (4, 7)]
    with pytest.raises(PlanError):
        split_even(2, 3)


def test_k3_s1_same():
    g = chain((8, 8), [(3, 1, "same")])
    rows = derive_axis(g, 0, 0, 2)
    assert rows.parts == [(0, 3), (4, 7)]
    assert [rows.reads[0][0][a] for a in range(2)] == [(0, 4), (3, 7)]
    op = g.ops[0]
    assert tile_pads(op, 0, (0, 3), 8) == (1, 0)  # the image border on top only
    assert tile_pads(op, 0, (4, 7), 8) == (0, 1)  # no padding at the seam


def test_k3_s2_same_odd_size():
    g = chain((9, 9), [(3, 2, "same")])
    op = g.ops[0]
    assert op.pads == (1, 1, 1, 1) and g.tensors[op.output].shape[:2] == (5, 5)
    rows = derive_axis(g, 0, 0, 2)
    assert rows.parts == [(0, 2), (3, 4)]
    assert rows.reads[0][0] == [(0, 5), (5, 8)]
    assert tile_pads(op, 0, (3, 4), 9) == (0, 1)


def test_k5_and_k7_grids_not_dividing():
    g = chain((7, 7), [(5, 1, "same")])
    assert derive_axis(g, 0, 0, 3).reads[0][0] == [(0, 4), (1, 6), (3, 6)]
    g = chain((11, 11), [(7, 1, "valid")])
    assert derive_axis(g, 0, 1, 2).reads[0][0] == [(0, 8), (3, 10)]
    assert input_interval(g.ops[0], 0, (4, 4), 11) == (4, 10)


def test_chain_and_residual_union():
    g = chain((12, 12), [(3, 1, "same"), (3, 2, "same")])  # 12 -> 12 -> 6
    rows = derive_axis(g, 1, 0, 2)
    assert rows.parts == [(0, 2), (3, 5)]
    assert g.ops[1].pads[0] == 0  # SAME, stride 2, even size: the odd pad goes below
    assert rows.out[0] == [(0, 6), (6, 11)]  # conv 2 reads rows 2*y..2*y+2
    assert rows.need["input"] == [(0, 7), (5, 11)]
    g = chain((10, 10), [], channels=4, residual=True)
    k = next(i for i, op in enumerate(g.ops) if op.kind == "add")
    rows = derive_axis(g, k, 0, 2)
    # the block input feeds the 1x1 expand (which must cover the 3x3's halo) and the add
    assert rows.need["input"] == [(0, 5), (4, 9)]
    assert rows.reads[k][0] == [(0, 4), (5, 9)]


# ---- MACs, modes, executing schedules -------------------------------------------------------
def test_one_patch_equals_layer_by_layer():
    g = chain((15, 13), [(3, 1, "same"), (5, 2, "same"), (7, 1, "same")], residual=True)
    for k in patchplan.valid_splits(g):
        s = patchplan.plan_patches(g, k, (1, 1), "recompute")
        assert s.macs == g.total_macs and s.mac_overhead == 0
    # a patch computes only pixels someone reads: e.g. a 'valid' stride-2 op that never reads
    # the last row saves those MACs, so one patch never costs more than layer by layer
    for seed in range(6):
        g = random_graph(seed)
        for k in patchplan.valid_splits(g):
            assert patchplan.plan_patches(g, k, (1, 1), "recompute").macs <= g.total_macs


def test_overhead_grows_with_the_grid_and_cache_has_none():
    g = chain((32, 32), [(3, 1, "same"), (3, 1, "same"), (3, 2, "same")])
    over = [patchplan.plan_patches(g, 2, (n, n), "recompute").mac_overhead for n in (1, 2, 4, 8)]
    assert over[0] == 0 and over == sorted(over) and over[3] > over[1] > 0
    for n in (2, 4, 8):
        assert patchplan.plan_patches(g, 2, (n, n), "cache").macs == g.total_macs


@pytest.mark.parametrize("seed", range(8))
def test_schedules_run_bit_exact(seed):
    """Both modes, every split, grids that do not divide: tile-by-tile execution with the
    reference kernels == the reference (and the planner's region/cache invariants hold)."""
    g = random_graph(seed, n_blocks=5)
    x = random_input(g, seed)
    want = reference.run(g, x)
    for k in patchplan.valid_splits(g):
        h, w = g.tensors[g.ops[k].output].shape[:2]
        for grid in ((min(h, 3), min(w, 2)), (min(h, 8), min(w, 7))):
            for mode in ("recompute", "cache"):
                s = patchplan.plan_patches(g, k, grid, mode)
                assert np.array_equal(patchplan.run_schedule(g, s, x), want), (k, grid, mode)
                if mode == "cache":
                    assert s.macs <= s.layer_macs


def test_layer_schedule_matches_memplan():
    for seed in range(10):
        g = random_graph(seed)
        assert patchplan.layer_schedule(g).arena_bytes == memplan.plan_layers(g).arena_bytes


def test_placement_is_consistent():
    g = chain((24, 24), [(3, 2, "same"), (3, 1, "same")], residual=True)
    for mode in ("recompute", "cache"):
        s = patchplan.plan_patches(g, len(g.ops) - 3, (3, 2), mode)
        assert s.placement is not None
        bufs = list(s.placement.buffers.values())
        assert max(b.end for b in bufs) <= s.arena_bytes
        assert s.arena_bytes >= s.lower_bound
        for i, b in enumerate(bufs):
            for c in bufs[i + 1:]:
                if b.first <= c.last and c.first <= b.last:
                    assert b.end <= c.offset or c.end <= b.offset, (b, c)


# ---- search -------------------------------------------------------------------------------------
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), overhead=st.sampled_from([None, 0.0, 0.1]))
def test_search_never_worse_than_layer_by_layer(seed, overhead):
    g = random_graph(seed, n_blocks=4)
    layer = patchplan.layer_schedule(g)
    s = patchplan.search(g, max_overhead=overhead, max_grid=4)
    assert s.arena_bytes <= layer.arena_bytes
    if s.mode != "layer":
        assert s.arena_bytes < layer.arena_bytes
        assert overhead is None or s.mac_overhead <= overhead + 1e-12
    # a budget equal to layer by layer is always met, with no more MACs than layer by layer
    b = patchplan.search(g, budget_bytes=layer.arena_bytes, max_grid=4)
    assert b.arena_bytes <= layer.arena_bytes and b.macs <= layer.macs


@pytest.mark.parametrize("seed", [3, 13])
def test_search_breaks_ties_by_fewer_columns_then_patches(seed):
    """Against every cache-mode candidate placed exactly: without a budget the search returns
    the smallest (arena, MACs, columns, patches); with one the fastest that fits, the fewest
    (MACs, columns, arena, patches): a column split costs time the MACs do not show."""
    g = random_graph(seed, n_blocks=4)
    layer = patchplan.layer_schedule(g)
    every = [patchplan.plan_patches(g, k, grid, m)
             for k, grid, m in patchplan.candidates(g, ("cache",), 4)]
    every = [s for s in every if s.arena_bytes < layer.arena_bytes]
    best = min((s.arena_bytes, s.macs, s.columns, s.patches) for s in every)
    assert sum((s.arena_bytes, s.macs) == best[:2] for s in every) > 1  # a tie to break
    s = patchplan.search(g, mode="cache", max_grid=4)
    assert (s.arena_bytes, s.macs, s.columns, s.patches) == best
    for budget in sorted({s.arena_bytes for s in every})[1:4]:
        fits = [s for s in every if s.arena_bytes <= budget]
        fit = min((s.macs, s.columns, s.arena_bytes, s.patches) for s in fits)
        b = patchplan.search(g, budget_bytes=budget, mode="cache", max_grid=4)
        assert (b.macs, b.columns, b.arena_bytes, b.patches) == fit


def test_a_budget_buys_full_width_strips_before_a_smaller_arena():
    """Within a budget the search takes the fastest schedule, not the smallest: of equal MACs
    a grid without column splits, even where a grid with columns has a smaller arena."""
    g = random_graph(0, n_blocks=4)
    smallest = patchplan.search(g, mode="cache", fuse_input=True, max_grid=4)
    assert smallest.columns > 1
    layer = patchplan.layer_schedule(g, True)
    strips = [patchplan.plan_patches(g, k, grid, m, True, layer)
              for k, grid, m in patchplan.candidates(g, ("cache",), 4) if grid[1] == 1]
    budget = min(s.arena_bytes for s in strips)
    assert smallest.arena_bytes < budget < layer.arena_bytes
    b = patchplan.search(g, budget, mode="cache", fuse_input=True, max_grid=4)
    assert (b.columns, b.arena_bytes, b.macs) == (1, budget, smallest.macs)
    assert b.speed_key < smallest.speed_key and layer.speed_key == (1, 1)
    # one byte less and only grids with columns fit
    b = patchplan.search(g, budget - 1, mode="cache", fuse_input=True, max_grid=4)
    assert b.columns > 1 and b.arena_bytes < budget


def test_budget_too_small_says_what_is_reachable():
    g = chain((32, 32), [(3, 2, "same"), (3, 1, "same")], residual=True)
    with pytest.raises(PlanError, match=r"smallest reachable arena is .*To fit: lower the input"):
        patchplan.search(g, budget_bytes=64, max_grid=4)


def test_parse_size():
    assert patchplan.parse_size("256kB") == 256_000
    assert patchplan.parse_size("320KiB") == 327_680
    assert patchplan.parse_size("1MB") == 1_000_000
    assert patchplan.parse_size("100000") == 100_000
    for bad in ("12 parsecs", "kB", "-5", "0"):
        with pytest.raises(ValueError):
            patchplan.parse_size(bad)


# ---- CLI --------------------------------------------------------------------------------------
@pytest.fixture
def ir_file(tmp_path):
    g = chain((24, 24), [(3, 2, "same"), (3, 1, "same")], residual=True)
    path = tmp_path / "m.json"
    g.save(path)
    return path


def test_cli_json_fields(ir_file, capsys):
    assert cli.main(["plan", str(ir_file), "--json", "--max-overhead", "10%"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("layer_peak_bytes", "arena_bytes", "macs", "mac_overhead", "split", "grid",
                "mode"):
        assert key in doc
    assert doc["mode"] in ("layer", "recompute", "cache")
    assert doc["arena_bytes"] <= doc["layer_peak_bytes"] and doc["mac_overhead"] <= 0.1


def test_cli_table_plot_and_errors(ir_file, tmp_path, capsys):
    png = tmp_path / "plot.png"
    assert cli.main(["plan", str(ir_file), "--mode", "recompute", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "layer-by-layer peak" in out and "arena" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["plan", str(ir_file), "--budget", "10B"]) == 2
    assert "smallest reachable arena" in capsys.readouterr().err
    assert cli.main(["plan", "model.tflite"]) == 2
    assert ".tflite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["plan", str(ir_file), "--budget", "lots"])
    assert "cannot read size" in capsys.readouterr().err


def test_cli_budget_picks_the_fewest_macs_that_fit(tmp_path, capsys):
    """--budget changes the question: without it the smallest arena, with it the fewest MACs
    whose arena fits (here a cached-halo schedule with no recomputation)."""
    g = chain((48, 48), [(3, 1, "same"), (3, 2, "same"), (3, 2, "same"), (3, 1, "same")])
    path = tmp_path / "spike.json"
    g.save(path)
    plans = {}
    for budget in (None, "100kB", "8620"):
        extra = ["--budget", budget] if budget else []
        assert cli.main(["plan", str(path), "--json", *extra]) == 0
        plans[budget] = json.loads(capsys.readouterr().out)
    smallest, roomy, tight = plans[None], plans["100kB"], plans["8620"]
    assert smallest["arena_bytes"] < smallest["layer_peak_bytes"] and smallest["mac_overhead"] > 0
    assert roomy["macs"] < smallest["macs"] and roomy["arena_bytes"] <= 100_000
    assert tight["arena_bytes"] <= 8620 and tight["macs"] <= smallest["macs"]
    assert roomy != tight


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_plan_passes_budget_to_the_command():
    """`make plan BUDGET=...` reaches `patchcam plan --budget` (it used to be dropped)."""
    def dry_run(*assignments: str) -> str:
        res = subprocess.run(["make", "-n", "-o", ".venv/.setup-done", "plan", "APP=vww",
                              *assignments], cwd=REPO, capture_output=True, text=True,
                             timeout=30)
        assert res.returncode == 0, res.stderr
        return res.stdout
    assert '--budget "40kB"' in dry_run("BUDGET=40kB")
    assert "--budget" not in dry_run()


# ---- headline figures -------------------------------------------------------------------------
@pytest.mark.slow
def test_mbv2_224_headline():
    from patchcam.compiler.models import preset_graph
    g = preset_graph("mbv2-1.0-224")
    layer = patchplan.layer_schedule(g)
    # 112x112x16 in + 112x112x96 out (MCUNetV2's 1372 kB): depthwise convs run in place
    assert layer.arena_bytes == 1_404_992
    r = patchplan.search(g, mode="recompute", max_overhead=0.2, fuse_input=True)
    fused = patchplan.search(g, mode="cache", fuse_input=True)
    assert fused.arena_bytes < r.arena_bytes and fused.mac_overhead == 0
    # input from the frame buffer: 8x, under MCUNetV2's 172 kB, with no extra MACs
    assert fused.arena_bytes == 175_600 <= 172 * 1024 and fused.saving >= 8.0


@pytest.mark.slow
def test_receptive_field_redistribution_cuts_overhead():
    from patchcam.compiler.models import preset_graph
    over = {}
    for name in ("mbv2-1.0-224", "mbv2-rd-224"):
        g = preset_graph(name)
        k = max(k for k in patchplan.valid_splits(g)
                if g.tensors[g.ops[k].output].shape == (28, 28, 32))
        over[name] = patchplan.plan_patches(g, k, (4, 4), "recompute").mac_overhead
    assert over["mbv2-rd-224"] < over["mbv2-1.0-224"] / 3 + 1e-9


def test_an_app_toml_path_plans_its_untrained_network(tmp_path):
    """`patchcam plan path/to/app.toml` costs a changed config before anything is trained."""
    from patchcam.compiler.models import load_graph
    from patchcam.paths import APPS
    text = (APPS / "person_detect" / "app.toml").read_text()
    text = text.replace("width = 160", "width = 96").replace("height = 128", "height = 64")
    toml = tmp_path / "app.toml"
    toml.write_text(text)
    g = load_graph(str(toml))
    assert g.tensor(g.input).shape[:2] == (64, 96)
    assert g.tensor(g.output).shape[:2] == (8, 12)  # the stride-8 grid of that input


def test_cli_an_exported_app_shows_the_schedule_it_ships(tmp_path, capsys):
    """An exported app's model.json records the schedule its C runs (app.export); `plan`
    shows that one, not a fresh search, with the alternatives beside it, labelled."""
    g = chain((48, 48), [(3, 1, "same"), (3, 2, "same"), (3, 2, "same"), (3, 1, "same")])
    ship = patchplan.plan_patches(g, 1, (2, 2), "cache", fuse_input=True)
    g.meta.update({"app": "spike", "schedule": export.schedule_record(ship, 100_000)})
    path = tmp_path / "model.json"
    g.save(path)
    assert cli.main(["plan", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["shown"].startswith("shipped") and doc["fuse_input"]
    assert (doc["split"], doc["grid"], doc["arena_bytes"]) == (1, [2, 2], ship.arena_bytes)
    labels = [a["label"] for a in doc["alternatives"]]
    assert labels[:2] == ["shipped: what spike's generated C runs", "layer by layer"]
    assert any("smallest arena" in label for label in labels)
    assert cli.main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("table: shipped") and "> shipped: what spike's generated C" in out
    # a budget asks another question: its answer is the table, the shipped one stays listed
    assert cli.main(["plan", str(path), "--budget", "100kB"]) == 0
    out = capsys.readouterr().out
    assert "> search: fastest within 100,000 B" in out and "  shipped:" in out
