"""CMSIS-NN side by side: the same layers on Arm's int8 kernels, on the same emulated M7.

    lib = library("build/cmsis-nn")                  # a CMSIS-NN checkout (never vendored)
    build = build_model(model_dir, lib, out_dir)     # our generated layer-by-layer C
    out, prof = opprofile.profile_model(build.elf, x.tobytes(), g, build_dir / "model.c")

CMSIS-NN (github.com/ARM-software/CMSIS-NN) is what TensorFlow Lite Micro runs on a Cortex-M.
A user fetches it at some commit and points the bench at the folder (`patchcam bench
--cmsis-nn DIR`, `make bench CMSIS_NN=DIR`); nothing of it is kept in this repository.
Measured at ARM-software/CMSIS-NN 99f736a63036613032f9b70de36b493bcd7802d4 (docs/
patch_inference.md), fetched e.g. with

    git clone https://github.com/ARM-software/CMSIS-NN build/cmsis-nn
    git -C build/cmsis-nn checkout 99f736a63036613032f9b70de36b493bcd7802d4

How: the library's int8 sources are compiled once with the flags of our own kernels
(armbuild.CPU_FLAGS: -mcpu=cortex-m7 -mthumb with the FPU, so __ARM_FEATURE_DSP and CMSIS-NN's
ARM_MATH_DSP path; -O2) into an archive. The model's layer-by-layer C (the same generated
model.c the bench measures) is copied with every runtime call in model_invoke renamed pc_... ->
cnn_... (firmware/tools/cmsis_nn/cnn_adapter.c: the same arguments carried to CMSIS-NN's
wrappers), so the weights, the requantisation constants and the driver are ours and only the
kernels differ; the arena is planned with every depthwise output in its own buffer, since
CMSIS-NN's depthwise kernel cannot write over its input (ours can), and every filter stays
int8 (no pair records: `cmsis_nn_graph`). Its output must equal the
numpy reference like ours (CMSIS-NN is bit-exact with TFLite's reference kernels, and so are
we), so a comparison is of the same arithmetic. The per-op profile (opprofile) works on it
unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchcam.compiler import memplan, records
from patchcam.compiler.ir import Graph
from patchcam.paths import REPO
from patchcam.targets import armbuild

ADAPTER_DIR = armbuild.FIRMWARE / "tools" / "cmsis_nn"
ADAPTER = ADAPTER_DIR / "cnn_adapter.c"
# The source folders the int8 kernels (and what they call) live in.
SOURCE_DIRS = ("ConvolutionFunctions", "NNSupportFunctions", "BasicMathFunctions",
               "PoolingFunctions", "FullyConnectedFunctions")
LIB_CFLAGS = ["-std=gnu99", *armbuild.CPU_FLAGS, "-ffunction-sections", "-fdata-sections",
              "-O2", "-w"]  # third-party code: its warnings are not ours to fix
# Runtime calls that have a CMSIS-NN counterpart in cnn_adapter.c.
RENAMED = ("conv2d_s8", "pointwise_conv2d_s8", "depthwise_conv2d_s8", "fully_connected_s8",
           "add_s8", "avg_pool2d_s8", "max_pool2d_s8")
CALL = re.compile(r"\bpc_(" + "|".join(RENAMED) + r")\(")


class CmsisNnError(RuntimeError):
    pass


@dataclass(frozen=True)
class Library:
    archive: Path  # libcmsis-nn.a
    include: Path  # the checkout's Include/
    commit: str  # the checkout's commit ("unknown" when it cannot tell)


def check_dir(path: str | Path) -> Path:
    """The CMSIS-NN checkout at path (it must hold Include/arm_nnfunctions.h and Source/)."""
    root = Path(path).resolve()
    if not (root / "Include" / "arm_nnfunctions.h").is_file() or not (root / "Source").is_dir():
        raise CmsisNnError(f"{path}: not a CMSIS-NN checkout (no Include/arm_nnfunctions.h "
                           "or Source/); git clone https://github.com/ARM-software/CMSIS-NN")
    return root


def commit_of(root: Path) -> str:
    """The checkout's commit: `git rev-parse HEAD`, else a COMMIT file, else "unknown"."""
    res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                         text=True)
    if res.returncode == 0 and (root / ".git").exists():
        return res.stdout.strip()
    marker = root / "COMMIT"
    return marker.read_text().strip() if marker.is_file() else "unknown"


def sources(root: Path) -> list[Path]:
    """The library's integer sources: every .c of SOURCE_DIRS but the float kernels (the
    linker keeps only what the int8 kernels use)."""
    out = []
    for d in SOURCE_DIRS:
        for c in sorted((root / "Source" / d).glob("*.c")):
            if re.search(r"_f(16|32)(_|\.c)", c.name):
                continue
            out.append(c)
    if not out:
        raise CmsisNnError(f"{root}: no CMSIS-NN sources under Source/")
    return out


