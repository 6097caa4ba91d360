"""Bad input from real data: one clear line, exit code 2, no output; or a skip.

Each case runs the command line on a small folder of frames written by the
test, breaks one thing, and checks the message that the user reads.
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import yaml
from transfer_recipes import write_pv_recipe

from thermosynth.cli import main
from thermosynth.frames.synthetic import SyntheticPouchSource
from thermosynth.output.atomic import OUTPUT_MARKER
from thermosynth.output.hdf5 import HDF5Writer
from thermosynth.recipe import load_demo_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SHAPE = (60, 80)
N_FRAMES = 4
# Every frame is used: the two test normal frames also receive the anomalies.
SPLIT = {"train_normal": 2, "test_normal": 2, "test_anomalous": 2}


def write_frames(folder: Path, n: int = N_FRAMES) -> list[Path]:
    """Write synthetic 16-bit pouch-cell frames as PNG, 0.01 K per level."""
    folder.mkdir(parents=True, exist_ok=True)
    source = SyntheticPouchSource(n, shape=SHAPE, seed=3)
    paths = []
    for i in range(n):
        path = folder / f"frame_{i:02d}.png"
        assert cv2.imwrite(str(path), source.read(i).raw)
        paths.append(path)
    return paths


def write_recipe(tmp_path: Path, frames: dict, **sections: dict) -> Path:
    """Write the demo recipe with other frames and a small split."""
    data = yaml.safe_load(load_demo_recipe().text)
    data["frames"] = frames
    data["split"] = dict(SPLIT)
    data["output"] = {"dir": str(tmp_path / "out"), "shard_size": 2}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def png_frames(folder: Path, **extra) -> dict:
    # The synthetic frames' bright overlay box would otherwise be taken for
    # the warm cell body in some frames.
    overlays = SyntheticPouchSource(1, shape=SHAPE).ignore_rects
    return {
        "kind": "images",
        "path": str(folder),
        "unit": "C",
        "scale_per_level": 0.01,
        "offset": -40.0,
        "ignore_rects": [list(box) for box in overlays],
        **extra,
    }


def run_cli(capsys, recipe: Path, *args: str) -> tuple[int, str]:
    code = main(["generate", str(recipe), "--no-progress", *args])
    return code, capsys.readouterr().err


def assert_rejected(code: int, err: str, pattern: str, tmp_path: Path) -> None:
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("thermosynth: error: ")
    assert re.search(pattern, err), err
    assert not (tmp_path / "out").exists()
    staging = list(tmp_path.glob(".out.*"))
    if staging:
        assert re.search(f"complete shards? (is|are) kept in {staging[0]}", err)
        assert "--resume" in err


def test_corrupt_image(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    paths[2].write_bytes(b"not a png at all")
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames"))
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code, err, r"could not decode .*frame_02\.png.*frames\.on_error: skip", tmp_path
    )


def test_truncated_image(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: len(data) // 2])
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames"))
    code, err = run_cli(capsys, recipe)
    assert_rejected(code, err, r"could not decode .*frame_03\.png: truncated", tmp_path)


def test_corrupt_image_skipped_when_allowed(capsys, caplog, tmp_path):
    paths = write_frames(tmp_path / "frames")
    paths[2].write_bytes(b"not a png at all")
    paths[3].write_bytes(b"")
    frames = png_frames(tmp_path / "frames", on_error="skip")
    recipe = write_recipe(tmp_path, frames)
    with caplog.at_level(logging.WARNING, logger="thermosynth.pipeline"):
        code = main(["generate", str(recipe), "--no-progress"])
    out = capsys.readouterr().out
    skipped = [r.getMessage() for r in caplog.records if "skipped sample" in r.message]
    n_broken = sum(1 for m in skipped if re.search(r"frame_0[23]\.png", m))
    assert code == 0
    assert n_broken == len(skipped) >= 1
    assert f"wrote {6 - len(skipped)} samples" in out
    plural = "sample" if len(skipped) == 1 else "samples"
    assert out.rstrip().endswith(
        f"; skipped {len(skipped)} {plural} whose frames failed (frames.on_error: skip)"
    )
    assert (tmp_path / "out" / "dataset.h5").is_file()


def test_skip_warning_starts_own_line(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    paths[2].write_bytes(b"not a png at all")
    paths[3].write_bytes(b"")
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames", on_error="skip"))
    # The command line's own handler: pytest's handlers on the root logger
    # keep logging.basicConfig in main from adding one.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        code = main(["generate", str(recipe)])
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err

    # The progress bar redraws its line after a carriage return.
    lines = re.split(r"[\r\n]", err)
    warnings = [line for line in lines if "skipped sample" in line]
    assert code == 0
    assert "6/6 [" in err
    assert warnings
    assert all(line.startswith("WARNING thermosynth.pipeline: ") for line in warnings)


def test_mixed_frame_sizes(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    big = cv2.resize(cv2.imread(str(paths[3]), cv2.IMREAD_UNCHANGED), (100, 75))
    for path in paths:
        cv2.imwrite(str(path), big if path != paths[0] else big[:60, :80])
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames"))
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"error: \S+recipe\.yaml: frames of mixed sizes: .*frame_\d\d\.png is "
        r".* all frames under frames\.path must have one size, so resize or remove",
        tmp_path,
    )


def test_mixed_npy_sizes_before_bank(capsys, tmp_path, data_dir):
    # Three real frames of 60 x 80, 180 x 180 and 480 x 640 px.
    folder = data_dir / "radiometric-samples" / "decoded_celsius"
    bank = tmp_path / "bank.h5"
    frames = {"kind": "arrays", "path": str(folder)}
    split = {"train_normal": 1, "test_normal": 2, "test_anomalous": 2}
    bank_spec = {"mode": "build", "path": str(bank)}
    recipe = write_recipe(tmp_path, frames, bank=bank_spec, split=split)

    code, err = run_cli(capsys, recipe)

    assert_rejected(
        code,
        err,
        r"error: \S+recipe\.yaml: frames of mixed sizes: \S+_celsius\.npy is \d+ x "
        r"\d+ px \(height x width\) but \S+_celsius\.npy is \d+ x \d+ px",
        tmp_path,
    )
    assert "frames.on_error: skip" in err
    assert not bank.exists()


def test_calibration_error_without_skip_hint(capsys, tmp_path, data_dir):
    # Real 16-bit raw counts with an offset but no scale_per_level.
    frames = {
        "kind": "images",
        "path": str(data_dir / "radiometric-samples" / "flirpy"),
        "pattern": "example_radiometric.tiff",
        "unit": "K",
        "offset": 0.0,
    }
    split = {"train_normal": 1, "test_normal": 0, "test_anomalous": 0}
    recipe = write_recipe(tmp_path, frames, split=split)

    code, err = run_cli(capsys, recipe)

    assert_rejected(
        code,
        err,
        r"error: \S+recipe\.yaml: \S+example_radiometric\.tiff contains uint16 "
        r"levels, which need scale_per_level and offset to be read in K \(offset = "
        r"0 alone reads one level as 1 K\); give the calibration or set "
        r"frames\.unit: level$",
        tmp_path,
    )
    assert "frames.on_error" not in err


def test_nan_temperatures(capsys, tmp_path):
    folder = tmp_path / "arrays"
    folder.mkdir()
    for i in range(N_FRAMES):
        values = np.full(SHAPE, 25.0 + 0.1 * i, dtype=np.float32)
        values[0, 0] = np.nan if i != 1 else 25.0
        if i == 1:
            values[:] = np.inf
        np.save(folder / f"t{i}.npy", values)
    recipe = write_recipe(tmp_path, {"kind": "arrays", "path": str(folder)})
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code, err, r"t1\.npy has no valid pixel .*check the masks", tmp_path
    )


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "frames").mkdir()
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames"))
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"recipe\.yaml: key 'frames\.pattern': no files match '\*\.png' in the "
        r"frames\.path folder .*frames, which contains no files; set frames\.pattern",
        tmp_path,
    )


def test_pattern_names_suffixes_present(capsys, tmp_path, data_dir):
    folder = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c"
    frames = png_frames(folder, pattern="*.tif")
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"recipe\.yaml: key 'frames\.pattern': no files match '\*\.tif' in the "
        r"frames\.path folder .*id1_cha_1c, which contains 38 '\*\.png' files",
        tmp_path,
    )


def test_folder_of_subfolders_suggests_pattern(capsys, tmp_path, data_dir):
    frames = _pv_frames(data_dir, tmp_path / "cam" / "train")
    shutil.copytree(frames, tmp_path / "cam" / "test")
    recipe = write_recipe(tmp_path, png_frames(frames))
    setting = f"frames.path={tmp_path / 'cam'}"

    code, err = run_cli(capsys, recipe, "--set", setting)

    assert_rejected(
        code,
        err,
        rf"^thermosynth: error: --set {re.escape(setting)} \(recipe .*\): key "
        r"'frames\.pattern': no files match '\*\.png' in the frames\.path "
        r"folder .*cam, "
        r"which contains no files, only the folders test/, train/; set "
        r"frames\.pattern to the files in one, such as 'train/\*\.png', or "
        rf"frames\.path to the folder of frames, such as {re.escape(str(frames))}$",
        tmp_path,
    )


def test_folder_of_empty_subfolders(capsys, tmp_path):
    (tmp_path / "cam" / "train" / "empty").mkdir(parents=True)
    (tmp_path / "frames").mkdir()
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames"))
    setting = f"frames.path={tmp_path / 'cam'}"

    code, err = run_cli(capsys, recipe, "--set", setting)

    assert_rejected(
        code,
        err,
        r"which contains no files, only the folders train/, and no file lies "
        r"below them; set frames\.path to the folder that contains the frames$",
        tmp_path,
    )


def test_npy_files_as_images_name_kind(capsys, tmp_path, data_dir):
    folder = data_dir / "radiometric-samples" / "decoded_celsius"
    frames = png_frames(folder, pattern="*.npy")
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"recipe\.yaml: key 'frames\.kind': frames\.pattern '\*\.npy' matches "
        r"array files in .*decoded_celsius, .* set frames\.kind: arrays$",
        tmp_path,
    )


def test_hdf5_wrong_dataset_lists_datasets(capsys, tmp_path, data_dir):
    celsius = np.load(
        data_dir / "radiometric-samples" / "decoded_celsius" / "FLIR_AX8_celsius.npy"
    )
    path = tmp_path / "frames.h5"
    with h5py.File(path, "w") as file:
        file["frames"] = np.stack([celsius] * 4)
        file["meta/times_s"] = np.arange(4.0)
    frames = {"kind": "hdf5", "path": str(path), "dataset": "frame", "unit": "C"}
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    shape = (4, *celsius.shape)
    assert_rejected(
        code,
        err,
        r"recipe\.yaml: key 'frames\.dataset': dataset 'frame' not found in "
        rf".*frames\.h5, which contains datasets 'frames' {re.escape(str(shape))}, "
        r"'meta/times_s' \(4,\); set frames\.dataset to one of them",
        tmp_path,
    )


def test_ignore_mask_wrong_size(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    mask = tmp_path / "ignore.png"
    cv2.imwrite(str(mask), np.zeros((30, 40), dtype=np.uint8))
    frames = png_frames(tmp_path / "frames", ignore_mask=str(mask))
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    # One mask serves every frame, so skipping the frame would skip them all.
    assert_rejected(
        code,
        err,
        rf"^thermosynth: error: {re.escape(str(recipe))}: key 'frames\.ignore_mask': "
        rf"mask {re.escape(str(mask))} is 30 x 40 px \(height x width\) but "
        rf"frame {re.escape(str(paths[0].parent))}/frame_\d\d\.png is 60 x 80 px; "
        r"give a mask of the frames' size$",
        tmp_path,
    )


def test_mask_mapping_names_key(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    mask = tmp_path / "roi.png"
    cv2.imwrite(str(mask), np.full((30, 40), 255, dtype=np.uint8))
    frames = png_frames(tmp_path / "frames", valid_mask={"frame": str(mask)})
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    assert_rejected(code, err, r"key 'frames\.valid_mask\.frame': mask ", tmp_path)
    assert err.startswith(f"thermosynth: error: {recipe}: ")
    assert re.search(
        rf"but frame {re.escape(str(paths[0].parent))}/\S+ is 60 x 80", err
    )
    assert "frames.on_error" not in err


def test_odd_frame_size_with_mask(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    cv2.imwrite(str(paths[3]), np.zeros((75, 100), dtype=np.uint16))
    mask = tmp_path / "roi.png"
    cv2.imwrite(str(mask), np.full((60, 80), 255, dtype=np.uint8))
    frames = png_frames(tmp_path / "frames", valid_mask=str(mask))
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        rf"mask {re.escape(str(mask))} is 60 x 80 px \(height x width\) but "
        rf"frame {re.escape(str(paths[3]))} is 75 x 100 px, while the frames read "
        r"before it have the mask's size; remove this frame or give it their size; to "
        r"skip such frames with a warning instead, set frames\.on_error: skip",
        tmp_path,
    )


def test_empty_ignore_rect_names_recipe(capsys, tmp_path):
    write_frames(tmp_path / "frames")
    frames = png_frames(tmp_path / "frames", ignore_rects=[[10, 10, 5, 5]])
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        rf"^thermosynth: error: {re.escape(str(recipe))}: key "
        r"'frames\.ignore_rects\.0' = \[10, 10, 5, 5\] is invalid: ignore "
        r"rectangle \(10, 10, 5, 5\) is empty",
        tmp_path,
    )


def test_offset_without_scale(capsys, tmp_path):
    write_frames(tmp_path / "frames")
    frames = png_frames(tmp_path / "frames")
    del frames["scale_per_level"]
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"frame_\d\d\.png contains uint16 levels, .*\(offset = -40 alone reads one "
        r"level as 1 C\)",
        tmp_path,
    )


def test_palette_does_not_match_image(capsys, tmp_path):
    write_frames(tmp_path / "frames")
    frames = {
        "kind": "images",
        "path": str(tmp_path / "frames"),
        "mode": "palette",
        "palette": "inferno",
    }
    recipe = write_recipe(tmp_path, frames)
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"needs 8-bit RGB images, but .*frame_\d\d\.png is uint16 with shape "
        r"\(60, 80\); set frames\.mode: greyscale",
        tmp_path,
    )


def test_layout_does_not_fit_frame(capsys, tmp_path):
    write_frames(tmp_path / "frames")
    corners = [[10, 10], [5000, 10], [5000, 4000], [10, 4000]]
    registration = {"method": "corners", "corners_px": corners}
    recipe = write_recipe(
        tmp_path, png_frames(tmp_path / "frames"), registration=registration
    )
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        rf"^thermosynth: error: {re.escape(str(recipe))}: key "
        r"'registration\.corners_px': only 0\.0% .* lies inside the 60 x 80 px "
        r"frame \(height x width\), less than the required 50%; move the corners "
        r"into the frame;",
        tmp_path,
    )


# Real PV module frames are 40 x 24 px (height x width).
BAD_CORNERS = [
    (
        [[0, 0], [80, 0], [80, 40], [0, 40]],
        r"key 'registration\.corners_px': only 29\.0% of the layout quad "
        r"\[\[0\.0, 0\.0\], .* lies inside the 40 x 24 px frame \(height x width\)",
    ),
    (
        [[0, 0], [0, 20], [30, 20], [30, 0]],
        r"key 'registration\.corners_px' = \[\[0\.0, 0\.0\], \[0\.0, 20\.0\], "
        r"\[30\.0, 20\.0\], \[30\.0, 0\.0\]\] is not a convex quadrilateral .* "
        r"fix the corner order or positions",
    ),
    (
        [[0, 0], [30, 0], [30, 20]],
        r"key 'registration\.corners_px' = \[\[0, 0\], \[30, 0\], \[30, 20\]\] is "
        r"invalid: method 'corners' needs four \[x, y\] pixel positions .* but it "
        r"has 3; fix it in the recipe or with --set registration\.corners_px=",
    ),
]


@pytest.mark.parametrize(("corners", "pattern"), BAD_CORNERS)
def test_bad_corners_name_key(capsys, tmp_path, data_dir, corners, pattern):
    frames = _pv_frames(data_dir, tmp_path / "frames")
    registration = {"method": "corners", "fit": "layout"}
    recipe = write_pv_recipe(frames, tmp_path / "recipe.yaml")
    data = yaml.safe_load(recipe.read_text())
    data["registration"] = registration
    data["output"] = {"dir": str(tmp_path / "out")}
    recipe.write_text(yaml.safe_dump(data))
    setting = f"registration.corners_px={corners}"

    code, err = run_cli(capsys, recipe, "--set", setting)

    prefix = f"thermosynth: error: --set {setting} (recipe {recipe}): "
    assert_rejected(code, err, pattern, tmp_path)
    assert err.startswith(prefix), err
    assert "frames.on_error" not in err


def test_bad_corners_in_file_name_file(capsys, tmp_path, data_dir):
    frames = _pv_frames(data_dir, tmp_path / "frames")
    recipe = write_pv_recipe(frames, tmp_path / "recipe.yaml")
    data = yaml.safe_load(recipe.read_text())
    data["registration"] = {"method": "corners", "corners_px": BAD_CORNERS[1][0]}
    data["output"] = {"dir": str(tmp_path / "out")}
    recipe.write_text(yaml.safe_dump(data))

    code, err = run_cli(capsys, recipe)

    assert_rejected(code, err, BAD_CORNERS[1][1], tmp_path)
    assert err.startswith(f"thermosynth: error: {recipe}: key "), err


def _pv_frames(data_dir: Path, folder: Path) -> Path:
    """Write four real PV module frames (Raptor Maps, No-Anomaly) as PNGs."""
    images = data_dir / "pv-modules-raptormaps" / "images"
    folder.mkdir(parents=True)
    for stem in ("13357", "13356", "19719", "11543"):
        image = cv2.imread(str(images / f"{stem}.jpg"), cv2.IMREAD_GRAYSCALE)
        assert cv2.imwrite(str(folder / f"{stem}.png"), image)
    return folder


def test_no_anomalous_pixels_after_threshold(capsys, tmp_path):
    write_frames(tmp_path / "frames")
    recipe = write_recipe(
        tmp_path,
        png_frames(tmp_path / "frames"),
        blend={"threshold": 1000.0, "max_tries": 2},
    )
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"sample \d+ \(.*frame_\d\d\.png\): in 2 draws no anomaly .* lower "
        r"blend\.min_area_px, blend\.threshold",
        tmp_path,
    )


def test_min_area_larger_than_frame(capsys, tmp_path):
    write_frames(tmp_path / "frames")
    recipe = write_recipe(
        tmp_path, png_frames(tmp_path / "frames"), blend={"min_area_px": 10**7}
    )
    code, err = run_cli(capsys, recipe)
    assert_rejected(
        code,
        err,
        r"blend\.min_area_px = 10000000 exceeds the \d+ pixels that blending may "
        r"change in .*frame_\d\d\.png; lower blend\.min_area_px",
        tmp_path,
    )


def test_disk_full_keeps_previous_output(capsys, monkeypatch, tmp_path):
    write_frames(tmp_path / "frames")
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames"))
    previous = tmp_path / "out"
    previous.mkdir()
    (previous / OUTPUT_MARKER).write_text("")
    (previous / "manifest.json").write_text("previous run")

    def no_space(self, sample):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(HDF5Writer, "write", no_space)
    code, err = run_cli(capsys, recipe, "--overwrite")
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(r"disk full while writing .*No space left on device", err), err
    assert "free space" in err
    assert sorted(p.name for p in previous.iterdir()) == [
        OUTPUT_MARKER,
        "manifest.json",
    ]
    assert (previous / "manifest.json").read_text() == "previous run"
    assert not list(tmp_path.glob(".out.*"))


def test_inputs_opened_read_only(capsys, tmp_path):
    paths = write_frames(tmp_path / "frames")
    for path in paths:
        path.chmod(0o444)
    (tmp_path / "frames").chmod(0o555)
    recipe = write_recipe(tmp_path, png_frames(tmp_path / "frames"))
    before = {p: p.read_bytes() for p in paths}
    try:
        code, _ = run_cli(capsys, recipe)
    finally:
        (tmp_path / "frames").chmod(0o755)
    assert code == 0
    assert {p: p.read_bytes() for p in paths} == before


@pytest.mark.usefixtures("data_dir")
def test_bad_distribution_suggests_whole_value(capsys, tmp_path):
    recipe = RECIPES / "flir-pouch-cell.yaml"
    setting = "scenarios.internal_short.radius_mm={uniform: [-1, 5]}"

    code, err = run_cli(capsys, recipe, "--set", setting, "-o", str(tmp_path / "out"))

    key = "scenarios.internal_short.radius_mm"
    assert_rejected(
        code,
        err,
        rf"^thermosynth: error: --set {re.escape(setting)} \(recipe .*\): key "
        rf"'{key}' = {{'uniform': \[-1, 5\]}} is invalid: radius_mm must be "
        r"positive, but its lowest value is -1\.0; fix it in the recipe or with "
        rf"--set '{key}={{uniform: \[low, high\]}}' or --set {key}=\.\.\.$",
        tmp_path,
    )
    assert "KEY=VALUE" not in err
