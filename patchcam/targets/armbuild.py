"""Build the Cortex-M7 firmware of one model for the virtual board `qemu_m7` (docs/design.md §4.6).

    elf = build("apps/vww/generated", "build/qemu_m7/vww").elf

An image is the generated model (`model.c` / `model.h`, and any other `.c` in its folder), the
C runtime (`firmware/runtime/*.c`), the app (`firmware/app/infer_main.c`) and the board
(`firmware/boards/qemu_m7/`), compiled and linked in one `arm-none-eabi-gcc` call; the runtime,
the same for every model, is compiled once per compiler, flags and runtime source and kept in
`build/arm-runtime/` (compiling its DSP kernels is most of a build's time). The linker
script checks the image against the real MCU's flash and SRAM (default STM32F746: 1 MB / 320 kB);
a model that does not fit raises `BudgetError` with one line naming the model, its need and
the budget. Sizes come from `arm-none-eabi-size` (Berkeley): flash = text + data, RAM =
data + bss, where bss includes the stack (`Budget.stack_bytes`) and the model's arena.

CLI: `python -m patchcam.targets.armbuild DIR [--out DIR] [--portable] [--flash-kb N] [--ram-kb N]`
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchcam.paths import REPO
from patchcam.targets import buildcache

FIRMWARE = REPO / "firmware"
BOARD_DIR = FIRMWARE / "boards" / "qemu_m7"
DEFAULT_MAIN = FIRMWARE / "app" / "infer_main.c"
# The protocol app loop (firmware/app/app_main.c) and what it links besides the model and the
# runtime; hostbuild uses the same lists. Its model folder also holds app_config.h
# (patchcam.app.export).
APP_MAIN = FIRMWARE / "app" / "app_main.c"
APP_LOOP_SOURCES = (FIRMWARE / "app" / "pc_preprocess.c", FIRMWARE / "app" / "pc_detect.c",
                    FIRMWARE / "app" / "pc_textline.c", FIRMWARE / "protocol" / "pc_proto.c")
APP_LOOP_INCLUDES = (FIRMWARE / "app", FIRMWARE / "protocol")

CC = "arm-none-eabi-gcc"
INSTALL_HINT = ("sudo apt-get install --no-install-recommends gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi (or `make setup`)")

CPU_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]
CFLAGS = ["-std=c99", *CPU_FLAGS, "-ffunction-sections", "-fdata-sections",
          "-Wall", "-Wextra", "-Werror", "-g"]
# No crt0 (our startup.c), newlib-nano for memcpy & co. and no syscall stubs: anything that
# would pull in malloc (which needs _sbrk) fails to link.
LDFLAGS = ["-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections", "-Wl,--fatal-warnings"]
# Symbols that must never be in an image: the firmware allocates nothing at run time.
FORBIDDEN = ("malloc", "_malloc_r", "calloc", "realloc", "free", "_sbrk")

# The compiled runtime, one folder per compiler, flags and runtime sources (_runtime_objects).
RUNTIME_CACHE = REPO / "build" / "arm-runtime"

# QEMU's mps2-an500 has 4 MB of SSRAM for code and 4 MB for data: the most any budget can be.
QEMU_MEMORY_BYTES = 4 * 1024 * 1024


class BuildError(RuntimeError):
    """The firmware did not compile or link (the message holds the compiler's output)."""


class BudgetError(BuildError):
    """The firmware compiled but does not fit the target MCU's flash or SRAM."""


@dataclass(frozen=True)
class Budget:
    """The real MCU the virtual board stands in for."""
    name: str = "STM32F746"
    flash_bytes: int = 1024 * 1024
    ram_bytes: int = 320 * 1024
    stack_bytes: int = 16 * 1024


STM32F746 = Budget()


@dataclass(frozen=True)
class Sizes:
    text: int
    data: int
    bss: int

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss


@dataclass(frozen=True)
class ArmBuild:
    model: str
    elf: Path
    sizes: Sizes
    budget: Budget
    portable: bool


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"{name} not found: {INSTALL_HINT}")
    return path


def model_name(model_dir: Path) -> str:
    """MODEL_NAME from model.h if it defines one, else the folder (or its app's) name."""
    header = model_dir / "model.h"
    if header.exists():
        m = re.search(r'#define\s+MODEL_NAME\s+"([^"]*)"', header.read_text(errors="replace"))
        if m:
            return m.group(1)
    return model_dir.parent.name if model_dir.name == "generated" else model_dir.name


