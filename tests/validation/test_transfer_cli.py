"""Command-line test of ``thermosynth validate transfer`` on a tiny MVTec tree."""

import csv
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml
from real_frames import BATTERY_ANOMALIES, BATTERY_FRAMES, grey_frames
from transfer_recipes import write_pv_recipe, write_recipe

from thermosynth.cli import _warn_if_large, _with_frames_levels_per_kelvin, main
from thermosynth.recipe import load_recipe

SHAPE = (40, 24)
RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _normal(rng: np.random.Generator) -> np.ndarray:
    ramp = np.linspace(60, 100, SHAPE[0])[:, None] + np.zeros(SHAPE)
    return np.clip(ramp + rng.normal(0, 2, SHAPE), 0, 255).astype(np.uint8)


def _hot(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    cy, cx = rng.uniform(5, 35), rng.uniform(4, 20)
    bump = 40 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 6.0)
    image = np.clip(_normal(rng) + bump, 0, 255).astype(np.uint8)
    return image, bump > 4


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def mvtec_tree(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "modules"
    for split, count in (("train", 30), ("test", 10)):
        for i in range(count):
            _write(root / split / "good" / f"{i:03d}.png", _normal(rng))
    for i in range(8):
        image, mask = _hot(rng)
        _write(root / "test" / "hot" / f"{i:03d}.png", image)
        _write(root / "ground_truth" / "hot" / f"{i:03d}_mask.png", mask * 255)
    return root


@pytest.fixture
def recipe(tmp_path: Path, mvtec_tree: Path) -> Path:
    return write_pv_recipe(mvtec_tree / "train" / "good", tmp_path / "recipe.yaml")


def _args(tree: Path, recipe: Path, out: Path) -> list[str]:
    return [
        "validate",
        "transfer",
        "--normal",
        str(tree),
        "--real",
        str(tree),
        "--recipe",
        str(recipe),
        "--generators",
        "thermosynth,cutpaste",
        "--detectors",
        "classifier,knn",
        "--steps",
        "20",
        "--bank-scenarios",
        "2",
        "--severity",
        "0.5,1",
        "--contamination",
        "0.1",
        "--bootstrap",
        "20",
        "-o",
        str(out),
    ]


def test_transfer_cli_writes_report(mvtec_tree, recipe, tmp_path, capsys):
    out = tmp_path / "report"

    # Two processes, so that forking beside the thermosynth bank is exercised.
    assert main([*_args(mvtec_tree, recipe, out), "--jobs", "2"]) == 0

    for name in ("report.md", "image_auroc.csv", "severity.csv", "examples.png"):
        assert (out / name).is_file(), name
    assert (out / "severity.png").is_file()
    assert (out / "contamination.csv").is_file()
    with (out / "image_auroc.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    pairs = {(r["generator"], r["detector"]) for r in rows}
    assert ("thermosynth", "classifier") in pairs
    assert ("cutpaste", "classifier") in pairs
    assert ("none", "knn") in pairs
    assert ("none", "max_minus_median") in pairs
    assert {r["group"] for r in rows} == {"all", "hot"}
    for row in rows:
        assert 0.0 <= float(row["auroc"]) <= 1.0, row
    with (out / "pixel_metrics.csv").open() as handle:
        pixel = list(csv.DictReader(handle))
    real = [r for r in pixel if r["test_set"] == "real (test set)"]
    assert {(r["trained_on"], r["detector"]) for r in real} == {
        ("thermosynth", "classifier"),
        ("cutpaste", "classifier"),
    }
    assert "report.md" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "; classifier one network" in report
    assert "DRAEM" not in report
    assert "Factor 1 is that run itself" in report
    # The recipe reads frames of the --normal frames' size and ratio.
    assert "Warning:" not in report

    with (out / "severity.csv").open() as handle:
        severity = list(csv.DictReader(handle))
    assert {(r["generator"], r["detector"]) for r in severity} == {
        ("thermosynth", "classifier")
    }
    clean = {
        r["group"]: r["auroc"]
        for r in rows
        if (r["generator"], r["detector"]) == ("thermosynth", "classifier")
    }
    for row in severity:
        assert float(row["contrast_noise_median"]) > 0.0, row
        if float(row["severity"]) == 1.0:
            assert row["auroc"] == clean[row["group"]], row


def _battery_tree(data_dir: Path, root: Path) -> Path:
    """Write 8 + 4 real battery normals and 6 manipulated frames as an MVTec tree."""
    normals = grey_frames(data_dir, BATTERY_FRAMES, "*CAM2_thermal.png", 12)
    contrast = grey_frames(data_dir, BATTERY_ANOMALIES, "a_*CAM2_thermal.png", 6)
    for folder, images in (
        ("train/good", normals[:8]),
        ("test/good", normals[8:]),
        ("test/contrast", contrast),
    ):
        for i, image in enumerate(images):
            _write(root / folder / f"{i:03d}.png", image)
    return root


def test_transfer_cli_pv_recipe_on_battery_warns(data_dir, tmp_path, caplog):
    tree = _battery_tree(data_dir, tmp_path / "battery")
    out = tmp_path / "report"
    args = _args(tree, RECIPES / "pv-module-hotspots.yaml", out)
    for option, value in (
        ("--detectors", "knn"),
        ("--generators", "thermosynth"),
        ("--steps", "2"),
        ("--severity", "none"),
        ("--contamination", "0"),
        ("--bank-scenarios", "1"),
    ):
        args = _set_option(args, option, value)

    assert main(args) == 0

    report = (out / "report.md").read_text()
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert report.count(f"Warning: {RECIPES / 'pv-module-hotspots.yaml'}: ") == 2
    for expected in (
        "contains frames of 40 x 24 px (height x width), but the --normal frames are "
        "60 x 80 px",
        "over the whole 80 x 60 px frame (ratio 1.33), a factor 2.20 apart",
    ):
        assert expected in report
        assert sum(expected in message for message in logged) == 1


def test_transfer_cli_keeps_existing_report(mvtec_tree, recipe, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()

    assert main(_args(mvtec_tree, recipe, out)) == 2

    err = capsys.readouterr().err
    assert "already exists" in err
    assert "--overwrite" in err
    assert not any(out.iterdir())


def test_transfer_cli_missing_folder(recipe, tmp_path, capsys):
    missing = tmp_path / "nowhere"

    code = main(_args(missing, recipe, tmp_path / "report"))

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("thermosynth: error: frame set not found")
    assert str(missing) in err
    assert not (tmp_path / "report").exists()


def test_transfer_cli_unknown_detector(mvtec_tree, recipe, tmp_path, capsys):
    args = _args(mvtec_tree, recipe, tmp_path / "report")
    args[args.index("classifier,knn")] = "classifier,svm"

    assert main(args) == 2

    err = capsys.readouterr().err
    assert "--detectors 'svm' is unknown" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("option", ["--jobs", "--members"])
def test_transfer_cli_rejects_zero_count(mvtec_tree, recipe, tmp_path, capsys, option):
    args = [*_args(mvtec_tree, recipe, tmp_path / "report"), option, "0"]

    assert main(args) == 2

    err = capsys.readouterr().err
    assert f"{option} 0 is invalid" in err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("spread", ["0.5", "inf"])
def test_transfer_cli_rejects_bad_contrast_spread(
    mvtec_tree, recipe, tmp_path, capsys, spread
):
    args = [
        *_args(mvtec_tree, recipe, tmp_path / "report"),
        "--contrast-spread",
        spread,
    ]

    assert main(args) == 2

    err = capsys.readouterr().err
    assert f"--contrast-spread {float(spread)} is invalid" in err
    assert not (tmp_path / "report").exists()


def test_thermal_factory_passes_contrast_spread(recipe):
    from thermosynth.errors import ThermosynthError
    from thermosynth.recipe import load_recipe
    from thermosynth.validation.transfer_setup import thermal_factory

    loaded = load_recipe(recipe)
    image = _normal(np.random.default_rng(1))
    make = thermal_factory(loaded, image, n_scenarios=2, seed=0, spread=3.0)

    assert make(image[None], 0.5).spread == 3.0
    assert make(image[None], 0.5).scale == 0.5
    with pytest.raises(ThermosynthError, match="--contrast-spread 0.9"):
        thermal_factory(loaded, image, n_scenarios=2, seed=0, spread=0.9)


@pytest.mark.parametrize("detectors", ["classifier,draem,knn", "Classifier,DRAEM"])
def test_transfer_notes_name_the_ensemble(detectors):
    from argparse import Namespace

    from thermosynth.cli import _transfer_notes

    args = Namespace(
        normal="n",
        real="r",
        recipe="x.yaml",
        seed=0,
        steps=5,
        bank_scenarios=4,
        contrast_spread=2.0,
        trim_fraction=0.1,
        members=3,
        resize=None,
        detectors=detectors,
    )

    notes = _transfer_notes(args)

    assert "classifier and DRAEM each an ensemble of 3 networks" in notes


def test_members_wrap_trained_detector_not_scout():
    from thermosynth.validation.detectors import Draem, Ensemble, Trimmed
    from thermosynth.validation.transfer_setup import build_detectors

    detectors = build_detectors(["draem", "knn"], steps=8, members=3)
    draem = detectors["draem"]

    assert isinstance(draem, Trimmed)
    assert isinstance(draem.detector, Ensemble)
    assert draem.detector.members == 3
    assert isinstance(draem.scout, Draem)
    assert not isinstance(detectors["knn"], Ensemble)


def test_recipe_takes_frames_levels_per_kelvin():
    path = RECIPES / "flir-pouch-cell.yaml"
    loaded = load_recipe(path)
    unset = SimpleNamespace(kelvin_per_level=None)
    scaled = SimpleNamespace(kelvin_per_level=0.07)

    filled = _with_frames_levels_per_kelvin(loaded, path, scaled)
    unchanged = _with_frames_levels_per_kelvin(
        filled, path, SimpleNamespace(kelvin_per_level=1.0)
    )

    assert loaded.recipe.camera.levels_per_kelvin is None
    assert _with_frames_levels_per_kelvin(loaded, path, unset) is loaded
    assert filled.recipe.camera.levels_per_kelvin == pytest.approx(1 / 0.07)
    assert unchanged is filled
    # The filled key is no --set of the user's, so errors name the file.
    assert filled.label(("camera", "levels_per_kelvin")) == str(path)


@pytest.mark.parametrize(
    ("overrides", "kelvin_per_level"),
    [((), 0.170745), (("camera.levels_per_kelvin=4",), None)],
)
def test_transfer_level_scale_not_warned(data_dir, overrides, kelvin_per_level, caplog):
    # thermosynth generate ignores the key on the demo's frames in C and warns
    # (test_build.py). Transfer converts rises to its 8-bit levels with it,
    # whether the command filled the key or the user set it.
    from thermosynth.cli import _thermal_factory

    path = Path(__file__).resolve().parents[2] / "thermosynth/recipes/demo.yaml"
    loaded = load_recipe(path, overrides=list(overrides))
    frame = data_dir / "pouch-cell-flir-screen" / "id1_cha_1c" / "1211.png"
    image = cv2.imread(str(frame), cv2.IMREAD_GRAYSCALE)
    data = SimpleNamespace(kelvin_per_level=kelvin_per_level, train_normal=image[None])
    args = SimpleNamespace(
        bank_scenarios=1, seed=0, contrast_spread=1.0, normal=frame.parent
    )

    with caplog.at_level("INFO", logger="thermosynth"):
        _thermal_factory(args, [(path, loaded)], data, image.shape, None)
    messages = [r.getMessage() for r in caplog.records]
    filled = [m for m in messages if "from the training frames' scale" in m]

    assert len(filled) == (kelvin_per_level is not None)
    assert not [w for w in _warnings(caplog) if "levels_per_kelvin" in w]


def test_transfer_cli_resizes_frames(mvtec_tree, recipe, tmp_path, capsys):
    out = tmp_path / "report"
    args = _args(mvtec_tree, recipe, out)
    args[args.index("--severity") + 1] = "none"
    args[args.index("--contamination") + 1] = "0"
    assert main([*args, "--resize", "18x10", "--steps", "5"]) == 0

    assert (
        "frames resized to 18 x 10 px (height x width)"
        in (out / "report.md").read_text()
    )
    with (out / "pixel_metrics.csv").open() as handle:
        real = [r for r in csv.DictReader(handle) if r["test_set"] == "real (test set)"]
    assert {r["trained_on"] for r in real} == {"thermosynth", "cutpaste"}


@pytest.mark.parametrize(
    "size", ["18", "18x", "0x10", "7x10", "18x10x2", "axb", "-3x4", "- 3x4"]
)
def test_transfer_cli_rejects_bad_resize(mvtec_tree, recipe, tmp_path, capsys, size):
    out = tmp_path / "report"
    assert main([*_args(mvtec_tree, recipe, out), "--resize", size]) == 2
    err = capsys.readouterr().err
    assert f"--resize {size!r} is invalid; give height x width in pixels" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("shape", "resized", "warned"),
    [((256, 200), False, True), ((256, 200), True, False), ((40, 24), False, False)],
)
def test_transfer_large_frames_suggest_resize(caplog, shape, resized, warned):
    with caplog.at_level("WARNING", logger="thermosynth.cli"):
        _warn_if_large(shape, resized=resized)
    hint = "frames are 256 x 200 px (height x width)"
    assert (hint in caplog.text) is warned
    assert ("--resize HxW (such as 128x100)" in caplog.text) is warned


def _without_recipe(args: list[str]) -> list[str]:
    at = args.index("--recipe")
    return args[:at] + args[at + 2 :]


def _set_option(args: list[str], option: str, value: str) -> list[str]:
    args = list(args)
    args[args.index(option) + 1] = value
    return args


def test_transfer_cli_train_folder_not_good(mvtec_tree, recipe, tmp_path, capsys):
    (mvtec_tree / "train" / "good").rename(mvtec_tree / "train" / "Good")
    out = tmp_path / "report"
    args = _set_option(_args(mvtec_tree, recipe, out), "--generators", "cutpaste")
    args = _without_recipe(_set_option(args, "--severity", "none"))

    code = main(args)

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"{mvtec_tree / 'train'} contains the folder 'Good'" in err
    assert "train/ of an MVTec tree may contain only 'good'" in err
    assert not out.exists()


@pytest.mark.parametrize("option", ["--max-train", "--max-test", "--bootstrap"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_transfer_cli_rejects_count_below_one(
    mvtec_tree, recipe, tmp_path, capsys, option, value
):
    out = tmp_path / "report"

    code = main([*_args(mvtec_tree, recipe, out), option, value])

    err = capsys.readouterr().err
    assert code == 2
    assert err == f"thermosynth: error: {option} {value} is invalid; give 1 or more\n"
    assert not out.exists()


def test_transfer_negative_severity_message(mvtec_tree, recipe, tmp_path, capsys):
    out = tmp_path / "report"
    args = _set_option(_args(mvtec_tree, recipe, out), "--severity", "-1,1")

    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--severity '-1,1' is invalid; give factors > 0" in err
    assert "expected one argument" not in err
    assert not out.exists()


def test_transfer_cli_without_recipe(mvtec_tree, recipe, tmp_path, capsys):
    out = tmp_path / "report"
    args = _set_option(_args(mvtec_tree, recipe, out), "--generators", "cutpaste")
    args = _set_option(args, "--steps", "5")
    args = _set_option(args, "--contamination", "0")
    at = args.index("--severity")
    args = _without_recipe(args[:at] + args[at + 2 :])

    assert main(args) == 0

    report = (out / "report.md").read_text()
    assert "recipe: none" in report
    assert "thermosynth bank" not in report
    assert not (out / "severity.csv").exists()
    with (out / "image_auroc.csv").open() as handle:
        generators = {r["generator"] for r in csv.DictReader(handle)}
    assert generators == {"cutpaste", "none", "real (supervised)"}


@pytest.mark.parametrize(
    ("generators", "severity", "reason"),
    [
        ("thermosynth,cutpaste", "none", "the thermosynth generator in --generators"),
        ("cutpaste", "0.5,1", "the severity sweep scales rises"),
    ],
)
def test_transfer_cli_needs_recipe(
    mvtec_tree, recipe, tmp_path, capsys, generators, severity, reason
):
    out = tmp_path / "report"
    args = _set_option(_args(mvtec_tree, recipe, out), "--generators", generators)
    args = _without_recipe(_set_option(args, "--severity", severity))

    code = main(args)

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"thermosynth: error: --recipe is missing, but {reason}")
    assert "pass --recipe RECIPE.yaml" in err
    assert not out.exists()


def test_transfer_notes_give_absolute_paths(tmp_path, monkeypatch):
    from argparse import Namespace

    from thermosynth.cli import _transfer_notes

    monkeypatch.chdir(tmp_path)
    args = Namespace(
        normal=Path("normal"),
        real=Path("../real"),
        recipe=[Path("recipes/x.yaml")],
        seed=0,
        steps=5,
        bank_scenarios=4,
        contrast_spread=2.0,
        trim_fraction=0.1,
        members=1,
        resize=None,
        detectors="classifier,draem,knn",
    )

    notes = _transfer_notes(args)

    assert f"Normal frames: `{tmp_path.resolve() / 'normal'}`" in notes
    assert f"real anomalies: `{tmp_path.resolve().parent / 'real'}`" in notes
    assert f"recipe: `{tmp_path.resolve() / 'recipes' / 'x.yaml'}`" in notes


def _small_tree(root: Path, n_hot: int) -> Path:
    """Write 12 training and 6 test normals and ``n_hot`` masked hot frames."""
    rng = np.random.default_rng(1)
    for split, count in (("train", 12), ("test", 6)):
        for i in range(count):
            _write(root / split / "good" / f"{i:03d}.png", _normal(rng))
    for i in range(n_hot):
        image, mask = _hot(rng)
        _write(root / "test" / "hot" / f"{i:03d}.png", image)
        _write(root / "ground_truth" / "hot" / f"{i:03d}_mask.png", mask * 255)
    return root


def _quick_args(tree: Path, out: Path, *options: str) -> list[str]:
    """Arguments of a run of seconds: knn on cutpaste, no sweep, no contamination."""
    return [
        *("validate", "transfer", "--normal", str(tree), "--real", str(tree)),
        *("--generators", "cutpaste", "--detectors", "knn", "--steps", "2"),
        *("--severity", "none", "--contamination", "0", "--bootstrap", "5"),
        *("-o", str(out), *options),
    ]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_transfer_cli_one_reserve_skips_ceiling(tmp_path, caplog):
    tree = _small_tree(tmp_path / "tree", n_hot=2)
    out = tmp_path / "report"

    assert main(_quick_args(tree, out)) == 0
    report = (out / "report.md").read_text()
    with (out / "image_auroc.csv").open() as handle:
        generators = {row["generator"] for row in csv.DictReader(handle)}

    warnings = _warnings(caplog)

    assert "real (supervised)" not in generators
    assert "The supervised ceiling was skipped" in report
    assert "but the reserve has 1" in report
    assert len(warnings) == 1
    assert "supervised ceiling was skipped" in warnings[0]


def test_transfer_cli_report_records_command(tmp_path):
    tree = _small_tree(tmp_path / "tree", n_hot=4)
    out = tmp_path / "report"

    assert main(_quick_args(tree, out)) == 0
    report = (out / "report.md").read_text()

    assert f"Command: `thermosynth validate transfer --normal {tree}" in report
    assert f"-o {out}`" in report
    assert "Written " in report
    assert "one network" not in report


def test_transfer_cli_few_training_normals(tmp_path, capsys):
    tree = _small_tree(tmp_path / "tree", n_hot=4)
    out = tmp_path / "report"

    assert main(_quick_args(tree, out, "--max-train", "3")) == 2
    error = capsys.readouterr().err

    assert error.count("\n") == 1
    assert "--max-train 3 keeps 3 training normals" in error
    assert "--trim-fraction 0.1 ranks them in two folds and needs at least 4" in error
    assert not out.exists()


def test_transfer_cli_empty_train_good(tmp_path, capsys):
    tree = _small_tree(tmp_path / "tree", n_hot=4)
    for file in (tree / "train" / "good").iterdir():
        file.unlink()

    assert main(_quick_args(tree, tmp_path / "report")) == 2
    error = capsys.readouterr().err

    assert error.count("\n") == 1
    assert "train/good contains no images; put the normal training frames" in error


def test_transfer_cli_contamination_skip_noted(tmp_path, caplog):
    tree = _small_tree(tmp_path / "tree", n_hot=8)
    out = tmp_path / "report"
    options = ("--detectors", "classifier", "--contamination", "0.1")

    assert main(_quick_args(tree, out, *options)) == 0
    report = (out / "report.md").read_text()
    warnings = [w for w in _warnings(caplog) if "contamination" in w]

    assert not (out / "contamination.csv").exists()
    assert "The contamination run (--contamination 0.1) was skipped" in report
    assert len(warnings) == 1
    assert "pass --contamination 0" in warnings[0]


def test_transfer_cli_csvs_same_for_same_seed(tmp_path):
    tree = _small_tree(tmp_path / "tree", n_hot=4)
    runs = [tmp_path / "first", tmp_path / "second"]

    for out in runs:
        assert main(_quick_args(tree, out)) == 0
    names = sorted(path.name for path in runs[0].glob("*.csv"))

    assert "image_auroc.csv" in names
    for name in names:
        first, second = ((out / name).read_bytes() for out in runs)
        assert first == second, name


def test_transfer_cli_warns_transposing_resize(tmp_path, caplog):
    tree = _small_tree(tmp_path / "tree", n_hot=4)
    out = tmp_path / "report"

    assert main(_quick_args(tree, out, "--resize", "24x40")) == 0
    warnings = [w for w in _warnings(caplog) if "orientation" in w]

    assert len(warnings) == 1
    assert "40 x 24 px frames to 24 x 40 px" in warnings[0]
    assert "sizes are height x width" in warnings[0]


def test_transfer_cli_per_camera_mask_rejected(mvtec_tree, recipe, tmp_path, capsys):
    mask = tmp_path / "mask.png"
    _write(mask, np.full(SHAPE, 255, np.uint8))
    data = yaml.safe_load(recipe.read_text())
    data["frames"]["valid_mask"] = {"CAM1": str(mask), "CAM2": str(mask)}
    recipe.write_text(yaml.safe_dump(data))
    out = tmp_path / "report"

    assert main(_args(mvtec_tree, recipe, out)) == 2
    err = capsys.readouterr().err

    assert "frames.valid_mask maps file names to one mask per camera" in err
    assert "run transfer once per camera" in err
    assert not out.exists()


def test_transfer_cli_mixes_two_recipes(mvtec_tree, recipe, tmp_path, capsys):
    thin_film = write_recipe(
        "pv-thin-film-hotspots.yaml",
        mvtec_tree / "train" / "good",
        tmp_path / "tf.yaml",
    )
    out = tmp_path / "report"
    args = _quick_args(mvtec_tree, out, "--recipe", str(recipe), "--recipe")
    args = _set_option([*args, str(thin_film)], "--generators", "thermosynth")
    args = _set_option(args, "--detectors", "classifier")
    args += ["--bank-scenarios", "2"]

    assert main(args) == 0

    report = (out / "report.md").read_text()
    assert f"`{recipe.resolve()}`, `{thin_film.resolve()}`" in report
    with (out / "image_auroc.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    trained = {(r["generator"], r["detector"]) for r in rows}
    assert ("thermosynth", "classifier") in trained


def test_transfer_cli_progress_reaches_total(tmp_path, capsys, caplog):
    tree = _small_tree(tmp_path / "tree", n_hot=4)

    with caplog.at_level("INFO", logger="thermosynth.validation.transfer"):
        assert main(_quick_args(tree, tmp_path / "report")) == 0
    err = capsys.readouterr().err
    starts = [m for m in caplog.messages if m.startswith("starting ")]

    # The fixed scorer, knn and the supervised ceiling.
    assert "transfer: 100%" in err
    assert "| 3/3 [" in err
    assert starts == ["starting 2 training runs and 1 fixed scorer on 1 process"]


def test_transfer_cli_no_progress_hides_bar(tmp_path, capsys):
    tree = _small_tree(tmp_path / "tree", n_hot=4)

    assert main(_quick_args(tree, tmp_path / "report", "--no-progress")) == 0
    err = capsys.readouterr().err

    assert "transfer:" not in err
    assert "3/3" not in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--detectors", "knn", "--severity", "1"),
            "a severity sweep needs a detector that trains on pseudo-anomalies",
        ),
        (("--resize", "7x10"), "--resize '7x10' is invalid"),
        (("--contamination", "1.5"), "--contamination 1.5 is invalid"),
        (("--bank-scenarios", "0"), "--bank-scenarios 0 is invalid"),
        (("--max-train", "3"), "--max-train 3 keeps 3 training normals, but"),
        (("--normal-where", "anomaly_class"), "filter 'anomaly_class' is invalid"),
    ],
)
def test_transfer_cli_usage_errors_before_loading(
    recipe, tmp_path, capsys, options, message
):
    # Reading this --normal would fail with "frame set not found".
    missing = tmp_path / "nowhere"
    out = tmp_path / "report"

    code = main([*_args(missing, recipe, out), *options])
    err = capsys.readouterr().err

    assert code == 2
    assert err.count("\n") == 1
    assert message in err
    assert "not found" not in err
    assert not out.exists()


def test_transfer_cli_emissivity_regions_before_loading(mvtec_tree, tmp_path, capsys):
    regions = {"camera.emissivity_regions": {"cell": 0.9}}
    recipe = write_recipe(
        "pv-module-hotspots.yaml",
        mvtec_tree / "train" / "good",
        tmp_path / "recipe.yaml",
        changes=regions,
    )
    out = tmp_path / "report"

    code = main(_args(tmp_path / "nowhere", recipe, out))
    err = capsys.readouterr().err

    assert code == 2
    assert err.count("\n") == 1
    assert f"{recipe}: camera.emissivity_regions = {{'cell': 0.9}}" in err
    assert "remove camera.emissivity_regions" in err
    assert not out.exists()
