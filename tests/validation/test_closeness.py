"""Tests of thermosynth.validation.closeness on small drawn frames."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from frame_sets import frame_set

from thermosynth.errors import FrameError, OutputError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.noise import estimate_noise
from thermosynth.frames.readers import read_mask
from thermosynth.validation.closeness import (
    ClosenessReport,
    NormalModel,
    _noise,
    _small_c2st_note,
    closeness_report,
    contrast_against_normal,
    elongation,
    estimate_region,
    load_for_role,
    region_contrast,
    region_figures,
)
from thermosynth.validation.features import AutoencoderFeatures
from thermosynth.validation.io import FrameSet, load_frame_set

SHAPE = (16, 12)
HOT = (slice(6, 9), slice(4, 7))


def test_region_contrast_hand_computed():
    frame = np.full(SHAPE, 10.0)
    mask = np.zeros(SHAPE, bool)
    mask[HOT] = True
    frame[mask] = 15.0
    ring = np.zeros(SHAPE, bool)
    ring[5:10, 3:8] = True
    ring &= ~mask
    frame[ring] = 12.0

    # The 1 px ring is exactly the 16 pixels set to 12.
    assert region_contrast(frame, mask, ring_px=1) == 3.0
    # A 2 px ring adds 24 pixels at 10: mean (16 * 12 + 24 * 10) / 40 = 10.8.
    assert region_contrast(frame, mask, ring_px=2) == pytest.approx(15.0 - 10.8)


def test_region_contrast_empty_mask_is_nan():
    assert np.isnan(region_contrast(np.zeros(SHAPE), np.zeros(SHAPE, bool)))


def test_contrast_against_normal_hand_computed():
    mask = np.zeros(SHAPE, bool)
    mask[HOT] = True
    normal = np.zeros((3, *SHAPE))
    for i, offset in enumerate((-1.0, 0.0, 1.0)):
        normal[i][mask] = offset

    # Normal contrasts -1, 0, 1 have mean 0 and deviation sqrt(2 / 3).
    value = contrast_against_normal(5.0, mask, normal, ring_px=1)
    assert value == pytest.approx(5.0 / np.sqrt(2.0 / 3.0))


def test_est_contrast_normal_sigma_hand_computed():
    hot = np.zeros(SHAPE, bool)
    hot[HOT] = True
    reference = np.full((3, *SHAPE), 10.0)
    for i, offset in enumerate((-1.0, 0.0, 1.0)):
        reference[i][hot] += offset
    model = NormalModel.fit(reference, noise_floor=0.5)
    frame = np.full(SHAPE, 10.0)
    frame[hot] = 15.0
    given = np.zeros(SHAPE, bool)
    given[1:3, 1:3] = True

    estimated = estimate_region(model.z_score(frame))
    figures = region_figures(frame, given, 0.5, reference, ring_px=1)
    est = region_figures(frame, estimated, 0.5, reference, ring_px=1, prefix="est_")

    # HOT is 5 / sqrt(2 / 3) = 6.1 deviations above normal, so it is the region.
    np.testing.assert_array_equal(estimated, hot)
    assert est["est_area_px"] == 9.0
    assert est["est_contrast"] == 5.0
    assert est["est_contrast_noise"] == 10.0
    # Normal contrasts -1, 0, 1 there have mean 0 and deviation sqrt(2 / 3).
    assert est["est_contrast_normal_sigma"] == pytest.approx(5.0 / np.sqrt(2.0 / 3.0))
    # The given mask lies where every normal frame is flat, so it has no spread.
    assert figures["contrast"] == 0.0
    assert np.isnan(figures["contrast_normal_sigma"])


def test_contrast_against_round_off_spread_is_nan():
    mask = np.zeros(SHAPE, bool)
    mask[HOT] = True
    normal = np.full((3, *SHAPE), 300.1)
    normal[1][mask] += 1e-13

    # The spread of 5e-14 K is round-off of 300 K values, not variation.
    assert np.isnan(contrast_against_normal(5.0, mask, normal, ring_px=1))


def test_estimate_region_keeps_peak_component():
    z = np.zeros(SHAPE)
    z[1:3, 1:3] = 4.0
    z[10:13, 8:10] = 5.0
    z[11, 9] = 9.0

    region = estimate_region(z, threshold_sigma=3.0)

    assert region.sum() == 6
    assert region[11, 9]
    assert not region[1, 1]
    assert not estimate_region(np.zeros(SHAPE)).any()


def test_elongation_of_pixel_and_line():
    pixel = np.zeros(SHAPE, bool)
    pixel[4, 4] = True
    line = np.zeros(SHAPE, bool)
    line[4, 2:7] = True

    assert elongation(pixel) == pytest.approx(1.0)
    # Column variance of 0..4 is 2.5 (n - 1); each pixel adds 1/12 per axis.
    assert elongation(line) == pytest.approx(np.sqrt((2.5 + 1 / 12) / (1 / 12)))


def _normal_frames(n: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    base = 20.0 + 0.2 * x
    offsets = rng.normal(scale=0.5, size=(n, 1, 1))
    return base + offsets + rng.normal(scale=0.3, size=(n, *SHAPE))


def _write_dataset(path: Path, rng: np.random.Generator) -> np.ndarray:
    """Write a thermosynth-like HDF5 file: 40 normal then 12 hot samples."""
    normal = _normal_frames(40, rng)
    hot = _normal_frames(12, rng)
    masks = np.zeros((52, *SHAPE), np.uint8)
    masks[40:, HOT[0], HOT[1]] = 1
    hot[:, HOT[0], HOT[1]] += 8.0
    with h5py.File(path, "w") as file:
        file.create_dataset("frames", data=np.concatenate([normal, hot]))
        file.create_dataset("masks", data=masks)
        file.create_dataset("labels", data=(masks.reshape(52, -1).max(axis=1)))
        file.attrs["frame_unit"] = "K"
    return hot


def _report(folder: Path, out_dir: Path, **options):
    dataset = folder / "dataset.h5"
    return closeness_report(
        dataset,
        dataset,
        out_dir=out_dir,
        rng=np.random.default_rng(0),
        n_permutations=50,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=2, bottleneck=4),
        **options,
    )


def _dataset_folder(root: Path) -> Path:
    folder = root / "out"
    folder.mkdir()
    _write_dataset(folder / "dataset.h5", np.random.default_rng(9))
    return folder


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    """Report in the default mode, with the input's hash before the run."""
    folder = _dataset_folder(tmp_path_factory.mktemp("copy"))
    before = hashlib.sha256((folder / "dataset.h5").read_bytes()).hexdigest()
    report = _report(folder, folder.parent / "report")
    return folder, before, report


