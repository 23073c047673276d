"""C runtime on the host == numpy reference, bit for bit (docs/design.md §5.2), under ASan + UBSan,
on both code paths (portable C and the Cortex-M DSP algorithms, emulated), with every op of
the arena fenced off from the others; plus the generated C's hygiene on gcc and
arm-none-eabi-gcc."""

import dataclasses
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from patchcam.compiler import codegen, memplan, records, reference
from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.ir import Graph, Op
from patchcam.compiler.randgraph import random_graph, random_input
from patchcam.targets import hostbuild

VARIANTS = [hostbuild.HostConfig(variant=v) for v in hostbuild.VARIANTS]
N_RANDOM = 48
WORKERS = max(2, os.cpu_count() or 2)


def _w(rng, shape):
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def _scale(b: GraphBuilder, x: str, w_scales, fan_in: int) -> float:
    """An output scale that puts about +-3 sigma of the accumulator into int8 (no saturation):
    the spread of x is measured by running the graph built so far."""
    t = b.tensors[x]
    partial = Graph(b.name, dict(b.tensors), list(b.ops), b.input, x)
    v = reference.run_all(partial, random_input(partial))[x].astype(np.float64) - t.zero_point
    x_std = max(float(v.std()), 1.0)
    return float(np.sqrt(fan_in) * x_std * 60 * t.scale * np.mean(w_scales) * 6 / 255)


