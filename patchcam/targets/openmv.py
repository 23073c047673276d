"""The OpenMV Cam H7 route: build an app's model as a MicroPython module and check it.

    patchcam openmv generate vww          # build/openmv/vww/: model/, vww.tflite,
                                                      #   vww.txt, pcapp.py
    patchcam openmv natmod vww            # -> build/openmv/vww/armv7emsp/pcmodel.mpy
                                                      #   and build/openmv/vww/drive/ (the files
                                                      #   for the camera's USB drive)
    patchcam openmv ml vww               # build/openmv/vww/drive_ml/: the `ml`-module
                                                      #   fallback, offline, no compiler
    patchcam openmv check vww            # x64 natmod in the unix micropython ==
                                                      #   the numpy reference, bit for bit, and
                                                      #   main.py + pcproto == patchcam.app.pipeline
    python -m patchcam.targets.openmv sizes vww person_detect # what the H7 heap would have to hold
                                                      #   (the shipped schedule's C, if exported)
    python -m patchcam.targets.openmv check-usermod person_detect   # the user C module route, built
                                                      #   into the unix port == reference

The camera runs the app's patch-scheduled model (patchplan.search, at most 20% recomputed
MACs, as `make bench` picks it) through `pcmodel` (firmware/boards/openmv_h7/pcmodel.c): the
generated model.c, the C runtime, pc_preprocess.c and pc_detect.c, built either as a native
`.mpy` (MicroPython's natmod tooling, py/dynruntime.mk) or compiled into an OpenMV firmware
as a user C module (docs/boards.md, "OpenMV Cam H7"). Outputs go under build/openmv/<app>/.

MicroPython's source tree is not part of this repository: `--micropython DIR`,
$PATCHCAM_MICROPYTHON, ../micropython next to the repository, or else a clone at the pinned
commit that `natmod` makes in ~/.cache/patchcam on first use. `check` also needs mpy-cross
and the unix port built in it (`make -C mpy-cross`; `make -C ports/unix
MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 MICROPY_PY_SSL=0 FROZEN_MANIFEST=` needs no submodules),
and the Python running mpy_ld.py needs pyelftools (test extra; or $PATCHCAM_MPY_PYTHON).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from patchcam import download as dl
from patchcam.app import export
from patchcam.app.config import load_app
from patchcam.compiler import codegen, patchplan, reference, tflite_export
from patchcam.compiler.ir import Graph
from patchcam.compiler.models import app_graph
from patchcam.paths import REPO

BOARD_DIR = REPO / "firmware" / "boards" / "openmv_h7"
BUILD_DIR = REPO / "build" / "openmv"
MAX_OVERHEAD = 0.2  # the same patch schedule `make bench` reports
ARENA_LINE = re.compile(r"^static int8_t model_arena\[MODEL_ARENA_BYTES\] PC_ALIGNED\(\d+\);$",
                        re.M)
# The fused-input model's input buffer: as generated, or as an older rewrite left it (a global
# array) in a build folder that `natmod` reuses.
FRAME_LINE = re.compile(r"^(?:static )?int8_t model_frame\[MODEL_INPUT_BYTES\];"
                        r"(?: /\* global: natmod BSS \*/)?$", re.M)
FRAME_EXTERN = "extern int8_t *model_frame; /* set by pcmodel.set_arena(): after the arena */"
MEMORY_ALIGN = 8  # pcmodel.c: the input starts at the arena's end rounded up to this

# OpenMV Cam H7 (OPENMV4) firmware v5.0.0, boards/OPENMV4/board_config.h: the MicroPython GC
# heap is split into OMV_GC_BLOCK0 (SRAM4) and OMV_GC_BLOCK1 (SRAM1), and one allocation must
# fit inside one block (v4.8.1: 64 + 267 kB). Frame buffers live outside it, in SRAM0.
H7_GC_BLOCKS = (64 * 1024, 264 * 1024)


class OpenMVError(RuntimeError):
    """A build or check step failed; the message says which command and why."""


MICROPYTHON_URL = "https://github.com/micropython/micropython"
MICROPYTHON_PIN = "1c3c201149f37fe8d81246191b3127bb198d6306"  # the commit measured with
MICROPYTHON_CACHE = Path("~/.cache/patchcam").expanduser() / f"micropython-{MICROPYTHON_PIN[:12]}"


def micropython_dir(path: str | Path | None = None) -> Path:
    """--micropython, else $PATCHCAM_MICROPYTHON, else ../micropython when it exists, else the
    pinned clone in ~/.cache/patchcam (made by `fetch_micropython` on first use)."""
    p = path or os.environ.get("PATCHCAM_MICROPYTHON")
    if p:
        return Path(p)
    local = REPO.parent / "micropython"
    return local if local.is_dir() else MICROPYTHON_CACHE


def fetch_micropython(mpy: Path) -> None:
    """Clone MicroPython at the pinned commit into the cache folder (what a fresh clone of
    patchcam needs to build the native module; nothing of it enters the repository)."""
    if mpy != MICROPYTHON_CACHE:
        return
    try:  # an existing clone is verified to be at the pin (a failed checkout is not accepted)
        dl.clone_pinned(MICROPYTHON_URL, mpy, MICROPYTHON_PIN, "MicroPython")
    except dl.CloneError as e:
        raise OpenMVError(f"{e} (or pass --micropython DIR)") from None


def make_arena_external(model_c: Path) -> None:
    """Turn the generated `static int8_t model_arena[...]` into `extern int8_t *model_arena`,
    defined and set by pcmodel.c. Why: a native module's BSS is allocated on the MicroPython
    heap in one block with the weights (too big for the H7's heap blocks), and its loader
    cannot relocate static BSS at all; on the camera the arena comes from frame-buffer memory.
    The kernels see the same offsets (ARENA(offset) is model_arena + offset either way).
    A model whose patch stage reads its input outside the arena (MODEL_FUSED_INPUT) has a
    static buffer for its whole input too (model_input(), model_invoke()): as BSS it would
    add MODEL_INPUT_BYTES (up to ~100 kB) to the module's heap allocation, so it becomes
    `extern int8_t *model_frame`, which set_arena() points after the arena in the same
    frame-buffer memory (see memory_bytes)."""
    text = model_c.read_text()
    text = FRAME_LINE.sub(lambda _: FRAME_EXTERN, text)
    if "extern int8_t *model_arena;" in text:
        model_c.write_text(text)
        return
    new, n = ARENA_LINE.subn("extern int8_t *model_arena; /* set by pcmodel.set_arena() */",
                             text)
    if n != 1:
        raise OpenMVError(f"{model_c}: expected one generated arena declaration, found {n}")
    model_c.write_text(new)


def _pcapp_source(g: Graph, spec: export.AppSpec, model_dir: Path) -> str:
    """pcapp.py: the app's constants for the MicroPython scripts (main_ml.py has no pcmodel
    to ask), written as plain assignments so mpy-cross compiles it on any port."""
    x, y = g.tensors[g.input], g.tensors[g.output]
    h, w, c = x.shape
    scale_bits = int(np.array([y.scale], "<f4").view("<u4")[0])
    lines = [
        '"""Generated by patchcam.targets.openmv for one app\'s model. Do not edit."""',
        f"APP = {spec.name!r}",
        f"MODEL = {g.name!r}",
        f"TASK = {export.TASKS[spec.task]}",
        f"INPUT_W = {w}",
        f"INPUT_H = {h}",
        f"INPUT_C = {c}",
        f"OUTPUT_BYTES = {y.size}",
        f"OUTPUT_SCALE_BITS = 0x{scale_bits:08x}",
        f"OUTPUT_ZERO_POINT = {y.zero_point}",
        f"MODEL_HASH = 0x{export.model_hash(model_dir):08x}",
        f"ARENA_BYTES = {_define(model_dir, 'MODEL_ARENA_BYTES')}",
        f"PARAM_BYTES = {_define(model_dir, 'MODEL_PARAM_BYTES')}",
        f"CLASSES = {tuple(spec.classes)!r}",
    ]
    if spec.decode is not None:
        for k, v in spec.decode.c_defines().items():
            lines.append(f"{k.removeprefix('PC_')} = {int(v, 0) if isinstance(v, str) else int(v)}")
    return "\n".join(lines) + "\n"