def test_report_per_sample_figures(copied):
    _, _, report = copied

    pseudo = [r for r in report.per_sample if r["set"] == "pseudo"]
    normal = [r for r in report.per_sample if r["set"] == "normal"]
    assert [r["sample_index"] for r in pseudo] == list(range(40, 52))
    assert len(normal) == 20
    assert all(r["mask_source"] == "given" for r in pseudo)
    assert all(r["area_px"] == 9.0 for r in pseudo)
    # +8 K on 9 pixels over noise of 0.3 K: the contrast is 8 +- 0.3.
    assert np.median([r["contrast"] for r in pseudo]) == pytest.approx(8.0, abs=0.3)
    assert np.median([r["contrast_normal_sigma"] for r in pseudo]) > 10.0
    assert np.median([r["est_contrast_normal_sigma"] for r in pseudo]) > 10.0
    # Normal frames have no mask, so both columns use the estimated region.
    np.testing.assert_array_equal(
        [r["est_contrast_normal_sigma"] for r in normal],
        [r["contrast_normal_sigma"] for r in normal],
    )
    assert np.median([r["contrast_noise"] for r in pseudo]) > 10.0
    assert 0.7 < np.median([r["nn_ratio_thermal"] for r in normal]) < 1.4
    assert np.median([r["nn_ratio_thermal"] for r in pseudo]) > 2.0


