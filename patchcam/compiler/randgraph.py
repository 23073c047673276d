"""Random int8 graphs that cover every op, for bit-exactness tests of every executor.

Scales are chosen so that typical values land well inside int8 (about +-3 sigma of the
accumulator fills the range), so the tests exercise real rounding rather than saturation.
"""

from __future__ import annotations

import numpy as np

from patchcam.compiler.builder import GraphBuilder
from patchcam.compiler.ir import Graph

X_STD = 74.0  # std of a uniform int8 value
W_STD = 60.0


def _out_scale(rng: np.random.Generator, in_scale: float, w_scale: float, fan_in: int) -> float:
    std = np.sqrt(fan_in) * X_STD * W_STD * in_scale * w_scale
    return float(std * 6 / 255 * rng.uniform(0.7, 1.4))


def _mac_args(rng: np.random.Generator, shape: tuple[int, ...], channels: int, in_scale: float):
    w = rng.integers(-127, 128, size=shape, dtype=np.int64).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.02, size=channels).astype(np.float32)
    bias = rng.integers(-3000, 3000, size=channels).astype(np.int32)
    return w, w_scales, bias


def _act(rng: np.random.Generator) -> str:
    return str(rng.choice(["none", "relu", "relu6"]))


def random_graph(seed: int, size: tuple[int, int] | None = None, channels: int | None = None,
                 n_blocks: int = 4, mean_head: bool = False) -> Graph:
    """A chain of random blocks ending in global pooling + FC. Every op kind, kernel size
    (1/3/5/7), stride 1/2, 'same'/'valid' padding and residual adds appear across seeds.
    mean_head: the global pooling is a `mean` that requantises (imported .tflite models'
    MEAN) instead of an `avg_pool2d`; the rest of the graph is the same."""
    rng = np.random.default_rng(seed)
    h, w = size or (int(rng.integers(9, 33)), int(rng.integers(9, 33)))
    c = channels or int(rng.integers(1, 9))
    b = GraphBuilder(f"random{seed}", (h, w, c), float(rng.uniform(0.01, 0.05)),
                     int(rng.integers(-20, 20)))
    x = b.input
    for _ in range(n_blocks):
        t = b.tensors[x]
        hh, ww, cc = t.shape
        kind = rng.choice(["conv", "dw", "pw", "res", "maxpool", "avgpool"])
        k = int(rng.choice([1, 3, 5, 7]))
        k = min(k, hh, ww) if k > 1 else 1
        k = k if k % 2 == 1 else k - 1
        stride = int(rng.choice([1, 2])) if min(hh, ww) >= 6 else 1
        padding = str(rng.choice(["same", "valid"])) if k > 1 else "same"
        zp = int(rng.integers(-30, 30))
        if kind in ("conv", "pw"):
            k = 1 if kind == "pw" else k
            cout = int(rng.integers(1, 17))
            wts, ws, bias = _mac_args(rng, (cout, k, k, cc), cout, t.scale)
            s = _out_scale(rng, t.scale, float(ws.mean()), k * k * cc)
            x = b.conv2d(x, wts, ws, bias, s, zp, stride, padding, _act(rng))
        elif kind == "dw":
            k = max(k, 3)
            k = min(k, 7) if min(hh, ww) >= k else 1
            wts, ws, bias = _mac_args(rng, (k, k, cc), cc, t.scale)
            s = _out_scale(rng, t.scale, float(ws.mean()), k * k)
            x = b.depthwise_conv2d(x, wts, ws, bias, s, zp, stride, padding, _act(rng))
        elif kind == "res":
            # An inverted residual: expand 1x1, depthwise, project 1x1, add the input back.
            e = cc * int(rng.integers(2, 5))
            wts, ws, bias = _mac_args(rng, (e, 1, 1, cc), e, t.scale)
            y = b.conv2d(x, wts, ws, bias, _out_scale(rng, t.scale, float(ws.mean()), cc),
                         zp, activation="relu6")
            ty = b.tensors[y]
            kd = int(rng.choice([3, 5, 7]))
            wts, ws, bias = _mac_args(rng, (kd, kd, e), e, ty.scale)
            y = b.depthwise_conv2d(y, wts, ws, bias,
                                   _out_scale(rng, ty.scale, float(ws.mean()), kd * kd),
                                   int(rng.integers(-30, 30)), activation="relu6")
            ty = b.tensors[y]
            wts, ws, bias = _mac_args(rng, (cc, 1, 1, e), cc, ty.scale)
            y = b.conv2d(y, wts, ws, bias, _out_scale(rng, ty.scale, float(ws.mean()), e),
                         int(rng.integers(-30, 30)))
            s = max(b.tensors[y].scale, t.scale) * rng.uniform(1.0, 2.0)
            x = b.add(x, y, s, int(rng.integers(-30, 30)), str(rng.choice(["none", "relu"])))
        else:
            k = max(min(k, 3), 2) if min(hh, ww) >= 2 else 1
            x = b.pool2d("max" if kind == "maxpool" else "avg", x, k, stride,
                         padding, _act(rng) if kind == "maxpool" else "none")
    if mean_head:
        t = b.tensors[x]
        mrng = np.random.default_rng(seed + 7_777_777)  # keeps rng's draws as without it
        x = b.mean(x, t.scale * float(mrng.uniform(0.4, 1.2)), int(mrng.integers(-30, 30)))
    else:
        x = b.global_avg_pool(x)
    t = b.tensors[x]
    n = int(rng.integers(2, 11))
    wts, ws, _ = _mac_args(rng, (n, t.size), 1, t.scale)
    bias = rng.integers(-3000, 3000, size=n).astype(np.int32)
    s = _out_scale(rng, t.scale, float(ws[0]), t.size)
    x = b.fully_connected(x, wts, float(ws[0]), bias, s, int(rng.integers(-10, 10)))
    return b.finish(x, {"source": "random", "seed": seed})


def random_input(g: Graph, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 1_000_003)
    return rng.integers(-128, 128, size=g.tensors[g.input].shape, dtype=np.int64).astype(np.int8)