def edge_graph(seed: int) -> Graph:
    """Shapes the random graphs rarely reach: channel counts around multiples of 4, odd
    pixel counts, explicit asymmetric pads, a padded 1x1 conv, non-square kernels,
    depthwise 5x5 / 7x7 with stride 2, pooling with padding, a long FC."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"edge{seed}", (15, 13, 3), 0.02, -5)

    def conv(x, cout, kh, kw, **kw_args):
        cin = b.tensors[x].shape[2]
        ws = rng.uniform(0.002, 0.02, cout)
        return b.conv2d(x, _w(rng, (cout, kh, kw, cin)), ws, rng.integers(-3000, 3000, cout),
                        _scale(b, x, ws, kh * kw * cin), int(rng.integers(-20, 20)), **kw_args)

    def dw(x, k, **kw_args):
        c = b.tensors[x].shape[2]
        ws = rng.uniform(0.002, 0.02, c)
        return b.depthwise_conv2d(x, _w(rng, (k, k, c)), ws, rng.integers(-3000, 3000, c),
                                  _scale(b, x, ws, k * k), int(rng.integers(-20, 20)), **kw_args)

    x = conv(b.input, 13, 3, 3, stride=2, activation="relu6")  # like a stem: K = 27
    x = conv(x, 9, 1, 1, padding=(1, 0, 0, 1))
    x = conv(x, 8, 2, 3, padding=(0, 2, 1, 0))
    x = dw(x, 5, stride=2)
    x = conv(x, 21, 1, 1, activation="relu")
    x = dw(x, 7)
    x = b.pool2d("max", x, 3, 2, "same")
    x = b.pool2d("avg", x, (2, 3), 1, (1, 1, 0, 2))
    y = conv(x, 21, 1, 1)
    x = b.add(x, y, 1.5 * max(b.tensors[x].scale, b.tensors[y].scale), -10, "relu")
    n = b.tensors[x].size
    x = b.fully_connected(x, _w(rng, (7, n)), 0.01, rng.integers(-3000, 3000, 7),
                          _scale(b, x, [0.01], n), 3)
    return b.finish(x)


def big_window_graph() -> Graph:
    """A global average pool of 17 x 16 = 272 taps: past the 256 whose sums the DSP path's
    int16 lanes hold, so it takes the one-channel loop."""
    b = GraphBuilder("bigpool", (17, 16, 6), 0.02, -5)
    return b.finish(b.global_avg_pool(b.input))


def _graphs() -> list[Graph]:
    gs = [random_graph(s) for s in range(N_RANDOM)]
    gs += [random_graph(100 + s, channels=c, n_blocks=6) for s, c in enumerate((4, 5, 12, 16))]
    gs += [edge_graph(s) for s in range(3)]
    gs += [random_graph(200 + s, mean_head=True) for s in range(2)]  # imported MEAN
    return gs


def _check(g: Graph, tmp: Path) -> list[str]:
    """Build g for every variant, run two inputs each; return the mismatches."""
    errors = []
    xs = [random_input(g, s) for s in range(2)]
    want = [reference.run(g, x).reshape(-1) for x in xs]
    for cfg in VARIANTS:
        exe = hostbuild.build_host(g, tmp / g.name, cfg)
        for x, w in zip(xs, want, strict=True):
            y = hostbuild.run_host(exe, x)
            if not np.array_equal(y, w):
                errors.append(f"{g.name} [{cfg.tag}]: {int((y != w).sum())} of {w.size} differ")
    return errors


def test_random_graphs_bit_exact(tmp_path):
    graphs = _graphs()
    kinds = {op.kind for g in graphs for op in g.ops}
    assert kinds == set(codegen.SUPPORTED)
    ks = {op.kernel for g in graphs for op in g.ops if op.kind == "depthwise_conv2d"}
    assert {(3, 3), (5, 5), (7, 7)} <= ks
    in_place = {(op.kernel, op.stride) for g in graphs
                for op in g.ops if op.output in memplan.plan_layers(g).aliases
                and op.kind == "depthwise_conv2d"}  # depthwise run in place
    assert {((3, 3), (1, 1)), ((3, 3), (2, 2)), ((5, 5), (1, 1)), ((7, 7), (1, 1))} <= in_place
    assert {op.stride for g in graphs for op in g.ops if op.kind != "fully_connected"} \
        >= {(1, 1), (2, 2)}
    hostbuild.build_libs(VARIANTS[0])  # compile each runtime once, before the threads
    hostbuild.build_libs(VARIANTS[1])
    with ThreadPoolExecutor(WORKERS) as pool:
        errors = [e for errs in pool.map(lambda g: _check(g, tmp_path), graphs) for e in errs]
    assert not errors, "\n".join(errors)


def test_an_average_pool_past_256_taps_does_not_wrap(tmp_path):
    """The extremes of int8 over 272 taps sum beyond an int16 lane (-34,816 and 34,544):
    a window that large must not take the DSP path's lane sums."""
    g = big_window_graph()
    h, w, c = g.tensors[g.input].shape
    xs = [np.full((h, w, c), v, np.int8) for v in (-128, 127)]
    xs.append(np.where(np.arange(h * w * c).reshape(h, w, c) % 5 == 0, 127, -128).astype(np.int8))
    for cfg in VARIANTS:
        exe = hostbuild.build_host(g, tmp_path / cfg.tag, cfg)
        for x in xs:
            assert np.array_equal(hostbuild.run_host(exe, x), reference.run(g, x).reshape(-1))


def narrow_ks() -> list[int]:
    """The K values with a narrow pointwise kernel of their own (PW_NARROW_KS, pc_conv.c)."""
    text = (codegen.RUNTIME_DIR / "pc_conv.c").read_text()
    line = re.search(r"#define PW_NARROW_KS\(X\)(.*)", text).group(1)
    return [int(k) for k in re.findall(r"X\((\d+)\)", line)]