def test_report_writes_files_and_copy(copied):
    folder, before, report = copied
    dataset = folder / "dataset.h5"

    for name in ("report.md", "per_sample.csv", "set_distances.csv", "examples.png"):
        assert (report.out_dir / name).is_file()
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == before
    with (folder / "closeness.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["sample_index"]) for r in rows] == list(range(40, 52))
    assert {r["unit"] for r in rows} == {"K"}
    with h5py.File(folder / "dataset_closeness.h5", "r") as file:
        closeness = file["closeness"][()]
        units = json.loads(file["closeness"].attrs["units_json"])
    assert np.all(np.isnan(closeness["area_px"][:40]))
    np.testing.assert_array_equal(closeness["area_px"][40:], 9.0)
    assert set(units) == set(closeness.dtype.names)
    assert units["contrast"] == units["est_contrast"] == "K"
    assert units["area_px"] == units["est_area_px"] == "px"
    assert units["contrast_noise"] == units["peak_z"] == "1"
    assert units["reconstruction_error"] == "(reference std)^2"
    markdown = (report.out_dir / "report.md").read_text()
    assert "(reference std)^2" in markdown
    assert "scaled units" not in markdown

    baseline = [r for r in report.set_distances if r["set_b"] == "normal"]
    assert all(r["c2st_accuracy"] < 0.8 for r in baseline)


def test_existing_outputs_need_overwrite(copied):
    folder, _, report = copied

    with pytest.raises(OutputError, match="report folder exists"):
        _report(folder, report.out_dir)
    with pytest.raises(OutputError, match="closeness.csv") as raised:
        _report(folder, folder.parent / "second")
    message = str(raised.value)
    assert "wrote back into the --pseudo output" in message
    assert "pass --overwrite" in message
    assert "--no-write-back (hdf5='none' in Python)" in message


def test_write_back_adds_dataset_once(tmp_path):
    folder = _dataset_folder(tmp_path)
    _report(folder, tmp_path / "report", hdf5="write-back")
    with h5py.File(folder / "dataset.h5", "r") as file:
        assert file["closeness"].shape == (52,)
    assert not (folder / "dataset_closeness.h5").exists()

    (folder / "closeness.csv").unlink()
    with pytest.raises(
        OutputError, match="already has a closeness dataset.*--no-write-back"
    ):
        _report(folder, tmp_path / "again", hdf5="write-back")


def test_real_set_compared_and_mismatched_size_rejected(tmp_path):
    dataset = _dataset_folder(tmp_path) / "dataset.h5"
    rng = np.random.default_rng(3)
    normal = load_frame_set(dataset, label="normal")
    pseudo = load_frame_set(dataset, label="anomalous")
    real = pseudo.subset(np.arange(6))

    report = closeness_report(
        normal,
        pseudo,
        real,
        out_dir=tmp_path / "with_real",
        rng=rng,
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
        hdf5="none",
    )

    assert {r["property"] for r in report.property_comparison} >= {"est_area_px"}
    assert (tmp_path / "with_real" / "property_comparison.csv").is_file()
    assert not (dataset.parent / "closeness.csv").exists()

    small = load_frame_set(dataset, label="anomalous")
    small = type(small)(
        small.values[:, :8], None, small.indices, small.names, "K", small.origin, "hdf5"
    )
    with pytest.raises(FrameError) as raised:
        closeness_report(normal, small, out_dir=tmp_path / "bad", rng=rng)
    message = str(raised.value)
    assert "are 8 x 12 px (height x width) but normal frames" in message
    assert "are 16 x 12 px; region statistics need one size" in message
    assert "closeness has no resize option" in message
    assert "(--normal OUTPUT_FOLDER)" in message


def test_noise_floor_follows_each_sets_unit(tmp_path):
    # Normal frames in 8-bit levels, pseudo frames as float arrays of unknown
    # unit with 0.05 noise: the pseudo set's noise must not be floored at one
    # level's 1/sqrt(12).
    rng = np.random.default_rng(4)
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    levels = np.rint(100 + x + rng.normal(scale=2.0, size=(40, *SHAPE)))
    arrays = 20.0 + 0.01 * x + rng.normal(scale=0.05, size=(12, *SHAPE))

    def frame_set(values, unit):
        n = len(values)
        return FrameSet(
            values=values,
            masks=None,
            indices=np.arange(n),
            names=[f"frame {i}" for i in range(n)],
            unit=unit,
            origin=tmp_path,
            kind="folder",
        )

    report = closeness_report(
        frame_set(levels, "level"),
        frame_set(arrays, "value"),
        out_dir=tmp_path / "report",
        rng=np.random.default_rng(0),
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=2, bottleneck=4),
        hdf5="none",
    )
    pseudo = [row["noise_sigma"] for row in report.per_sample if row["set"] == "pseudo"]

    assert np.median(pseudo) == pytest.approx(0.05, rel=0.3)
    assert "normal: level" in (tmp_path / "report" / "report.md").read_text()


