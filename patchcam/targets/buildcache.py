"""Build outputs kept by content: a folder named after a hash of everything that made it.

The C runtime is the same for every model, so each builder (armbuild for the Cortex-M7,
hostbuild for the host) compiles it once per compiler, flags and source and keeps the
result under `build/`; a changed source, header or flag gives a new folder, never a stale one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

_lock = threading.Lock()  # threads of one process build a folder once; processes: by rename


def content_key(parts: Iterable[str | bytes], files: Iterable[Path]) -> str:
    """A short hash of parts (compiler identity, flags) and of each file's name and bytes."""
    h = hashlib.sha256()
    for part in parts:
        h.update((part.encode() if isinstance(part, str) else part) + b"\0")
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def cached_folder(folder: Path, wanted: Iterable[str], build: Callable[[Path], None]) -> Path:
    """folder, after build(tmp) has filled a temporary folder beside it with the files named
    in wanted, unless they are all there already. The folder appears whole, by rename, so
    concurrent builds never see half of one; build's exceptions pass through, and nothing
    half-built stays."""
    names = list(wanted)
    with _lock:
        if all((folder / n).exists() for n in names):
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix="tmp-"))
        try:
            build(tmp)
            try:
                os.replace(tmp, folder)
            except OSError:  # another process made the same folder first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
