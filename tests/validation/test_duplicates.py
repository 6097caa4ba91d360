"""Frames that repeat other frames, in real PV frames and a transfer run."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from thermosynth.cli import main
from thermosynth.validation.duplicates import frame_digests, repeats

# Modules of the Raptor Maps set, 24 x 40 px: No-Anomaly, then Hot-Spot.
NORMAL_STEMS = (
    "13357", "13356", "19719", "11543", "11540", "11541", "11546", "11547",
    "11544", "11545", "14545", "11549", "16426", "19927", "19399", "19398",
    "12441", "19713",
)  # fmt: skip
HOT_STEMS = ("6796", "6797", "6794", "6795")


def _image(data_dir: Path, stem: str) -> np.ndarray:
    path = data_dir / "pv-modules-raptormaps" / "images" / f"{stem}.jpg"
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)


@pytest.fixture
def frames(data_dir) -> np.ndarray:
    return np.stack([_image(data_dir, stem) for stem in NORMAL_STEMS[:6]])


def test_repeats_find_copied_frames(frames):
    test = np.stack([frames[4], frames[0] // 2, frames[1], frames[4]])

    assert repeats(test, frames) == [(0, 4), (2, 1), (3, 4)]


def test_repeats_give_first_reference(frames):
    reference = np.concatenate([frames, frames[2:3]])

    assert repeats(frames[2:3], reference) == [(0, 2)]


def test_digests_differ_by_one_pixel_and_dtype(frames):
    changed = frames[0].copy()
    changed[3, 5] ^= 1
    digests = frame_digests(np.stack([frames[0], changed]))

    assert digests[0] != digests[1]
    assert frame_digests(frames[:1]) != frame_digests(frames[:1].astype(np.int8))
    assert frame_digests(frames[:1]) == frame_digests(frames[:1].copy())


def _tree(data_dir: Path, root: Path) -> Path:
    """Write an MVTec tree whose test/good repeats one training frame."""
    sources = data_dir / "pv-modules-raptormaps" / "images"
    parts = {
        "train/good": NORMAL_STEMS[:12],
        "test/good": NORMAL_STEMS[12:],
        "test/hot": HOT_STEMS,
    }
    for folder, stems in parts.items():
        (root / folder).mkdir(parents=True)
        for stem in stems:
            shutil.copy(sources / f"{stem}.jpg", root / folder)
    shutil.copy(root / "train/good/13357.jpg", root / "test/good/copy.jpg")
    return root


def test_transfer_warns_test_repeating_training(tmp_path, data_dir, caplog):
    tree = _tree(data_dir, tmp_path / "tree")
    out = tmp_path / "report"
    args = [
        *("validate", "transfer", "--normal", str(tree), "--real", str(tree)),
        *("--generators", "cutpaste", "--detectors", "knn", "--steps", "2"),
        *("--severity", "none", "--contamination", "0", "--bootstrap", "5"),
        *("--no-progress", "-o", str(out)),
    ]

    code = main(args)
    report = (out / "report.md").read_text()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    note = (
        "1 of 9 test frames repeat, pixel for pixel, a frame that the detectors "
        "train on (a training normal, or a reserve anomaly of the supervised "
        f"ceiling and the contamination run), such as {tree}/train/good/13357.jpg "
        f"and {tree}/test/good/copy.jpg. They are kept, so their scores measure "
        "how detectors treat frames they have seen, not transfer to unseen ones"
    )
    assert code == 0
    assert note in warnings
    assert f"Note: {note}." in report
    assert "| normal | 7 |" in report