def test_pointwise_paths_are_bit_exact(tmp_path):
    """Every K with an unrolled narrow kernel, and K past them, whose 18 channels the
    compiler writes as pair records (104, 120, 144, 192, 200: each K / 8 % 4, so every
    number of groups ahead of the records loop), on a 4x4 map (16 pixels: below the narrow
    kernels), 5x5 (the fewest pixels that take them; one pixel after the quads) and 6x7 (two
    after them); 24 where too few pixels for the narrow kernel and 72 take the six-pixel one.
    K = 16 and 96 into 13 and 23 channels (two parts, the last of them odd) leave an odd
    last channel, on 6x7 and (16 and 56 into 7) on 5x5, whose one pixel after the quads the
    narrow kernels take themselves; so do 144 and 200 into 19, which keep their int8 filter
    and take the six- and four-pixel kernels. K = 8 into a multiple of four channels takes
    the one-pixel kernel (pointwise_k8): below its 8 pixels (2x3), one chunk (20), two chunks
    (68: 64 + 4), and a stride-2 1x1 layer, whose pixels are not contiguous (a run a row);
    so does K = 104 into records."""
    ks = narrow_ks()
    assert {8, 56, 96} <= set(ks)
    rng = np.random.default_rng(7)
    graphs = []
    for k in [*ks, 24, 72, 104, 120, 144, 192, 200]:
        for h, w in ((4, 4), (5, 5), (6, 7)) if k in (8, 16, 24, 72, 144, 192, 200) else \
                ((5, 5), (6, 7)):
            b = GraphBuilder(f"pw{k}_{h}x{w}", (h, w, k), 0.02, -3)
            ws = rng.uniform(0.002, 0.02, 18)
            y = b.conv2d(b.input, _w(rng, (18, 1, 1, k)), ws, rng.integers(-3000, 3000, 18),
                         _scale(b, b.input, ws, k), int(rng.integers(-20, 20)))
            graphs.append(b.finish(y))
    for k, cout, (h, w) in ((16, 13, (6, 7)), (96, 23, (6, 7)), (144, 19, (6, 7)),
                            (200, 19, (6, 7)), (16, 13, (5, 5)), (56, 7, (5, 5))):
        b = GraphBuilder(f"pw{k}_odd{cout}_{h}x{w}", (h, w, k), 0.02, 9)
        ws = rng.uniform(0.002, 0.02, cout)
        y = b.conv2d(b.input, _w(rng, (cout, 1, 1, k)), ws, rng.integers(-3000, 3000, cout),
                     _scale(b, b.input, ws, k), int(rng.integers(-20, 20)))
        graphs.append(b.finish(y))
    for k, (h, w, stride, cout) in ((8, (2, 3, 1, 20)), (8, (4, 4, 1, 20)), (8, (6, 7, 1, 68)),
                                    (8, (9, 11, 2, 24)), (104, (9, 11, 2, 24))):
        b = GraphBuilder(f"pwk{k}_{h}x{w}s{stride}_{cout}", (h, w, k), 0.02, 5)
        ws = rng.uniform(0.002, 0.02, cout)
        y = b.conv2d(b.input, _w(rng, (cout, 1, 1, k)), ws, rng.integers(-3000, 3000, cout),
                     _scale(b, b.input, ws, k), int(rng.integers(-20, 20)), stride=stride,
                     padding="valid")
        graphs.append(b.finish(y))
    for cfg in VARIANTS:  # compile each runtime once, before the threads
        hostbuild.build_libs(cfg)
    with ThreadPoolExecutor(WORKERS) as pool:
        errors = [e for errs in pool.map(lambda g: _check(g, tmp_path), graphs) for e in errs]
    assert not errors, "\n".join(errors)


def test_rgb_stem_paths_are_bit_exact(tmp_path):
    """The RGB stem (3x3 over 3 channels) widens its inside windows straight from the input
    (widen_rgb4, pc_conv.c), reading across kernel rows; the border windows and stems with
    too many channels for the stack's widened weights (19) take the gathered patches. Strides
    1 and 2, "same" and "valid", widths with and without a remainder of four pixels, an odd
    last channel, input zero points at both ends: all bit-exact."""
    rng = np.random.default_rng(11)
    graphs = []
    for i, (h, w, stride, padding, cout, zp) in enumerate((
            (7, 9, 1, "same", 8, -128), (12, 17, 2, "same", 13, -5), (16, 16, 2, "valid", 18, 127),
            (9, 22, 1, "valid", 13, 60), (11, 10, 2, "same", 19, 0))):
        b = GraphBuilder(f"stem{i}", (h, w, 3), 0.02, zp)
        ws = rng.uniform(0.002, 0.02, cout)
        y = b.conv2d(b.input, _w(rng, (cout, 3, 3, 3)), ws, rng.integers(-3000, 3000, cout),
                     _scale(b, b.input, ws, 27), int(rng.integers(-20, 20)), stride=stride,
                     padding=padding, activation="relu6")
        graphs.append(b.finish(y))
    for cfg in VARIANTS:
        hostbuild.build_libs(cfg)
    with ThreadPoolExecutor(WORKERS) as pool:
        errors = [e for errs in pool.map(lambda g: _check(g, tmp_path), graphs) for e in errs]
    assert not errors, "\n".join(errors)


