"""Generated C for patch schedules (docs/design.md §4.4): ops 0..K run patch by patch from a const
tile table, ops K+1.. layer by layer; the output is bit-identical to `reference.run` (and so
to the layer-by-layer build) under ASan + UBSan with every op fenced into its buffers, the
arena the C declares is the planner's `arena_bytes`, and the same code runs on the Cortex-M7
under QEMU."""

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from patchcam.compiler import codegen, memplan, patchplan, reference
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.ir import Graph
from patchcam.compiler.randgraph import _mac_args, _out_scale, random_graph, random_input
from patchcam.targets import hostbuild

WORKERS = max(2, os.cpu_count() or 2)
GRIDS = [(2, 2), (3, 2), (5, 3), (2, 3), (1, 3), (4, 1), (3, 3)]
HAVE_ARM = shutil.which("arm-none-eabi-gcc") is not None and \
    shutil.which("qemu-system-arm") is not None


def branchy_graph(seed: int, size: tuple[int, int] = (19, 15)) -> Graph:
    """Tensors read by two spatial ops with different kernels (conv 3x3 and depthwise 7x7 of
    the input, depthwise 5x5 and average pooling of a max pool's output), so the narrower
    reader must crop its window out of a wider tile; plus a padded 1x1 conv (not pointwise)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"branchy{seed}", (*size, 4), 0.03, -3)

    def conv(x, cout, k, stride=1, padding="same", act="relu"):
        t = b.tensors[x]
        w, ws, bias = _mac_args(rng, (cout, k, k, t.shape[2]), cout, t.scale)
        return b.conv2d(x, w, ws, bias, _out_scale(rng, t.scale, float(ws.mean()),
                                                     k * k * t.shape[2]),
                        int(rng.integers(-20, 20)), stride, padding, act)

    def dw(x, k, stride=1):
        t = b.tensors[x]
        w, ws, bias = _mac_args(rng, (k, k, t.shape[2]), t.shape[2], t.scale)
        return b.depthwise_conv2d(x, w, ws, bias, _out_scale(rng, t.scale, float(ws.mean()),
                                                             k * k),
                                  int(rng.integers(-20, 20)), stride, "same", "relu6")

    def add(x, y):
        s = max(b.tensors[x].scale, b.tensors[y].scale) * 1.5
        return b.add(x, y, s, int(rng.integers(-20, 20)))

    x = add(conv(b.input, 4, 3), dw(b.input, 7))
    x = b.pool2d("max", x, 3, 2, "same")
    x = add(dw(x, 5), b.pool2d("avg", x, 3, 1, "same"))
    x = conv(x, 6, 1, padding=(1, 0, 0, 1))
    x = dw(x, 3, 2)
    x = b.global_avg_pool(x)
    t = b.tensors[x]
    w, ws, _ = _mac_args(rng, (5, t.size), 1, t.scale)
    x = b.fully_connected(x, w, float(ws[0]), rng.integers(-3000, 3000, 5),
                          _out_scale(rng, t.scale, float(ws[0]), t.size), 0)
    return b.finish(x)


def _graphs(seeds: range) -> list[Graph]:
    gs = [random_graph(s, n_blocks=6) for s in seeds]
    gs += [branchy_graph(s, size) for s, size in enumerate([(19, 15), (23, 9)])]
    # odd sizes that no grid divides, few and many channels
    gs += [random_graph(200 + j, size=size, channels=c, n_blocks=6)
           for j, (size, c) in enumerate([((17, 23), 3), ((31, 13), 8), ((25, 19), 5)])]
    return gs


def _last_split(g: Graph, grid: tuple[int, int]) -> int:
    """The last valid split whose output can be cut into grid (not the global pooling)."""
    return max(k for k in patchplan.valid_splits(g)
               if g.tensors[g.ops[k].output].shape[0] >= grid[0]
               and g.tensors[g.ops[k].output].shape[1] >= grid[1])


def _cases(graphs: list[Graph], splits_per_graph: int = 3):
    """(graph, split, grid): the first, middle and last valid split of each graph, grids
    cycling through GRIDS (clipped to op K's output)."""
    out, n = [], 0
    for g in graphs:
        splits = patchplan.valid_splits(g)
        picks = sorted({splits[0], splits[len(splits) // 2], splits[-1]})[:splits_per_graph]
        for k in picks:
            h, w = g.tensors[g.ops[k].output].shape[:2]
            grid = GRIDS[n % len(GRIDS)]
            n += 1
            grid = (min(grid[0], h), min(grid[1], w))
            if grid[0] * grid[1] > 1:
                out.append((g, k, grid))
    return out


def _check(case, tmp: Path, fuse: bool = False, mode: str = "recompute",
           variant: str = "portable") -> str | None:
    g, k, grid = case
    s = patchplan.plan_patches(g, k, grid, mode, fuse_input=fuse)
    where = tmp / f"{g.name}-k{k}-{grid[0]}x{grid[1]}-{mode}{'-fused' if fuse else ''}-{variant}"
    exe = hostbuild.build_host(g, where, hostbuild.HostConfig(variant=variant), schedule=s)
    header = (where / "model" / "model.h").read_text()
    declared = int(re.search(r"#define MODEL_ARENA_BYTES (\d+)", header).group(1))
    if declared != s.arena_bytes:
        return f"{where.name}: declares {declared} arena bytes, planned {s.arena_bytes}"
    x = random_input(g, k)
    y = hostbuild.run_host(exe, x)
    want = reference.run(g, x).reshape(-1)
    if not np.array_equal(y, want):
        return f"{where.name}: {int((y != want).sum())} of {want.size} values differ"
    return None


def _coverage(cases) -> dict[str, bool]:
    """What the cases exercise inside the patch stage."""
    seen = {"k1": False, "k3": False, "k5": False, "k7": False, "stride2": False,
            "add": False, "pool": False, "crop": False, "row_output": False, "uneven": False}
    for g, k, grid in cases:
        s = patchplan.plan_patches(g, k, grid, "recompute", place=False)
        for op in g.ops[:k + 1]:
            if op.kind != "add":
                seen[f"k{op.kernel[0]}"] = seen.get(f"k{op.kernel[0]}", False) or True
                seen["stride2"] |= op.stride[0] == 2
            seen["add"] |= op.kind == "add"
            seen["pool"] |= op.kind in ("avg_pool2d", "max_pool2d")
        rows = patchplan.derive_axis(g, k, 0, grid[0])
        cols = patchplan.derive_axis(g, k, 1, grid[1])
        seen["crop"] |= any(
            cols.reads[i][0][b] != cols.need[op.inputs[0]][b]
            for i, op in enumerate(g.ops[:k + 1]) if op.kind != "add"
            and not memplan.is_pointwise(op) for b in range(grid[1]))
        seen["row_output"] |= grid[1] > 1
        hk, wk = g.tensors[g.ops[k].output].shape[:2]
        seen["uneven"] |= hk % grid[0] != 0 or wk % grid[1] != 0
        assert s.split == k and rows.parts and cols.parts
    return seen


def _run_all(cases, tmp: Path, fuse: bool = False, mode: str = "recompute") -> None:
    """Every other case on each code path: the portable kernels and the DSP algorithms
    (emulated), whose tile calls take other routes (output rows longer than the tile's)."""
    variants = list(hostbuild.VARIANTS)
    for v in variants:  # compile each runtime once, before the threads
        hostbuild.build_libs(hostbuild.HostConfig(variant=v))
    jobs = [(c, variants[i % len(variants)]) for i, c in enumerate(cases)]
    with ThreadPoolExecutor(WORKERS) as pool:
        errors = [e for e in pool.map(lambda j: _check(j[0], tmp, fuse, mode, j[1]), jobs) if e]
    assert not errors, "\n".join(errors)


def test_random_patch_schedules_bit_exact(tmp_path):
    cases = _cases(_graphs(range(0, 24)))
    seen = _coverage(cases)
    assert all(seen.values()), seen
    assert len(cases) >= 50
    _run_all(cases, tmp_path)


def test_fused_input_patch_schedules_bit_exact(tmp_path):
    """fuse_input: the stage reads its windows from an input source (here model_invoke(): the
    whole input in model_input(), outside the arena). Same checks (ASan fence, declared
    arena == the planner's fused arena)."""
    cases = _cases(_graphs(range(0, 6)), splits_per_graph=2)
    assert len(cases) >= 12
    for g, k, grid in cases[:4]:  # the input is no longer in the arena
        fused = patchplan.plan_patches(g, k, grid, "recompute", fuse_input=True)
        assert fused.arena_bytes <= patchplan.plan_patches(g, k, grid, "recompute").arena_bytes
    _run_all(cases, tmp_path, fuse=True)


def test_cache_mode_patch_schedules_bit_exact(tmp_path):
    """Halo caching: each op computes only its new piece; the halo rows / columns come from
    the row / column caches (pc_patch_halo). Same checks, with and without fused input."""
    graphs = _graphs(range(0, 12))
    cases = _cases(graphs)
    assert len(cases) >= 30
    halos = sum(1 for g, k, grid in cases for op in g.ops[:k]
                if patchplan.derive_axis(g, k, 0, grid[0], True).halo[op.output]
                and patchplan.derive_axis(g, k, 1, grid[1], True).halo[op.output])
    assert halos >= 10  # row and column caches are exercised
    _run_all(cases[::2], tmp_path, mode="cache")
    _run_all(cases[1::2], tmp_path, fuse=True, mode="cache")


def test_fused_input_api(tmp_path):
    g = random_graph(3, n_blocks=6)
    s = patchplan.plan_patches(g, _last_split(g, (2, 2)), (2, 2), "recompute", fuse_input=True)
    files = codegen.render(g, schedule=s)
    assert "#define MODEL_FUSED_INPUT 1" in files["model.h"]
    assert "void model_invoke_frame(const int8_t *frame);" in files["model.h"]
    assert "void model_invoke_source(const struct pc_input_source *source);" in files["model.h"]
    assert '#include "pc_' not in files["model.h"]  # it needs nothing from the runtime
    text = files["model.c"]
    assert "static int8_t model_frame[MODEL_INPUT_BYTES];" in text  # not in the arena
    # the stage asks the source for each window; a whole input in a buffer is one such source
    assert "source->read(source->ctx, &model_input_windows[patch]" in text
    assert "pc_patch_copy(" not in text.split("void model_invoke_source")[1].split("\n}\n")[0]
    assert "const pc_input_source_t source = { pc_input_read_buffer, frame };" in text
    assert "MODEL_FUSED_INPUT" not in codegen.render(g)["model.h"]


@pytest.mark.slow
def test_more_random_patch_schedules_bit_exact(tmp_path):
    graphs = [random_graph(s, n_blocks=8) for s in range(300, 340)]
    cases = _cases(graphs) + _cases(_graphs(range(24, 48)))
    _run_all(cases, tmp_path)
    _run_all(cases[::2], tmp_path, mode="cache")
    _run_all(cases[1::2], tmp_path, fuse=True, mode="cache")


def test_declared_arena_symbol_equals_planned(tmp_path):
    """The object file's model_arena has exactly the planner's size (and it is smaller than
    layer by layer's)."""
    if shutil.which("nm") is None:
        pytest.skip("needs nm")
    for seed, k_pick, grid in ((5, 0, (3, 2)), (9, -1, (5, 3))):
        g = random_graph(seed, n_blocks=6)
        k = patchplan.valid_splits(g)[k_pick]
        h, w = g.tensors[g.ops[k].output].shape[:2]
        s = patchplan.plan_patches(g, k, (min(grid[0], h), min(grid[1], w)), "recompute")
        files = codegen.generate(g, tmp_path / str(seed), schedule=s)
        obj = tmp_path / f"model{seed}.o"
        inc = [f"-I{d}" for d in [tmp_path / str(seed), *codegen.runtime_include_dirs()]]
        subprocess.run(["gcc", "-std=c99", "-O2", *inc, "-c", str(files["model.c"]), "-o",
                        str(obj)], check=True)
        syms = subprocess.run(["nm", "-S", str(obj)], capture_output=True, text=True,
                              check=True).stdout
        sizes = [int(line.split()[1], 16) for line in syms.splitlines()
                 if line.endswith(" model_arena")]
        assert sizes == [s.arena_bytes]


def test_generated_patch_code_is_a_table_and_a_loop():
    g = random_graph(3, n_blocks=6)
    s = patchplan.plan_patches(g, _last_split(g, (3, 2)), (3, 2), "recompute")
    text = codegen.render(g, schedule=s)["model.c"]
    assert "static const pc_tile_t model_tiles[MODEL_PATCHES][MODEL_STAGE_OPS]" in text
    assert "#define MODEL_PATCHES 6" in text
    assert text.count("for (int32_t patch = 0; patch < MODEL_PATCHES; patch++)") == 1
    assert text.count("/* patch ") == 2 * 6  # the input windows and the tile table
    # layer-by-layer code is unchanged by the new option
    assert codegen.render(g) == codegen.render(g, schedule=patchplan.layer_schedule(g))


def test_arena_fence_catches_a_tile_kernel_writing_outside_its_buffer(tmp_path):
    """Shrink op 0's output buffer in the fence table: ASan must stop the patch loop."""
    g = random_graph(0, n_blocks=6)
    s = patchplan.plan_patches(g, _last_split(g, (2, 2)), (2, 2), "recompute")
    files = codegen.generate(g, tmp_path / "model", schedule=s)
    text = files["model.c"].read_text()
    head, table = text.split("model_op_regions[", 1)
    first_row = table.split("\n", 2)[1]  # op 0: { in }, { out }, ...
    regions = first_row.split("}, {")
    out_off, out_size = regions[1].strip(" {}").split(", ")
    regions[1] = f"{out_off}, {int(out_size) // 2}"
    files["model.c"].write_text(head + "model_op_regions[" + table.replace(
        first_row, "}, {".join(regions), 1))
    exe = hostbuild.build_host(tmp_path / "model", tmp_path)
    with pytest.raises(hostbuild.HostRunError, match="AddressSanitizer"):
        hostbuild.run_host(exe, random_input(g))


# ---- a zoo model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mcu_s_96():
    pytest.importorskip("torch")
    from patchcam.compiler.models import preset_graph
    g = preset_graph("mcu-s-96")
    return g, patchplan.search(g, mode="recompute")


def _declared(model_dir: Path) -> int:
    text = (model_dir / "model.h").read_text()
    return int(re.search(r"#define MODEL_ARENA_BYTES (\d+)", text).group(1))


def test_zoo_preset_patch_equals_layer_by_layer(mcu_s_96, tmp_path):
    g, s = mcu_s_96
    assert s.mode == "recompute" and s.arena_bytes < s.layer_peak_bytes
    x = random_input(g)
    patch_exe = hostbuild.build_host(g, tmp_path / "patch", schedule=s)
    layer_exe = hostbuild.build_host(g, tmp_path / "layer")
    assert _declared(tmp_path / "patch" / "model") == s.arena_bytes
    assert _declared(tmp_path / "layer" / "model") == memplan.plan_layers(g).arena_bytes \
        == s.layer_peak_bytes
    y_patch, y_layer = hostbuild.run_host(patch_exe, x), hostbuild.run_host(layer_exe, x)
    assert np.array_equal(y_patch, y_layer)
    assert np.array_equal(y_patch, reference.run(g, x).reshape(-1))


# ---- on the Cortex-M7 -----------------------------------------------------------------------
def _check_on_m7(g: Graph, s: patchplan.Schedule, tmp: Path, portable: bool = False) -> None:
    from patchcam.targets import armbuild, qemu
    codegen.generate(g, tmp / "model", schedule=s)
    x = random_input(g, 1)
    b = armbuild.build(tmp / "model", tmp / "build", portable=portable)
    out, status, _ = qemu.run_qemu(b.elf, x.tobytes(), timeout_s=120)
    assert status == 0
    assert out == reference.run(g, x).tobytes()


@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc-arm-none-eabi and qemu-system-arm")
@pytest.mark.parametrize("seed,grid,portable", [(4, (3, 2), False), (203, (5, 3), True)])
def test_patch_code_on_m7_matches_reference(tmp_path, seed, grid, portable):
    if seed >= 200:
        g = random_graph(seed, size=(17, 23), channels=3, n_blocks=6)
    else:
        g = random_graph(seed, n_blocks=6)
    k = _last_split(g, grid)
    _check_on_m7(g, patchplan.plan_patches(g, k, grid, "recompute"), tmp_path, portable)


@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc-arm-none-eabi and qemu-system-arm")
def test_zoo_preset_patch_code_on_m7(mcu_s_96, tmp_path):
    g, s = mcu_s_96
    _check_on_m7(g, s, tmp_path)


@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc-arm-none-eabi and qemu-system-arm")
def test_fused_input_patch_code_on_m7(tmp_path):
    g = random_graph(4, n_blocks=6)
    s = patchplan.plan_patches(g, _last_split(g, (3, 2)), (3, 2), "recompute", fuse_input=True)
    _check_on_m7(g, s, tmp_path)
    assert _declared(tmp_path / "model") == s.arena_bytes


@pytest.mark.skipif(not HAVE_ARM, reason="needs gcc-arm-none-eabi and qemu-system-arm")
def test_cache_mode_patch_code_on_m7(mcu_s_96, tmp_path):
    g, _ = mcu_s_96
    s = patchplan.search(g, mode="cache")
    assert s.mode == "cache" and s.macs == g.total_macs  # no recompute
    _check_on_m7(g, s, tmp_path, portable=True)
    assert _declared(tmp_path / "model") == s.arena_bytes