SCHEDULES = ("patch", "app", "shipped")


def plan(g: Graph, arena_budget: int, schedule: str = "patch") -> patchplan.Schedule:
    """"patch": the planner's smallest patch arena within MAX_OVERHEAD extra MACs (what the
    camera runs by default: its arena competes with camera frames for frame-buffer RAM);
    "app": the rule of the app's own generated C (patchcam.app.export.app_schedule), which
    makes the C, and HELLO's model hash, those of the other boards when the compiler has not
    changed since the export; "shipped" (generate only): apps/<app>/generated/ as committed."""
    if schedule == "patch":
        return patchplan.search(g, max_overhead=MAX_OVERHEAD, mode="recompute")
    if schedule == "app":
        return export.app_schedule(g, arena_budget)
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def generate(app: str, out: str | Path | None = None, schedule: str = "patch") -> Path:
    """The app's graph with its schedule (see plan) as generated C for pcmodel, plus the
    .tflite (and its labels .txt) for OpenMV's `ml` module and pcapp.py. Returns the output
    folder."""
    out = Path(out) if out else BUILD_DIR / app
    model_dir = out / "model"
    cfg = load_app(app)
    if schedule == "shipped":  # the very C the Mbed images are built from: no codegen
        shipped = cfg.folder / "generated"
        if not (shipped / "model.json").is_file():
            raise OpenMVError(f"no {shipped}/model.json: export the app's model first "
                              f"(make train APP={app} INSTALL=1)")
        g = Graph.load(shipped / "model.json")
        model_dir.mkdir(parents=True, exist_ok=True)
        for f in ("model.c", "model.h", "app_config.h"):
            shutil.copyfile(shipped / f, model_dir / f)
        spec = export.AppSpec.from_app(cfg, g)
        sched = g.meta.get("schedule", {})
    else:
        g = app_graph(app)
        s = plan(g, cfg.board.arena_kb * 1024, schedule)
        codegen.generate(g, model_dir, schedule=s)
        spec = export.AppSpec.from_app(cfg, g)
        export.generate(spec, model_dir)  # the model hash names the unmodified generated C
        sched = s.to_dict()
    (out / "pcapp.py").write_text(_pcapp_source(g, spec, model_dir))
    make_arena_external(model_dir / "model.c")
    tflite_export.save_tflite(g, out / f"{app}.tflite")
    (out / f"{app}.txt").write_text("\n".join(spec.classes) + "\n")
    # "source": which `schedule` option made the C (the sizes report names it)
    (out / "schedule.json").write_text(json.dumps({"source": schedule} | sched, indent=1))
    return out