def _assert_m7_matches_reference(g, tmp_path):
    """g generated, built for the Cortex-M7 and run under QEMU: its output is the reference's."""
    from patchcam.targets import armbuild, qemu

    codegen.generate(g, tmp_path / "model")
    inp = random_input(g, 1)
    build = armbuild.build(tmp_path / "model", tmp_path / "build")
    out, status, _ = qemu.run_qemu(build.elf, inp.tobytes(), timeout_s=120)
    assert status == 0
    assert out == reference.run(g, inp).tobytes()


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="needs gcc-arm-none-eabi and qemu-system-arm")
def test_pointwise_kernels_on_m7_match_reference(tmp_path):
    """The same kernels as built for the Cortex-M7 (their hot loops, and the widening of four
    pixels of 16 or more channels, are assembly there): a
    chain of pointwise layers on a 6x7 map (ten quads and two pixels) with K = 144, 192, 200,
    256 and 120 (pair records: 4, 0, 2, 0 and 6 groups ahead of the loop), 72 (six pixels:
    two groups a step), 96, 56 (narrow: two channels of four pixels), 8 (one pixel, into 24
    channels: eight a step), 24 (narrow), 8 (into 20: four a step), 20 (quads in C), 16
    (narrow, into 13 channels: an odd last one), run under QEMU. Again with `"pair_records":
    false`, where K = 144, 192 and 120 take the six-pixel kernel (four groups a step, four,
    two) and 200 and 256 the four-pixel one (two, four). And a stride-2 layer of K = 104 (pair
    records, pixels apart; 30 of them, so seven quads and two), and narrow layers on a 5x5
    map (the one pixel after six quads)."""
    rng = np.random.default_rng(11)

    def chain(shape, couts, stride=1):
        b = GraphBuilder("pwchain", shape, 0.02, -3)
        x = b.input
        for cout in couts:
            k = b.tensors[x].shape[2]
            ws = rng.uniform(0.002, 0.02, cout)
            x = b.conv2d(x, _w(rng, (cout, 1, 1, k)), ws, rng.integers(-3000, 3000, cout),
                         _scale(b, x, ws, k), int(rng.integers(-20, 20)), stride=stride,
                         padding="valid")
        return b.finish(x)

    g = chain((6, 7, 144), (192, 72, 96, 56, 200, 256, 120, 8, 24, 8, 20, 16, 13))
    assert records.chosen(g) == {0, 1, 5, 6, 7}
    _assert_m7_matches_reference(g, tmp_path / "records")
    int8 = dataclasses.replace(g, meta={**g.meta, records.KEY: False})
    assert records.chosen(int8) == set()
    _assert_m7_matches_reference(int8, tmp_path / "int8")
    strided = chain((9, 11, 104), (112,), stride=2)
    assert records.chosen(strided) == {0}
    _assert_m7_matches_reference(strided, tmp_path / "strided")
    # narrow kernels on 5x5: one pixel after the quads (records_one on the stack's records),
    # with an odd last channel, K = 8 (one step of the loop), 16 and 56
    _assert_m7_matches_reference(chain((5, 5, 8), (14, 16, 56, 13)), tmp_path / "narrow")


@pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                    reason="needs gcc-arm-none-eabi and qemu-system-arm")
def test_depthwise_planes_on_m7_match_reference(tmp_path):
    """The channel planes as built for the Cortex-M7 (the widening four pixels a step, plane
    rows, the band carry and the stores are assembly there), under QEMU: input rows of 70
    pixels (after an odd first one: 17 runs of four and one), 35, 18 and 9; 3x3 at stride 1
    on plane pitches 80 (bands of three output rows; 35 pairs a row, an odd count), 40 (odd
    rows of 35) and 20, at stride 2 on pitches 80 (odd rows, bands of two), 20; 5x5 at stride
    2 (a carry of 120 values: eight words a step and a tail); channels stored unclamped (six a
    step, and a rest) and clamped (ReLU6 inside int8); and an add past 256 elements (the term
    tables)."""
    rng = np.random.default_rng(12)
    b = GraphBuilder("dwchain", (37, 70, 8), 0.02, -3)
    x = b.input

    def dw(x, k, stride, activation):
        ws = rng.uniform(0.002, 0.02, 8)
        return b.depthwise_conv2d(x, _w(rng, (k, k, 8)), ws, rng.integers(-3000, 3000, 8),
                                  _scale(b, x, ws, k * k), int(rng.integers(-20, 20)),
                                  stride=stride, activation=activation)

    x = dw(x, 3, 1, "none")     # 37x70, pitch 80
    x = dw(x, 3, 2, "relu6")    # 19x35, pitch 80, clamped
    y = dw(x, 3, 1, "none")     # 19x35, pitch 40
    x = b.add(x, y, 1.5 * max(b.tensors[x].scale, b.tensors[y].scale), -10)
    x = dw(x, 5, 2, "none")     # 10x18, pitch 40
    x = dw(x, 3, 1, "none")     # 10x18, pitch 20
    x = dw(x, 3, 2, "none")     # 5x9, pitch 20
    _assert_m7_matches_reference(b.finish(x), tmp_path)


def test_arena_fence_catches_a_kernel_writing_outside_its_buffers(tmp_path):
    """Shrink one op's output region in the fence table: ASan must stop the run."""
    g = random_graph(3)
    files = codegen.generate(g, tmp_path / "model")
    text = files["model.c"].read_text()
    head, table = text.split("model_op_regions[", 1)
    first_row = table.split("\n", 2)[1]  # op 0: { in }, { out }, { scratch }, ...
    regions = first_row.split("}, {")
    out_off, out_size = regions[1].strip(" {}").split(", ")
    regions[1] = f"{out_off}, {int(out_size) - 1}"
    files["model.c"].write_text(head + "model_op_regions[" + table.replace(
        first_row, "}, {".join(regions), 1))
    exe = hostbuild.build_host(tmp_path / "model", tmp_path)
    with pytest.raises(hostbuild.HostRunError, match="AddressSanitizer"):
        hostbuild.run_host(exe, random_input(g))


def test_depthwise_in_place_equals_depthwise(tmp_path):
    """pc_depthwise_conv2d_s8_in_place == pc_depthwise_conv2d_s8 over a sweep of geometries
    (kernels 1x1..7x7 and 3x5, strides 1..3, every top pad, "same" and "valid" outputs,
    1..16 channels), both equal to plain reference loops, on both code paths, with the data
    buffer and the ring malloc'd at exactly their documented sizes under ASan; the ring rows
    equal the planner's. The DSP path runs three times: as shipped (the channel planes take
    3x3 and 5x5 at strides 1 and 2, 3x3 stride 2 on output rows of 8+, band by band where a
    map outgrows them), with every
    layer whose rows fit on the widened-rows path (PC_DW_ROWS_ALWAYS=1), and with every layer
    whose padded plane fits on the padded four-channel path (PC_DW_PADDED_ALWAYS=1, the planes
    off), so all its algorithms are swept."""
    runtime = codegen.RUNTIME_DIR
    builds = [(cfg.variant, hostbuild.VARIANTS[cfg.variant]) for cfg in VARIANTS]
    builds.append(("dsp-rows", [*hostbuild.VARIANTS["dsp-emulated"], "-DPC_DW_ROWS_ALWAYS=1"]))
    builds.append(("dsp-padded",
                   [*hostbuild.VARIANTS["dsp-emulated"], "-DPC_DW_PADDED_ALWAYS=1"]))
    for variant, flags in builds:
        exe = tmp_path / f"dw_in_place_{variant}"
        subprocess.run([hostbuild.HostConfig().cc, *hostbuild.WARNINGS, "-O1", "-g",
                        *hostbuild.SANITIZERS, *flags, f"-I{runtime}",
                        str(Path(__file__).parent / "c" / "test_dw_in_place.c"),
                        str(runtime / "pc_depthwise.c"), "-o", str(exe)], check=True)
        for seed in (1, 2):
            r = subprocess.run([str(exe), str(seed)], capture_output=True, text=True)
            assert r.returncode == 0, (variant, r.stdout[-2000:], r.stderr[-4000:])
            lines = r.stdout.splitlines()
            assert lines[-1].startswith("checked ") and lines[-1].endswith(", failed 0")
            assert int(lines[-1].split()[1].rstrip(",")) > 500
            for line in lines[:-1]:
                h, w, c, kh, _, sh, _, pt, _, ho, wo, rows = map(int, line.split())
                assert memplan.dw_in_place_rows((h, w, c), (ho, wo, c), kh, sh, pt) == rows, line


