"""Where the viewer's frames come from: a webcam, a video file, an image folder, a dataset
split or the sample photos bundled with scikit-image.

    src = open_source("../shared/datasets/penn_fudan_ped", split="test")
    for name, bgr in src:               # OpenCV's BGR order, uint8 HxWx3
        ...

`demo_source()` picks what `make demo` shows: a webcam when one is present, else the folder
the user named (`IMAGES=...`), else the person-detection test images when the shared datasets
are on disk, else scikit-image's photos (people and no people), which every install has.

Every failure a user can cause (no such camera, empty folder, unreadable video, unknown split)
raises `SourceError` with one line that says what to do. Image files are read through
`patchcam.images.read_image` (pixel limit, truncated JPEGs); one it refuses is skipped with a
line saying why.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from patchcam.images import UnreadableImage, read_image
from patchcam.paths import REPO
from patchcam.training.readers import IMAGE_SUFFIXES, SPLITS, DatasetError, read_dataset

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
SAMPLES = "samples"  # the spec that names scikit-image's bundled photos
# scikit-image's photos: two with a person, two without (the demo should show both).
SAMPLE_PHOTOS = ("astronaut", "camera", "coffee", "chelsea")

SHARED_DATASETS = REPO.parent / "shared" / "datasets"
# Folders the demo tries under the shared datasets, in order: (folder, split).
DEMO_DATASETS = (("penn_fudan_ped", "test"),)


class SourceError(RuntimeError):
    """A frame source that cannot be opened (the message is one line for the user)."""


@dataclass
class Source:
    """A finite or live sequence of (name, BGR image). `live` sources (webcams) never end and
    drop frames while the board is busy; the others give every frame once."""
    description: str
    frames: Callable[[], Iterator[tuple[str, np.ndarray]]]
    live: bool = False
    count: int | None = None  # number of frames when known
    names: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        return self.frames()


# ---- the individual kinds -----------------------------------------------------------------
def webcam_present(index: int = 0) -> bool:
    """True when camera `index` opens and delivers a frame. Checks /dev/video<index> first
    on Linux, so a machine without one answers at once and without OpenCV's warnings."""
    if Path("/dev").is_dir() and not Path(f"/dev/video{index}").exists():
        return False
    cap = cv2.VideoCapture(index)
    try:
        return bool(cap.isOpened() and cap.read()[0])
    finally:
        cap.release()


def webcam(index: int) -> Source:
    if not webcam_present(index):
        have = sorted(glob.glob("/dev/video*"))
        hint = f"cameras here: {', '.join(have)}" if have else "no /dev/video* on this machine"
        raise SourceError(f"camera {index} not found ({hint}); use an image folder or a video "
                          "file as --source")

    def frames() -> Iterator[tuple[str, np.ndarray]]:
        cap = cv2.VideoCapture(index)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one queued while we waited
        try:
            n = 0
            while True:
                ok, img = cap.read()
                if not ok:
                    raise SourceError(f"camera {index} stopped delivering frames")
                yield f"cam{index}_{n:06d}", img
                n += 1
        finally:
            cap.release()
    return Source(f"camera {index}", frames, live=True)


def video(path: Path) -> Source:
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened() and cap.read()[0]
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    cap.release()
    if not ok:
        raise SourceError(f"{path}: cannot be read as a video")

    def frames() -> Iterator[tuple[str, np.ndarray]]:
        cap = cv2.VideoCapture(str(path))
        try:
            n = 0
            while True:
                ok, img = cap.read()
                if not ok:
                    return
                yield f"{path.stem}_{n:06d}", img
                n += 1
        finally:
            cap.release()
    return Source(f"video {path} ({count or '?'} frames)", frames, count=count)


def _read(path: Path) -> np.ndarray | None:
    """The image through patchcam.images (pixel limit, truncated JPEGs: a forged header
    allocates nothing); None, after one line saying why, when it is refused."""
    try:
        return read_image(path)
    except UnreadableImage as e:
        print(f"viewer: {e}, skipped", flush=True)
        return None


def image_files(paths: list[Path], description: str) -> Source:
    def frames() -> Iterator[tuple[str, np.ndarray]]:
        for p in paths:
            img = _read(p)
            if img is not None:
                yield p.stem, img
    return Source(description, frames, count=len(paths), names=[p.stem for p in paths])


def image_folder(path: Path) -> Source:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"{path}: image folder is empty (no "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))} files)")
    return image_files(files, f"image folder {path} ({len(files)} images)")


def dataset_split(path: Path, split: str) -> Source:
    if split not in SPLITS:
        raise SourceError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    try:
        samples = read_dataset(path).split(split)
    except DatasetError as e:
        raise SourceError(str(e)) from None
    if not samples:
        raise SourceError(f"{path}: the {split} split has no images")
    files = sorted(s.image_path for s in samples)
    return image_files(files, f"dataset {path.name}, {split} split ({len(files)} images)")


def sample_photos() -> Source:
    """scikit-image's bundled photos (in its wheel: no download)."""
    import skimage.data

    def frames() -> Iterator[tuple[str, np.ndarray]]:
        for name in SAMPLE_PHOTOS:
            img = getattr(skimage.data, name)()
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            else:
                img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
            yield name, img
    return Source(f"scikit-image sample photos ({', '.join(SAMPLE_PHOTOS)})", frames,
                  count=len(SAMPLE_PHOTOS), names=list(SAMPLE_PHOTOS))


# ---- dispatch -----------------------------------------------------------------------------
def open_source(spec: str, split: str | None = None) -> Source:
    """A webcam index ("0"), a video or image file, an image folder, a dataset folder with a
    split, or "samples" (scikit-image's photos)."""
    if spec == SAMPLES:
        return sample_photos()
    if spec.isdigit():
        return webcam(int(spec))
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder (a source is a camera index, a "
                          f"video, an image folder, a dataset folder with --split, or "
                          f"'{SAMPLES}')")
    if path.is_dir():
        return dataset_split(path, split) if split else image_folder(path)
    if split:
        raise SourceError(f"{spec}: --split needs a dataset folder, not a file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return image_files([path], f"image {path}")
    if path.suffix.lower() in VIDEO_SUFFIXES or path.is_file():
        return video(path)
    raise SourceError(f"{spec}: not an image, a video or a folder")


def limited(src: Source, n: int | None) -> Source:
    """The first n frames of src (all when n is None)."""
    if n is None:
        return src

    def frames() -> Iterator[tuple[str, np.ndarray]]:
        for i, f in enumerate(src.frames()):
            if i >= n:
                return
            yield f
    count = n if src.count is None else min(n, src.count)
    return Source(src.description, frames, live=False, count=count, names=src.names[:n])


def demo_source(images: str | None = None, datasets: Path = SHARED_DATASETS,
                camera: bool = True) -> tuple[Source, str]:
    """What `make demo` streams, and why: (source, one line naming the choice)."""
    if camera and webcam_present(0):
        return webcam(0), "webcam 0 (found /dev/video0)"
    if images:
        return open_source(images), f"IMAGES={images}"
    for folder, split in DEMO_DATASETS:
        path = datasets / folder
        if path.is_dir():
            try:
                return dataset_split(path, split), f"{path} ({split} split)"
            except SourceError:
                continue
    return sample_photos(), ("scikit-image's sample photos (no webcam, no IMAGES=, no "
                             f"{datasets})")
