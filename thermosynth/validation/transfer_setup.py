"""Build the generators and detectors of a transfer run from their names.

``thermosynth validate transfer`` names generators and detectors on the
command line. This module turns those names into the factories and objects
that :func:`thermosynth.validation.transfer.transfer_report` takes. It also
simulates the bank of rises behind the ``thermosynth`` generator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from thermosynth.build import build_camera
from thermosynth.errors import FrameError, RecipeError, ThermosynthError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.frames.noise import estimate_noise
from thermosynth.frames.sources import Region
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.validation import generators as gen
from thermosynth.validation.detectors import (
    Autoencoder,
    Classifier,
    DeepSVDD,
    Detector,
    Draem,
    Ensemble,
    KNearest,
    Trimmed,
)
from thermosynth.validation.transfer import GeneratorFactory, ScaledGenerator

# The checks that need no torch live in transfer_checks, and the names marked
# F401 stay importable from here.
from thermosynth.validation.transfer_checks import (
    DETECTOR_NAMES,  # noqa: F401
    GENERATOR_NAMES,
    check_contamination,  # noqa: F401
    check_contamination_fraction,  # noqa: F401
    check_detector_options,
    check_names,
    check_one_mask,
    check_steps_and_trim,  # noqa: F401
    check_transfer_recipe,  # noqa: F401
)
from thermosynth.validation.transfer_data import resize_masks

logger = logging.getLogger(__name__)

ThermalFactory = Callable[[np.ndarray, float], gen.PseudoGenerator]
"""``make(pool, scale) -> generator``, a ThermalHotspots or a Mixture of them;
the pool is ignored."""

BASELINE_GENERATORS: dict[str, GeneratorFactory] = {
    "gaussian_noise": lambda pool: gen.GaussianNoise(),
    "cutpaste": gen.CutPaste,
    "normal_blend": gen.NormalBlend,
    "self_blend": lambda pool: gen.SelfBlend(),
    "perlin_draem": gen.PerlinBlend,
}
DEFAULT_CONTRAST_SPREAD = 2.0
"""Per-sample contrast spread of the thermosynth generator (see ThermalHotspots).

