"""Host build: a generated model + the C runtime + the test runner as a native executable.

The same C that runs on the microcontroller, compiled with gcc for the host board
(`firmware/boards/host`), optionally under AddressSanitizer + UBSan: the fast rung of the
verification ladder (docs/design.md §5.2). Build outputs go under `build/` (git-ignored).

    exe = build_host(graph)                      # -> build/host/models/<name>/infer-portable-asan
    y = run_host(exe, x)                          # int8 in, int8 out (flat)

The runtime and the host board are compiled once per flag set into archives under
`build/host/lib-<hash>/` and reused by every model; a model costs one gcc call.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchcam.compiler import codegen
from patchcam.compiler.ir import Graph
from patchcam.paths import REPO, file_stem
from patchcam.targets import armbuild, buildcache

BUILD_DIR = REPO / "build" / "host"
APP_SOURCES = [REPO / "firmware" / "app" / "infer_main.c"]
BOARD_INCLUDE = REPO / "firmware" / "boards"
HOST_BOARD_SOURCES = [REPO / "firmware" / "boards" / "host" / "board_host.c"]
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
              "-fno-omit-frame-pointer"]
VARIANTS = {"portable": [], "dsp-emulated": ["-DPC_DSP_EMULATE"]}


class BuildError(RuntimeError):
    """The C compiler failed; the message holds its output."""


class HostRunError(RuntimeError):
    """The host executable failed or produced output of the wrong size."""


@dataclass(frozen=True)
class HostConfig:
    """How to compile. `variant` picks the kernels' code path: "portable" (plain C) or
    "dsp-emulated" (the Cortex-M DSP algorithms with C stand-ins for the instructions).
    `arena_check` (needs `sanitize`) makes AddressSanitizer fence each op into its own
    buffers of the arena (see the MODEL_ARENA_CHECK block of the generated model.c)."""
    sanitize: bool = True
    variant: str = "portable"
    opt: str = "-O2"
    arena_check: bool = True
    cc: str = "gcc"

    @property
    def tag(self) -> str:
        return self.variant + ("-asan" if self.sanitize else "")

    def cflags(self) -> list[str]:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {list(VARIANTS)}")
        flags = [*WARNINGS, self.opt, "-g", *VARIANTS[self.variant]]
        if self.sanitize:
            flags += SANITIZERS
            if self.arena_check:
                flags.append("-DMODEL_ARENA_CHECK")
        return flags


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"{' '.join(map(str, cmd))}\n{r.stdout}{r.stderr}")


def build_libs(cfg: HostConfig = HostConfig()) -> list[Path]:
    """The runtime and host-board archives for cfg (built once, cached by content + flags)."""
    libs = (("libpcruntime.a", codegen.runtime_sources()),
            ("libpcboard_host.a", HOST_BOARD_SOURCES))
    headers = sorted(codegen.RUNTIME_DIR.glob("*.h")) + [BOARD_INCLUDE / "board.h"]
    key = buildcache.content_key([cfg.cc, *cfg.cflags()],
                                 [*codegen.runtime_sources(), *HOST_BOARD_SOURCES, *headers])

    def compile_all(tmp: Path) -> None:
        for lib, srcs in libs:
            objs = []
            for src in srcs:
                obj = tmp / (src.stem + ".o")
                _run([cfg.cc, *cfg.cflags(), *_includes(), "-c", str(src), "-o", str(obj)])
                objs.append(str(obj))
            _run(["ar", "rcs", str(tmp / lib), *objs])

    lib_dir = buildcache.cached_folder(BUILD_DIR / f"lib-{key}", [lib for lib, _ in libs],
                                       compile_all)
    return [lib_dir / lib for lib, _ in libs]


def _includes(model_dir: Path | None = None) -> list[str]:
    dirs = ([model_dir] if model_dir else []) + codegen.runtime_include_dirs() + [BOARD_INCLUDE]
    return [f"-I{d}" for d in dirs]


def build_host(model: Graph | str | Path, out_dir: str | Path | None = None,
               cfg: HostConfig = HostConfig(), schedule=None) -> Path:
    """Build the test runner for a model: a Graph (generated into out_dir/model first, as a
    patch schedule's code when `schedule` (a patchplan.Schedule) is given) or a directory
    holding a generated model.c / model.h. Returns the executable's path."""
    if isinstance(model, Graph):
        out = Path(out_dir) if out_dir else BUILD_DIR / "models" / file_stem(model.name)
        model_dir = out / "model"
        codegen.generate(model, model_dir, schedule=schedule)
    else:
        model_dir = Path(model)
        out = Path(out_dir) if out_dir else model_dir
    if not (model_dir / "model.c").is_file():
        raise BuildError(f"{model_dir}: no model.c (generate it with patchcam.compiler.codegen)")
    out.mkdir(parents=True, exist_ok=True)
    exe = out / f"infer-{cfg.tag}"
    libs = build_libs(cfg)
    _run([cfg.cc, *cfg.cflags(), *_includes(model_dir), str(model_dir / "model.c"),
          *map(str, APP_SOURCES), *map(str, libs), "-o", str(exe)])
    return exe


def build_host_app(model_dir: str | Path, out_dir: str | Path | None = None,
                   cfg: HostConfig = HostConfig(), defines: tuple[str, ...] = ()) -> Path:
    """The protocol app loop (firmware/app/app_main.c) for the host board, for the model in
    model_dir (model.c / model.h / app_config.h, see patchcam.app.export). Returns the executable
    (<out_dir>/app-<tag>); serve it with patchcam.targets.boards.start_board("host", ...)."""
    model_dir = Path(model_dir)
    for f in ("model.c", "model.h", "app_config.h"):
        if not (model_dir / f).is_file():
            raise BuildError(f"{model_dir}: no {f} (generate it with codegen / app.export)")
    out = Path(out_dir) if out_dir else model_dir
    out.mkdir(parents=True, exist_ok=True)
    exe = out / f"app-{cfg.tag}"
    libs = build_libs(cfg)
    _run([cfg.cc, *cfg.cflags(), *_includes(model_dir),
          *(f"-I{d}" for d in armbuild.APP_LOOP_INCLUDES), '-DPC_BOARD_NAME="host"',
          *(f"-D{d}" for d in defines), str(model_dir / "model.c"), str(armbuild.APP_MAIN),
          *map(str, armbuild.APP_LOOP_SOURCES), *map(str, libs), "-o", str(exe)])
    return exe


def run_host(exe: str | Path, x: np.ndarray, shape: tuple[int, ...] | None = None,
             timeout: float = 60.0) -> np.ndarray:
    """Run a host executable on one int8 input; return its int8 output (flat, or `shape`)."""
    data = np.ascontiguousarray(x, dtype=np.int8).tobytes()
    with tempfile.TemporaryDirectory(prefix="patchcam-run-") as d:
        inp, outp = Path(d) / "input.bin", Path(d) / "output.bin"
        inp.write_bytes(data)
        env = dict(os.environ, PATCHCAM_INPUT=str(inp), PATCHCAM_OUTPUT=str(outp))
        env.pop("PATCHCAM_SERIAL", None)
        r = subprocess.run([str(exe)], env=env, capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise HostRunError(f"{exe} exited with status {r.returncode}\n"
                               f"{r.stdout.decode(errors='replace')}"
                               f"{r.stderr.decode(errors='replace')}")
        y = np.frombuffer(outp.read_bytes(), dtype=np.int8).copy()
    if shape is not None:
        if y.size != int(np.prod(shape)):
            raise HostRunError(f"{exe}: output has {y.size} values, expected shape {shape}")
        y = y.reshape(shape)
    return y