@pytest.fixture(scope="module")
def flir_frames(data_dir):
    """Return 16 FLIR screen exports in levels, whose logo and labels never change."""
    folder = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c"
    return load_frame_set(folder, max_frames=16, rng=np.random.default_rng(1))


def _quick_report(normal: FrameSet, out_dir: Path) -> ClosenessReport:
    """Return the closeness of the first 8 of ``normal`` against all of it."""
    return closeness_report(
        normal,
        normal.subset(np.arange(8)),
        out_dir=out_dir,
        rng=np.random.default_rng(0),
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
        hdf5="none",
    )


def test_constant_overlay_keeps_baseline_finite(flir_frames, tmp_path):
    # gradient_max is 180.31 in every frame, up to a round-off deviation of
    # 1e-13. Scaling by that deviation made the baseline Frechet distance 5e28.
    report = _quick_report(flir_frames, tmp_path / "report")
    baseline = next(
        r
        for r in report.set_distances
        if r["space"] == "thermal" and r["set_b"] == "normal"
    )
    normal = [r["nn_ratio_thermal"] for r in report.per_sample if r["set"] == "normal"]

    assert baseline["frechet"] < 1e4
    assert max(normal) < 100.0


def _in_celsius(frames: FrameSet, origin: Path) -> FrameSet:
    # The screen export's levels have no noise of their own, so the 0.1 K
    # level step must floor the noise estimate.
    return FrameSet(
        values=frames.values * 0.1 + 20.0,
        masks=None,
        indices=frames.indices,
        names=frames.names,
        unit="C",
        origin=origin,
        kind="hdf5",
        encoding=LinearEncoding(np.uint8, scale_per_level=0.1, offset=20.0),
    )


def test_frame_set_in_unit_round_trip(flir_frames, tmp_path):
    celsius = _in_celsius(flir_frames, tmp_path / "dataset.h5")

    kelvin = celsius.in_unit("K")

    assert kelvin.unit == "K"
    np.testing.assert_allclose(kelvin.values, celsius.values + 273.15)
    np.testing.assert_allclose(kelvin.in_unit("C").values, celsius.values)
    expected = "cannot convert frames in luminance level to K"
    with pytest.raises(ValueError, match=expected):
        flir_frames.in_unit("K")


def test_celsius_pseudo_against_kelvin_normal(flir_frames, tmp_path):
    celsius = _in_celsius(flir_frames, tmp_path / "dataset.h5")
    kelvin = celsius.in_unit("K")
    reports = []
    for pseudo in (kelvin.subset(np.arange(8)), celsius.subset(np.arange(8))):
        reports.append(
            closeness_report(
                kelvin,
                pseudo,
                out_dir=tmp_path / f"report_{pseudo.unit}",
                rng=np.random.default_rng(0),
                n_permutations=20,
                autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
                hdf5="none",
            )
        )

    rows = [[r for r in rep.per_sample if r["set"] == "pseudo"] for rep in reports]
    for key in ("contrast", "area_px", "nn_ratio_thermal"):
        same_unit, converted = ([row[key] for row in set_rows] for set_rows in rows)
        assert np.isfinite(same_unit).any()
        np.testing.assert_allclose(converted, same_unit, rtol=1e-6, equal_nan=True)