def _define(model_dir: Path, name: str) -> int:
    m = re.search(rf"#define {name} (\d+)", (model_dir / "model.h").read_text())
    if m is None:
        raise OpenMVError(f"{model_dir}/model.h: no {name}")
    return int(m.group(1))


def natmod_command(model_dir: Path, arch: str, mpy_dir: Path | None = None,
                   extra_cflags: str = "") -> list[str]:
    """The make command that builds pcmodel.mpy, run in a folder whose Makefile includes
    firmware/boards/openmv_h7/natmod.mk."""
    mpy = micropython_dir(mpy_dir)
    fetch_micropython(mpy)
    if not (mpy / "py" / "dynruntime.mk").is_file():
        raise OpenMVError(f"{mpy}: no MicroPython source tree (py/dynruntime.mk); fetch "
                          "micropython and pass --micropython DIR or set PATCHCAM_MICROPYTHON")
    cmd = ["make", f"MPY_DIR={mpy.resolve()}", f"MODEL_DIR={model_dir.resolve()}",
           f"ARCH={arch}", "BUILD=build", f"PYTHON={_mpy_python()}"]
    return cmd + ([f"CFLAGS_EXTRA={extra_cflags}"] if extra_cflags else [])


def build_natmod(out: Path, arch: str = "armv7emsp", mpy_dir: Path | None = None,
                 extra_cflags: str = "", tag: str | None = None) -> Path:
    """pcmodel.mpy for `arch` from out/model (see generate); returns its path,
    out/<tag or arch>/pcmodel.mpy. Also writes mpy_ld's section sizes to mpy_ld.log there."""
    work = (out / (tag or arch)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    # dynruntime.mk's compile rules depend on a file named Makefile in the current folder.
    (work / "Makefile").write_text(f"include {BOARD_DIR.resolve() / 'natmod.mk'}\n")
    cmd = natmod_command(out / "model", arch, mpy_dir, extra_cflags) + ["V=1"]
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if "text size:" in r.stdout or not (work / "mpy_ld.log").is_file():
        (work / "mpy_ld.log").write_text(r.stdout + r.stderr)  # kept while up to date
    if r.returncode != 0:
        raise OpenMVError(f"{' '.join(cmd)} (in {work})\n{r.stdout}{r.stderr}")
    return work / "pcmodel.mpy"


def _mpy_python() -> str:
    """A Python with pyelftools for mpy_ld.py: $PATCHCAM_MPY_PYTHON, else this one."""
    return os.environ.get("PATCHCAM_MPY_PYTHON") or sys.executable


def unix_micropython(mpy_dir: Path | None = None) -> Path:
    exe = micropython_dir(mpy_dir) / "ports" / "unix" / "build-standard" / "micropython"
    if not exe.is_file():
        raise OpenMVError(f"{exe}: build MicroPython's unix port first (make -C ports/unix)")
    return exe


def memory_bytes(arena_bytes: int, input_bytes: int, fused_input: bool) -> int:
    """What pcmodel.set_arena() needs (pcmodel.info()[13]): the arena, and for a fused-input
    model its input after it at the next MEMORY_ALIGN boundary (pcmodel.c)."""
    if not fused_input:
        return arena_bytes
    return -(-arena_bytes // MEMORY_ALIGN) * MEMORY_ALIGN + input_bytes


RUNNER = """
import sys
sys.path.insert(0, {mod_dir!r})
import pcmodel
info = pcmodel.info()
memory = bytearray(info[13])  # arena, and a fused-input model's input after it
pcmodel.set_arena(memory)
with open({inp!r}, "rb") as f:
    data = f.read()
n = len(pcmodel.input())
with open({outp!r}, "wb") as f:
    for i in range(0, len(data), n):
        pcmodel.input()[:] = data[i:i + n]
        pcmodel.invoke()
        f.write(pcmodel.output())
"""


def run_unix(mpy: Path | None, xs: list[np.ndarray], mpy_dir: Path | None = None,
             exe: Path | None = None) -> list[np.ndarray]:
    """Run pcmodel in MicroPython's unix port on int8 inputs; int8 outputs. mpy: an x64
    pcmodel.mpy, or None with `exe` a unix port that has pcmodel built in."""
    with tempfile.TemporaryDirectory(prefix="patchcam-openmv-") as d:
        inp, outp = Path(d) / "in.bin", Path(d) / "out.bin"
        inp.write_bytes(b"".join(np.ascontiguousarray(x, np.int8).tobytes() for x in xs))
        script = Path(d) / "run.py"
        script.write_text(RUNNER.format(mod_dir=str(mpy.parent if mpy else d), inp=str(inp),
                                        outp=str(outp)))
        r = subprocess.run([str(exe or unix_micropython(mpy_dir)), "-X", "heapsize=8M",
                            str(script)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise OpenMVError(f"micropython {script}\n{r.stdout}{r.stderr}")
        y = np.frombuffer(outp.read_bytes(), np.int8)
    return list(y.reshape(len(xs), -1))


def check(app: str, n_inputs: int = 3, mpy_dir: Path | None = None,
          out: Path | None = None, schedule: str = "patch") -> str:
    """Generate, build the x64 natmod, run it in the unix port and compare with the numpy
    reference, for the portable kernels and the DSP algorithms (emulated in C). Raises
    OpenMVError on any difference; returns a one-line report."""
    out = generate(app, out, schedule)
    g = app_graph(app)
    rng = np.random.default_rng(0)
    x_t = g.tensors[g.input]
    xs = [rng.integers(-128, 128, x_t.shape, dtype=np.int8) for _ in range(n_inputs)]
    want = [reference.run(g, x).reshape(-1) for x in xs]
    report = []
    for tag, flags in (("x64-portable", ""), ("x64-dsp-emulated", "-DPC_DSP_EMULATE")):
        mpy = build_natmod(out, "x64", mpy_dir, extra_cflags=flags, tag=tag)
        got = run_unix(mpy, xs, mpy_dir)
        bad = [i for i, (a, b) in enumerate(zip(got, want, strict=True))
               if not np.array_equal(a, b)]
        if bad:
            raise OpenMVError(f"{app} [{tag}]: the x64 natmod differs from the reference on "
                              f"inputs {bad}")
        report.append(tag)
    return (f"{app}: x64 pcmodel.mpy in the unix port == reference on {n_inputs} inputs "
            f"({', '.join(report)})")


SESSION = """
import sys
sys.path[:0] = [{mod_dir!r}, {board_dir!r}, {app_dir!r}]
import time
import main
import pcapp
import pcboard
import pcproto
model = main.NatmodModel(pcapp)
out = bytearray()
app = pcproto.App(model, out.extend, pcboard.frame_memory(pcapp.INPUT_W * pcapp.INPUT_H * 3),
                  time.ticks_us, "unix", None, time.ticks_diff)
with open({inp!r}, "rb") as f:
    while True:
        data = f.read(333)
        if not data:
            break
        app.feed(data)
with open({outp!r}, "wb") as f:
    f.write(out)
"""


def unix_session(app_out: Path, mpy: Path, wire: bytes, mpy_dir: Path | None = None) -> bytes:
    """Feed host -> board wire bytes to main.py's NatmodModel + pcproto.App running in
    MicroPython's unix port (x64 pcmodel.mpy); returns the board -> host bytes."""
    with tempfile.TemporaryDirectory(prefix="patchcam-openmv-") as d:
        inp, outp = Path(d) / "in.bin", Path(d) / "out.bin"
        inp.write_bytes(wire)
        script = Path(d) / "session.py"
        script.write_text(SESSION.format(mod_dir=str(mpy.parent), board_dir=str(BOARD_DIR),
                                         app_dir=str(app_out), inp=str(inp), outp=str(outp)))
        r = subprocess.run([str(unix_micropython(mpy_dir)), "-X", "heapsize=8M", str(script)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise OpenMVError(f"micropython {script}\n{r.stdout}{r.stderr}")
        return outp.read_bytes()


def check_protocol(app: str, mpy_dir: Path | None = None, out: Path | None = None,
                   schedule: str = "patch") -> str:
    """main.py's model + pcproto in the unix port, over the wire protocol, == the Python
    pipeline (patchcam.app.pipeline) RESULT for RESULT, PREVIEW for PREVIEW."""
    from patchcam.app import pipeline
    from patchcam.host import protocol as pp

    out = generate(app, out, schedule)
    mpy = build_natmod(out, "x64", mpy_dir)
    g = app_graph(app)
    spec = export.AppSpec.from_app(load_app(app), g)
    pipe = pipeline.Pipeline(g, spec)
    h, w, _ = g.tensors[g.input].shape
    rng = np.random.default_rng(1)
    sets = [pp.Set(pp.SetKey.PREVIEW, 4)]
    if spec.task == "detect":  # a low threshold, so that random frames give detections
        sets.append(pp.Set(pp.SetKey.SCORE_Q, -100))
    frames = [(rng.integers(0, 256, (h, w, 3), dtype=np.uint8).tobytes(), w, h,
               pp.PixFmt.RGB888),
              (rng.integers(0, 1 << 16, (h - 7, w // 2), dtype=np.uint16).astype("<u2")
               .tobytes(), w // 2, h - 7, pp.PixFmt.RGB565),
              (rng.integers(0, 256, (h // 3, w + 5), dtype=np.uint8).tobytes(), w + 5, h // 3,
               pp.PixFmt.GRAY8)]
    wire = pp.encode(pp.HelloRequest()) + b"".join(pp.encode(s) for s in sets)
    for i, (px, fw, fh, fmt) in enumerate(frames):
        wire += b"".join(pp.encode(c) for c in pp.frame_chunks(i + 1, px, fw, fh, fmt))
    wire += pp.encode(pp.Ping(99))
    got = pp.Decoder().feed(unix_session(out, mpy, wire, mpy_dir))
    for s in sets:
        pipe.apply(s)
    want: list = []
    for i, (px, fw, fh, fmt) in enumerate(frames):
        img, pfmt = pipe.preview(px, fw, fh, fmt)
        th, tw = img.shape[:2]
        want += pp.frame_chunks(i + 1, img, tw, th, pfmt, cls=pp.Preview)
        want.append(pipe.run(px, fw, fh, fmt, i + 1))
    hello, *rest = got
    if not isinstance(hello, pp.Hello) or hello.app != app or hello.board != "unix":
        raise OpenMVError(f"{app}: expected the board's HELLO first, got {hello!r}")
    echoes, rest, pong = rest[:len(sets)], rest[len(sets):-1], rest[-1]
    if echoes != sets or not isinstance(pong, pp.Pong) or pong.frames != len(frames):
        raise OpenMVError(f"{app}: unexpected replies {echoes!r} ... {pong!r}")
    if len(rest) != len(want):
        raise OpenMVError(f"{app}: {len(rest)} messages for {len(want)} expected")
    for a, b in zip(rest, want, strict=True):
        same = a.same_outcome(b) if isinstance(b, pp.Result) else a == b
        if not same:
            raise OpenMVError(f"{app}: the board sent {a!r}, the pipeline says {b!r}")
    n_det = sum(len(r.detections) for r in want if isinstance(r, pp.Result))
    return (f"{app}: main.py + pcproto in the unix port == patchcam.app.pipeline over the wire "
            f"({len(frames)} frames, {len(want)} messages, {n_det} detections)")


def check_usermod(app: str, mpy_dir: Path | None = None, jobs: int = 2) -> str:
    """The user C module route on the host: MicroPython's unix port built with pcmodel as a
    user C module (firmware/boards/openmv_h7/usermod, the same micropython.mk an OpenMV
    firmware build uses) == the numpy reference. A separate build folder, build-pcmodel."""
    out = generate(app)
    mpy = micropython_dir(mpy_dir).resolve()
    mods = (out / "usermods").resolve()
    mods.mkdir(exist_ok=True)
    link = mods / "patchcam"
    if not link.exists():
        link.symlink_to(BOARD_DIR.resolve() / "usermod")
    cmd = ["make", "-C", str(mpy / "ports" / "unix"), f"-j{jobs}", "BUILD=build-pcmodel",
           "PROG=micropython-pcmodel", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0",
           "MICROPY_PY_SSL=0", "MICROPY_SSL_MBEDTLS=0", "FROZEN_MANIFEST=",
           f"USER_C_MODULES={mods}", f"PATCHCAM_ROOT={REPO.resolve()}",
           f"PATCHCAM_MODEL_DIR={(out / 'model').resolve()}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise OpenMVError(f"{' '.join(cmd)}\n{r.stdout[-4000:]}{r.stderr[-4000:]}")
    exe = mpy / "ports" / "unix" / "build-pcmodel" / "micropython-pcmodel"
    g = app_graph(app)
    rng = np.random.default_rng(0)
    xs = [rng.integers(-128, 128, g.tensors[g.input].shape, dtype=np.int8) for _ in range(2)]
    got = run_unix(None, xs, mpy_dir, exe=exe)
    if not all(np.array_equal(a, reference.run(g, x).reshape(-1))
               for a, x in zip(got, xs, strict=True)):
        raise OpenMVError(f"{app}: pcmodel as a user C module differs from the reference")
    return f"{app}: pcmodel as a user C module of the unix port == reference on {len(xs)} inputs"


@dataclass
class Sizes:
    """What the native-module route puts on the H7's MicroPython heap, in bytes, and what it
    takes from frame-buffer memory instead."""
    app: str
    arch: str
    schedule: str  # how the model C was made (see plan): "shipped" = apps/<app>/generated
    mpy_file: int  # pcmodel.mpy on the filesystem
    text: int  # code + rodata (the weights): mpy_ld folds rodata into text; one heap block
    bss: int  # a second heap block: pcmodel's small globals, neither arena nor input
    params: int  # MODEL_PARAM_BYTES
    arena: int  # MODEL_ARENA_BYTES
    input_bytes: int  # MODEL_INPUT_BYTES: in the arena, or after it when fused_input
    fused_input: bool  # MODEL_FUSED_INPUT: the input is not in the arena
    frame_memory: int  # pcmodel.info()[13]: what set_arena() takes (arena + fused input)

    @property
    def fits_h7_heap(self) -> bool:
        """Code + weights fit the larger GC block, and the heap keeps 64 kB for scripts."""
        return (self.text <= max(H7_GC_BLOCKS) and
                self.text + self.bss <= sum(H7_GC_BLOCKS) - 64 * 1024)


def natmod_sizes(app: str, mpy: Path, out: Path) -> Sizes:
    """Section sizes as mpy_ld.py reported them when build_natmod linked mpy."""
    log = mpy.parent / "mpy_ld.log"
    text = log.read_text() if log.is_file() else ""
    nums = {k: int(v) for k, v in re.findall(r"^(text|bss) size:\s+(\d+)", text, re.M)}
    model = out / "model"
    arena = _define(model, "MODEL_ARENA_BYTES")
    input_bytes = _define(model, "MODEL_INPUT_BYTES")
    fused = re.search(r"^#define MODEL_FUSED_INPUT 1\b", (model / "model.h").read_text(),
                      re.M) is not None
    sched = out / "schedule.json"
    schedule = json.loads(sched.read_text()).get("source", "?") \
        if sched.is_file() else "?"
    return Sizes(app, mpy.parent.name, schedule, mpy.stat().st_size, nums.get("text", -1),
                 nums.get("bss", 0), _define(model, "MODEL_PARAM_BYTES"), arena, input_bytes,
                 fused, memory_bytes(arena, input_bytes, fused))


def _cmd_generate(a: argparse.Namespace) -> None:
    for app in a.apps:
        print(generate(app, schedule=a.schedule))


def drive_folder(out: Path, mpy: Path) -> Path:
    """out/drive/: what to copy onto the camera's USB drive, for a pcmodel.mpy that fits the
    H7's heap (else OpenMVError). main.py runs our model (pcmodel.mpy); main_ml.py, the
    zero-build fallback on OpenMV's `ml` module, is there too: copy it over main.py to use it;
    main_ide.py runs main.py's model from OpenMV IDE (boxes on the frame buffer, the USB serial
    left to the IDE)."""
    sizes = natmod_sizes(out.name, mpy, out)
    if not sizes.fits_h7_heap:
        raise OpenMVError(
            f"{out.name}: pcmodel.mpy's code + weights ({sizes.text:,} B) and BSS "
            f"({sizes.bss:,} B) do not fit the H7's MicroPython heap (one {max(H7_GC_BLOCKS):,} B "
            f"block, 64 KiB left for the scripts): build pcmodel into the firmware as a user C "
            f"module instead (docs/boards.md, \"Native module or user C module\")")
    drive = out / "drive"
    drive.mkdir(parents=True, exist_ok=True)
    for f in ("main.py", "main_ml.py", "main_ide.py", "pcproto.py", "pcboard.py", "pcpipe.py"):
        shutil.copyfile(BOARD_DIR / f, drive / f)
    app = out.name
    for f in ("pcapp.py", f"{app}.tflite", f"{app}.txt"):
        shutil.copyfile(out / f, drive / f)
    shutil.copyfile(mpy, drive / "pcmodel.mpy")
    return drive


def ml_drive_folder(out: Path) -> Path:
    """out/drive_ml/: the zero-build fallback, needing no MicroPython tree and no compiler
    (so it comes out offline): main_ml.py as main.py, running the app's .tflite on OpenMV's
    `ml` module, with the shared scripts, pcapp.py and the labels."""
    drive = out / "drive_ml"
    drive.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BOARD_DIR / "main_ml.py", drive / "main.py")
    for f in ("pcproto.py", "pcboard.py", "pcpipe.py"):
        shutil.copyfile(BOARD_DIR / f, drive / f)
    app = out.name
    for f in ("pcapp.py", f"{app}.tflite", f"{app}.txt"):
        if not (out / f).is_file():
            raise OpenMVError(f"no {out / f}: run patchcam openmv generate {app} first")
        shutil.copyfile(out / f, drive / f)
    return drive


def _cmd_ml(a: argparse.Namespace) -> None:
    for app in a.apps:
        out = BUILD_DIR / app
        if not (out / f"{app}.tflite").is_file() or a.regenerate:
            generate(app, out, a.schedule)
        print(ml_drive_folder(out))


def _cmd_natmod(a: argparse.Namespace) -> None:
    for app in a.apps:
        out = BUILD_DIR / app
        if not (out / "model" / "model.c").is_file() or a.regenerate:
            generate(app, out, a.schedule)
        mpy = build_natmod(out, a.arch, a.micropython)
        print(mpy)
        if a.arch.startswith("armv7em"):
            print(drive_folder(out, mpy))


def _cmd_check(a: argparse.Namespace) -> None:
    for app in a.apps:
        print(check(app, a.inputs, a.micropython, schedule=a.schedule))
        print(check_protocol(app, a.micropython, schedule=a.schedule))


def _cmd_check_usermod(a: argparse.Namespace) -> None:
    for app in a.apps:
        print(check_usermod(app, a.micropython))


def shipped_or_patch(app: str) -> str:
    """"shipped" when the app's exported graph records the schedule its C was built with
    (export.shipped_schedule), else "patch" (an app that was never exported)."""
    exported = load_app(app).folder / "generated" / "model.json"
    if exported.is_file() and export.shipped_schedule(Graph.load(exported)) is not None:
        return "shipped"
    return "patch"


def _cmd_sizes(a: argparse.Namespace) -> None:
    rows = []
    for app in a.apps:
        schedule = a.schedule or shipped_or_patch(app)
        # Its own folder, regenerated each time: the report must not measure whatever C an
        # earlier `natmod` left in build/openmv/<app> (another schedule, an older export).
        out = BUILD_DIR / app / f"sizes-{schedule}"
        generate(app, out, schedule)
        mpy = build_natmod(out, a.arch, a.micropython)
        rows.append(natmod_sizes(app, mpy, out))
    print(json.dumps([asdict(s) | {"fits_h7_heap": s.fits_h7_heap} for s in rows], indent=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="patchcam openmv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--micropython", type=Path, help="MicroPython source tree "
                   "(default: $PATCHCAM_MICROPYTHON or ../micropython)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("generate", help="generated C, .tflite, labels and pcapp.py")
    s.add_argument("apps", nargs="+")
    s.add_argument("--schedule", choices=SCHEDULES, default="patch")
    s.set_defaults(fn=_cmd_generate)
    s = sub.add_parser("natmod", help="build pcmodel.mpy")
    s.add_argument("apps", nargs="+")
    s.add_argument("--arch", default="armv7emsp")
    s.add_argument("--regenerate", action="store_true")
    s.add_argument("--schedule", choices=SCHEDULES, default="patch")
    s.set_defaults(fn=_cmd_natmod)
    s = sub.add_parser("ml", help="the `ml`-module drive folder (build/openmv/APP/drive_ml/): "
                       "no MicroPython tree or compiler needed")
    s.add_argument("apps", nargs="+")
    s.add_argument("--regenerate", action="store_true")
    s.add_argument("--schedule", choices=SCHEDULES, default="patch")
    s.set_defaults(fn=_cmd_ml)
    s = sub.add_parser("check", help="x64 natmod in the unix port == reference")
    s.add_argument("apps", nargs="+")
    s.add_argument("--inputs", type=int, default=3)
    s.add_argument("--schedule", choices=SCHEDULES, default="patch")
    s.set_defaults(fn=_cmd_check)
    s = sub.add_parser("check-usermod", help="the unix port with pcmodel as a user C module "
                       "== reference")
    s.add_argument("apps", nargs="+")
    s.set_defaults(fn=_cmd_check_usermod)
    s = sub.add_parser("sizes", help="section sizes of pcmodel.mpy vs the H7 heap")
    s.add_argument("apps", nargs="+")
    s.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="default: shipped when the app was exported, else patch")
    s.add_argument("--arch", default="armv7emsp")
    s.set_defaults(fn=_cmd_sizes)
    a = p.parse_args(argv)
    try:
        a.fn(a)
    except (OpenMVError, patchplan.PlanError) as e:
        print(f"patchcam.targets.openmv: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