def library(path: str | Path, out_root: Path | None = None) -> Library:
    """The checkout's int8 kernels compiled for the emulated M7, cached under
    build/cmsis-nn-lib/ by commit and sources."""
    root = check_dir(path)
    commit = commit_of(root)
    srcs = sources(root)
    key = hashlib.sha256("\n".join([commit, str(root), *LIB_CFLAGS, *(
        f"{s.name}:{s.stat().st_mtime_ns}" for s in srcs)]).encode()).hexdigest()[:16]
    out = (out_root or REPO / "build" / "cmsis-nn-lib") / key
    lib = out / "libcmsis-nn.a"
    found = Library(lib, root / "Include", commit)
    if lib.is_file():
        return found
    objs = out / "obj"
    objs.mkdir(parents=True, exist_ok=True)
    cc = shutil.which(armbuild.CC)
    ar = shutil.which("arm-none-eabi-ar")
    if cc is None or ar is None:
        raise CmsisNnError(f"arm-none-eabi-gcc / -ar not found: {armbuild.INSTALL_HINT}")
    res = subprocess.run([cc, *LIB_CFLAGS, f"-I{root / 'Include'}", "-c",
                          *(str(s) for s in srcs)], cwd=objs, capture_output=True, text=True)
    if res.returncode != 0:
        raise CmsisNnError(f"compiling CMSIS-NN ({commit}) failed:\n{res.stderr[-3000:]}")
    tmp = lib.with_suffix(".tmp.a")
    tmp.unlink(missing_ok=True)
    subprocess.run([ar, "rcs", str(tmp), *sorted(str(o) for o in objs.glob("*.o"))],
                   check=True, capture_output=True)
    tmp.replace(lib)
    return found


def cmsis_nn_graph(g: Graph) -> Graph:
    """A copy of g as CMSIS-NN must run it: every depthwise output in its own buffer (its
    depthwise kernel, like TFLite Micro's, cannot write over its input: a larger arena) and
    every filter int8 (no pair records, compiler/records.py); the same ops and outputs."""
    return dataclasses.replace(g, meta={**g.meta, memplan.DW_IN_PLACE_KEY: False,
                                        records.KEY: False})


def rewrite_model_c(text: str) -> str:
    """Our generated model.c with model_invoke's runtime calls going to cnn_adapter.c; the
    parameter tables, weights and arena are unchanged. Refuses a patch-based model.c (its
    pc_patch_... calls have no CMSIS-NN counterpart)."""
    if "pc_patch_" in text:
        raise CmsisNnError("a patch-based model.c: CMSIS-NN runs layer by layer only")
    if ".pair_records = " in text:  # the field, not an op that happens to be named so
        raise CmsisNnError("a model.c with pair records, which CMSIS-NN cannot read: generate "
                           "it from cmsis_nn_graph(graph)")
    if "pc_depthwise_conv2d_s8_in_place(" in text:
        raise CmsisNnError("a model.c with in-place depthwise convs, which CMSIS-NN cannot run: "
                           "generate it from cmsis_nn_graph(graph)")
    m = re.search(r"^void model_invoke\(void\)\n\{\n", text, re.M)
    if m is None:
        raise CmsisNnError("no `void model_invoke(void)` in the generated model.c")
    body_end = text.index("\n}\n", m.end())
    head, body, tail = text[:m.end()], text[m.end():body_end], text[body_end:]
    new_body, n = CALL.subn(r"cnn_\1(", body)
    if n == 0:
        raise CmsisNnError("model_invoke makes no runtime call to carry over to CMSIS-NN")
    head = head.replace('#include "pc_kernels.h"\n',
                        '#include "pc_kernels.h"\n#include "cnn_adapter.h"\n', 1)
    if "cnn_adapter.h" not in head:
        raise CmsisNnError("the generated model.c does not include pc_kernels.h")
    return head + new_body + tail


def build_model(model_dir: str | Path, lib: Library, out_dir: str | Path) -> armbuild.ArmBuild:
    """The qemu_m7 image of the generated (layer-by-layer) model in model_dir with its kernels
    replaced by CMSIS-NN's; sized against QEMU's whole memory (its RAM is not what we report:
    the adapter's static scratch is in it)."""
    model_dir = Path(model_dir)
    out = Path(out_dir)
    cnn_dir = out / "model"
    cnn_dir.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        if f.suffix in (".h", ".json"):
            shutil.copy2(f, cnn_dir / f.name)
    (cnn_dir / "model.c").write_text(rewrite_model_c((model_dir / "model.c").read_text()))
    roomy = armbuild.Budget("QEMU mps2-an500", armbuild.QEMU_MEMORY_BYTES,
                            armbuild.QEMU_MEMORY_BYTES)
    return armbuild.build(cnn_dir, out / "m7", budget=roomy,
                          extra_sources=(ADAPTER, lib.archive),
                          include_dirs=(ADAPTER_DIR, lib.include),
                          elf_name=f"{armbuild.model_name(cnn_dir)}_cmsis_nn.elf")
