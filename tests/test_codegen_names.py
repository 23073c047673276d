"""Hostile names in generated C (patchcam.compiler.ctext): graph, tensor, op and class names
from an IR file or app.toml can hold comment ends, quotes, newlines, backslashes, non-ASCII
and trigraphs; the generated C must still compile warning-free, carry none of them raw, and
keep string literals byte-exact. Every C template must route names through a filter."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from patchcam.app import export
from patchcam.compiler import codegen, ctext, patchplan
from patchcam.compiler.ir import Graph
from patchcam.compiler.randgraph import random_graph
from patchcam.paths import TEMPLATES
from patchcam.targets.hostbuild import WARNINGS

HOSTILE = ["*/ int evil; /*", "/* open", "x\n#include <stdio.h>", "line\n#define X 1",
           'quo"te', "back\\slash\\", "caf\u00e9", "\U0001F600", "??/", "tri??=graph??",
           "cr\rlf\r\n", "tab\tnul\x00bell\x07", "ends*", "/starts", "\u2028sep", "0digit",
           "int"]
C_TEMPLATES = ("model.h.j2", "model.c.j2", "app_config.h.j2")
# parts of a name that must never reach the C text as they are
RAW = ("*/ int evil", "/* open", "\n#include <stdio.h>", "\n#define X 1", 'quo"te', "back\\slash",
       "\u00e9", "\U0001F600", "??/", "??=", "\r", "\t", "\x00", "\x07", "\u2028")


def hostile_graph(seed: int = 0) -> Graph:
    """A small valid graph whose name, op names and tensor names are all hostile, loaded the
    way an IR file is (Graph.from_json)."""
    doc = json.loads(random_graph(seed, size=(12, 10)).to_json())
    rename = {t["name"]: f"{HOSTILE[i % len(HOSTILE)]} t{i}"
              for i, t in enumerate(doc["tensors"])}
    doc["name"] = "".join(HOSTILE)
    for t in doc["tensors"]:
        t["name"] = rename[t["name"]]
    for i, op in enumerate(doc["ops"]):
        op["name"] = HOSTILE[(i + 3) % len(HOSTILE)]
        op["inputs"] = [rename[n] for n in op["inputs"]]
        op["output"] = rename[op["output"]]
    doc["input"], doc["output"] = rename[doc["input"]], rename[doc["output"]]
    return Graph.from_json(json.dumps(doc))


def _gcc() -> str:
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("no host gcc")
    return cc


def _compile(cc: str, args: list[str], cwd: Path) -> None:
    r = subprocess.run([cc, *WARNINGS, *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _assert_no_raw(text: str) -> None:
    assert text.isascii()
    for raw in RAW:
        assert raw not in text, f"{raw!r} reached the C text raw"
    # every comment closes where the template closes it: no comment-end inside a name
    for body in re.findall(r"/\*(.*?)\*/", text, flags=re.S):
        assert "/*" not in body


def test_filters_spell_hostile_text_safely():
    for s in HOSTILE:
        comment = ctext.c_comment_text(s)
        assert comment.isascii() and "\\" not in comment and "\n" not in comment
        assert all(p not in comment for p in ("*/", "/*", "??"))
        assert not comment.startswith("/") and not comment.endswith("*")
        ident = ctext.c_identifier(s)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident) and ident not in ctext.C_KEYWORDS
        lit = ctext.c_string(s)
        assert lit.isascii() and "??" not in lit and "\n" not in lit
    # plain names are spelled as they are (shipped apps keep byte-identical C)
    for plain in ("person_detect", "backbone.features.1.conv.0.0", "no_person"):
        assert ctext.c_comment_text(plain) == plain
        assert ctext.c_string(plain) == f'"{plain}"'
    assert ctext.c_identifier("op3_backbone.features.0") == "op3_backbone_features_0"


def test_unfiltered_name_stops_the_generator():
    env = ctext.environment()
    t = env.from_string("/* {{ x }} */ {{ n }}")
    assert t.render(x="conv 3x3, 12x10x4 -> 12x10x8", n=7) == \
        "/* conv 3x3, 12x10x4 -> 12x10x8 */ 7"
    for bad in ("a */ b", 'say "hi"', "caf\u00e9", "a\\", "??/", "x\ry"):
        with pytest.raises(ctext.UnfilteredText, match="c_comment, c_string or c_identifier"):
            t.render(x=bad, n=1)
    assert "*/ b" not in env.from_string("/* {{ x | c_comment }} */").render(x="a */ b")


def test_every_name_in_a_c_template_goes_through_a_filter():
    names = re.compile(r"\b(name|names|title|classes|cname|quant|guard|task)\b")
    for t in C_TEMPLATES:
        for expr in re.findall(r"\{\{(.*?)\}\}", (TEMPLATES / t).read_text()):
            if names.search(expr) and "| length" not in expr:
                assert re.search(r"\|\s*c_(comment|string|identifier)\s*$", expr), (t, expr)


def _main_c(names: list[str]) -> str:
    """A program that prints MODEL_NAME, PC_APP_NAME and the class names, NUL-separated
    (sizeof keeps an embedded NUL)."""
    return ("#include <stdio.h>\n#include \"model.h\"\n#include \"app_config.h\"\n"
            "static void put(const char *s, size_t n) { fwrite(s, 1, n, stdout); "
            "fputc('|', stdout); }\n"
            f"static const char c0[] = {ctext.c_string(names[0])};\n"
            "int main(void) {\n"
            "    static const char *const cls[] = PC_APP_CLASS_NAMES;\n"
            "    put(MODEL_NAME, sizeof MODEL_NAME - 1);\n"
            "    put(PC_APP_NAME, sizeof PC_APP_NAME - 1);\n"
            "    put(c0, sizeof c0 - 1);\n"
            "    for (int i = 0; i < PC_APP_NUM_CLASSES; i++) { fputs(cls[i], stdout); "
            "fputc('|', stdout); }\n"
            "    return 0;\n}\n")


@pytest.mark.parametrize("mode,fuse", [("layer", False), ("recompute", False),
                                       ("cache", True)])
def test_hostile_names_compile_and_round_trip(tmp_path, mode, fuse):
    cc = _gcc()
    g = hostile_graph()
    schedule = None
    if mode != "layer":
        split = max(patchplan.valid_splits(g)[:2])
        schedule = patchplan.plan_patches(g, split, (2, 2), mode, fuse_input=fuse)
    out = tmp_path / "model"
    codegen.generate(g, out, schedule=schedule)
    pool = [c for c in HOSTILE if "\x00" not in c]  # fputs stops at a NUL
    classes = [f"{pool[i % len(pool)]}{i}" for i in range(g.tensors[g.output].size)]
    spec = export.AppSpec.classify("app */ \"x\" \u00e9\U0001F600??/\n#", g, classes)
    export.generate(spec, out)
    for f in ("model.h", "model.c", "app_config.h"):
        _assert_no_raw((out / f).read_text())
    runtime = [f"-I{d}" for d in codegen.runtime_include_dirs()]
    _compile(cc, [*runtime, f"-I{out}", "-c", str(out / "model.c"), "-o", "model.o"], tmp_path)
    (tmp_path / "main.c").write_text(_main_c(["\u00e9??/\"\\"]))
    _compile(cc, [f"-I{out}", str(tmp_path / "main.c"), "-o", "names"], tmp_path)
    got = subprocess.run([str(tmp_path / "names")], capture_output=True, check=True).stdout
    want = [g.name, spec.name, "\u00e9??/\"\\", *classes]
    assert got.split(b"|")[:-1] == [w.encode() for w in want]


def test_names_as_build_folder_names():
    from patchcam.paths import file_stem
    for name in [*HOSTILE, "..", ".", "../../etc", "/abs", "a" * 300, ""]:
        stem = file_stem(name)
        assert re.fullmatch(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,79}", stem), (name, stem)
    assert file_stem("person_detect") == "person_detect"
    assert file_stem("mcu-s-96.v2") == "mcu-s-96.v2"