A factor 2 either way was chosen on a development split of the PV data
(benchmarks/pv_dev_split.py: reserve hotspots against unused normal modules,
never the test set). Over three seeds with the PV recipe's three fault kinds
it moved DRAEM's mean AUROC there from 0.953 to 0.954 (Hot-Spot 0.809 to
0.815), and from 0.944 to 0.948 with hot_region's radius at 40-120 mm. With
two kinds it lowered it, from 0.932 to 0.920.
"""


DEFAULT_TRIM_FRACTION = 0.1
"""Share of training normals that the pseudo-anomaly detectors drop by default."""


def build_detectors(
    names: Sequence[str],
    *,
    steps: int,
    trim_fraction: float = DEFAULT_TRIM_FRACTION,
    members: int = 1,
) -> dict[str, Detector]:
    """Return a fresh detector per name; networks train for ``steps`` steps.

    The detectors that train on pseudo-anomalies (classifier, draem) are
    wrapped in :class:`~thermosynth.validation.detectors.Trimmed`, which
    drops ``trim_fraction`` of the training normals before the final
    training (0 disables it). With ``members`` > 1 that final training is an
    :class:`~thermosynth.validation.detectors.Ensemble` of ``members``
    networks. The one-class baselines train on every frame.
    """
    names = check_detector_options(
        names, steps=steps, trim_fraction=trim_fraction, members=members
    )
    constructors: dict[str, Callable[[], Detector]] = {
        "classifier": lambda: trimmed(Classifier, steps, trim_fraction, members),
        "draem": lambda: trimmed(Draem, steps, trim_fraction, members),
        "autoencoder": lambda: Autoencoder(steps=steps),
        "deep_svdd": lambda: DeepSVDD(steps=steps),
        "knn": KNearest,
    }
    return {name: constructors[name]() for name in names}


def trimmed(
    kind: Callable[..., Detector], steps: int, trim_fraction: float, members: int = 1
) -> Detector:
    """Wrap ``kind(steps=steps)`` in Trimmed with two scouts of ``steps // 4`` steps.

    The scouts only rank the training normals, so a quarter of the steps keeps
    the wrapper's extra cost at half a training; ``trim_fraction`` 0 returns
    the plain detector. ``members`` > 1 makes the trained detector an
    ensemble of that many networks; the scouts stay single networks.
    """
    detector = kind(steps=steps)
    if members > 1:
        detector = Ensemble(detector, members=members)
    if trim_fraction == 0.0:
        return detector
    scout = kind(steps=max(1, steps // 4))
    return Trimmed(detector, drop_fraction=trim_fraction, folds=2, scout=scout)


def build_generators(
    names: Sequence[str],
    thermal: ThermalFactory | None,
    *,
    region: np.ndarray | None = None,
) -> dict[str, GeneratorFactory]:
    """Return a factory per generator name; ``thermal`` backs "thermosynth".

    "thermosynth" is ``ScaledGenerator(thermal, 1.0)``, so that a severity
    sweep on ``thermal`` finds it and reuses its run at factor 1. A
    ``region`` of interest, boolean (H, W) at the frames' size, keeps the
    baselines' pseudo-anomalies inside it (:class:`generators.InRegion`), as
    the thermosynth generator's are.
    """
    names = check_names(names, GENERATOR_NAMES, "--generators")
    factories: dict[str, GeneratorFactory] = {}
    for name in names:
        if name != "thermosynth":
            factories[name] = _in_region(BASELINE_GENERATORS[name], region)
        elif thermal is None:
            raise ThermosynthError("the thermosynth generator needs a recipe")
        else:
            factories[name] = ScaledGenerator(thermal, 1.0)
    return factories


def _in_region(
    factory: GeneratorFactory, region: np.ndarray | None
) -> GeneratorFactory:
    if region is None or region.all():
        return factory
    return lambda pool: gen.InRegion(factory(gen.fill_outside(pool, region)), region)


def thermal_factory(
    loaded: LoadedRecipe,
    image: np.ndarray,
    *,
    n_scenarios: int,
    seed: int,
    spread: float = DEFAULT_CONTRAST_SPREAD,
    region: np.ndarray | None = None,
    normal: str | Path | None = None,
) -> ThermalFactory:
    """Simulate the recipe's bank of rises once, registered to ``image``'s size.

    The registration takes the recipe's region of interest as the frame's
    valid pixels, as ``thermosynth generate`` does, and the pseudo-anomalies
    change only pixels inside it. Rises are flipped at random only under
    ``registration.method: full_frame``, the one symmetric placement.

    Parameters
    ----------
    loaded : LoadedRecipe
        Recipe whose layout, physics, scenarios and camera make the rises; its
        camera needs ``levels_per_kelvin`` because the frames are 8-bit levels.
    image : ndarray
        One training normal frame, uint8 (H, W), for the registration.
    n_scenarios : int
        Scenarios simulated, >= 1; the bank keeps three moments of each.
    seed : int
        Seed of the scenario draws.
    spread : float
        Per-sample contrast spread of the generator, >= 1 (1 = none).
    region : ndarray, optional
        Boolean (H, W) region of interest of ``image``'s size. None reads it
        from the recipe with :func:`recipe_region`; pass it to use a region
        resized with the frames.
    normal : str or Path, optional
        Source of the normal frames (--normal), named in the error when
        ``camera.levels_per_kelvin`` is unset.

    Returns
    -------
    callable
        ``make(pool, scale) -> ThermalHotspots`` with the rises times ``scale``.

    Raises
    ------
    RecipeError
        If ``camera.levels_per_kelvin`` is unset, or :func:`recipe_region`
        rejects the recipe's masks.
    """
    recipe = loaded.recipe
    if recipe.camera.levels_per_kelvin is None:
        raise RecipeError(_no_levels_per_kelvin_message(loaded, normal))
    if n_scenarios < 1:
        raise ThermosynthError(f"--bank-scenarios {n_scenarios} is invalid; use >= 1")
    if not 1.0 <= spread < float("inf"):
        raise ThermosynthError(
            f"--contrast-spread {spread} is invalid; use a finite factor >= 1 "
            "(1 = none)"
        )
    if region is None:
        region = recipe_region(loaded, image.shape)
    warn_dropped_recipe_keys(loaded)
    bank = gen.simulate_rise_bank(
        loaded, _level_frame(image, region), n_scenarios=n_scenarios, seed=seed
    )
    camera = build_camera(recipe.camera)
    ambient_C = recipe.physics.ambient_C
    noise_multiple = recipe.blend.noise_multiple
    flip = recipe.registration.method == "full_frame"

    def make(pool: np.ndarray, scale: float) -> gen.ThermalHotspots:
        return gen.ThermalHotspots(
            bank,
            camera,
            ambient_C=ambient_C,
            scale=scale,
            noise_multiple=noise_multiple,
            spread=spread,
            region=region,
            flip=flip,
        )

    return make


def _no_levels_per_kelvin_message(
    loaded: LoadedRecipe, normal: str | Path | None
) -> str:
    """Say that camera.levels_per_kelvin is unset, and where the value can come from.

    A thermosynth folder/ tree records its 8-bit step in ``scale.json`` only
    where it mapped 16-bit or float frames to 8 bits, so a tree of 8-bit or
    palette frames gets its own message.
    """
    problem = f"{loaded.source}: camera.levels_per_kelvin is not set"
    value = (
        "[level K-1] in the recipe: 255 divided by the temperature span in K "
        "that levels 0 to 255 cover"
    )
    tree = None if normal is None else _unscaled_thermosynth_tree(Path(normal))
    if tree is not None:
        return (
            f"{problem}, and {tree} has no scale.json, because its frames were "
            "written as they are (8-bit or palette images), so set "
            f"camera.levels_per_kelvin {value}"
        )
    return (
        f"{problem}; the transfer frames are 8-bit levels, so set it {value} "
        "(the command reads it from a thermosynth folder/ tree's scale.json "
        "when that tree is --normal)"
    )


def _unscaled_thermosynth_tree(normal: Path) -> Path | None:
    """Return the folder/ tree of a thermosynth output at ``normal`` without scale.json.

    ``normal`` may be the tree, the output folder or its ``dataset.h5``.
    Returns None for any other path, and for a tree that has a
    ``scale.json``.
    """
    if normal.name == "dataset.h5":
        normal = normal.parent
    if (normal / "dataset.h5").is_file():
        normal = normal / "folder"
    is_tree = (normal / "train").is_dir() or (normal / "test").is_dir()
    if not is_tree or not (normal.parent / "dataset.h5").is_file():
        return None
    return None if (normal / "scale.json").is_file() else normal


def mixed_thermal_factory(factories: Sequence[ThermalFactory]) -> ThermalFactory:
    """Combine the factories of several recipes into one; one is returned as it is.

    Each pseudo-anomaly of the combined generator comes from one recipe's
    generator, chosen uniformly (:class:`generators.Mixture`).
    """
    if len(factories) == 1:
        return factories[0]

    def make(pool: np.ndarray, scale: float) -> gen.Mixture:
        return gen.Mixture(tuple(factory(pool, scale) for factory in factories))

    return make


def union_region(regions: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Return the pixels in any of ``regions``; None (every pixel) if one is None."""
    given = [region for region in regions if region is not None]
    if not given or len(given) < len(regions):
        return None
    return np.logical_or.reduce(given)