def test_quantum_floor_noted(flir_frames, tmp_path):
    celsius = _in_celsius(flir_frames, tmp_path / "dataset.h5")

    report = _quick_report(celsius, tmp_path / "report")

    assert len(report.notes) == 3
    # The pseudo set is the first 8 normal frames.
    assert report.notes[0].startswith(
        f"8 of 8 pseudo frames repeat a normal frame pixel for pixel, such as "
        f"{celsius.names[0]}, which both sets read."
    )
    assert (
        "the median noise sigma is the quantisation floor, 0.0289 C"
        in (report.notes[1])
    )
    assert report.notes[2].startswith("C2ST drew only 8 frames per set")


def test_mixed_units_rejected(flir_frames, tmp_path):
    celsius = _in_celsius(flir_frames, tmp_path / "dataset.h5")

    message = (
        r"pseudo frames from .*dataset\.h5 are in C but normal frames from "
        r".*id1_cha_1c are in luminance level, so .* Give both sets in one unit"
    )
    with pytest.raises(FrameError, match=message):
        closeness_report(
            flir_frames,
            celsius,
            out_dir=tmp_path / "report",
            rng=np.random.default_rng(0),
            n_permutations=20,
            autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
            hdf5="none",
        )
    assert not (tmp_path / "report").exists()


def test_noiseless_normal_figures_nan(tmp_path, caplog):
    # Smooth frames without noise: their noise sigma is exactly 0, so the
    # per-pixel deviation was floored at 1e-12 and peak_z came out near 1e12.
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    slopes = np.linspace(0.1, 0.3, 12)[:, None, None]
    normal = 298.0 + slopes * x + 0.05 * slopes * y
    hot = normal[:8].copy()
    masks = np.zeros(hot.shape, bool)
    masks[:, HOT[0], HOT[1]] = True
    hot[masks] += 3.0

    with caplog.at_level("WARNING", logger="thermosynth.validation.closeness"):
        report = closeness_report(
            frame_set(normal, tmp_path / "normal"),
            frame_set(hot, tmp_path / "pseudo", masks=masks),
            out_dir=tmp_path / "report",
            rng=np.random.default_rng(0),
            n_permutations=20,
            autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
            hdf5="none",
        )
    rows = report.per_sample
    pseudo = [r for r in rows if r["set"] == "pseudo"]
    normal_rows = [r for r in rows if r["set"] == "normal"]
    frechet = {(r["space"], r["set_b"]): r["frechet"] for r in report.set_distances}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    assert all(np.isnan(r["peak_z"]) for r in rows)
    assert all(np.isnan(r["est_area_px"]) for r in rows)
    assert all(np.isnan(r["area_px"]) for r in normal_rows)
    assert all(np.isnan(r["nn_ratio_thermal"]) for r in rows)
    assert all(np.isnan(r["contrast_noise"]) for r in rows)
    assert np.isnan(frechet[("thermal", "normal")])
    assert np.isnan(frechet[("thermal", "pseudo")])
    assert np.isfinite(frechet[("autoencoder", "pseudo")])
    # The given masks still give area and contrast.
    assert all(r["area_px"] == 9.0 for r in pseudo)
    assert np.median([r["contrast"] for r in pseudo]) == pytest.approx(3.0, abs=0.5)
    assert len(warnings) == 2
    assert "have no measurable noise (noise sigma 0)" in warnings[0]
    assert "fewer than 50, so its accuracy there is noisy" in warnings[1]
    assert report.notes == warnings
    assert "Note: normal frames from" in (tmp_path / "report" / "report.md").read_text()


def test_noisy_normal_has_only_the_small_set_note(copied):
    _, _, report = copied

    assert len(report.notes) == 1
    assert "fewer than 50, so its accuracy there is noisy" in report.notes[0]
    assert all(np.isfinite(r["frechet"]) for r in report.set_distances)


def test_too_few_normal_frames_name_split(tmp_path):
    rng = np.random.default_rng(5)
    frames = frame_set(_normal_frames(8, rng), tmp_path / "normal")

    message = (
        r"only 8 normal frames in .*normal \(--normal\); closeness splits the "
        r"normal set in half, .* the classifier two-sample test needs 5 frames "
        r"in each half, so give at least 10 normal frames"
    )
    with pytest.raises(FrameError, match=message):
        closeness_report(frames, frames, out_dir=tmp_path / "r", rng=rng)
    assert not (tmp_path / "r").exists()


