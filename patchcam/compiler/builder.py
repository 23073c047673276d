"""Build an int8 graph op by op, with shapes and padding worked out for you.

Used by the quantiser, the importers and the random-graph generator of the tests, so the
rules for shapes and 'same' padding live in one place (`ir.same_pads`, `ir.out_size`).
"""

from __future__ import annotations

import numpy as np

from patchcam.compiler.ir import Graph, Op, Tensor, out_size, same_pads


class GraphBuilder:
    def __init__(self, name: str, input_shape: tuple[int, ...], scale: float, zero_point: int):
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.input = self._tensor("input", tuple(input_shape), scale, zero_point)

    def _tensor(self, name: str, shape: tuple[int, ...], scale: float, zp: int) -> str:
        base, i = name, 1
        while name in self.tensors:
            name, i = f"{base}_{i}", i + 1
        self.tensors[name] = Tensor(name, shape, float(np.float32(scale)), int(zp))
        return name

    def _emit(self, op: Op, out_shape: tuple[int, ...], scale: float, zp: int) -> str:
        op.output = self._tensor(op.name, out_shape, scale, zp)
        self.ops.append(op)
        return op.output

    def _name(self, kind: str, name: str | None) -> str:
        return name or f"{kind}{len(self.ops)}"

    def _spatial(self, x: str, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: str | tuple[int, int, int, int]) -> tuple[tuple, int, int]:
        h, w, _ = self.tensors[x].shape
        if padding == "same":
            pads = same_pads(h, w, kernel, stride)
        elif padding == "valid":
            pads = (0, 0, 0, 0)
        else:
            pads = tuple(padding)
        ho = out_size(h, kernel[0], stride[0], pads[0], pads[2])
        wo = out_size(w, kernel[1], stride[1], pads[1], pads[3])
        return pads, ho, wo

    def conv2d(self, x: str, weights: np.ndarray, weight_scales: np.ndarray, bias: np.ndarray,
               scale: float, zero_point: int, stride: int = 1, padding="same",
               activation: str = "none", name: str | None = None) -> str:
        k = weights.shape[1:3]
        pads, ho, wo = self._spatial(x, k, (stride, stride), padding)
        op = Op("conv2d", self._name("conv", name), [x], "", k, (stride, stride), pads,
                activation, weights.astype(np.int8), _f32(weight_scales), bias.astype(np.int32))
        return self._emit(op, (ho, wo, weights.shape[0]), scale, zero_point)

    def depthwise_conv2d(self, x: str, weights: np.ndarray, weight_scales: np.ndarray,
                         bias: np.ndarray, scale: float, zero_point: int, stride: int = 1,
                         padding="same", activation: str = "none",
                         name: str | None = None) -> str:
        k = weights.shape[0:2]
        pads, ho, wo = self._spatial(x, k, (stride, stride), padding)
        op = Op("depthwise_conv2d", self._name("dwconv", name), [x], "", k, (stride, stride),
                pads, activation, weights.astype(np.int8), _f32(weight_scales),
                bias.astype(np.int32))
        return self._emit(op, (ho, wo, weights.shape[2]), scale, zero_point)

    def fully_connected(self, x: str, weights: np.ndarray, weight_scale: float, bias: np.ndarray,
                        scale: float, zero_point: int, activation: str = "none",
                        name: str | None = None) -> str:
        op = Op("fully_connected", self._name("fc", name), [x], "", activation=activation,
                weights=weights.astype(np.int8), weight_scales=_f32([weight_scale]),
                bias=bias.astype(np.int32))
        return self._emit(op, (weights.shape[0],), scale, zero_point)

    def add(self, a: str, b: str, scale: float, zero_point: int, activation: str = "none",
            name: str | None = None) -> str:
        op = Op("add", self._name("add", name), [a, b], "", activation=activation)
        return self._emit(op, self.tensors[a].shape, scale, zero_point)

    def pool2d(self, kind: str, x: str, kernel: int | tuple[int, int], stride: int,
               padding="valid", activation: str = "none", name: str | None = None) -> str:
        k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        pads, ho, wo = self._spatial(x, k, (stride, stride), padding)
        t = self.tensors[x]
        op = Op(f"{kind}_pool2d", self._name(f"{kind}pool", name), [x], "", k,
                (stride, stride), pads, activation)
        return self._emit(op, (ho, wo, t.shape[2]), t.scale, t.zero_point)

    def global_avg_pool(self, x: str, name: str | None = None) -> str:
        h, w, _ = self.tensors[x].shape
        return self.pool2d("avg", x, (h, w), 1, "valid", name=name or "global_pool")

    def mean(self, x: str, scale: float, zero_point: int, name: str | None = None) -> str:
        """TFLite's MEAN over H and W (requantises to scale / zero_point; see `ir`)."""
        h, w, c = self.tensors[x].shape
        op = Op("mean", self._name("mean", name), [x], "", (h, w))
        return self._emit(op, (1, 1, c), scale, zero_point)

    def finish(self, output: str, meta: dict | None = None) -> Graph:
        return Graph(self.name, self.tensors, self.ops, self.input, output, meta or {}).check()


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).reshape(-1)
