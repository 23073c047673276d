"""Lab 3's checks: a student's requantisation against the integer reference, and the shipped
vww model on TensorFlow Lite Micro against the same reference (docs/labs/lab3_integers.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from patchcam.compiler import reference
from patchcam.compiler.ir import Graph
from patchcam.compiler.qparams import op_params
from patchcam.paths import APPS, REPO

SAMPLES = ("astronaut", "coffee", "chelsea")  # scikit-image's sample photos (offline)


def vww_graph() -> Graph:
    return Graph.load(APPS / "vww" / "generated" / "model.json")


def sample_input(g: Graph, name: str = "astronaut") -> np.ndarray:
    """A scikit-image sample photo as the model's int8 input (pixel - 128, as the board)."""
    import cv2
    from skimage import data

    h, w, _ = g.tensors[g.input].shape
    img = cv2.resize(getattr(data, name)()[..., :3], (w, h), interpolation=cv2.INTER_AREA)
    return (img.astype(np.int16) - 128).astype(np.int8)


def load_student(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab3_requantise", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{path}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check(path: Path) -> int:
    """Run the student's requantise_float and requantise_int on every output of vww's first
    convolution (one photo) and compare with the integer reference."""
    if not path.is_file():
        print(f"error: {path}: no such file; `make lab N=3` writes it")
        return 2
    student = load_student(path)
    g = vww_graph()
    op = g.ops[0]
    p = op_params(g, op)
    x = sample_input(g)
    want = reference.run_op(g, op, [x]).astype(np.int64)
    acc = (np.rint(reference._conv_acc(x, op, p)).astype(np.int64)
           + op.bias.astype(np.int64))
    s_in, s_out = g.tensors[op.inputs[0]].scale, g.tensors[op.output].scale
    real = s_in * op.weight_scales.astype(np.float64) / s_out
    zp = p.output_offset
    h, w, c = want.shape
    print(f"vww op 0 ({op.kind} {op.kernel[0]}x{op.kernel[1]}/{op.stride[0]}): {h}x{w}x{c} = "
          f"{want.size:,} outputs; channel 0: M = {real[0]:.9f} = {int(p.multipliers[0])} * "
          f"2^({int(p.shifts[0])} - 31), output zero point {zp}, clamp "
          f"[{p.act_min}, {p.act_max}]")
    i, j = h // 2, w // 2
    print(f"output ({i}, {j}, 0): acc = {int(acc[i, j, 0])}, reference int8 = "
          f"{int(want[i, j, 0])}")
    params = {  # per output channel k: the arguments after acc
        "requantise_float": lambda k: (float(real[k]), zp, p.act_min, p.act_max),
        "requantise_int": lambda k: (int(p.multipliers[k]), int(p.shifts[k]), zp, p.act_min,
                                     p.act_max)}
    status = 0
    for name, args in params.items():
        fn = getattr(student, name, None)
        if fn is None:
            print(f"{name}: missing from {path}")
            status = 1
            continue
        try:
            got = np.array([[[int(fn(int(acc[r, q, k]), *args(k))) for k in range(c)]
                             for q in range(w)] for r in range(h)], np.int64)
        except NotImplementedError:
            print(f"{name}: not filled in yet ({path})")
            status = 1
            continue
        same = int((got == want).sum())
        off = np.abs(got - want)
        print(f"{name}: {same:,} of {want.size:,} outputs equal the reference "
              f"({want.size - same:,} differ, by at most {int(off.max())})")
        if name == "requantise_int" and same != want.size:
            status = 1
    if status == 0:
        print("check passed: requantise_int is bit-exact with patchcam.compiler.qmath")
    return status


def tflm() -> int:
    """vww's shipped int8 graph as a .tflite on TensorFlow Lite Micro vs the integer
    reference, on scikit-image's sample photos."""
    from patchcam.compiler.tflite_export import export_tflite
    from patchcam.compiler.tflm import run_tflm

    g = vww_graph()
    model = export_tflite(g)
    out = g.tensors[g.output]
    from patchcam.labs import LABS
    path = LABS / "lab3" / "vww.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model)
    print(f"vww: {len(g.ops)} ops, {len(model):,} bytes as .tflite ({path.relative_to(REPO)})")
    same = 0
    for name in SAMPLES:
        x = sample_input(g, name)
        ours = reference.run(g, x).reshape(-1)
        theirs = np.asarray(run_tflm(model, x)).reshape(-1)
        p = (ours.astype(np.float64) - out.zero_point) * out.scale
        prob = np.exp(p - p.max()) / np.exp(p - p.max()).sum()
        ok = np.array_equal(ours, theirs)
        same += ok
        print(f"  {name:<10} reference int8 {ours.tolist()}  TFLite Micro {theirs.tolist()}  "
              f"{'identical' if ok else 'DIFFERENT'}  P(person) {prob[-1]:.3f}")
    print(f"bit-exact: {same} of {len(SAMPLES)} photos")
    return 0 if same == len(SAMPLES) else 1