def test_report_names_the_masks_used(tmp_path):
    rng = np.random.default_rng(6)
    hot = _normal_frames(8, rng)
    masks = np.zeros(hot.shape, bool)
    masks[:, HOT[0], HOT[1]] = True
    hot[masks] += 5.0
    part = masks.copy()
    part[:2] = False

    closeness_report(
        frame_set(_normal_frames(20, rng), tmp_path / "normal"),
        frame_set(hot, tmp_path / "pseudo", masks=masks),
        frame_set(hot, tmp_path / "real", masks=part),
        out_dir=tmp_path / "report",
        rng=rng,
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
        hdf5="none",
    )
    report = (tmp_path / "report" / "report.md").read_text()

    assert "which come without masks" not in report
    assert "the given masks for `pseudo` frames" in report
    assert "the given masks for 6 of 8 `real` frames" in report
    assert "the estimated region for `normal` frames" in report


def test_real_set_leaves_other_rows_unchanged(tmp_path):
    dataset = _dataset_folder(tmp_path) / "dataset.h5"
    normal = load_frame_set(dataset, label="normal")
    pseudo = load_frame_set(dataset, label="anomalous")

    def run(real, name):
        return closeness_report(
            normal,
            pseudo,
            real,
            out_dir=tmp_path / name,
            rng=np.random.default_rng(5),
            n_permutations=20,
            autoencoder=AutoencoderFeatures(size_px=16, epochs=2, bottleneck=4),
            hdf5="none",
        )

    without = run(None, "without_real")
    with_real = run(pseudo.subset(np.arange(6)), "with_real")
    kept = [
        r for r in with_real.set_distances if "real" not in (r["set_a"], r["set_b"])
    ]

    # Every comparison draws from its own stream, so adding the real set
    # changes no row of the normal and pseudo sets, in either feature space.
    assert {r["space"] for r in kept} == {"thermal", "autoencoder"}
    # assert_equal counts NaN as equal to NaN, as in est_* of normal frames.
    np.testing.assert_equal(kept, without.set_distances)
    np.testing.assert_equal(
        [r for r in with_real.per_sample if r["set"] != "real"], without.per_sample
    )


def test_report_gives_c2st_count(copied):
    _, _, report = copied
    with (report.out_dir / "set_distances.csv").open() as stream:
        rows = list(csv.DictReader(stream))

    # 20 normal frames against 12 pseudo: C2ST draws 12 from each set.
    assert [int(r["c2st_n_per_set"]) for r in rows] == [20, 12, 20, 12]
    assert [int(r["n_b"]) for r in rows] == [20, 12, 20, 12]
    assert all(
        r["c2st_n_per_set"] == min(r["n_a"], r["n_b"]) for r in report.set_distances
    )
    assert "c2st_n_per_set" in (report.out_dir / "report.md").read_text()


def test_report_medians_give_counts(copied):
    _, _, report = copied
    markdown = (report.out_dir / "report.md").read_text()
    normal = [r for r in report.per_sample if r["set"] == "normal"]
    finite = sum(np.isfinite(r["contrast"]) for r in normal)
    line = next(x for x in markdown.splitlines() if x.startswith("| contrast |"))

    # Normal frames without a region have NaN contrast; the cell counts the rest.
    assert 0 < finite < len(normal)
    assert f"(n = {finite} of {len(normal)})" in line.split("|")[3]
    # Every pseudo frame has a contrast, so its cell is the bare median.
    assert "(n =" not in line.split("|")[4]


def _level_set(values: np.ndarray, dtype: type, origin: Path) -> FrameSet:
    """Frames kept in stored levels of ``dtype``, as a plain folder loads them."""
    n = len(values)
    return FrameSet(
        values=values.astype(np.float64),
        masks=None,
        indices=np.arange(n),
        names=[f"frame {i}" for i in range(n)],
        unit="level",
        origin=origin,
        kind="folder",
        encoding=LinearEncoding(np.dtype(dtype)),
    )