def _runtime() -> tuple[list[Path], list[Path]]:
    """The C runtime's sources and include folders, as the code generator lists them."""
    try:
        from patchcam.compiler import codegen
    except ImportError:  # the generator needs jinja2; the runtime is just firmware/runtime
        return sorted((FIRMWARE / "runtime").glob("*.c")), [FIRMWARE / "runtime"]
    return codegen.runtime_sources(), codegen.runtime_include_dirs()


def sources(model_dir: Path, main_c: Path, extra: tuple[Path, ...] = ()) -> list[Path]:
    return [*sorted(model_dir.glob("*.c")), *_runtime()[0], main_c, *extra,
            *sorted(BOARD_DIR.glob("*.c"))]


@functools.cache
def _compiler_identity() -> str:
    cc = _tool(CC)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return f"{cc}\n{version}"


def _runtime_objects(flags: list[str]) -> list[Path]:
    """The runtime's objects compiled with flags (the build's, without its include folders:
    the runtime includes only its own headers), in _runtime()'s order. Built once per
    compiler, flags and runtime sources and headers (buildcache)."""
    srcs, include_dirs = _runtime()
    headers = sorted(p for d in include_dirs for p in d.glob("*.h"))
    folder = RUNTIME_CACHE / buildcache.content_key([_compiler_identity(), *flags],
                                                    [*srcs, *headers])

    def compile_all(tmp: Path) -> None:
        for src in srcs:
            res = subprocess.run([_tool(CC), *flags, *(f"-I{d}" for d in include_dirs), "-c",
                                  str(src), "-o", str(tmp / f"{src.stem}.o")],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                raise BuildError(f"runtime: arm build of {src.name} failed:\n"
                                 f"{res.stderr.strip()}")

    buildcache.cached_folder(folder, [f"{s.stem}.o" for s in srcs], compile_all)
    return [folder / f"{s.stem}.o" for s in srcs]


def read_sizes(elf: Path) -> Sizes:
    """text / data / bss of an image, from `arm-none-eabi-size` (Berkeley format)."""
    out = subprocess.run([_tool("arm-none-eabi-size"), "-B", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return Sizes(text, data, bss)


def _link(cmd: list[str], budget: Budget, elf: Path) -> subprocess.CompletedProcess[str]:
    full = [*cmd, f"-Wl,--defsym=PC_FLASH_SIZE={budget.flash_bytes}",
            f"-Wl,--defsym=PC_RAM_SIZE={budget.ram_bytes}",
            f"-Wl,--defsym=PC_STACK_SIZE={budget.stack_bytes}",
            # After the --defsym options: the script's DEFINED() defaults must see them.
            f"-Wl,-T,{BOARD_DIR / 'link.ld'}", f"-Wl,-Map={elf.with_suffix('.map')}",
            "-o", str(elf)]
    return subprocess.run(full, capture_output=True, text=True)


def _budget_message(model: str, need: Sizes, budget: Budget, what: str) -> str:
    if what == "RAM":
        return (f"{model}: needs {need.ram_bytes} bytes of RAM (data {need.data} + bss "
                f"{need.bss}, incl. {budget.stack_bytes} stack), over the {budget.name} "
                f"budget of {budget.ram_bytes} bytes by {need.ram_bytes - budget.ram_bytes}")
    return (f"{model}: needs {need.flash_bytes} bytes of flash (text {need.text} + data "
            f"{need.data}), over the {budget.name} budget of {budget.flash_bytes} bytes by "
            f"{need.flash_bytes - budget.flash_bytes}")


def build(model_dir: str | Path, out_dir: str | Path | None = None, *, portable: bool = False,
          budget: Budget = STM32F746, opt: str = "-O2", main_c: str | Path | None = None,
          defines: tuple[str, ...] = (), extra_sources: tuple[str | Path, ...] = (),
          include_dirs: tuple[str | Path, ...] = (), elf_name: str | None = None) -> ArmBuild:
    """Compile and link the qemu_m7 image of the model in model_dir; return its ELF and sizes.

    portable: build the runtime's portable C kernels (-DPC_PORTABLE) instead of the DSP ones.
    main_c: the app (default firmware/app/infer_main.c); tests pass their own.
    defines: extra -D macros (NAME or NAME=VALUE).
    extra_sources, include_dirs: more C files and include folders (build_app uses them).
    elf_name: the image's file name (default <model>[_portable].elf)."""
    model_dir = Path(model_dir).resolve()
    model = model_name(model_dir)
    main = Path(main_c).resolve() if main_c is not None else DEFAULT_MAIN
    if not main.exists():
        raise BuildError(f"{model}: no app source {main}")
    out = Path(out_dir) if out_dir is not None else REPO / "build" / "qemu_m7" / model
    out.mkdir(parents=True, exist_ok=True)
    elf = out.resolve() / (elf_name or f"{model}{'_portable' if portable else ''}.elf")

    includes = [model_dir, *_runtime()[1], FIRMWARE / "app", FIRMWARE / "boards", BOARD_DIR,
                *(Path(d).resolve() for d in include_dirs)]
    extra = tuple(Path(s).resolve() for s in extra_sources)
    flags = [*CFLAGS, opt, *(["-DPC_PORTABLE"] if portable else []),
             *(f"-D{d}" for d in defines)]
    runtime = dict(zip(_runtime()[0], _runtime_objects(flags), strict=True))
    cmd = [_tool(CC), *flags, *(f"-I{d}" for d in includes),
           *(str(runtime.get(s, s)) for s in sources(model_dir, main, extra)), *LDFLAGS]
    res = _link(cmd, budget, elf)
    if res.returncode != 0:
        over = re.search(r"patchcam: (RAM|FLASH) budget exceeded", res.stderr)
        if over is None:
            raise BuildError(f"{model}: arm build failed:\n{res.stderr.strip()}")
        # Link again against the whole of QEMU's memory to learn what the image needs.
        roomy = Budget(budget.name, QEMU_MEMORY_BYTES, QEMU_MEMORY_BYTES, budget.stack_bytes)
        if _link(cmd, roomy, elf).returncode != 0:
            raise BudgetError(f"{model}: does not fit {budget.name} ({over.group(1)}) nor "
                              f"QEMU's {QEMU_MEMORY_BYTES} bytes")
        need = read_sizes(elf)
        elf.unlink()
        raise BudgetError(_budget_message(model, need, budget, over.group(1)))

    sizes = read_sizes(elf)
    # The linker ASSERTs already enforce this; kept as a cross-check of the size figures.
    for what, need, cap in (("FLASH", sizes.flash_bytes, budget.flash_bytes),
                            ("RAM", sizes.ram_bytes, budget.ram_bytes)):
        if need > cap:
            raise BudgetError(_budget_message(model, sizes, budget, what))
    symbols = subprocess.run([_tool("arm-none-eabi-nm"), str(elf)], capture_output=True,
                             text=True, check=True).stdout.split()
    allocators = sorted(set(symbols) & set(FORBIDDEN))
    if allocators:
        raise BuildError(f"{model}: image links a heap allocator ({', '.join(allocators)})")
    return ArmBuild(model, elf, sizes, budget, portable)


def build_app(model_dir: str | Path, out_dir: str | Path | None = None, *,
              portable: bool = False, budget: Budget = STM32F746, opt: str = "-O2",
              defines: tuple[str, ...] = ()) -> ArmBuild:
    """The protocol firmware (firmware/app/app_main.c: HELLO, FRAME -> RESULT, ...) of the model
    in model_dir, which must hold app_config.h (patchcam.app.export) beside model.h / model.c.
    The ELF is <out_dir>/<model>_app.elf; serve it with patchcam.targets.boards.start_board."""
    model_dir = Path(model_dir).resolve()
    if not (model_dir / "app_config.h").is_file():
        raise BuildError(f"{model_dir}: no app_config.h (generate it with patchcam.app.export)")
    model = model_name(model_dir)
    out = Path(out_dir) if out_dir is not None else REPO / "build" / "qemu_m7" / model
    return build(model_dir, out, portable=portable, budget=budget, opt=opt, main_c=APP_MAIN,
                 defines=('PC_BOARD_NAME="qemu_m7"', *defines), extra_sources=APP_LOOP_SOURCES,
                 include_dirs=APP_LOOP_INCLUDES,
                 elf_name=f"{model}_app{'_portable' if portable else ''}.elf")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--out")
    p.add_argument("--portable", action="store_true", help="portable C kernels, no DSP")
    p.add_argument("--flash-kb", type=int, default=STM32F746.flash_bytes // 1024)
    p.add_argument("--ram-kb", type=int, default=STM32F746.ram_bytes // 1024)
    p.add_argument("--opt", default="-O2")
    a = p.parse_args(argv)
    budget = Budget("budget", a.flash_kb * 1024, a.ram_kb * 1024)
    try:
        b = build(a.model_dir, a.out, portable=a.portable, budget=budget, opt=a.opt)
    except BuildError as e:
        raise SystemExit(f"error: {e}") from None
    s = b.sizes
    print(f"{b.elf}: text {s.text} data {s.data} bss {s.bss} -> flash {s.flash_bytes} / "
          f"{budget.flash_bytes}, RAM {s.ram_bytes} / {budget.ram_bytes}")


if __name__ == "__main__":
    main()
