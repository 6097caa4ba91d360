"""validate closeness on real PV frames: header, repeats and --max-frames."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import h5py
import pytest
from real_frames import write_renamed_frames

from thermosynth import __version__
from thermosynth.cli import main
from thermosynth.validation.closeness import MIN_NORMAL_FRAMES, MIN_OTHER_FRAMES

# Modules of the Raptor Maps set, 24 x 40 px: No-Anomaly, then Hot-Spot.
NORMAL_STEMS = (
    "13357", "13356", "19719", "11543", "11540", "11541",
    "11546", "11547", "11544", "11545", "14545", "11549",
)  # fmt: skip
HOT_STEMS = ("6796", "6797", "6794", "6795", "6792", "6793")


def _copy_images(data_dir: Path, folder: Path, stems: tuple[str, ...]) -> Path:
    folder.mkdir(parents=True)
    for stem in stems:
        image = data_dir / "pv-modules-raptormaps" / "images" / f"{stem}.jpg"
        shutil.copy(image, folder)
    return folder


@pytest.fixture(scope="module")
def closeness_run(tmp_path_factory, data_dir):
    """Run closeness once on pseudo frames of which one copies a normal frame."""
    root = tmp_path_factory.mktemp("closeness")
    normal = _copy_images(data_dir, root / "normal", NORMAL_STEMS)
    pseudo = _copy_images(data_dir, root / "pseudo", HOT_STEMS)
    # Named to sort first, so that it is the example the warning gives.
    shutil.copy(normal / f"{NORMAL_STEMS[0]}.jpg", pseudo / "0000_copy.jpg")
    args = [
        *("validate", "closeness", "--normal", str(normal), "--pseudo", str(pseudo)),
        *("--epochs", "1", "--permutations", "20", "-o", str(root / "report")),
    ]
    handler = _Records()
    logging.getLogger("thermosynth").addHandler(handler)
    try:
        code = main(args)
    finally:
        logging.getLogger("thermosynth").removeHandler(handler)
    report = (root / "report" / "report.md").read_text()
    return code, args, report, handler.warnings, normal, pseudo


class _Records(logging.Handler):
    """Keep the WARNING messages of a module-scoped run, which caplog cannot."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings.append(record.getMessage())


def test_closeness_header_has_version_and_command(closeness_run):
    code, args, report, *_ = closeness_run
    command = " ".join(["thermosynth", *args])

    assert code == 0
    assert f"by thermosynth {__version__} on " in report
    assert f"Command: `{command}`" in report
    assert report.index("Command:") < report.index("## Inputs")


def test_closeness_warns_pseudo_repeating_normal(closeness_run):
    code, _, report, warnings, normal, pseudo = closeness_run
    note = (
        f"1 of 7 pseudo frames repeat a normal frame pixel for pixel, such as "
        f"{pseudo / '0000_copy.jpg'}, which repeats {normal / '13357.jpg'}. They "
        "are kept, so the pseudo set looks closer to normal data than distinct "
        "frames would"
    )

    assert code == 0
    assert note in warnings
    assert f"Note: {note}." in report
    assert "| pseudo | 7 |" in report


