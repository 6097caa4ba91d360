"""End-to-end test of thermosynth.validation.transfer on tiny synthetic frames."""

from dataclasses import dataclass

import numpy as np
import pytest

from thermosynth.camera.model import Camera
from thermosynth.validation import generators as gen
from thermosynth.validation.detectors import (
    Autoencoder,
    Classifier,
    KNearest,
    Trimmed,
    max_minus_median,
)
from thermosynth.validation.metrics import auroc
from thermosynth.validation.transfer import (
    ALL,
    REAL_MASKS,
    TransferData,
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
    real = [r for r in result.pixel if r["pseudo_test"] == REAL_MASKS]
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