def test_levels_of_other_bit_depth_rejected(tmp_path):
    rng = np.random.default_rng(5)
    normal = _level_set(
        np.rint(30500 + 40 * rng.random((12, *SHAPE))), np.uint16, tmp_path / "n16"
    )
    pseudo = _level_set(
        np.rint(100 + 40 * rng.random((6, *SHAPE))), np.uint8, tmp_path / "out"
    )

    with pytest.raises(FrameError) as raised:
        closeness_report(normal, pseudo, out_dir=tmp_path / "r", rng=rng, hdf5="none")

    message = str(raised.value)
    assert "pseudo frames from" in message
    assert "are uint8 levels 100..140 but normal frames from" in message
    assert "are uint16 levels 30500..30540" in message
    assert "(--normal OUTPUT_FOLDER)" in message
    assert "--normal-scale K_PER_LEVEL" in message
    assert not (tmp_path / "r").exists()


def test_levels_that_fit_other_bit_depth_warn(tmp_path, caplog):
    rng = np.random.default_rng(6)
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    normal = _level_set(
        np.rint(100 + x + rng.normal(scale=2.0, size=(12, *SHAPE))), np.uint16, tmp_path
    )
    pseudo = _level_set(
        np.rint(100 + x + rng.normal(scale=2.0, size=(6, *SHAPE))), np.uint8, tmp_path
    )

    with caplog.at_level("WARNING", logger="thermosynth.validation.closeness"):
        closeness_report(
            normal,
            pseudo,
            out_dir=tmp_path / "r",
            rng=rng,
            n_permutations=20,
            autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
            hdf5="none",
        )
    warnings = [
        r.getMessage() for r in caplog.records if "uint16 levels" in r.getMessage()
    ]

    assert len(warnings) == 1
    assert "The uint16 levels all fit in the uint8 range" in warnings[0]
    assert (tmp_path / "r" / "report.md").is_file()


def test_real_set_without_anomalies_says_it_is_optional(tmp_path):
    tree = tmp_path / "tree"
    (tree / "train" / "good").mkdir(parents=True)
    (tree / "test" / "good").mkdir(parents=True)

    with pytest.raises(FrameError) as raised:
        load_for_role(tree, "real")

    message = str(raised.value)
    assert message.startswith("cannot load the real set: no anomalous images")
    assert message.endswith("or leave out --real to run without real anomalies")


@pytest.mark.parametrize(("n_per_set", "noted"), [(49, True), (50, False)])
def test_small_c2st_sets_noted(n_per_set, noted):
    rows = [{"c2st_n_per_set": 200}, {"c2st_n_per_set": n_per_set}]

    notes = _small_c2st_note(rows)

    assert bool(notes) == noted
    if noted:
        assert notes[0].startswith(f"C2ST drew only {n_per_set} frames per set")


def _pv_levels(data_dir: Path, folder: Path, factor: int) -> FrameSet:
    """Load 12 Raptor Maps PV crops saved as 8-bit PNG, or 16-bit times ``factor``."""
    folder.mkdir()
    images = sorted((data_dir / "pv-modules-raptormaps" / "images").glob("*.jpg"))
    dtype = np.uint8 if factor == 1 else np.uint16
    for i, path in enumerate(images[:12]):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(dtype) * factor
        assert cv2.imwrite(str(folder / f"{i:03d}.png"), image)
    return load_frame_set(folder)


def _pair_report(normal: FrameSet, pseudo: FrameSet, out_dir: Path) -> ClosenessReport:
    return closeness_report(
        normal,
        pseudo.subset(np.arange(6)),
        out_dir=out_dir,
        rng=np.random.default_rng(0),
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
        hdf5="none",
    )


