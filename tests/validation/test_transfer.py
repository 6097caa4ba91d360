"""End-to-end test of thermosynth.validation.transfer on tiny synthetic frames."""

import contextlib
import csv
import multiprocessing
from dataclasses import dataclass, replace

import numpy as np
import pytest

from thermosynth.camera.model import Camera
from thermosynth.frames.noise import estimate_noise
from thermosynth.frames.readers import read_image, read_mask
from thermosynth.validation import generators as gen
from thermosynth.validation import transfer
from thermosynth.validation.closeness import region_contrast
from thermosynth.validation.detectors import (
    Autoencoder,
    Classifier,
    KNearest,
    Trimmed,
    max_minus_median,
)
from thermosynth.validation.metrics import aupro, auroc, pixel_auroc
from thermosynth.validation.transfer import (
    ALL,
    REAL_MASKS,
    ScaledGenerator,
    ScorerError,
    TransferData,
    contrast_noise,
    transfer_report,
)

SHAPE = (40, 24)


def _normals(n: int, rng: np.random.Generator) -> np.ndarray:
    ramp = np.linspace(60, 100, SHAPE[0])[:, None] + np.zeros(SHAPE)
    return np.clip(ramp + rng.normal(0, 2, (n, *SHAPE)), 0, 255).astype(np.uint8)