def test_conv_output_stride_equals_contiguous(tmp_path):
    """pc_conv2d_s8 and pc_pointwise_conv2d_s8 with output rows longer than the layer's
    (output_stride: how a patch schedule writes a piece inside its tile) write exactly the
    contiguous run's rows and nothing between them, on both code paths under ASan (the
    buffer ends at the last output byte); pointwise also reads rows longer than its own."""
    runtime = codegen.RUNTIME_DIR
    for cfg in VARIANTS:
        exe = tmp_path / f"output_stride_{cfg.variant}"
        subprocess.run([hostbuild.HostConfig().cc, *hostbuild.WARNINGS, "-O1", "-g",
                        *hostbuild.SANITIZERS, *hostbuild.VARIANTS[cfg.variant],
                        f"-I{runtime}", str(Path(__file__).parent / "c" / "test_output_stride.c"),
                        str(runtime / "pc_conv.c"), "-o", str(exe)], check=True)
        for seed in (1, 2):
            r = subprocess.run([str(exe), str(seed)], capture_output=True, text=True)
            assert r.returncode == 0, (cfg.variant, r.stdout[-2000:], r.stderr[-4000:])
            assert r.stdout.splitlines()[-1] == "checked 400, failed 0"


def test_arena_fence_catches_the_in_place_depthwise_ring_overflowing(tmp_path):
    """Shrink an in-place depthwise conv's ring (its scratch region) by one byte in the fence
    table: ASan must stop the run."""
    g = random_graph(5)  # its first depthwise conv: 3x3 stride 1, a ring of 2 rows
    plan = memplan.plan_layers(g)
    i = next(i for i, op in enumerate(g.ops)
             if op.kind == "depthwise_conv2d" and op.output in plan.aliases)
    files = codegen.generate(g, tmp_path / "model")
    text = files["model.c"].read_text()
    assert "pc_depthwise_conv2d_s8_in_place(" in text
    s = plan.scratch[i]
    row = text.split("model_op_regions[", 1)[1].split("\n")[1 + i]
    assert f"{{ {s.offset}, {s.size} }}" in row
    files["model.c"].write_text(text.replace(
        row, row.replace(f"{{ {s.offset}, {s.size} }}", f"{{ {s.offset}, {s.size - 1} }}")))
    exe = hostbuild.build_host(tmp_path / "model", tmp_path)
    with pytest.raises(hostbuild.HostRunError, match="AddressSanitizer"):
        hostbuild.run_host(exe, random_input(g))


def test_wrong_input_size_exits_2_with_message(tmp_path):
    g = random_graph(1)
    exe = hostbuild.build_host(g, tmp_path, hostbuild.HostConfig(sanitize=False))
    n = g.tensors[g.input].size
    for data in (b"\0" * (n - 1), b"\0" * (n + 1)):
        (tmp_path / "in.bin").write_bytes(data)
        r = subprocess.run([str(exe)], env=dict(os.environ, PATCHCAM_INPUT=str(tmp_path / "in.bin"),
                                                PATCHCAM_OUTPUT=str(tmp_path / "out.bin")),
                           capture_output=True, text=True)
        assert r.returncode == 2
        assert f"input must be exactly {n} bytes" in r.stdout
    # and the right size over stdin/stdout, with the report line on the serial port
    x = random_input(g)
    r = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True,
                       env={k: v for k, v in os.environ.items() if not k.startswith("PATCHCAM")})
    out = r.stdout[:g.tensors[g.output].size]
    assert r.returncode == 0
    assert np.array_equal(np.frombuffer(out, np.int8), reference.run(g, x).reshape(-1))
    assert b"infer: model=random1 invoke_us=" in r.stdout


