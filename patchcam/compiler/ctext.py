"""Names in generated C: the one place that spells untrusted text as C (docs/design.md §4.8).

Graph, op and class names come from files the project does not control (a `.tflite`, an IR
JSON, an `app.toml`). Every template under `patchcam/templates/` that emits C is rendered by
`environment()`, which registers three filters, one per place a name can stand:

    /* {{ op.title | c_comment }} */        comment text: no `*/`, `/*`, `??`; `\\`, `"`,
                                             newline, control and non-ASCII characters
                                             each become `?`
    #define X {{ name | c_string }}          a string literal, quotes included: `"` `\\` `?`
                                             escaped, `*` and bytes outside printable ASCII
                                             as 3-digit octal escapes of their UTF-8 bytes
    {{ op.cname | c_identifier }}_params    [A-Za-z0-9_] only, not starting with a digit, not a
                                             C keyword

A filtered value is a `CText`. Anything else the template prints must look like generated C
(ASCII, no comment or string delimiters, no trigraphs): `environment()`'s `finalize` refuses
other text with UnfilteredText, so a name that reaches C without a filter stops the generator
instead of ending a comment or a string literal.
"""

from __future__ import annotations

import re

import jinja2

from patchcam.paths import TEMPLATES

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary".split())

# what generated C (not a name) may contain: printable ASCII and newlines, without the
# delimiters a name could use to leave a comment or a string literal, and without trigraphs
_PLAIN = re.compile(r"[\n\x20-\x7e]*")
_UNSAFE = ("*/", "/*", "\\", '"', "??")


class UnfilteredText(ValueError):
    """Text reached a C template without one of the filters of this module."""


class CText(str):
    """Text one of this module's filters made safe for its place in C."""


def c_comment_text(s: object) -> CText:
    """s as the inside of a /* */ comment: characters outside printable ASCII, `\\` and `"`
    become `?`;
    `*` `/` and `?` `?` pairs get a space between them (no comment end, no trigraph); a
    leading `/` or trailing `*` is padded so that the template's own text cannot pair with
    them."""
    text = "".join(c if " " <= c <= "~" and c not in '\\"' else "?" for c in str(s))
    text = re.sub(r"(?<=\*)(?=/)|(?<=/)(?=\*)|(?<=\?)(?=\?)", " ", text)
    if text.startswith(("/", "?")):
        text = " " + text
    if text.endswith(("*", "?")):
        text += " "
    return CText(text)


def c_identifier(s: object) -> CText:
    """s as a C identifier: every character outside [A-Za-z0-9_] becomes `_`; `id_` is put
    before one that would start with a digit, be empty or be a keyword."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(s))
    if not ident or ident[0].isdigit() or ident in C_KEYWORDS:
        ident = "id_" + ident
    return CText(ident)


def c_string(s: object) -> CText:
    """s as a C string literal, quotes included, holding exactly its UTF-8 bytes (invalid
    surrogates become `?`). `?` is escaped so no trigraph can form, `*` so that the literal
    holds no comment delimiter for a tool that scans the text; octal escapes always have 3
    digits so a following digit is never taken into them."""
    out = []
    for b in str(s).encode("utf-8", errors="replace"):
        c = chr(b)
        if c in '"\\?':
            out.append("\\" + c)
        elif 0x20 <= b <= 0x7e and c != "*":
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return CText('"' + "".join(out) + '"')


def _finalize(value: object) -> object:
    """Every `{{ }}` of a C template passes here: filtered text and numbers as they are, other
    text only when it could not leave a comment or a string literal."""
    if isinstance(value, CText | int | float):
        return value
    text = str(value)
    if not _PLAIN.fullmatch(text) or any(u in text for u in _UNSAFE):
        raise UnfilteredText(f"unfiltered text {text[:60]!r} in a C template: pass names "
                          "through c_comment, c_string or c_identifier (patchcam.compiler.ctext)")
    return value


def environment() -> jinja2.Environment:
    """The Jinja environment for C templates: the filters above and the finalize check."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             finalize=_finalize)
    env.filters.update(c_comment=c_comment_text, c_string=c_string, c_identifier=c_identifier)
    return env