def _hot(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    out = images.astype(float)
    for image in out:
        cy, cx = rng.uniform(5, 35), rng.uniform(4, 20)
        image += 40 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 6.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def _data() -> TransferData:
    rng = np.random.default_rng(0)
    test_normal = _normals(40, rng)
    real = _hot(_normals(40, rng), rng)
    groups = np.array(["No-Anomaly"] * 40 + ["Hot"] * 20 + ["Cell"] * 20)
    return TransferData(
        train_normal=_normals(120, rng),
        test_images=np.concatenate([test_normal, real]),
        test_labels=groups != "No-Anomaly",
        test_groups=groups,
        reserve_anomalies=_hot(_normals(30, rng), rng),
    )


def _bank() -> np.ndarray:
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return np.stack(
        [np.exp(-((y - c) ** 2 + (x - 12) ** 2) / 6.0) * 8.0 for c in (8, 20, 32)]
    ).astype(np.float32)


def _thermal(pool: np.ndarray, scale: float = 1.0) -> gen.ThermalHotspots:
    return gen.ThermalHotspots(_bank(), Camera(levels_per_kelvin=3.0), scale=scale)


def test_transfer_report_end_to_end(tmp_path):
    generators = {"thermal": _thermal, "noise": lambda pool: gen.GaussianNoise()}
    detectors = {
        "classifier": Classifier(steps=20),
        "autoencoder": Autoencoder(steps=20),
        "knn": KNearest(k=3),
    }
    result = transfer_report(
        _data(),
        generators,
        detectors,
        out_dir=tmp_path,
        seed=0,
        scorers={"max_minus_median": max_minus_median},
        supervised=Classifier(steps=20),
        contamination=0.1,
        contamination_generators=["thermal"],
        severity_levels=[0.5, 1.0],
        severity_generator=_thermal,
        severity_detector="classifier",
        n_boot=20,
        n_pixel=10,
    )

    cells = {(r["generator"], r["detector"], r["group"]) for r in result.image}
    assert ("thermal", "classifier", ALL) in cells
    assert ("noise", "classifier", "Hot") in cells
    assert ("none", "knn", ALL) in cells
    assert ("real (supervised)", "classifier", ALL) in cells
    assert all(0.0 <= r["low"] <= r["high"] <= 1.0 for r in result.image)
    heuristic = [r for r in result.image if r["detector"] == "max_minus_median"]
    assert heuristic[0]["auroc"] > 0.95

    assert {r["trained_on"] for r in result.pixel} >= {"thermal", "noise"}
    assert {r["severity"] for r in result.severity} == {0.5, 1.0}
    assert {r["detector"] for r in result.contamination} == set(detectors)
    for name in (
        "report.md",
        "image_auroc.csv",
        "pixel_metrics.csv",
        "contamination.csv",
        "severity.csv",
        "severity.png",
        "examples.png",
    ):
        assert (tmp_path / name).is_file(), name
    assert "| thermal |" in (tmp_path / "report.md").read_text()


def test_transfer_report_same_seed_same_scores():
    kwargs = dict(out_dir=None, seed=3, n_boot=5, n_pixel=5)
    detectors = {"knn": KNearest(k=3), "classifier": Classifier(steps=5)}
    first = transfer_report(_data(), {"thermal": _thermal}, detectors, **kwargs)
    second = transfer_report(_data(), {"thermal": _thermal}, detectors, **kwargs)
    assert [r["auroc"] for r in first.image] == [r["auroc"] for r in second.image]


def test_scores_kept_per_run_match_auroc():
    data = _data()
    detectors = {"knn": KNearest(k=3), "classifier": Classifier(steps=5)}
    result = transfer_report(
        data, {"thermal": _thermal}, detectors, out_dir=None, n_boot=5, n_pixel=0
    )
    overall = {
        (r["generator"], r["detector"]): r["auroc"]
        for r in result.image
        if r["group"] == ALL
    }

    assert len(result.scores) == len(overall) == 2
    for entry in result.scores:
        assert entry["table"] == "image"
        assert entry["scores"].shape == (len(data.test_images),)
        key = (entry["generator"], entry["detector"])
        assert auroc(data.test_labels, entry["scores"]) == overall[key]


def test_two_jobs_give_the_same_tables():
    kwargs = dict(out_dir=None, seed=4, n_boot=5, n_pixel=5, contamination=0.1)
    detectors = {
        "knn": KNearest(k=3),
        "classifier": Trimmed(Classifier(steps=5), drop_fraction=0.1),
    }
    generators = {"thermal": _thermal, "noise": lambda pool: gen.GaussianNoise()}
    runs = [
        transfer_report(
            _data(),
            generators,
            detectors,
            contamination_generators=["thermal"],
            jobs=jobs,
            **kwargs,
        )
        for jobs in (1, 2)
    ]
    for table in ("image", "pixel", "contamination"):
        single, parallel = (_without_seconds(getattr(run, table)) for run in runs)
        assert single == parallel, table
    assert len(runs[0].contamination) == 2 * 3  # classifier + knn, 3 groups


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_bar_counts_every_run(capsys, jobs):
    detectors = {"knn": KNearest(k=3), "classifier": Classifier(steps=5)}
    generators = {"thermal": _thermal, "noise": lambda pool: gen.GaussianNoise()}
    kwargs = dict(out_dir=None, n_boot=5, n_pixel=0, jobs=jobs)

    transfer_report(_data(), generators, detectors, progress=True, **kwargs)
    with_bar = capsys.readouterr().err
    transfer_report(_data(), generators, detectors, **kwargs)
    without_bar = capsys.readouterr().err

    # knn once, the classifier once per generator.
    assert "transfer: 100%" in with_bar
    assert "| 3/3 [" in with_bar
    assert "transfer:" not in without_bar


class _WaitsForFirstResult:
    """One-class detector whose training waits for the bar's first update.

    Its scores are 1 where the update came while it trained and 0 where the
    wait timed out, as it does when the bar advances only after every run.
    """

    uses_pseudo = False

    def __init__(self, updated) -> None:
        self.updated = updated

    def fit(self, normal, anomalous, masks, rng):
        seen = float(self.updated.wait(timeout=30))
        return lambda images: np.full(len(images), seen)


class _SignallingBar(contextlib.nullcontext):
    def __init__(self, updated) -> None:
        super().__init__(self)
        self.updated = updated

    def update(self) -> None:
        self.updated.set()


def test_progress_advances_while_jobs_run(monkeypatch):
    updated = multiprocessing.get_context("fork").Event()
    bar = _SignallingBar(updated)
    monkeypatch.setattr(transfer, "_progress_bar", lambda n_tasks, progress: bar)
    detectors = {"knn": KNearest(k=3), "waits": _WaitsForFirstResult(updated)}

    result = transfer_report(
        _data(), {}, detectors, out_dir=None, n_boot=5, n_pixel=0, jobs=2
    )
    waits = [entry for entry in result.scores if entry["detector"] == "waits"]

    assert len(waits) == 1
    assert np.all(waits[0]["scores"] == 1.0)


def _without_seconds(rows):
    # NaN marks "nothing dropped by design"; compare it as text.
    return [
        {k: "nan" if v != v else v for k, v in row.items() if k != "seconds"}
        for row in rows
    ]


def test_contamination_needs_reserve():
    data = _data()
    data = TransferData(
        data.train_normal,
        data.test_images,
        data.test_labels,
        data.test_groups,
        reserve_anomalies=None,
    )
    with pytest.raises(ValueError, match="reserve anomalies"):
        transfer_report(
            data,
            {"thermal": _thermal},
            {"knn": KNearest()},
            out_dir=None,
            contamination=0.1,
            n_boot=5,
        )


def test_test_set_needs_both_classes():
    data = _data()
    data = TransferData(
        data.train_normal,
        data.test_images,
        np.zeros(len(data.test_labels), dtype=bool),
        data.test_groups,
    )
    with pytest.raises(ValueError, match="both normal and anomalous"):
        transfer_report(data, {}, {"knn": KNearest()}, out_dir=None)


def _with_masks(data: TransferData) -> TransferData:
    """Mark the hottest pixels of every real anomaly as its ground truth."""
    test = data.test_images.astype(float)
    masks = test - np.median(test, axis=(1, 2), keepdims=True) > 25
    masks[~data.test_labels] = False
    return TransferData(
        data.train_normal,
        data.test_images,
        data.test_labels,
        data.test_groups,
        reserve_anomalies=data.reserve_anomalies,
        test_masks=masks,
    )


def test_real_masks_scored(tmp_path):
    result = transfer_report(
        _with_masks(_data()),
        {"thermal": _thermal},
        {"classifier": Classifier(steps=20), "knn": KNearest(k=3)},
        out_dir=tmp_path,
        n_boot=5,
        n_pixel=5,
    )
    real = [r for r in result.pixel if r["test_set"] == REAL_MASKS]
    assert [r["detector"] for r in real] == ["classifier"]
    assert 0.0 <= real[0]["pixel_auroc"] <= 1.0
    assert 0.0 <= real[0]["aupro"] <= 1.0
    report = (tmp_path / "report.md").read_text()
    assert f"| thermal | classifier | {REAL_MASKS} |" in report


def test_no_real_masks_says_so(tmp_path):
    transfer_report(
        _data(),
        {"thermal": _thermal},
        {"classifier": Classifier(steps=5)},
        out_dir=tmp_path,
        n_boot=5,
        n_pixel=5,
    )
    report = (tmp_path / "report.md").read_text()
    assert "The real test anomalies have no pixel masks." in report
    assert REAL_MASKS not in report


def test_test_masks_shape_checked():
    data = _data()
    data = TransferData(
        data.train_normal,
        data.test_images,
        data.test_labels,
        data.test_groups,
        test_masks=np.zeros((3, *SHAPE), dtype=bool),
    )
    with pytest.raises(ValueError, match="one mask per test frame"):
        transfer_report(data, {}, {"knn": KNearest()}, out_dir=None)


def test_contamination_reports_dropped_share():
    detectors = {"knn": Trimmed(KNearest(k=3), drop_fraction=0.2), "plain": KNearest()}
    result = transfer_report(
        _data(),
        {},
        detectors,
        out_dir=None,
        contamination=0.1,
        n_boot=5,
    )
    rows = {r["detector"]: r for r in result.contamination if r["group"] == ALL}
    # 12 hot frames planted among 120; the 24 highest-ranked are dropped.
    assert rows["knn"]["contaminants_dropped"] == 1.0
    assert np.isnan(rows["plain"]["contaminants_dropped"])


def test_contamination_dropped_share_per_class():
    rng = np.random.default_rng(5)
    data = replace(
        _data(),
        reserve_anomalies=np.concatenate(
            [_hot(_normals(15, rng), rng), _normals(15, rng)]
        ),
        reserve_groups=np.array(["Hot"] * 15 + ["Cell"] * 15),
    )
    detectors = {"knn": Trimmed(KNearest(k=3), drop_fraction=0.2)}

    result = transfer_report(data, {}, detectors, out_dir=None, contamination=0.1)

    share = {r["group"]: r["contaminants_dropped"] for r in result.contamination}
    # Hot frames stand out and are all dropped; the Cell "anomalies" are
    # normal frames, which the scouts cannot tell from the rest.
    assert share["Hot"] == 1.0
    assert share["Cell"] < 0.5
    assert share["Cell"] < share[ALL] < share["Hot"]


@dataclass
class _RandomScores:
    """Detector whose scores come from its generator alone, not from the data."""

    uses_pseudo: bool = True

    def fit(self, normal, anomalous, masks, rng):
        seed = int(rng.integers(2**31))
        return lambda images: (np.random.default_rng(seed).random(len(images)), None)


def test_contamination_run_reuses_clean_seed():
    generators = {"thermal": _thermal, "noise": lambda pool: gen.GaussianNoise()}
    result = transfer_report(
        _data(),
        generators,
        {"random": _RandomScores()},
        out_dir=None,
        contamination=0.1,
        contamination_generators=["noise"],
        n_boot=5,
        n_pixel=0,
    )
    clean = {r["generator"]: r for r in result.image if r["group"] == ALL}
    dirty = [r for r in result.contamination if r["group"] == ALL]

    assert len(dirty) == 1
    assert dirty[0]["auroc"] == clean["noise"]["auroc"]
    assert (dirty[0]["low"], dirty[0]["high"]) == (
        clean["noise"]["low"],
        clean["noise"]["high"],
    )
    assert dirty[0]["auroc"] != clean["thermal"]["auroc"]


def test_supervised_trimmed_keeps_inner_name():
    result = transfer_report(
        _data(),
        {},
        {"knn": KNearest()},
        out_dir=None,
        supervised=Trimmed(Classifier(steps=5), scout=Classifier(steps=2)),
        n_boot=5,
    )
    assert ("real (supervised)", "classifier") in {
        (r["generator"], r["detector"]) for r in result.image
    }


def _sweep(tmp_path, generators, levels=(0.5, 1.0, 2.0)):
    return transfer_report(
        _data(),
        generators,
        {"classifier": Classifier(steps=5)},
        out_dir=tmp_path,
        severity_levels=list(levels),
        severity_generator=_thermal,
        severity_detector="classifier",
        n_boot=5,
        n_pixel=0,
    )


def _overall(rows):
    return {r["severity"]: r for r in rows if r["group"] == ALL}


def test_severity_closeness_rises_with_factor(tmp_path):
    result = _sweep(tmp_path, {"thermal": ScaledGenerator(_thermal, 1.0)})
    rows = _overall(result.severity)
    medians = [rows[level]["contrast_noise_median"] for level in (0.5, 1.0, 2.0)]

    assert medians[0] < medians[1] < medians[2]
    for row in rows.values():
        assert row["contrast_noise_q25"] <= row["contrast_noise_median"]
        assert row["contrast_noise_median"] <= row["contrast_noise_q75"]
        assert row["closeness_frames"] == len(_data().train_normal)
    # The bank's peak is 8 K and the camera 3 levels per K, against noise of
    # 2 levels: at factor 1 the mean contrast of a mask is several sigma.
    assert 2.0 < medians[1] < 12.0
    with (tmp_path / "severity.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header[:4] == ["severity", "generator", "detector", "contrast_noise_median"]
    report = (tmp_path / "report.md").read_text()
    assert "its mask is empty or leaves no ring" in report


def test_contrast_noise_matches_region_contrast():
    rng = np.random.default_rng(1)
    images = _normals(3, rng)
    masks = np.zeros(images.shape, dtype=bool)
    masks[0, 10:14, 8:12] = True
    masks[1, 20:22, 5:9] = True
    images[0][masks[0]] = 200

    ratios = contrast_noise(images, masks)

    assert np.isnan(ratios[2])
    assert ratios[0] > 10 * ratios[1]
    # Scaling contrast and noise alike leaves the ratio: here both are doubled
    # exactly by doubling the frame (no clipping, no rounding).
    doubled = contrast_noise(images[:2].astype(np.uint16) * 2, masks[:2])
    np.testing.assert_allclose(doubled, ratios[:2], rtol=1e-12)
    values = images[1].astype(float)
    noise = estimate_noise(values, np.ones(SHAPE, dtype=bool), quantum=1.0)
    assert ratios[1] == region_contrast(values, masks[1]) / noise


def _battery_image(data_dir, sigma, rng):
    """Return a CAM1 render [level] with noise of ``sigma`` levels, and its region."""
    root = data_dir / "battery-station-inferno"
    path = sorted((root / "normal_masked").glob("*CAM1_thermal.png"))[0]
    luminance = read_image(path).astype(np.float64) @ [0.299, 0.587, 0.114]
    region = read_mask(root / "camera_masks" / "MASK_CAM1_thermal.png")
    noisy = luminance + np.where(region, rng.normal(0, sigma, region.shape), 0.0)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8), region


def test_contrast_noise_inside_battery_region(data_dir):
    image, region = _battery_image(data_dir, 3.0, np.random.default_rng(5))
    rows, cols = np.nonzero(region)
    centre = int(rows.mean()), int(cols.mean())
    mask = np.zeros(region.shape, dtype=bool)
    mask[centre[0] - 2 : centre[0] + 2, centre[1] - 2 : centre[1] + 2] = True
    image[mask] = np.clip(image[mask].astype(int) + 40, 0, 255).astype(np.uint8)
    contrast = region_contrast(image.astype(np.float64), mask)

    without_region = contrast_noise(image[None], mask[None])[0]
    in_region = contrast_noise(image[None], mask[None], region=region)[0]
    whole_frame = estimate_noise(
        image.astype(np.float64), np.ones(mask.shape, bool), quantum=1.0
    )

    assert without_region == pytest.approx(contrast / 3.0, rel=0.10)
    assert in_region == pytest.approx(contrast / 3.0, rel=0.10)
    # Counted, the 0-level pixels outside the region pull the sigma down.
    assert contrast / whole_frame > 2.0 * without_region


def test_severity_factor_one_reuses_main_run(tmp_path):
    result = _sweep(tmp_path, {"thermal": ScaledGenerator(_thermal, 1.0)})
    main = {r["group"]: r for r in result.image}
    level_one = {r["group"]: r for r in result.severity if r["severity"] == 1.0}

    assert result.severity_reuses_main
    for group, row in level_one.items():
        assert row["auroc"] == main[group]["auroc"]
        assert (row["low"], row["high"]) == (main[group]["low"], main[group]["high"])
    report = (tmp_path / "report.md").read_text()
    assert "Factor 1 is that run itself" in report


@dataclass
class _CountingFits(_RandomScores):
    """_RandomScores that counts its trainings."""

    fits: int = 0

    def fit(self, normal, anomalous, masks, rng):
        self.fits += 1
        return super().fit(normal, anomalous, masks, rng)


def test_severity_factor_one_trains_once():
    detector = _CountingFits()
    result = transfer_report(
        _data(),
        {"thermal": ScaledGenerator(_thermal, 1.0)},
        {"random": detector},
        out_dir=None,
        severity_levels=[0.5, 1.0, 2.0],
        severity_generator=_thermal,
        severity_detector="random",
        n_boot=5,
        n_pixel=0,
    )
    # The main run and the levels 0.5 and 2; factor 1 is the main run.
    assert detector.fits == 3
    assert len(result.severity) == 3 * 3


def test_severity_finds_plain_make_as_base(tmp_path):
    # The benchmark passes the two-argument factory itself as its generator.
    result = _sweep(tmp_path, {"thermal": _thermal}, levels=(1.0,))
    assert result.severity_reuses_main
    assert _overall(result.severity)[1.0]["auroc"] == _overall_image(result)


def _overall_image(result):
    return next(r["auroc"] for r in result.image if r["group"] == ALL)


def test_severity_own_seeds_said_on_page(tmp_path):
    result = _sweep(tmp_path, {"thermal": lambda pool: _thermal(pool, 1.0)})

    assert not result.severity_reuses_main
    assert {r["generator"] for r in result.severity} == {"severity_generator"}
    report = (tmp_path / "report.md").read_text()
    assert "Each level trains its own network with its own seed" in report


def test_severity_section_has_table(tmp_path):
    result = _sweep(tmp_path, {"thermal": ScaledGenerator(_thermal, 1.0)})
    report = (tmp_path / "report.md").read_text()
    section = report.split("## Severity sweep", 1)[1]
    rows = _overall(result.severity)

    assert "| factor | closeness median (quartiles) [noise sigma] |" in section
    for level in (0.5, 1.0, 2.0):
        row = rows[level]
        cell = (
            f"| {level:g} | {row['contrast_noise_median']:.2f} "
            f"({row['contrast_noise_q25']:.2f} to {row['contrast_noise_q75']:.2f}) | "
            f"{row['auroc']:.3f} ["
        )
        assert cell in section, cell
    assert section.index("| factor |") < section.index("![severity](severity.png)")
    assert (tmp_path / "severity.png").is_file()


def _masked_data() -> tuple[TransferData, np.ndarray]:
    """Flat noisy frames; three anomalies with a drawn 3 x 3 square at +30 levels."""
    rng = np.random.default_rng(5)
    flat = np.clip(80 + rng.normal(0, 2, (14, *SHAPE)), 0, 255).astype(np.uint8)
    masks = np.zeros(flat.shape, dtype=bool)
    for i, (row, col) in enumerate([(5, 5), (20, 12), (30, 3)]):
        masks[4 + i, row : row + 3, col : col + 3] = True
    images = flat[4:].copy()
    images[masks[4:]] += 30
    labels = masks[4:].any(axis=(1, 2))
    groups = np.where(labels, "Hot", "No-Anomaly")
    data = TransferData(
        train_normal=flat[:4],
        test_images=images,
        test_labels=labels,
        test_groups=groups,
        test_masks=masks[4:],
    )
    return data, images


def _minus_median(images: np.ndarray):
    x = np.asarray(images, dtype=np.float64)
    maps = x - np.median(x, axis=(1, 2), keepdims=True)
    return maps.max(axis=(1, 2)), maps


def test_plugin_scorer_maps_get_pixel_rows(tmp_path):
    data, images = _masked_data()
    result = transfer_report(
        data,
        {"noise": lambda pool: gen.GaussianNoise()},
        {},
        out_dir=tmp_path,
        scorers={"minus_median": _minus_median},
        n_boot=5,
        n_pixel=4,
    )
    rows = {r["test_set"]: r for r in result.pixel if r["detector"] == "minus_median"}
    _, maps = _minus_median(images)

    assert set(rows) == {REAL_MASKS, "noise"}
    assert rows[REAL_MASKS]["trained_on"] == "none"
    assert rows[REAL_MASKS]["pixel_auroc"] == pixel_auroc(data.test_masks, maps)
    assert rows[REAL_MASKS]["aupro"] == aupro(data.test_masks, maps)
    assert 0.0 <= rows["noise"]["pixel_auroc"] <= 1.0
    report = (tmp_path / "report.md").read_text()
    assert f"| none | minus_median | {REAL_MASKS} |" in report


def test_plugin_scorer_pixel_auroc_by_hand():
    # One frame, a single hot pixel inside a 2-pixel mask: the map ranks the
    # hot pixel first and the cold masked pixel below every normal pixel.
    image = np.full((1, *SHAPE), 100, dtype=np.uint8)
    image[0, 10, 10] = 150
    image[0, 10, 11] = 50
    mask = np.zeros(image.shape, dtype=bool)
    mask[0, 10, 10:12] = True
    data = TransferData(
        train_normal=np.full((2, *SHAPE), 100, dtype=np.uint8),
        test_images=np.concatenate([image, np.full((1, *SHAPE), 100, np.uint8)]),
        test_labels=np.array([True, False]),
        test_groups=np.array(["Hot", "No-Anomaly"]),
        test_masks=np.concatenate([mask, np.zeros_like(mask)]),
    )
    result = transfer_report(
        data, {}, {}, out_dir=None, scorers={"m": _minus_median}, n_boot=2, n_pixel=0
    )
    # The hot pixel beats all 2 * 960 - 2 normal pixels, the cold one none:
    # AUROC = (1 + 0) / 2.
    assert [r["pixel_auroc"] for r in result.pixel] == [pytest.approx(0.5)]


def test_plugin_scorer_without_maps_has_no_rows():
    data, _ = _masked_data()
    result = transfer_report(
        data,
        {},
        {},
        out_dir=None,
        scorers={"peak": lambda images: _minus_median(images)[0]},
        n_boot=5,
    )
    assert result.pixel == []


def _small_class_data() -> TransferData:
    base = _data()
    groups = base.test_groups.copy()
    labels = base.test_labels
    hot = np.flatnonzero(groups == "Hot")
    groups[hot[3:]] = "Cell"  # Hot keeps 3 anomalous frames, Cell gets 37
    return TransferData(
        base.train_normal,
        base.test_images,
        labels,
        groups,
        reserve_anomalies=base.reserve_anomalies,
    )


def test_small_class_gets_no_interval(tmp_path):
    result = transfer_report(
        _small_class_data(),
        {},
        {"knn": KNearest(k=3)},
        out_dir=tmp_path,
        n_boot=20,
    )
    rows = {r["group"]: r for r in result.image}

    assert rows["Hot"]["n_anomalous"] == 3
    assert np.isnan(rows["Hot"]["low"])
    assert np.isnan(rows["Hot"]["high"])
    assert 0.0 <= rows["Hot"]["auroc"] <= 1.0
    assert rows["Cell"]["low"] <= rows["Cell"]["high"]
    report = (tmp_path / "report.md").read_text()
    hot = report.split("## Image AUROC, Hot", 1)[1]
    assert f"| none | {rows['Hot']['auroc']:.3f} [n/a, n < 5] |" in hot
    assert "3 Hot test frames against all 40 normal ones." in hot
    assert "| Hot | 3 |" in report
    assert "[n/a" not in report.split("## Image AUROC, Hot", 1)[0]


def test_page_defines_its_figures(tmp_path):
    data, _ = _masked_data()
    transfer_report(
        data,
        {"noise": lambda pool: gen.GaussianNoise()},
        {"knn": KNearest(k=2)},
        out_dir=tmp_path,
        scorers={"max_minus_median": _minus_median},
        n_boot=7,
        n_pixel=3,
    )
    report = (tmp_path / "report.md").read_text()

    assert "over 7 bootstrap resamples" in report
    assert "`max_minus_median` is such a fixed scorer" in report
    assert "In the row `none`" in report
    assert "Pixel AUROC is the probability" in report
    assert "AUPRO weighs every connected masked region equally" in report
    assert "means 3 unseen test normals" in report
    assert "| trained on | detector | test set |" in report
    assert "pseudo test set" not in report


def _with_reserve(data: TransferData, reserve: np.ndarray | None) -> TransferData:
    return TransferData(
        data.train_normal,
        data.test_images,
        data.test_labels,
        data.test_groups,
        reserve_anomalies=reserve,
    )


def test_ceiling_skipped_with_one_reserve(tmp_path, caplog):
    data = _data()
    data = _with_reserve(data, data.reserve_anomalies[:1])

    with caplog.at_level("WARNING", logger="thermosynth.validation.transfer"):
        result = transfer_report(
            data,
            {},
            {"knn": KNearest()},
            out_dir=tmp_path,
            supervised=Classifier(steps=5),
            n_boot=5,
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    report = (tmp_path / "report.md").read_text()

    assert not any(r["generator"] == "real (supervised)" for r in result.image)
    assert len(warnings) == 1
    assert "supervised ceiling was skipped" in warnings[0]
    assert "needs 2 or more, but the reserve has 1" in warnings[0]
    assert len(result.skipped) == 1
    assert "supervised ceiling was skipped" in result.skipped[0]
    assert "The supervised ceiling was skipped" in report


def test_classifier_needs_two_anomalous_frames():
    rng = np.random.default_rng(0)
    normal = _normals(10, rng)

    with pytest.raises(ValueError, match="needs 2 or more to train on but got 1"):
        Classifier(steps=2).fit(normal, _hot(normal[:1], rng), None, rng)


def test_contamination_skip_noted(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="thermosynth.validation.transfer"):
        result = transfer_report(
            _data(),
            {"noise": lambda pool: gen.GaussianNoise()},
            {"classifier": Classifier(steps=2)},
            out_dir=tmp_path,
            contamination=0.1,
            contamination_generators=[],
            n_boot=5,
            n_pixel=0,
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    report = (tmp_path / "report.md").read_text()

    assert result.contamination == []
    assert len(warnings) == 1
    assert "contamination run (0.1 of the training normals" in warnings[0]
    assert "(here none)" in warnings[0]
    assert "The contamination run (0.1 of the training normals" in report
    assert not (tmp_path / "contamination.csv").exists()


def _column(images):
    return np.asarray(images, float).max(axis=(1, 2))[:, None]


def _nan_scores(images):
    return np.full(len(images), np.nan)


def _short(images):
    return np.asarray(images, float).max(axis=(1, 2))[:-1]


def _words(images):
    return np.array(["hot"] * len(images))


def _small_maps(images):
    return np.zeros(len(images)), np.zeros((len(images), 8, 8))


def _nan_maps(images):
    return np.zeros(len(images)), np.full(np.shape(images), np.nan)


def _triple(images):
    return np.zeros(len(images)), None, None


BAD_SCORERS = [
    (_column, r"scorer 'bad' returned scores of shape \(80, 1\) for 80 frames"),
    (_short, r"scorer 'bad' returned scores of shape \(79,\) for 80 frames"),
    (_nan_scores, r"scorer 'bad' returned scores with 80 NaN or infinite values"),
    (_words, r"scorer 'bad' returned scores that are not numbers"),
    (_small_maps, r"scorer 'bad' returned maps of shape \(80, 8, 8\) for 80 frames"),
    (_nan_maps, r"scorer 'bad' returned maps with 76800 NaN or infinite values"),
    (_triple, r"scorer 'bad' returned a tuple of 3 items"),
]


@pytest.mark.parametrize(("scorer", "message"), BAD_SCORERS)
def test_bad_scorer_output_named(scorer, message):
    with pytest.raises(ScorerError, match=message):
        transfer_report(_data(), {}, {}, out_dir=None, scorers={"bad": scorer})


def test_scorer_exception_chained():
    def broken(images):
        return 1 / 0

    with pytest.raises(
        ScorerError, match="scorer 'broken' failed on 80 frames"
    ) as info:
        transfer_report(_data(), {}, {}, out_dir=None, scorers={"broken": broken})

    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert "ZeroDivisionError: division by zero" in str(info.value)


def test_float_frames_name_the_field():
    data = _data()
    data = TransferData(
        data.train_normal.astype(np.float32),
        data.test_images,
        data.test_labels,
        data.test_groups,
    )

    with pytest.raises(ValueError, match=r"TransferData.train_normal is float32"):
        transfer_report(data, {"noise": gen.CutPaste}, {}, out_dir=None)


def test_severity_log_names_level(tmp_path, caplog):
    with caplog.at_level("INFO", logger="thermosynth.validation.transfer"):
        _sweep(tmp_path, {}, levels=(0.5,))
    messages = [r.getMessage() for r in caplog.records]

    assert any(
        m.startswith("detector 'classifier' at severity level 0.5: ") for m in messages
    ), messages


def test_paired_rows_compare_reference_per_detector(tmp_path):
    generators = {"thermal": _thermal, "noise": lambda pool: gen.GaussianNoise()}
    detectors = {"classifier": Classifier(steps=5), "knn": KNearest(k=3)}
    result = transfer_report(
        _data(),
        generators,
        detectors,
        out_dir=tmp_path,
        n_boot=20,
        n_pixel=0,
        paired_reference="thermal",
    )
    image = {(r["generator"], r["detector"], r["group"]): r for r in result.image}

    # One pseudo-trained detector, one other generator, all + each class;
    # knn trains on no generator and is not compared.
    groups = sorted({r["group"] for r in result.image})
    assert [(r["generator"], r["detector"]) for r in result.paired] == [
        ("noise", "classifier")
    ] * len(groups)
    for row in result.paired:
        own = image["thermal", "classifier", row["group"]]["auroc"]
        other = image["noise", "classifier", row["group"]]["auroc"]
        assert row["difference"] == pytest.approx(own - other, abs=1e-12)
        assert row["low"] <= row["difference"] <= row["high"]
    assert (tmp_path / "paired_differences.csv").is_file()
    assert "## thermal against each generator" in (tmp_path / "report.md").read_text()


def test_paired_rows_need_the_reference():
    result = transfer_report(
        _data(),
        {"noise": lambda pool: gen.GaussianNoise()},
        {"classifier": Classifier(steps=5)},
        out_dir=None,
        n_boot=5,
        n_pixel=0,
    )

    assert result.paired == []