def recipe_region(
    loaded: LoadedRecipe,
    shape: tuple[int, ...],
    *,
    size_px: tuple[int, int] | None = None,
) -> np.ndarray | None:
    """Read the recipe's region of interest for frames of ``shape`` (H, W) [px].

    The region is ``frames.valid_mask`` less ``frames.ignore_mask`` and
    ``frames.ignore_rects``, the pixels that ``thermosynth generate`` may
    blend into. Returns None when the recipe sets none of the three. With
    ``size_px`` (height, width) [px], the region is then resized as
    :func:`~thermosynth.validation.transfer_data.resize_transfer_data`
    resizes masks, for frames resized to that size.

    Raises
    ------
    RecipeError
        If a mask key maps file names to one mask per camera, because the
        transfer frames carry no file names to choose a mask by.
    MaskSizeError
        If a mask differs from ``shape``.
    FrameError
        If the region contains no pixel.
    """
    frames = loaded.recipe.frames
    valid_mask = getattr(frames, "valid_mask", None)
    ignore_mask = getattr(frames, "ignore_mask", None)
    ignore_rects = getattr(frames, "ignore_rects", [])
    if valid_mask is None and ignore_mask is None and not ignore_rects:
        return None

    check_one_mask(loaded)
    region = Region(valid_mask, ignore_mask, ignore_rects).mask(
        "training normal",
        (int(shape[0]), int(shape[1])),
        frames="the training frames are",
    )
    if size_px is not None and tuple(size_px) != tuple(shape):
        region = resize_masks(region[None], *size_px)[0]
    if not region.any():
        raise FrameError(
            f"{loaded.source}: the region of interest (frames.valid_mask less "
            "frames.ignore_mask and frames.ignore_rects) contains no pixel; "
            "check the masks"
        )
    return region


