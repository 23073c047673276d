"""TFLite's fixed-point arithmetic against values worked out by hand from TFLite's and
gemmlowp's definitions; and the IR file format (corrupt files are caught, save/load is exact).
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from patchcam.compiler import qmath, reference
from patchcam.compiler.ir import Graph, IRError
from patchcam.compiler.qmath import INT32_MAX, INT32_MIN
from patchcam.compiler.randgraph import random_graph, random_input


# ---- QuantizeMultiplier -------------------------------------------------------------------
@pytest.mark.parametrize("real, want", [
    (0.0, (0, 0)),
    (0.5, (1 << 30, 0)),                      # frexp(0.5) = 0.5 * 2^0
    (1.0, (1 << 30, 1)),                      # 0.5 * 2^1
    (0.75, (1610612736, 0)),                  # 0.75 * 2^31
    (3.0, (1610612736, 2)),                   # 0.75 * 2^2
    (0.1, (1717986918, -3)),                  # 0.8 * 2^31 = 1717986918.4 -> down
    (0.1 + 2**-35, (1717986919, -3)),         # ...918.4 + 0.5 = ...918.9 -> up
    (1 - 2**-31, (INT32_MAX, 0)),             # q * 2^31 = 2^31 - 1 exactly
    (1 - 2**-33, (1 << 30, 1)),               # 2^31 - 0.25 rounds to 2^31: renormalised
    (1 - 2**-40, (1 << 30, 1)),
    (0.5 - 2**-34, (1 << 30, 0)),             # the same one binade lower
    (0.5 - 2**-29, ((1 << 31) - 8, -1)),      # 2^31 - 8 exactly, no renormalisation
    (2**-32, (1 << 30, -31)),                 # smallest shift kept
    (0.75 * 2**-31, (1610612736, -31)),
    (2**-33, (0, 0)),                         # shift -32 < -31: flushed to zero
    (1e-12, (0, 0)),
])
def test_quantize_multiplier(real: float, want: tuple[int, int]) -> None:
    assert qmath.quantize_multiplier(real) == want


def test_quantize_multiplier_tie_rounds_away_from_zero() -> None:
    # q * 2^31 = 1610612736.5 exactly: std::round gives ...737.
    real = (1610612736.5) / 2**31
    assert qmath.quantize_multiplier(real) == (1610612737, 0)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_quantize_multiplier_rejects_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="multiplier"):
        qmath.quantize_multiplier(bad)


# ---- SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties toward +infinity ----------
@pytest.mark.parametrize("a, b, want", [
    (1 << 30, 1 << 30, 1 << 29),               # 2^60 / 2^31
    (3, 1 << 30, 2),                           # 1.5 -> 2
    (-3, 1 << 30, -1),                         # -1.5 -> -1 (gemmlowp's negative nudge)
    (-5, 1 << 30, -2),                         # -2.5 -> -2
    (5, 1 << 30, 3),                           # 2.5 -> 3
    (-7, 1 << 29, -2),                         # -1.75 -> -2
    (100, 1 << 30, 50),
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),     # (2^31-1)^2 / 2^31 = 2^31 - 2 + tiny
    (INT32_MIN, INT32_MAX, -INT32_MAX),        # -(2^31 - 1)
    (INT32_MIN, INT32_MIN, INT32_MAX),         # the one overflow: saturates
    (0, INT32_MIN, 0),
])
def test_saturating_rounding_doubling_high_mul(a: int, b: int, want: int) -> None:
    assert int(qmath.saturating_rounding_doubling_high_mul(a, b)) == want
    # Vectorised form gives the same values.
    got = qmath.saturating_rounding_doubling_high_mul(np.array([a, a]), np.array([b, b]))
    assert got.tolist() == [want, want]


# ---- RoundingDivideByPOT: x / 2^e, ties away from zero ------------------------------------
@pytest.mark.parametrize("x, e, want", [
    (5, 1, 3), (-5, 1, -3),                    # 2.5 -> 3, -2.5 -> -3
    (7, 1, 4), (-7, 1, -4),                    # 3.5, -3.5
    (6, 2, 2), (-6, 2, -2),                    # 1.5, -1.5
    (5, 2, 1), (-5, 2, -1),                    # 1.25, -1.25
    (-3, 2, -1), (3, 2, 1),                    # 0.75
    (-1, 1, -1), (1, 1, 1),                    # +-0.5
    (-1, 2, 0),                                # -0.25
    (12345, 0, 12345), (-12345, 0, -12345),
    (INT32_MAX, 31, 1),                        # 0.99999...
    (INT32_MIN, 31, -1),                       # -1 exactly
    (1 << 30, 31, 1), (-(1 << 30), 31, -1),    # +-0.5
    ((1 << 30) - 1, 31, 0), (-(1 << 30) + 1, 31, 0),
    (0, 31, 0),
])
def test_rounding_divide_by_pot(x: int, e: int, want: int) -> None:
    assert int(qmath.rounding_divide_by_pot(x, e)) == want


# ---- MultiplyByQuantizedMultiplier --------------------------------------------------------
@pytest.mark.parametrize("x, m, shift, want", [
    (100, 1 << 30, 0, 50),
    (3, 1 << 30, 0, 2),                        # 1.5 -> 2
    (-3, 1 << 30, 0, -1),                      # -1.5 -> -1 (high mul rounds ties up)
    (5, 1 << 30, -1, 2),                       # 1.25: 2.5 -> 3, then 1.5 -> 2 (rounds twice)
    (-5, 1 << 30, -1, -1),                     # -1.25: -2.5 -> -2, then -1
    (-2244, 1286033406, -7, -11),              # -10.4987: -1343.83 -> -1344, -10.5 -> -11
    (1000, 1 << 30, 3, 4000),                  # left shift: 8000 * 0.5
    (-1000, 1610612736, 2, -3000),             # -4000 * 0.75
    (1 << 28, 1 << 30, 4, 0),                  # 2^32 wraps to 0 in TFLite's int32 product
    ((1 << 27) + 1, 1 << 30, 4, -(1 << 30) + 8),   # 2^31 + 16 wraps to -2^31 + 16
    (INT32_MAX, INT32_MAX, -31, 1),            # (2^31 - 2) / 2^31 -> 1
    (INT32_MIN, INT32_MIN, 0, INT32_MAX),      # saturating high mul
    (INT32_MIN, INT32_MIN, -31, 1),
    (123456, 0, 0, 0),                         # a flushed (tiny) multiplier
])
def test_multiply_by_quantized_multiplier(x: int, m: int, shift: int, want: int) -> None:
    assert int(qmath.multiply_by_quantized_multiplier(x, m, shift)) == want


def test_multiply_by_quantized_multiplier_broadcasts_per_channel() -> None:
    acc = np.array([[100, -3], [7, 1000]])
    m = np.array([1 << 30, 1 << 30])
    shifts = np.array([0, 3])
    got = qmath.multiply_by_quantized_multiplier(acc, m, shifts)
    assert got.tolist() == [[50, -12], [4, 4000]]


def test_tiny_real_multiplier_gives_zero() -> None:
    m, shift = qmath.quantize_multiplier(2**-40)
    assert int(qmath.multiply_by_quantized_multiplier(INT32_MAX, m, shift)) == 0


# ---- CalculateActivationRangeQuantized ----------------------------------------------------
@pytest.mark.parametrize("activation, scale, zp, want", [
    ("none", 0.1, -5, (-128, 127)),
    ("relu", 0.1, -5, (-5, 127)),
    ("relu", 0.1, -128, (-128, 127)),
    ("relu", 0.1, 127, (127, 127)),
    ("relu6", 0.1, -5, (-5, 55)),              # 6 / 0.1f = 59.99999 in float32 -> 60
    ("relu6", 0.05, 0, (0, 120)),
    ("relu6", 0.02, 0, (0, 127)),              # 300 clamps to the int8 range
    ("relu6", 0.02, -128, (-128, 127)),
    ("relu6", 4.0, 0, (0, 2)),                 # 1.5 exactly: half away from zero
    ("relu6", 4.0, -3, (-3, -1)),
    ("relu6", 0.75, 10, (10, 18)),             # 8 exactly
])
def test_activation_range(activation: str, scale: float, zp: int,
                          want: tuple[int, int]) -> None:
    assert qmath.activation_range(activation, scale, zp) == want


def test_activation_range_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="tanh"):
        qmath.activation_range("tanh", 0.1, 0)


# ---- IR files -----------------------------------------------------------------------------
@pytest.fixture
def ir_text() -> str:
    return random_graph(0).to_json()


def test_save_load_round_trip(tmp_path) -> None:
    g = random_graph(4)
    g.save(tmp_path / "g.json")
    h = Graph.load(tmp_path / "g.json")
    assert h.to_json() == g.to_json()
    assert h.tensors == g.tensors and (h.input, h.output, h.meta) == (g.input, g.output, g.meta)
    for a, b in zip(g.ops, h.ops, strict=True):
        for key in ("weights", "weight_scales", "bias"):
            x, y = getattr(a, key), getattr(b, key)
            assert (x is None and y is None) or (x.dtype == y.dtype and np.array_equal(x, y))
    x = random_input(g)
    np.testing.assert_array_equal(reference.run(h, x), reference.run(g, x))


def _corrupt(text: str, how: str) -> str:
    if how == "truncated":
        return text[: len(text) // 2]
    doc = json.loads(text)
    op = next(o for o in doc["ops"] if "weights" in o)
    if how == "format":
        doc["format"] = "onnx"
    elif how == "version":
        doc["version"] = 99
    elif how == "flipped byte":
        data = op["weights"]
        raw = bytearray(base64.b64decode(data["data"]))
        raw[len(raw) // 2] ^= 0x01
        data["data"] = base64.b64encode(bytes(raw)).decode()
    elif how == "bad base64":
        op["bias"]["data"] = "%%%" + op["bias"]["data"]
    elif how == "missing key":
        del op["output"]
    elif how == "wrong shape":
        next(t for t in doc["tensors"] if t["name"] == op["output"])["shape"][0] += 1
    return json.dumps(doc)


@pytest.mark.parametrize("how, message", [
    ("truncated", "JSONDecodeError"),
    ("format", "not a patchcam IR document"),
    ("version", "IR version 99 is not supported"),
    ("flipped byte", "SHA-256 does not match"),
    ("bad base64", "corrupt IR file"),
    ("missing key", "KeyError"),
    ("wrong shape", "output .* != expected"),
])
def test_corrupt_ir_file_is_refused(tmp_path, ir_text: str, how: str, message: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(_corrupt(ir_text, how))
    with pytest.raises(IRError, match=message) as e:
        Graph.load(path)
    assert str(path) in str(e.value) and "corrupt IR file" in str(e.value)


def test_missing_ir_file(tmp_path) -> None:
    with pytest.raises(IRError, match="no such IR file"):
        Graph.load(tmp_path / "absent.json")
