"""`make bench` records: every field the issue names, measured on the emulated Cortex-M7,
for layer-by-layer and patch-based code (bench itself refuses a Cortex-M7 output that
differs from the reference, or a declared arena that differs from the plan)."""

import json
from dataclasses import asdict

import pytest

from patchcam.app import export
from patchcam.compiler import patchplan
from patchcam.compiler.randgraph import random_graph
from patchcam.targets import armbuild, bench, benchplot


@pytest.mark.slow
def test_bench_records_have_measured_fields(tmp_path):
    g = random_graph(4, size=(32, 32), channels=4, n_blocks=6)
    assert patchplan.search(g, max_overhead=bench.MAX_OVERHEAD, mode="recompute").mode \
        == "recompute"  # the planner finds a patch schedule for this graph
    # exported as an app would be, within a budget of the smallest cached arena + 1 kB
    budget = patchplan.search(g, mode="cache", fuse_input=True).arena_bytes + 1024
    ship = patchplan.search(g, budget, fuse_input=True)
    g.meta["schedule"] = export.schedule_record(ship, budget)
    path = tmp_path / "rand.json"
    g.save(path)
    records = bench.bench_model(str(path))
    by = {(r.schedule, r.kernels): r for r in records}
    assert sorted(by) == sorted((s, k) for s in bench.SCHEDULES for k in ("dsp", "portable"))
    for r in records:
        assert r.model == g.name and r.params == g.total_params
        assert r.m7_instructions > r.macs  # every MAC costs at least one instruction
        assert r.instr_per_mac == pytest.approx(r.m7_instructions / r.macs, abs=1e-3)
        assert r.flash_bytes > r.params and r.fits_stm32f746
        assert r.tflm_arena_bytes > r.arena_bytes > 0
        assert r.tflm_ratio == pytest.approx(r.arena_bytes / r.tflm_arena_bytes)
    for k in ("dsp", "portable"):
        layer, patch, fused = by["layer", k], by["patch", k], by["patch-fused", k]
        cache = by["cache-fused", k]
        assert cache.mode == "cache" and cache.macs == layer.macs  # nothing recomputed
        assert cache.arena_bytes < layer.arena_bytes
        assert layer.macs == g.total_macs and layer.mode == "layer"
        assert patch.mode == "recompute" and patch.grid and patch.split >= 0
        assert patch.arena_bytes < layer.arena_bytes  # the point of patches
        assert fused.arena_bytes <= patch.arena_bytes and fused.frame_buffer_bytes > 0
        shipped = by["shipped", k]  # what the export recorded, not a search of the bench's
        assert (shipped.split, shipped.grid, shipped.arena_bytes) == \
            (ship.split, list(ship.grid), ship.arena_bytes)
    assert by["layer", "dsp"].m7_instructions < by["layer", "portable"].m7_instructions
    assert by["patch", "dsp"].m7_instructions < by["patch", "portable"].m7_instructions
    head = bench.table(records).splitlines()[0]
    assert "instr" in head and "arena / TFLM" in head
    out = tmp_path / "bench.json"
    assert bench.main([str(path), "--no-tflm", "--kernels", "dsp", "--schedules",
                       "layer,patch", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    keys = {"model", "schedule", "kernels", "macs", "params", "arena_bytes", "flash_bytes",
            "m7_instructions", "instr_per_mac", "mode", "split", "grid", "tflm_arena_bytes"}
    assert keys <= set(saved[0])
    assert [r["schedule"] for r in saved] == ["layer", "patch"]


def _rec(model: str, kernels: str, n: int, vs: dict | None = None) -> bench.Record:
    kinds = {"pointwise": {"macs": 600, "instructions": n // 2, "instr_per_mac": n / 1200,
                           "ops": 2},
             "depthwise": {"macs": 400, "instructions": n // 4, "instr_per_mac": n / 1600,
                           "ops": 1},
             "driver": {"macs": 0, "instructions": n // 4, "instr_per_mac": None, "ops": 0}}
    return bench.Record(model, "layer", kernels, 1000, 10, 100, 1000, 1000, True, n, n / 1000,
                        per_kind=kinds, vs_cmsis_nn=vs)


def test_docs_tables_come_from_bench_json(tmp_path, capsys):
    vs = {"commit": "abc", "kernels": "dsp", "instructions": 4000,
          "cmsis_nn_instructions": 8000, "ratio": 0.5,
          "per_kind": {"pointwise": {"macs": 600, "instructions": 2000,
                                     "cmsis_nn_instructions": 3000, "ratio": 0.667}}}
    records = [_rec("m1", "dsp", 4000, vs), _rec("m1", "cmsis-nn", 8000), _rec("m2", "dsp", 8000)]
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps([asdict(r) for r in records]))
    assert bench.load_records(saved) == records
    text = bench.markdown_tables(records)
    assert "| `m1` | layer | 0.0 M | 4.00 | 3.33 (50.0 %) | 2.50 (25.0 %) | - | 25.0 % |" in text
    # m1: a memory row, a kind row, a CMSIS-NN row; the CMSIS-NN run is no row of its own
    assert "`m2`" in text and text.count("| `m1` |") == 3
    assert "CMSIS-NN abc" in text and "| `m1` | 0.0 M | 0.0 M | 0.500 | 0.667 | - | - | - |" in text
    doc = tmp_path / "doc.md"
    doc.write_text(f"# t\n\nbefore\n{bench.DOCS_BEGIN}\nstale\n{bench.DOCS_END}\nafter\n")
    assert bench.main(["--from-json", str(saved), "--docs", str(doc)]) == 0
    new = doc.read_text()
    assert "stale" not in new and text in new and new.endswith(f"{bench.DOCS_END}\nafter\n")
    assert not bench.update_docs(doc, records)  # idempotent
    doc.write_text("no markers\n")
    with pytest.raises(ValueError, match="bench-tables|bench tables"):
        bench.update_docs(doc, records)
    doc.write_text(f"{bench.HEADLINE_END} {bench.HEADLINE_BEGIN}\n")
    with pytest.raises(ValueError, match="needs one"):
        bench.update_docs(doc, records)
    capsys.readouterr()


def test_bad_arguments_and_failed_builds_are_one_error_line(tmp_path, capsys, monkeypatch):
    """Checked before minutes of measuring: a schedule or kernel path that does not exist, a
    --docs file without a section, a --from-json that is not one; a build that fails during
    the run is an error line, not a traceback, and what was measured before stays saved."""
    doc = tmp_path / "doc.md"
    doc.write_text("no markers\n")
    for argv, want in ((["--schedules", "layer,tiles"], "unknown schedule 'tiles'"),
                       (["--kernels", "neon"], "unknown kernels 'neon'"),
                       (["--docs", str(doc)], "needs a"),
                       (["--docs", str(tmp_path / "none.md")], "No such file"),
                       (["--from-json", str(doc)], "not a bench.json")):
        with pytest.raises(SystemExit) as e:
            bench.main(argv)
        assert e.value.code == 2 and want in capsys.readouterr().err, argv
    done = [_rec("m1", "dsp", 4000)]

    def fake_bench_model(spec, **kw):
        if spec == "broken":
            raise armbuild.BuildError("broken: arm build failed:\nmodel.c:1: error: oops")
        return done

    monkeypatch.setattr(bench, "bench_model", fake_bench_model)
    out = tmp_path / "bench.json"
    assert bench.main(["m1", "broken", "--no-tflm", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: broken: arm build failed:\nmodel.c:1: error: oops" in err
    assert "Traceback" not in err and "1 records measured before that are in" in err
    assert bench.load_records(out) == done


def test_memory_and_headline_tables_come_from_the_records(tmp_path):
    lay = bench.Record("m", "layer", "dsp", 1000, 10, 9000, 500, 600, True, 4000, 4.0,
                       tflm_arena_bytes=12000)
    cache = bench.Record("m", "cache-fused", "dsp", 1000, 10, 3000, 520, 600, True, 5000, 5.0,
                         mode="cache", split=4, grid=[2, 3], frame_buffer_bytes=768,
                         tflm_arena_bytes=12000)
    port = bench.Record("m", "layer", "portable", 1000, 10, 9000, 500, 600, True, 9000, 9.0)
    records = [lay, cache, port]
    mem = bench.memory_table(records)
    assert ("| `m` | cache-fused | 2x3, ops 0..4 | 3,000 B | 768 B | 12,000 B | 0.250 | 520 B |"
            in mem)
    assert "| `m` | layer | - | 9,000 B | - | 12,000 B | 0.750 |" in mem
    assert mem.count("| `m` |") == 2  # DSP records only
    head = bench.headline_table(records)
    assert "| `m` | 1,000 | 9,000 B, 4.00 | 3,000 B (cache-fused) | 12,000 B | 0.250 |" in head
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.HEADLINE_BEGIN}\nold\n{bench.HEADLINE_END}\nrest\n")
    assert bench.update_docs(readme, records)
    assert head in readme.read_text() and "old" not in readme.read_text()
    assert bench.DOCS_BEGIN not in readme.read_text()  # only the sections the file has


def test_the_docs_tables_are_the_committed_records(tmp_path):
    """README.md and docs/patch_inference.md hold exactly the tables of docs/bench.json (the
    records `bench --docs` wrote them from): a hand edit or a stale table fails here."""
    records = bench.load_records(bench.DOCS_RECORDS)
    assert {r.model for r in records} >= {"mbv2-0.35-144", "vww", "person_detect", "mask_detect"}
    for doc in bench.DOCS_FILES:
        copy = tmp_path / doc.name
        copy.write_text(doc.read_text())
        assert not bench.update_docs(copy, records), f"{doc.name}: tables differ from " \
            "docs/bench.json; rerun `patchcam bench --from-json build/bench.json --docs " \
            "README.md docs/patch_inference.md`"


def _profiled(kernels: str, steps: list[tuple[int, str, int, int]], model: str = "m",
              schedule: str = "layer") -> bench.Record:
    """A record whose per-op profile is steps: (op, kind, MACs, instructions)."""
    per_op = [{"op": op, "label": f"{op} {kind}", "kind": kind, "callees": [], "macs": macs,
               "instructions": n, "instr_per_mac": n / macs if macs else None,
               "functions": {}} for op, kind, macs, n in steps]
    macs = sum(s[2] for s in steps)
    total = sum(s[3] for s in steps)
    return bench.Record(model, schedule, kernels, macs, 10, 100, 1000, 100, True, total,
                        total / macs, per_op=per_op)


def test_profile_plots_set_cmsis_nn_beside_ours_op_by_op(tmp_path, capsys):
    ours = _profiled("dsp", [(0, "conv2d", 100, 150), (-1, "input_copy", 0, 20),
                             (1, "pointwise", 200, 220), (-1, "halo", 0, 5)])
    theirs = _profiled("cmsis-nn", [(0, "conv2d", 100, 500), (1, "pointwise", 200, 700)])
    portable = _profiled("portable", [(0, "conv2d", 100, 900), (1, "pointwise", 200, 990)])
    s = benchplot.series(ours, theirs)
    assert s.ticks == ["0", "in", "1", "h"]
    assert s.instructions == [150, 20, 220, 5] and s.ipm == [1.5, None, 1.1, None]
    # matched by op index, not by position: the copy and halo steps have no counterpart
    assert s.theirs_instructions == [500, None, 700, None]
    assert s.theirs_ipm == [5.0, None, 3.5, None]
    got = benchplot.pairs([ours, theirs, portable])  # CMSIS-NN beside our DSP kernels only
    assert [(o.kernels, t and t.kernels) for o, t in got] == [("dsp", "cmsis-nn"),
                                                               ("portable", None)]
    hostile = _profiled("dsp", [(0, "conv2d", 1, 2)], model="../../up")
    assert benchplot.plot_path(tmp_path, hostile).parent == tmp_path  # a name is no path
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps([asdict(r) for r in (ours, theirs, portable)]))
    out = tmp_path / "plots"
    assert bench.main(["--from-json", str(saved), "--plot", str(out)]) == 0
    pngs = sorted(p.name for p in out.iterdir())
    assert pngs == ["m-layer-dsp.png", "m-layer-portable.png"]
    assert all((out / p).read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    assert f"2 plots in {out}/" in capsys.readouterr().out
    # docs/bench.json keeps no per-op profiles: one line says where they are
    saved.write_text(json.dumps([{**asdict(r), "per_op": None} for r in (ours, theirs)]))
    with pytest.raises(SystemExit) as e:
        bench.main(["--from-json", str(saved), "--plot", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err  # argparse's usage, then one line
    last = err.strip().splitlines()[-1]
    assert "no per-op profiles" in last and "make bench" in last