def test_scaled_normal_against_levels_names_fix(data_dir, tmp_path):
    levels = _pv_levels(data_dir, tmp_path / "levels", 100)
    kelvin = levels.decoded(scale_per_level=0.01, offset=0.0, unit="K")
    eight_bit = _pv_levels(data_dir, tmp_path / "eight_bit", 1)

    with pytest.raises(FrameError) as raised:
        _pair_report(kelvin, levels, tmp_path / "scaled")
    with pytest.raises(FrameError) as other_depth:
        _pair_report(kelvin, eight_bit, tmp_path / "other_depth")
    report = _pair_report(levels, levels, tmp_path / "in_levels")

    message = str(raised.value)
    assert "pseudo frames from" in message
    assert "are in level but normal frames from" in message
    assert "are in K, so contrasts and distances between them" in message
    assert (
        "leave out --normal-scale to compare both sets in levels, or pass a "
        "thermosynth dataset.h5"
    ) in message
    assert "--normal-scale" not in str(other_depth.value)
    assert {row["unit"] for row in report.per_sample} == {"level"}


def test_csv_tables_give_units(flir_frames, tmp_path):
    rows = flir_frames.subset(np.arange(8))
    report = closeness_report(
        flir_frames,
        rows,
        rows,
        out_dir=tmp_path / "report",
        rng=np.random.default_rng(0),
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
        hdf5="none",
    )

    with (report.out_dir / "per_sample.csv").open() as stream:
        per_sample = list(csv.DictReader(stream))
    with (report.out_dir / "property_comparison.csv").open() as stream:
        properties = {r["property"]: r["unit"] for r in csv.DictReader(stream)}
    assert list(per_sample[0])[-1] == "unit"
    assert {r["unit"] for r in per_sample} == {"luminance level"}
    assert properties == {
        "est_area_px": "px",
        "est_contrast": "luminance level",
        "est_contrast_noise": "1",
        "est_contrast_normal_sigma": "1",
        "est_elongation": "1",
        "peak_z": "1",
    }


def _noisy_battery_set(data_dir: Path, sigma: float, keep: np.ndarray) -> FrameSet:
    """Load CAM1 renders [luminance level] with noise of ``sigma`` levels inside."""
    root = data_dir / "battery-station-inferno"
    frames = load_frame_set(root / "normal_masked", pattern="*20240715*CAM1*")
    region = read_mask(root / "camera_masks" / "MASK_CAM1_thermal.png")
    frames = frames.subset(keep)
    rng = np.random.default_rng(int(keep[0]))
    noise = np.where(region, rng.normal(0.0, sigma, frames.values.shape), 0.0)
    return dataclasses.replace(frames, values=frames.values + noise)


def test_battery_noise_inside_region(data_dir, tmp_path):
    normal = _noisy_battery_set(data_dir, 4.0, np.arange(12))
    pseudo = _noisy_battery_set(data_dir, 4.0, np.arange(12, 24))
    masks = np.zeros(pseudo.values.shape, bool)
    masks[:, 28:32, 38:42] = True
    pseudo = dataclasses.replace(
        pseudo, values=pseudo.values + 40.0 * masks, masks=masks
    )

    report = closeness_report(
        normal,
        pseudo,
        out_dir=tmp_path / "report",
        rng=np.random.default_rng(0),
        n_permutations=20,
        autoencoder=AutoencoderFeatures(size_px=16, epochs=1, bottleneck=4),
        hdf5="none",
    )
    rows = [r for r in report.per_sample if r["set"] == "pseudo"]
    sigma = np.array([r["noise_sigma"] for r in rows])
    contrast = np.array([r["contrast"] for r in rows])
    ratio = np.array([r["contrast_noise"] for r in rows])

    assert len(rows) == 12
    # Each render's own structure adds to the noise, by up to 16 % at 4 levels.
    assert np.median(sigma) == pytest.approx(4.0, rel=0.10)
    assert sigma.min() > 0.9 * 4.0
    assert sigma.max() < 1.25 * 4.0
    np.testing.assert_array_equal(ratio, contrast / sigma)
    assert np.median(ratio) == pytest.approx(np.median(contrast) / 4.0, rel=0.10)


def test_pv_noise_is_whole_frame(data_dir):
    folder = data_dir / "pv-modules-raptormaps" / "images"
    frames = load_frame_set(folder, pattern="10?.jpg")
    whole = np.ones(frames.shape, bool)

    expected = [estimate_noise(v, whole, quantum=1.0) for v in frames.values]

    assert len(frames) >= 5
    np.testing.assert_array_equal(_noise(frames), expected)
