"""What the viewer takes from an app in apps/<app>/: the model a virtual board runs (its
exported model, else its untrained network, generated once and cached under build/viewer/) and
its default detection threshold (read from app.toml alone, before any validation).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from patchcam.paths import REPO


def app_threshold(app: str) -> float | None:
    """The app's default detection threshold (its app.toml), when this checkout has the app."""
    import tomllib

    try:  # the toml alone: a threshold is all the viewer needs from it
        doc = tomllib.loads((REPO / "apps" / app / "app.toml").read_text())
        return float(doc.get("thresholds", {}).get("score", 0.5))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


# ---- which model a virtual board runs -----------------------------------------------------
_GENERATOR_FILES = ("app/export.py", "app/config.py", "app/detect.py", "compiler/codegen.py",
                    "compiler/ir.py", "compiler/memplan.py", "compiler/models.py",
                    "compiler/patchplan.py", "compiler/presets.py", "compiler/qparams.py",
                    "compiler/quantize.py", "compiler/zoo.py")

def app_model_dir(app: str, model_dir: Path | None = None,
                  build: Path | None = None) -> tuple[Path, bool, str]:
    """(generated model folder, trained?, one line saying which) for a virtual board.

    The app's exported model (apps/<app>/generated/) when it exists; otherwise its untrained
    network (random weights, right for memory and speed, meaningless boxes), generated once
    into build/viewer/<app>/model and reused while app.toml is unchanged."""
    if model_dir is not None:
        if not (model_dir / "model.c").is_file():
            raise SystemExit(f"viewer: {model_dir}: no model.c (a folder written by "
                             "patchcam.compiler.codegen)")
        return model_dir, True, f"generated model in {model_dir}"
    toml = REPO / "apps" / app / "app.toml"
    if not toml.is_file():
        known = sorted(t.parent.name for t in (REPO / "apps").glob("*/app.toml"))
        raise SystemExit(f"viewer: no app {app!r} (apps: {', '.join(known)})")
    gen = REPO / "apps" / app / "generated"
    if (gen / "model.c").is_file():
        meta = {}
        if (gen / "model.json").is_file():
            meta = json.loads((gen / "model.json").read_text()).get("meta", {})
        if meta.get("weights") != "random":
            return gen, True, f"trained {app} model ({_rel(gen, REPO)})"
    out = (build or REPO / "build" / "viewer") / app / "model"
    stamp = out / "generated-from.txt"
    # Regenerate when the app or the code that turns it into C changes.
    h = hashlib.sha256(toml.read_bytes())
    pkg = REPO / "patchcam"
    for f in sorted(p for p in [*(pkg / n for n in _GENERATOR_FILES),
                                *(pkg / "templates").glob("*")] if p.is_file()):
        h.update(f.name.encode() + f.read_bytes())
    key = f"{toml}\n{h.hexdigest()}\n"
    if not all((out / f).is_file() for f in ("model.c", "app_config.h", "model.json")) or \
            not stamp.is_file() or stamp.read_text() != key:
        from patchcam.app import export
        from patchcam.app.config import load_app
        from patchcam.compiler import codegen
        from patchcam.compiler.models import app_graph
        cfg = load_app(app)
        g = app_graph(app)
        codegen.generate(g, out)
        export.generate(export.AppSpec.from_app(cfg, g), out)  # app_config.h for the app loop
        g.save(out / "model.json")  # the int8 graph, for patchcam.app.pipeline and inspection
        stamp.write_text(key)
    return out, False, (f"{app}: no trained weights in apps/{app}/generated/ yet, running its "
                        f"UNTRAINED network (random weights: real memory and speed, "
                        f"meaningless boxes) from {_rel(out, REPO)}")


def _rel(p: Path, root: Path) -> Path:
    try:
        return p.relative_to(root)
    except ValueError:
        return p