def warn_dropped_recipe_keys(loaded: LoadedRecipe) -> None:
    """Log a warning for each recipe key that the transfer generator does not honour.

    ``camera.gain: stretch`` is blended with a fixed gain, because a
    pseudo-anomaly may change only the pixels of its mask. Palette and colour
    bar frames are read as their luminance, not decoded to temperature.
    """
    recipe = loaded.recipe
    if recipe.camera.gain == "stretch":
        logger.warning(
            "%s: camera.gain is 'stretch', but validate transfer blends with a "
            "fixed gain: a rise that raises a frame's maximum changes only the "
            "pixels of its mask and does not re-scale the rest of the frame as "
            "thermosynth generate does",
            loaded.source,
        )
    mode = getattr(recipe.frames, "mode", "greyscale")
    if mode != "greyscale":
        logger.warning(
            "%s: frames.mode is %r, but validate transfer reads colour frames "
            "as their luminance 0.299 R + 0.587 G + 0.114 B in 8-bit levels and "
            "converts rises to those levels with camera.levels_per_kelvin = %g; "
            "the palette is not decoded, so a rise's luminance step differs "
            "from the one thermosynth generate writes",
            loaded.source,
            mode,
            recipe.camera.levels_per_kelvin,
        )


def _level_frame(image: np.ndarray, region: np.ndarray | None) -> Frame:
    encoding = LinearEncoding(np.uint8)
    values = encoding.decode(image)
    valid = np.ones(image.shape, dtype=bool) if region is None else region
    sigma = estimate_noise(values, valid, quantum=encoding.quantum)
    return Frame(image, values, "level", valid, encoding, sigma, "training normal")


def severity_detector(detectors: dict[str, Detector]) -> str:
    """Return the first detector that trains on pseudo-anomalies, for the sweep."""
    for name, detector in detectors.items():
        if detector.uses_pseudo:
            return name
    raise ThermosynthError(
        f"a severity sweep needs a detector that trains on pseudo-anomalies "
        f"(classifier or draem) but --detectors is {','.join(detectors)}; add one "
        "or pass --severity none"
    )
