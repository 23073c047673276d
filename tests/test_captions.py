"""Captioned photos (Flickr8k layout) as person / no_person samples."""

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from patchcam.training import captions, readers


def test_caption_rule():
    assert captions.mentions_person("Two girls play in a fountain .")
    assert captions.mentions_person("A skier jumps")
    assert not captions.mentions_person("A dog wearing a blue shirt runs .")
    assert not captions.mentions_person("The dog shakes his head")  # pronouns do not count
    assert captions.label(["A man runs", "A person running", "A dog"]) == "person"
    assert captions.label(["A dog runs", "Two dogs", "A brown dog"]) == "no_person"
    assert captions.label(["A statue of a man", "A fountain", "A square"]) is None


def _set(root: Path, rows: list[tuple[str, str]], images: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    for name in images:
        cv2.imwrite(str(root / "images" / name), np.full((40, 60, 3), 128, np.uint8))
    with (root / "captions.txt").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        w.writerows(rows)
    return root


def test_read_captions_labels_skips_ambiguous_and_is_detected(tmp_path):
    rows = [("a.jpg", "A man climbs a rock ."), ("a.jpg", "A climber on a cliff"),
            ("b.jpg", "A dog in the snow"), ("b.jpg", "Two dogs play"),
            ("c.jpg", "A boy in a field"), ("c.jpg", "A grassy field")]
    root = _set(tmp_path / "flickr", rows, ["a.jpg", "b.jpg", "c.jpg"])
    assert readers.detect_format(root) == "captions"
    ss = readers.read_dataset(root)
    assert ss.format == "captions"
    assert {s.image_path.name: s.label for s in ss} == {"a.jpg": "person", "b.jpg": "no_person"}
    assert [(p.name, why) for p, why in ss.skipped] == [("c.jpg", "captions disagree on a person")]
    assert all(s.size == (60, 40) and s.split in readers.SPLITS for s in ss)


def test_read_captions_refuses_a_name_outside_its_images(tmp_path):
    root = _set(tmp_path / "evil", [("../../x.jpg", "A man"), ("../../x.jpg", "A woman")], [])
    with pytest.raises(readers.LabelError, match="unsafe image '../../x.jpg': it must stay "
                                                 "inside"):
        readers.read_dataset(root)


def test_read_captions_needs_its_columns(tmp_path):
    root = tmp_path / "bad"
    (root / "images").mkdir(parents=True)
    (root / "captions.txt").write_text("file,text\nx.jpg,A man\n")
    with pytest.raises(readers.LabelError, match="'image' and 'caption'"):
        readers.read_captions(root)
