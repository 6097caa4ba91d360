"""Choose the PV pseudo-anomaly settings on a development split, not the test set.

pv_transfer.py tests on 1,500 No-Anomaly modules and half of each hotspot
class. This script scores frames that the test never reads: the other half
of each hotspot class (the reserve) against 1,500 No-Anomaly modules that
the benchmark leaves unused. The split is drawn with the same seed, so the
training normals are the benchmark's. It trains DRAEM (no trimming, no
contamination) on the pseudo-anomalies of each variant of the thermosynth
generator, over several training seeds, and writes the mean AUROC per
variant to benchmarks/results/pv_dev_split.md, beside the AUROC of the
seeds' image scores averaged (an ensemble of the seeds' networks).

The variants cross the recipe's scenarios (without ``hot_region``, with it,
or with its radius range narrowed to the first one tried, 40-120 mm) with
the generator's per-sample contrast spread (1 or 2). Two more rows train
the binary classifier on the recipe's pseudo-anomalies, with its logit map
pooled by the max or by the mean.

With ``--baselines`` it trains DRAEM on the other generators instead, each
at its default setting and at one or two other settings of its main
parameter. It writes benchmarks/results/pv_dev_baselines.md, which shows
whether a baseline would gain from tuning as thermosynth's generator did.

With ``--spots`` it varies the recipe's local hot spots (``hot_spot``),
the scenario closest to the Hot-Spot class: drawn twice as often, or with
other power ranges. It writes benchmarks/results/pv_dev_spots.md.

With ``--strips`` it adds a fourth scenario, ``hot_strip`` (``STRIP``): a
band along the module's length heated in reverse bias, as a thin-film cell
is, beside the recipe's own three. It writes
benchmarks/results/pv_dev_strips.md.

With ``--draem`` it varies DRAEM itself on the recipe's pseudo-anomalies:
its training steps (400, 600, 800, 1600), its width (16 channels, not 8),
and three pseudo-anomalies per training normal instead of one. It writes
benchmarks/results/pv_dev_draem.md.

With ``--thin-film`` it trains DRAEM on three banks: the crystalline
recipe's, the same stacked with as many rises of
recipes/pv-thin-film-hotspots.yaml (local hot spots on a glass-glass
module without a cell grid), and the thin-film recipe's alone. It writes
benchmarks/results/pv_dev_thin_film.md.

With ``--multi`` it gives the hot cells and the local hot spots one source
per sample, or 1, 2 or 3 (scenario ``count``, which the recipe now draws),
as the Cell-Multi and Hot-Spot-Multi classes show several. It writes
benchmarks/results/pv_dev_multi.md.

With ``--supervised`` it trains the classifier on real hotspots, the
benchmark's supervised reference, on half of the reserve, and scores the
other half against the unused normals, with the logit map pooled by the
max or by the mean. It writes benchmarks/results/pv_dev_supervised.md.

    OMP_NUM_THREADS=1 python benchmarks/pv_dev_split.py \\
        [--baselines | --spots | --strips | --draem | --thin-film | --multi
         | --supervised]
        [--seeds 3]
        [--jobs 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import logging
import multiprocessing
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _cli import add_seeds, script_parser
from pv_transfer import (
    DATA,
    HOTSPOT_CLASSES,
    RECIPE,
    ROOT,
    build_data,
    mean_and_values,
)

from thermosynth.pipeline import Generator
from thermosynth.recipe import load_recipe
from thermosynth.recipe.yaml12 import load_yaml
from thermosynth.validation import generators as gen
from thermosynth.validation.detectors import Classifier, Draem
from thermosynth.validation.metrics import auroc
from thermosynth.validation.transfer import make_pseudo
from thermosynth.validation.transfer_data import load_classes

OUT = ROOT / "benchmarks" / "results" / "pv_dev_split.md"
OUT_BASELINES = ROOT / "benchmarks" / "results" / "pv_dev_baselines.md"
OUT_SPOTS = ROOT / "benchmarks" / "results" / "pv_dev_spots.md"
OUT_DRAEM = ROOT / "benchmarks" / "results" / "pv_dev_draem.md"
OUT_STRIPS = ROOT / "benchmarks" / "results" / "pv_dev_strips.md"
OUT_SUPERVISED = ROOT / "benchmarks" / "results" / "pv_dev_supervised.md"
OUT_THIN_FILM = ROOT / "benchmarks" / "results" / "pv_dev_thin_film.md"
OUT_MULTI = ROOT / "benchmarks" / "results" / "pv_dev_multi.md"
THIN_FILM_RECIPE = ROOT / "recipes" / "pv-thin-film-hotspots.yaml"
N_DEV_NORMAL = 1500
KEYS = ("all", "Hot-Spot")
REGION_SCENARIO = "hot_region"
SPOT_SCENARIO = "hot_spot"

_STATE: dict = {}


def dev_split(seed: int, n_train: int, n_test: int) -> dict:
    """Return the benchmark's training normals and the development frames.

    Development normals are the No-Anomaly modules that follow the
    benchmark's training and test normals in the same permutation.
    Development anomalies are the reserve half of each hotspot class.
    """
    classes = load_classes(DATA)
    data = build_data(
        classes, np.random.default_rng(seed), n_train=n_train, n_test=n_test
    )
    normal = classes["No-Anomaly"]
    order = np.random.default_rng(seed).permutation(len(normal))
    # The split's first draw is this permutation; check it, so that a change
    # there cannot put training or test normals into the development set.
    if not np.array_equal(normal[order][:n_train], data.train_normal):
        raise RuntimeError("the development normals no longer follow the split")
    dev_normal = normal[order][n_train + n_test :][:N_DEV_NORMAL]
    groups = np.concatenate(
        [np.full(len(classes[name]) // 2, name) for name in HOTSPOT_CLASSES]
    )
    return {
        "train": data.train_normal,
        "images": np.concatenate([dev_normal, data.reserve_anomalies]),
        "groups": np.concatenate([np.full(len(dev_normal), "normal"), groups]),
    }


@functools.cache
def rise_bank(region: str, n_scenarios: int, seed: int):
    """Simulate the PV recipe's bank with the hot_region variant ``region``.

    ``region`` is "none" (scenario dropped), "narrow" (radius 40-120 mm) or
    "recipe" (as the recipe has it). "spots x2" draws the ``hot_spot``
    scenario twice as often, and the other "spots ..." names set its power range
    (``SPOT_POWERS_W``).
    """
    scenarios = load_yaml(RECIPE.read_text())["scenarios"]
    spot = next(spec for spec in scenarios if spec.get("name") == SPOT_SCENARIO)
    if region == "spots x2":
        spot["weight"] = 2.0
    elif region.startswith("spots "):
        low_W, high_W = SPOT_POWERS_W[region]
        spot["power_W"] = {"loguniform": [low_W, high_W]}
    if region == "strips":
        scenarios.append(STRIP)
    if region in ("single", "multi"):
        for spec in scenarios:
            if spec.get("name") in MULTI_SCENARIOS:
                spec["count"] = 1 if region == "single" else {"choice": [1, 2, 3]}
    if region == "none":
        scenarios = [s for s in scenarios if s.get("name") != REGION_SCENARIO]
    elif region == "narrow":
        for spec in scenarios:
            if spec.get("name") == REGION_SCENARIO:
                spec["radius_mm"] = {"uniform": [40.0, 120.0]}
    overrides = ["scenarios=" + json.dumps(scenarios)]
    loaded = load_recipe(RECIPE, overrides=overrides)
    pipeline = Generator(loaded)
    bank = gen.simulate_rise_bank(
        loaded, pipeline.read_frame(0), n_scenarios=n_scenarios, seed=seed
    )
    return bank, pipeline.camera, loaded.recipe.physics.ambient_C


@functools.cache
def thin_film_bank(region: str, n_scenarios: int, seed: int):
    """Simulate the thin-film recipe's bank, alone or beside the crystalline one.

    ``region`` "thin-film" returns the thin-film recipe's ``n_scenarios``
    scenarios. "thin-film mix" stacks them after the crystalline recipe's
    own ``n_scenarios``, so that a pseudo-anomaly, which picks one rise of
    the bank uniformly, comes from either recipe with probability 1/2. Both
    recipes have the same camera and ambient temperature, so the
    crystalline recipe's are returned with the mix.
    """
    if region == "thin-film mix":
        crystalline, camera, ambient_C = rise_bank("recipe", n_scenarios, seed)
        thin_film = thin_film_bank("thin-film", n_scenarios, seed)[0]
        return np.concatenate([crystalline, thin_film]), camera, ambient_C

    loaded = load_recipe(THIN_FILM_RECIPE)
    pipeline = Generator(loaded)
    bank = gen.simulate_rise_bank(
        loaded, pipeline.read_frame(0), n_scenarios=n_scenarios, seed=seed
    )
    return bank, pipeline.camera, loaded.recipe.physics.ambient_C


def any_bank(region: str, n_scenarios: int, seed: int):
    """Simulate the bank of ``region``, from either PV recipe."""
    if region.startswith("thin-film"):
        return thin_film_bank(region, n_scenarios, seed)
    return rise_bank(region, n_scenarios, seed)


_RECIPE = "three kinds, hot_region 40-200 mm (recipe)"
THERMOSYNTH_VARIANTS = [
    ("two kinds, fixed contrast", ("thermosynth", "none", 1.0), "draem"),
    ("two kinds, spread 2", ("thermosynth", "none", 2.0), "draem"),
    (
        "three kinds, hot_region 40-120 mm, fixed contrast",
        ("thermosynth", "narrow", 1.0),
        "draem",
    ),
    (
        "three kinds, hot_region 40-120 mm, spread 2",
        ("thermosynth", "narrow", 2.0),
        "draem",
    ),
    (f"{_RECIPE}, fixed contrast", ("thermosynth", "recipe", 1.0), "draem"),
    (f"{_RECIPE}, spread 2", ("thermosynth", "recipe", 2.0), "draem"),
    (
        f"{_RECIPE}, spread 2",
        ("thermosynth", "recipe", 2.0),
        "classifier, max pooling",
    ),
    (
        f"{_RECIPE}, spread 2",
        ("thermosynth", "recipe", 2.0),
        "classifier, mean pooling",
    ),
]
BASELINE_VARIANTS = [
    ("cutpaste, patch 3-12 px (default)", ("CutPaste", {}), "draem"),
    ("cutpaste, patch 2-6 px", ("CutPaste", {"size_px": (2, 6)}), "draem"),
    ("cutpaste, patch 6-20 px", ("CutPaste", {"size_px": (6, 20)}), "draem"),
    ("perlin_draem, threshold 0.5 (default)", ("PerlinBlend", {}), "draem"),
    ("perlin_draem, threshold 0.7", ("PerlinBlend", {"threshold": 0.7}), "draem"),
    ("normal_blend, opacity 0.5-1 (default)", ("NormalBlend", {}), "draem"),
    (
        "normal_blend, opacity 0.2-0.5",
        ("NormalBlend", {"alpha": (0.2, 0.5)}),
        "draem",
    ),
    # A wider search, added after the first seven variants had been run.
    ("cutpaste, patch 4-10 px", ("CutPaste", {"size_px": (4, 10)}), "draem"),
    ("perlin_draem, threshold 0.3", ("PerlinBlend", {"threshold": 0.3}), "draem"),
    ("perlin_draem, threshold 0.4", ("PerlinBlend", {"threshold": 0.4}), "draem"),
    (
        "perlin_draem, periods up to 4",
        ("PerlinBlend", {"max_period_log2": 2}),
        "draem",
    ),
    (
        "perlin_draem, own weight 0.3-0.9",
        ("PerlinBlend", {"beta": (0.3, 0.9)}),
        "draem",
    ),
    (
        "normal_blend, opacity 0.8-1",
        ("NormalBlend", {"alpha": (0.8, 1.0)}),
        "draem",
    ),
    ("gaussian_noise, sigma 5-25 levels (default)", ("GaussianNoise", {}), "draem"),
    (
        "gaussian_noise, sigma 2-10 levels",
        ("GaussianNoise", {"sigma_levels": (2.0, 10.0)}),
        "draem",
    ),
    (
        "gaussian_noise, sigma 15-40 levels",
        ("GaussianNoise", {"sigma_levels": (15.0, 40.0)}),
        "draem",
    ),
    ("self_blend, default", ("SelfBlend", {}), "draem"),
    (
        "self_blend, gain 0.9-1.2, offset +-8 levels",
        ("SelfBlend", {"gain": (0.9, 1.2), "offset_levels": (-8.0, 8.0)}),
        "draem",
    ),
    ("self_blend, shift 1 px", ("SelfBlend", {"shift_px": 1}), "draem"),
]


SPOT_POWERS_W = {
    "spots from 1 W": (1.0, 20.0),
    "spots from 0.5 W": (0.5, 20.0),
    "spots 1-10 W": (1.0, 10.0),
}
"""Power ranges [W] of the ``hot_spot`` variants; the recipe draws 2-20 W."""
SPOT_VARIANTS = [
    (f"{_RECIPE}, spread 2", ("thermosynth", "recipe", 2.0), "draem"),
    (
        "hot_spot drawn twice as often, spread 2",
        ("thermosynth", "spots x2", 2.0),
        "draem",
    ),
    ("hot_spot 1-20 W, spread 2", ("thermosynth", "spots from 1 W", 2.0), "draem"),
    # Added after the three rows above had been run.
    (
        "hot_spot 0.5-20 W, spread 2",
        ("thermosynth", "spots from 0.5 W", 2.0),
        "draem",
    ),
    ("hot_spot 1-10 W, spread 2", ("thermosynth", "spots 1-10 W", 2.0), "draem"),
]
STRIP = {
    "kind": "joule",
    "name": "hot_strip",
    "region": "one_strip",
    # One to six thin-film cells of about 8 mm, side by side.
    "strip_width_mm": {"uniform": [8.0, 48.0]},
    # Thin-film modules carry 1.5-2.5 A; a shaded or shunted strip in reverse
    # bias drops 1-6 V, so R = V / I = 0.4-4 ohm and I^2 R = 0.9-25 W.
    "current_A": {"uniform": [1.5, 2.5]},
    "resistance_mohm": {"loguniform": [400.0, 4000.0]},
    "duration_s": {"uniform": [300, 900]},
}
"""The thin-film strip scenario that ``--strips`` adds to the recipe."""
STRIP_VARIANTS = [
    (f"{_RECIPE}, spread 2", ("thermosynth", "recipe", 2.0), "draem"),
    ("recipe + hot_strip 8-48 mm, spread 2", ("thermosynth", "strips", 2.0), "draem"),
]
_SPREAD_2 = ("thermosynth", "recipe", 2.0)
DRAEM_VARIANTS = [
    (f"{_RECIPE}, spread 2", _SPREAD_2, "draem"),
    (f"{_RECIPE}, spread 2", _SPREAD_2, "draem, 400 steps"),
    (f"{_RECIPE}, spread 2", _SPREAD_2, "draem, 600 steps"),
    (f"{_RECIPE}, spread 2", _SPREAD_2, "draem, 1600 steps"),
    (f"{_RECIPE}, spread 2", _SPREAD_2, "draem, width 16"),
    (f"{_RECIPE}, spread 2, 3 per normal", (*_SPREAD_2, 3), "draem"),
]
"""DRAEM settings tried on the recipe's pseudo-anomalies; the fourth item of
a generator spec is the number of pseudo-anomalies per training normal."""
THIN_FILM_VARIANTS = [
    ("crystalline recipe, spread 2", _SPREAD_2, "draem"),
    (
        "crystalline + thin-film recipes, half each, spread 2",
        ("thermosynth", "thin-film mix", 2.0),
        "draem",
    ),
    ("thin-film recipe alone, spread 2", ("thermosynth", "thin-film", 2.0), "draem"),
]
"""Banks of ``--thin-film``. The rule, fixed before the run: keep whichever
of the first two scores the higher mean AUROC over all hotspot classes. The
thin-film recipe alone is reported to show what its spots find, and is no
candidate, because it has no fault of the crystalline modules."""
MULTI_SCENARIOS = ("hot_cell", SPOT_SCENARIO)
"""Scenarios that ``--multi`` gives 1-3 sources per sample, as the Cell-Multi
and Hot-Spot-Multi classes show several hot cells or spots."""
MULTI_VARIANTS = [
    (
        "hot_cell and hot_spot 1 per sample, spread 2",
        ("thermosynth", "single", 2.0),
        "draem",
    ),
    (
        "hot_cell and hot_spot 1-3 per sample, spread 2",
        ("thermosynth", "multi", 2.0),
        "draem",
    ),
]
"""Banks of ``--multi``. The rule, fixed before the run: keep the variant with
the higher mean AUROC over all hotspot classes. The recipe kept 1-3; the run
of 2026-12-06 04:08, made while it drew one source, labels the first row
as the recipe."""
SUPERVISED_VARIANTS = [
    ("real hotspots, half of the reserve", ("real",), "classifier, max pooling"),
    ("real hotspots, half of the reserve", ("real",), "classifier, mean pooling"),
]
MODES = {
    "thermosynth": ("PV pseudo-anomaly settings", THERMOSYNTH_VARIANTS, OUT),
    "baselines": ("baseline generators", BASELINE_VARIANTS, OUT_BASELINES),
    "spots": ("local hot spots", SPOT_VARIANTS, OUT_SPOTS),
    "strips": ("thin-film strips", STRIP_VARIANTS, OUT_STRIPS),
    "draem": ("DRAEM settings", DRAEM_VARIANTS, OUT_DRAEM),
    "thin-film": ("thin-film hot spots", THIN_FILM_VARIANTS, OUT_THIN_FILM),
    "supervised": ("supervised reference", SUPERVISED_VARIANTS, OUT_SUPERVISED),
    "multi": ("several sources per sample", MULTI_VARIANTS, OUT_MULTI),
}


SCORED = (
    "Trained on half of the reserve hotspots and scored on the other half",
    "Scored on the reserve hotspots",
)


def nested_reserve(
    images: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the reserve in two halves: frames to fit, and frames and groups to score.

    The scored set is every development normal plus the second half.
    """
    normal = np.flatnonzero(groups == "normal")
    reserve = np.flatnonzero(groups != "normal")
    order = np.random.default_rng(123).permutation(len(reserve))
    fit, scored = reserve[order[: len(order) // 2]], reserve[order[len(order) // 2 :]]
    keep = np.concatenate([normal, scored])
    return images[fit], images[keep], groups[keep]


def detector(name: str, steps: int) -> Draem | Classifier:
    """Return the detector that ``name`` describes.

    "classifier, <pooling> pooling" is the classifier; "draem" is DRAEM,
    and "draem, <n> steps" or "draem, width <n>" set its steps or width.
    """
    if name.startswith("classifier"):
        return Classifier(steps=steps, pooling=name.split(", ")[1].split()[0])
    option = name.removeprefix("draem").removeprefix(", ")
    if option.endswith(" steps"):
        return Draem(steps=int(option.split()[0]))
    if option.startswith("width "):
        return Draem(steps=steps, width=int(option.split()[1]))
    return Draem(steps=steps)


def make_generator(spec: tuple, train: np.ndarray):  # noqa: ANN201
    """Build a generator from ("thermosynth", region, spread) or (class, kwargs)."""
    if spec[0] == "thermosynth":
        bank, camera, ambient_C = _STATE["banks"][spec[1]]
        return gen.ThermalHotspots(bank, camera, ambient_C=ambient_C, spread=spec[2])
    cls = getattr(gen, spec[0])
    if "pool" in {field.name for field in dataclasses.fields(cls)}:
        return cls(train, **spec[1])
    return cls(**spec[1])


def run_one(task: tuple[str, tuple, str, int]) -> dict:
    """Train one detector on one variant and seed, and return its development AUROC."""
    name, spec, detector_name, seed = task
    torch.set_num_threads(1)
    split, steps = _STATE["split"], _STATE["steps"]
    images, groups = split["images"], split["groups"]
    rng = np.random.default_rng([seed, 7])
    normal = split["train"]
    if spec[0] == "real":
        anomalous, images, groups = nested_reserve(images, groups)
        masks = None
    else:
        generator = make_generator(spec, split["train"])
        # Pseudo-anomaly i is made from normal i, also when each normal
        # serves several times (a fourth spec item).
        normal = np.concatenate([split["train"]] * (spec[3] if len(spec) > 3 else 1))
        anomalous, masks = make_pseudo(normal, generator, rng)
    scorer = detector(detector_name, steps).fit(normal, anomalous, masks, rng)
    scores = scorer(images)[0]

    row = {"variant": f"{name}, {detector_name}", "seed": seed}
    row |= {"scores": scores, "groups": groups}
    return row | class_aurocs(scores, groups)


def class_aurocs(scores: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Return the AUROC over all hotspot classes ("all") and per class."""
    normal = groups == "normal"
    row = {"all": auroc(~normal, scores)}
    for group in HOTSPOT_CLASSES:
        keep = normal | (groups == group)
        row[group] = auroc(~normal[keep], scores[keep])
    return row


def averaged_cells(rows: list[dict]) -> list[str]:
    """Return the AUROC of the seeds' image scores averaged, all and Hot-Spot.

    Rows of one variant score the same frames in the same order, so their
    scores average frame by frame, as an ensemble of the seeds' networks.
    """
    groups = rows[0]["groups"]
    scores = np.mean([r["scores"] for r in rows], axis=0)
    aurocs = class_aurocs(scores, groups)
    return [f"{aurocs['all']:.3f}", f"{aurocs['Hot-Spot']:.3f}"]


def markdown(rows: list[dict], args: argparse.Namespace, elapsed: float) -> str:
    """Tabulate the mean and per-seed AUROC of each variant."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = MODES[args.mode][0]
    flag = "" if args.mode == "thermosynth" else f"--{args.mode} "
    machine = platform.processor() or platform.machine()
    lines = [
        f"# Development split for the {title}",
        "",
        f"`OMP_NUM_THREADS=1 python benchmarks/pv_dev_split.py {flag}--seeds "
        f"{args.seeds} --jobs {args.jobs}`, {stamp}, {machine}, "
        f"{elapsed:.0f} s. {args.steps} training steps, no trimming; "
        f"{len(rows) // max(1, args.seeds)} variants x {args.seeds} seeds. "
        f"{SCORED[args.mode != 'supervised']} against unused No-Anomaly "
        "modules; the benchmark's test frames are not read.",
        "",
        "| variant | all, mean (per seed) | Hot-Spot, mean (per seed) "
        "| all, seeds averaged | Hot-Spot, seeds averaged |",
        "|---|---|---|---|---|",
    ]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        own = [r for r in rows if r["variant"] == variant]
        cells = [mean_and_values(np.array([r[k] for r in own])) for k in KEYS]
        cells += averaged_cells(own)
        lines.append(f"| {variant} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the data split, not of training (default 0)",
    )
    add_seeds(parser, "training seeds per variant")
    parser.add_argument(
        "--steps",
        type=int,
        default=800,
        help="training steps per network (default 800)",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="training processes (default 2)"
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--baselines",
        dest="mode",
        action="store_const",
        const="baselines",
        help="train DRAEM on the other generators at several settings",
    )
    modes.add_argument(
        "--spots",
        dest="mode",
        action="store_const",
        const="spots",
        help="vary the share and power range of the local hot spots",
    )
    modes.add_argument(
        "--strips",
        dest="mode",
        action="store_const",
        const="strips",
        help="add a thin-film strip scenario to the recipe's three",
    )
    modes.add_argument(
        "--draem",
        dest="mode",
        action="store_const",
        const="draem",
        help="vary DRAEM's steps and width and the pseudo-anomalies per normal",
    )
    modes.add_argument(
        "--thin-film",
        dest="mode",
        action="store_const",
        const="thin-film",
        help="mix the thin-film recipe's hot spots into the crystalline bank",
    )
    modes.add_argument(
        "--multi",
        dest="mode",
        action="store_const",
        const="multi",
        help="give hot cells and hot spots 1-3 sources per sample",
    )
    modes.add_argument(
        "--supervised",
        dest="mode",
        action="store_const",
        const="supervised",
        help="compare poolings of the classifier trained on real hotspots",
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="Markdown file to write (default benchmarks/results/pv_dev_split.md, "
        "pv_dev_baselines.md, pv_dev_spots.md, pv_dev_strips.md, "
        "pv_dev_draem.md, pv_dev_thin_film.md, pv_dev_multi.md or "
        "pv_dev_supervised.md)",
    )
    parser.set_defaults(mode="thermosynth")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()

    _STATE["split"] = dev_split(args.seed, n_train=2500, n_test=1500)
    _, variants, default_out = MODES[args.mode]
    regions = dict.fromkeys(s[1] for _, s, _ in variants if s[0] == "thermosynth")
    _STATE["banks"] = {
        region: any_bank(region, n_scenarios=64, seed=args.seed) for region in regions
    }
    _STATE["steps"] = args.steps
    tasks = [(*v, seed) for v in variants for seed in range(args.seeds)]
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        rows = pool.map(run_one, tasks, chunksize=1)

    text = markdown(rows, args, time.perf_counter() - start)
    out = args.out or default_out
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