def test_unsupported_op_names_op_and_supported_kinds():
    g = random_graph(0)
    g.ops.insert(1, Op("softmax", "probs", [g.ops[0].output], g.ops[0].output))
    with pytest.raises(codegen.CodegenError, match=r"'probs'.*'softmax'.*conv2d.*max_pool2d"):
        codegen.render(g)


ARM_GCC = shutil.which("arm-none-eabi-gcc")
ARM_TARGETS = {  # (flags, expected kernel variant)
    "m7-dsp": ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
    "m7-portable": ["-mcpu=cortex-m7", "-mthumb", "-DPC_PORTABLE"],
    "m0": ["-mcpu=cortex-m0", "-mthumb"],
}


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("target", ARM_TARGETS)
def test_runtime_and_model_compile_warning_free_for_cortex_m(target, tmp_path):
    """Warning-free on each core; the DSP path uses SIMD MACs; and no runtime function has a
    stack frame of variable size or over 4 kB (-fstack-usage), half the 8 kB stack of the
    Mbed images, so a kernel cannot quietly eat the stack (their deepest chains: a pointwise
    driver and its 3 kB of widened columns, a depthwise driver and its 3.2 kB padded plane)."""
    files = codegen.generate(edge_graph(0), tmp_path)
    inc = [f"-I{d}" for d in [tmp_path, *codegen.runtime_include_dirs(), hostbuild.BOARD_INCLUDE]]
    srcs = [*codegen.runtime_sources(), files["model.c"], *hostbuild.APP_SOURCES]
    for src in srcs:
        subprocess.run([ARM_GCC, *hostbuild.WARNINGS, "-O2", "-fstack-usage",
                        *ARM_TARGETS[target], *inc, "-c", str(src),
                        "-o", str(tmp_path / (src.stem + ".o"))], check=True)
    # the DSP path really uses the SIMD MACs where the core has them
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "pc_conv.o")],
                         capture_output=True, text=True).stdout
    assert ("smlad" in dis) == (target == "m7-dsp")
    frames = {}
    for src in codegen.runtime_sources():
        for line in (tmp_path / (src.stem + ".su")).read_text().splitlines():
            where, size, kind = line.split("\t")
            frames[where.rsplit(":", 1)[-1] + " in " + src.name] = (int(size), kind)
    assert len(frames) > 20
    big = {f: v for f, v in frames.items() if v[0] > 4096 or v[1] != "static"}
    assert not big, big


def test_generated_code_is_warning_free_on_host_gcc(tmp_path):
    files = codegen.generate(edge_graph(1), tmp_path)
    inc = [f"-I{d}" for d in [tmp_path, *codegen.runtime_include_dirs()]]
    subprocess.run(["gcc", *hostbuild.WARNINGS, "-Wconversion", "-Wshadow", "-O2", *inc,
                    "-c", str(files["model.c"]), "-o", str(tmp_path / "m.o")], check=True)


def test_zoo_preset_backbone_bit_exact(tmp_path):
    """A real network (mcu-s-96, random weights): every op but the classifier FC. (With random
    weights the quantiser saturates the FC's bias at +-2^31, whose int32 sum then overflows
    in C as it would in TFLite; a trained model does not.)"""
    models = pytest.importorskip("patchcam.compiler.models")
    g0 = models.preset_graph("mcu-s-96")
    g = Graph(f"{g0.name}_backbone", g0.tensors, g0.ops[:-1], g0.input, g0.ops[-2].output)
    x = random_input(g, 5)
    want = reference.run(g, x).reshape(-1)
    for cfg in VARIANTS:
        y = hostbuild.run_host(hostbuild.build_host(g, tmp_path, cfg), x)
        assert np.array_equal(y, want), cfg.tag
