"""Checks of validate transfer's options and recipes that need no frames and no torch.

``thermosynth validate transfer`` runs these before it reads a frame or
imports torch, so that a usage error returns in well under a second.
:mod:`thermosynth.validation.transfer_setup` builds the generators and
detectors from the names checked here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from thermosynth.errors import RecipeError, ThermosynthError

if TYPE_CHECKING:
    from thermosynth.recipe.loading import LoadedRecipe

GENERATOR_NAMES = (
    "thermosynth",
    "gaussian_noise",
    "cutpaste",
    "normal_blend",
    "self_blend",
    "perlin_draem",
)
DETECTOR_NAMES = ("classifier", "draem", "autoencoder", "deep_svdd", "knn")
PSEUDO_DETECTOR_NAMES = ("classifier", "draem")
"""Detectors that train on pseudo-anomalies (``Detector.uses_pseudo``)."""


def check_names(names: Sequence[str], known: Sequence[str], option: str) -> list[str]:
    """Return ``names`` spelled as in ``known``, matched ignoring case.

    Raises ThermosynthError naming the first unknown or repeated name. The
    message for an unknown name suggests the nearest known one (difflib),
    where one is close.
    """
    if not names:
        raise ThermosynthError(f"{option} is empty; choose from {', '.join(known)}")
    by_lower = {name.lower(): name for name in known}
    for name in names:
        if name.lower() not in by_lower:
            close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
            hint = "choose"
            if close:
                hint = f"did you mean {by_lower[close[0]]!r}? Choose"
            raise ThermosynthError(
                f"{option} {name!r} is unknown; {hint} from {', '.join(known)}"
            )
    spelled = [by_lower[name.lower()] for name in names]
    if len(set(spelled)) != len(spelled):
        raise ThermosynthError(f"{option} {','.join(names)} repeats a name")
    return spelled


def check_steps_and_trim(steps: int, trim_fraction: float) -> None:
    """Raise ThermosynthError for ``steps`` < 1 or a fraction outside [0, 1)."""
    if steps < 1:
        raise ThermosynthError(f"--steps {steps} is invalid; use 1 or more")
    if not 0.0 <= trim_fraction < 1.0:
        raise ThermosynthError(
            f"--trim-fraction {trim_fraction} is invalid; use a fraction in [0, 1)"
        )


def check_detector_options(
    names: Sequence[str], *, steps: int, trim_fraction: float, members: int
) -> list[str]:
    """Return the detector names spelled as in `DETECTOR_NAMES`.

    Raises ThermosynthError for an unknown detector, steps, trimming or members.
    """
    spelled = check_names(names, DETECTOR_NAMES, "--detectors")
    check_steps_and_trim(steps, trim_fraction)
    if members < 1:
        raise ThermosynthError(f"--members {members} is invalid; use 1 or more")
    return spelled


def severity_detector_name(names: Sequence[str]) -> str:
    """Return the first detector that trains on pseudo-anomalies, for the sweep."""
    for name in names:
        if name in PSEUDO_DETECTOR_NAMES:
            return name
    raise ThermosynthError(
        f"a severity sweep needs a detector that trains on pseudo-anomalies "
        f"(classifier or draem) but --detectors is {','.join(names)}; add one "
        "or pass --severity none"
    )


def check_transfer_recipe(loaded: LoadedRecipe) -> None:
    """Raise RecipeError for recipe keys that the thermosynth generator rejects.

    The checks read only the recipe, so ``validate transfer`` runs them
    before it reads any frame. They reject a mask key that maps file names
    to one mask per camera, and ``camera.emissivity_regions``, which
    :class:`~thermosynth.validation.generators.ThermalHotspots` rejects too.
    """
    check_one_mask(loaded)
    regions = loaded.recipe.camera.emissivity_regions
    if regions:
        raise RecipeError(
            f"{loaded.source}: camera.emissivity_regions = {dict(regions)} is "
            "not supported by validate transfer, because its thermosynth "
            "generator flips rises at random, away from the regions that made "
            "them; remove camera.emissivity_regions from the recipe"
        )


def check_one_mask(loaded: LoadedRecipe) -> None:
    """Raise RecipeError if a mask key of the recipe maps cameras to masks."""
    frames = loaded.recipe.frames
    for key in ("valid_mask", "ignore_mask"):
        spec = getattr(frames, key, None)
        if isinstance(spec, Mapping):
            raise RecipeError(_per_camera_message(loaded.source, f"frames.{key}", spec))


def _per_camera_message(source: str, key: str, spec: Mapping[str, object]) -> str:
    return (
        f"{source}: {key} maps file names to one mask per camera "
        f"({', '.join(sorted(spec))}), but validate transfer reads frames "
        "without their file names, so it cannot choose a mask per frame; run "
        "transfer once per camera, with --normal and --real holding only that "
        f"camera's frames and a recipe whose {key} is that camera's mask path"
    )


def check_contamination_fraction(fraction: float) -> None:
    """Raise ThermosynthError for a --contamination outside [0, 1)."""
    if not 0.0 <= fraction < 1.0:
        raise ThermosynthError(
            f"--contamination {fraction} is invalid; use a fraction in [0, 1)"
        )


def check_contamination(fraction: float, n_train: int, n_reserve: int) -> None:
    """Raise ThermosynthError if the reserve cannot supply ``fraction`` of training."""
    check_contamination_fraction(fraction)
    needed = int(round(fraction * n_train))
    if needed > n_reserve:
        raise ThermosynthError(
            f"--contamination {fraction} replaces {needed} of {n_train} training "
            f"normals but only {n_reserve} real anomalies are in reserve; lower "
            f"--contamination to {_largest_fraction(n_reserve, n_train)} or less, "
            "lower --max-train, or pass --contamination 0"
        )


def _largest_fraction(n_reserve: int, n_train: int) -> str:
    """Return the largest 0.01 step whose share of ``n_train`` the reserve covers."""
    steps = np.arange(100)
    fits = steps[np.round(steps / 100 * n_train) <= n_reserve]
    return f"{fits.max() / 100:.2f}"