def test_closeness_paths_expand_home(tmp_path, data_dir, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    _copy_images(data_dir, home / "normal", NORMAL_STEMS)
    _copy_images(data_dir, home / "pseudo", HOT_STEMS)
    args = [
        *("validate", "closeness", "--normal=~/normal", "--pseudo=~/pseudo"),
        *("--epochs", "1", "--permutations", "20", "--output=~/report"),
    ]

    assert main(args) == 0

    report = (home / "report" / "report.md").read_text()
    assert str(home / "normal") in report
    assert str(home / "pseudo") in report
    assert not (tmp_path / "~").exists()


def test_closeness_max_frames_states_minimum(capsys, tmp_path, data_dir):
    normal = _copy_images(data_dir, tmp_path / "normal", NORMAL_STEMS)
    args = ["validate", "closeness", "--normal", str(normal), "--pseudo", str(normal)]
    limit = str(MIN_NORMAL_FRAMES - 1)

    code = main([*args, "--max-frames", limit, "-o", str(tmp_path / "report")])
    err = capsys.readouterr().err

    assert code == 2
    assert err == (
        f"thermosynth: error: --max-frames {limit} is invalid; closeness needs "
        f"at least {MIN_NORMAL_FRAMES} normal frames ({MIN_OTHER_FRAMES} in each "
        f"half of the normal split) and {MIN_OTHER_FRAMES} pseudo or real "
        "frames, one per fold of the classifier two-sample test, so give "
        f"{MIN_NORMAL_FRAMES} or more\n"
    )
    assert not (tmp_path / "report").exists()


RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_closeness_labels_palette_luminance(tmp_path, data_dir):
    out = tmp_path / "out"
    shrink = (
        *(f"split.train_normal={MIN_NORMAL_FRAMES}", "split.test_normal=0"),
        *(f"split.test_anomalous={MIN_OTHER_FRAMES}", "physics.dt_s=60.0"),
        *(f"output.dir={out}", f"bank.path={tmp_path / 'bank.h5'}"),
    )
    sets = [item for value in shrink for item in ("--set", value)]
    recipe = str(RECIPES / "battery-station-inferno.yaml")
    assert main(["generate", recipe, *sets]) == 0
    report = tmp_path / "report"

    code = main(
        [
            *("validate", "closeness", "--normal", str(out), "--pseudo", str(out)),
            *("--epochs", "1", "--permutations", "20", "-o", str(report)),
        ]
    )
    with (out / "closeness.csv").open() as stream:
        units = {row["unit"] for row in csv.DictReader(stream)}
    with h5py.File(out / "dataset_closeness.h5", "r") as file:
        fields = json.loads(file["closeness"].attrs["units_json"])
    markdown = (report / "report.md").read_text()

    assert code == 0
    # Palette frames are compared by luminance, not by the metadata's palette index.
    assert units == {"luminance level"}
    assert fields["contrast"] == "luminance level"
    assert "| contrast | luminance level |" in markdown


def test_closeness_pattern_matching_nothing(capsys, tmp_path, data_dir):
    folder = data_dir / "battery-station-inferno" / "normal_masked"
    args = ["validate", "closeness", "--normal", str(folder), "--pseudo", str(folder)]

    code = main([*args, "--normal-pattern", "*CAM9*", "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err

    assert code == 2
    assert "--normal-pattern '*CAM9*'" in err
    assert str(folder) in err
    assert "Traceback" not in err


def _camera_folders(data_dir: Path, root: Path) -> list[str]:
    """Write battery frames named left-* (CAM1) and right-* (CAM2); return options."""
    names = {"left": "CAM1", "right": "CAM2"}
    write_renamed_frames(data_dir, root / "normal", names, slice(0, 10))
    write_renamed_frames(data_dir, root / "pseudo", names, slice(10, 13))
    return [
        *("validate", "closeness", "--normal", str(root / "normal")),
        *("--pseudo", str(root / "pseudo"), "-o", str(root / "report")),
        *("--epochs", "1", "--permutations", "20"),
    ]


def test_closeness_camera_pattern_names_cameras(tmp_path, data_dir):
    args = _camera_folders(data_dir, tmp_path)

    assert main([*args, "--camera-pattern", "^(left|right)-"]) == 0
    with open(tmp_path / "report" / "per_sample.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))

    pseudo = [row["camera"] for row in rows if row["set"] == "pseudo"]
    assert pseudo == ["left"] * 3 + ["right"] * 3
    assert {row["camera"] for row in rows} == {"left", "right"}


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("^(left", "camera pattern '^(left' is not a valid regular expression ("),
        ("^left-", "camera pattern '^left-' has no capture group, so it names no"),
        ("^(left)-", "normal frame {root}/normal/right-00.png: camera pattern"),
    ],
)
def test_closeness_bad_camera_pattern_exits_2(
    capsys, tmp_path, data_dir, pattern, problem
):
    args = _camera_folders(data_dir, tmp_path)

    code = main([*args, "--camera-pattern", pattern])
    err = capsys.readouterr().err

    assert code == 2
    assert err.startswith("thermosynth: error: ")
    assert problem.format(root=tmp_path) in err
    assert "--camera-pattern" in err
    assert "in Python" not in err
    assert "Traceback" not in err
    assert not (tmp_path / "report").exists()
