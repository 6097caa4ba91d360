"""A cheap thermal pseudo-anomaly as an augmentation, with torchvision and
albumentations adapters.

:class:`ThermalHotspot` adds a warm spot to an image tensor and marks it in the
mask. The default spot is a Gaussian: the rise that an instantaneous point
release of heat leaves in a thin insulated plate, whose width grows as
``sqrt(2 * diffusivity * t)``. The other choice is a bank of rises simulated
by thermosynth, such as the ``rise_K`` dataset of a written HDF5 file, each
scaled to a drawn peak. Heat conduction is linear without radiation, so a scaled rise is
the rise of a source of scaled power. The spot is added in the image's own
levels through ``levels_per_kelvin``, so the transform is meant for
single-channel frames of temperatures or of levels linear in temperature. On
an RGB palette frame it adds the same level to R, G and B, which makes
colours that are off the palette, so it warns (``UserWarning``) for an image
(3, H, W). On pseudo-colour frames, use the anomalies that
``thermosynth.pipeline`` and :class:`thermosynth.datasets.OnTheFlyDataset`
blend themselves in place of this transform, because those go through the
palette.

The core needs only torch and is called as ``hotspot(image, mask, generator)``.
:func:`to_torchvision` wraps it as a ``torchvision.transforms.v2.Transform``
and :func:`to_albumentations` as an ``albumentations.DualTransform``; each
imports its library only when called, so neither is a dependency.
"""

from __future__ import annotations

import importlib
import math
import numbers
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from thermosynth.shared_names import SharedNames

_ADAPTER_CLASSES: dict[str, Any] = {}
# Packages whose frames a warning's stacklevel skips to reach user code.
_INTERNAL_PACKAGES = (
    "thermosynth",
    "torch",
    "torchvision",
    "albumentations",
    "multiprocessing",
)


@dataclass(frozen=True, eq=False)
class ThermalHotspot:
    """Add a warm spot to an image and mark it in the mask.

    Meant for single-channel images of temperatures or levels. An image
    (3, H, W) gets the same rise in each channel and a ``UserWarning``,
    because on an RGB palette frame that rise makes colours off the palette.
    Each ThermalHotspot object warns once, together with its deep copies,
    such as those in a deep-copied dataset. Whether it has warned is kept in
    shared memory, so DataLoader workers of every epoch see it, but workers
    that meet an RGB image at the same moment may each warn once. Three
    copies of one greyscale frame are fine, so such inputs may ignore the
    warning.

    Parameters
    ----------
    peak_K : (float, float)
        Range of the spot's peak rise [K], drawn uniformly; low >= 0. A
        bare number raises TypeError, so give ``(5, 5)`` for a fixed peak.
    sigma_px : (float, float)
        Range of the Gaussian spot's standard deviation [px], drawn uniformly;
        low > 0. Unused with ``bank_K``. A bare number raises TypeError, as
        for ``peak_K``.
    levels_per_kelvin : float
        Image levels per kelvin, > 0: 100 for uint16 frames at 0.01 K per
        level, 1 for float frames in C or K.
    threshold : float, optional
        Rise [image levels] at or below which a pixel is left alone, >= 0,
        as in ``thermosynth.blend.blend``. None (the default) takes a tenth
        of each drawn peak, so that the mask covers the spot's core (a
        Gaussian's out to about 2.1 sigma) and not the whole image, where a
        Gaussian is above 0 everywhere.
    edge : {"cut", "taper"}
        ``"taper"`` adds ``rise - threshold`` inside the mask, continuous at
        its edge; ``"cut"`` adds the full rise.
    bank_K : tensor, optional
        Simulated rises [K], float (n, h, w), each with a positive maximum.
        A drawn rise is scaled to the drawn peak and placed with its maximum
        at the drawn centre; parts outside the image are cut off.
    p : float
        Probability, 0..1, that a call adds a spot.
    mask_value : float
        Value written into a non-boolean mask where the spot is; boolean
        masks get True.

    Images and masks must be torch tensors, and a numpy array raises
    TypeError. For numpy (H, W) or (H, W, C) arrays, wrap the transform with
    :func:`to_albumentations`.
    """

    peak_K: tuple[float, float] = (1.0, 5.0)
    sigma_px: tuple[float, float] = (2.0, 8.0)
    levels_per_kelvin: float = 1.0
    threshold: float | None = None
    edge: Literal["cut", "taper"] = "taper"
    bank_K: torch.Tensor | None = field(default=None, repr=False)
    p: float = 1.0
    mask_value: float = 1.0
    _warned: SharedNames = field(
        init=False,
        repr=False,
        default_factory=lambda: SharedNames(("three_channels",)),
    )

    def __post_init__(self) -> None:
        _check_range("peak_K", self.peak_K, "K", "peak", low_min=0.0, strict=False)
        _check_range("sigma_px", self.sigma_px, "px", "sigma", low_min=0.0, strict=True)
        if not (math.isfinite(self.levels_per_kelvin) and self.levels_per_kelvin > 0):
            raise ValueError(
                f"levels_per_kelvin = {self.levels_per_kelvin} is invalid; give "
                "a finite number > 0"
            )
        if self.threshold is not None and not (
            math.isfinite(self.threshold) and self.threshold >= 0
        ):
            raise ValueError(
                f"threshold = {self.threshold} is invalid; give a finite number "
                ">= 0 in image levels"
            )
        if self.edge not in ("cut", "taper"):
            raise ValueError(f"edge = {self.edge!r} is invalid; use 'cut' or 'taper'")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p = {self.p} is invalid; give a probability in 0..1")
        if self.bank_K is not None:
            _check_bank(self.bank_K)

    def make_params(
        self, height: int, width: int, generator: torch.Generator
    ) -> dict[str, Any]:
        """Draw one spot for an image of ``height`` x ``width`` pixels.

        Every call takes five numbers from ``generator``, whether or not a
        spot is added, so later draws do not depend on ``p``.

        Returns
        -------
        dict
            ``apply`` (bool), the drawn ``centre_y_px``, ``centre_x_px``,
            ``peak_K``, ``sigma_px`` and ``bank_index``, and ``rise`` [image
            levels], float64 (height, width), or None where ``apply`` is
            False.
        """
        u = torch.rand(5, generator=generator, dtype=torch.float64).tolist()
        params: dict[str, Any] = {
            "apply": u[0] < self.p,
            "centre_y_px": u[1] * height - 0.5,
            "centre_x_px": u[2] * width - 0.5,
            "peak_K": _lerp(self.peak_K, u[3]),
            "sigma_px": _lerp(self.sigma_px, u[4]),
            "bank_index": None,
        }
        if self.bank_K is not None:
            params["bank_index"] = min(
                int(u[4] * len(self.bank_K)), len(self.bank_K) - 1
            )
        params["rise"] = self._rise(params, height, width) if params["apply"] else None
        return params

    def _rise(self, params: dict[str, Any], height: int, width: int) -> torch.Tensor:
        """Return the spot's rise [image levels], float64 (height, width)."""
        peak = params["peak_K"] * self.levels_per_kelvin
        if self.bank_K is None:
            y = torch.arange(height, dtype=torch.float64)[:, None]
            x = torch.arange(width, dtype=torch.float64)[None, :]
            r2 = (y - params["centre_y_px"]) ** 2 + (x - params["centre_x_px"]) ** 2
            return peak * torch.exp(-r2 / (2.0 * params["sigma_px"] ** 2))

        bank = self.bank_K[params["bank_index"]].to(torch.float64)
        shape_h, shape_w = bank.shape
        peak_y, peak_x = divmod(int(torch.argmax(bank)), shape_w)
        top = round(params["centre_y_px"]) - peak_y
        left = round(params["centre_x_px"]) - peak_x
        rise = torch.zeros((height, width), dtype=torch.float64)
        y0, y1 = max(top, 0), min(top + shape_h, height)
        x0, x1 = max(left, 0), min(left + shape_w, width)
        if y0 < y1 and x0 < x1:
            patch = bank[y0 - top : y1 - top, x0 - left : x1 - left]
            rise[y0:y1, x0:x1] = patch * (peak / float(bank.max()))
        return rise

    def _threshold(self, params: dict[str, Any]) -> float:
        """Return the threshold [image levels] of one drawn spot."""
        if self.threshold is not None:
            return self.threshold
        return 0.1 * params["peak_K"] * self.levels_per_kelvin

    def spot_mask(self, params: dict[str, Any]) -> torch.Tensor | None:
        """Return the spot's pixels, bool (H, W), or None where none was added."""
        if not params["apply"]:
            return None
        return params["rise"] > self._threshold(params)

    def apply_image(self, image: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """Add the spot to ``image`` (..., H, W) in its own dtype.

        Pixels outside the spot keep their exact values. Integer images are
        rounded to the nearest level and clipped to their dtype's range.
        """
        _check_tensor("image", image)
        spot = self.spot_mask(params)
        if spot is None:
            return image
        _check_shape("image", image, spot)
        if _has_three_channels(image) and "three_channels" not in self._warned:
            _warn_three_channels(image)
            self._warned.add("three_channels")

        offset = self._threshold(params) if self.edge == "taper" else 0.0
        applied = torch.where(spot, params["rise"] - offset, 0.0)
        summed = image.to(torch.float64) + applied
        if image.dtype.is_floating_point:
            return torch.where(spot, summed.to(image.dtype), image)
        info = torch.iinfo(image.dtype)
        levels = torch.round(summed).clamp(info.min, info.max).to(image.dtype)
        return torch.where(spot, levels, image)

    def apply_mask(self, mask: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
        """Mark the spot in ``mask`` (..., H, W); other pixels keep their values."""
        _check_tensor("mask", mask)
        spot = self.spot_mask(params)
        if spot is None:
            return mask
        _check_shape("mask", mask, spot)
        if mask.dtype == torch.bool:
            return mask | spot
        value = torch.tensor(self.mask_value, dtype=mask.dtype)
        return torch.where(spot, value, mask)

    def __call__(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw a spot from ``generator``; return the new ``(image, mask)``.

        One call draws one spot and adds it at the same place to every
        leading index of ``image`` (a batch (N, C, H, W) gets one spot for
        all N). Call it per image, as in a Dataset's ``__getitem__``, for a
        spot of its own in each.

        Without ``generator`` it draws from torch's default generator, as
        torchvision's transforms do, so it serves as the
        ``transform(image, mask)`` of `thermosynth.datasets.HDF5Dataset`. A
        DataLoader seeds that generator in each worker from a base seed it
        draws anew for every epoch, so workers and epochs get different
        spots. ``torch.manual_seed`` in the main process repeats a run with
        the same number of workers. A generator passed to every call
        is copied into each worker process, so the workers would then draw
        the same spots in every epoch.
        """
        _check_tensor("image", image)
        _check_tensor("mask", mask)
        if generator is None:
            generator = torch.default_generator
        height, width = image.shape[-2:]
        params = self.make_params(int(height), int(width), generator)
        return self.apply_image(image, params), self.apply_mask(mask, params)


def _lerp(bounds: tuple[float, float], u: float) -> float:
    return float(bounds[0] + u * (bounds[1] - bounds[0]))


def _check_range(
    name: str,
    bounds: tuple[float, float],
    unit: str,
    quantity: str,
    *,
    low_min: float,
    strict: bool,
) -> None:
    """Raise unless ``bounds`` is a finite (low, high) pair above ``low_min``.

    ``unit`` and ``quantity`` (such as "K" and "peak") word the messages.
    """
    low, high = _as_pair(name, bounds, unit, quantity)
    low_ok = low > low_min if strict else low >= low_min
    if not (math.isfinite(low) and math.isfinite(high) and low_ok and low <= high):
        sign = "<" if strict else "<="
        raise ValueError(
            f"{name} = {tuple(bounds)} is invalid; give (low, high) in {unit} "
            f"with {low_min} {sign} low <= high, both finite"
        )


def _as_pair(name: str, bounds: Any, unit: str, quantity: str) -> tuple[float, float]:
    """Return ``bounds`` as two floats; raise TypeError for anything else."""
    if isinstance(bounds, numbers.Real):
        raise TypeError(
            f"{name} = {bounds} is invalid; give a (low, high) pair in {unit}, "
            f"such as ({bounds}, {bounds}) for a fixed {quantity}"
        )

    message = f"{name} = {bounds!r} is invalid; give a (low, high) pair in {unit}"
    if isinstance(bounds, str | bytes):
        raise TypeError(message)
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError) as error:
        raise TypeError(message) from error
    return low, high


def _check_tensor(name: str, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        return
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    raise TypeError(
        f"ThermalHotspot expects torch tensors, but {name} is a {kind}; convert "
        "it with torch.from_numpy, or for numpy (H, W) or (H, W, C) arrays wrap "
        "the transform with thermosynth.transforms.to_albumentations"
    )


def _check_bank(bank: torch.Tensor) -> None:
    if bank.ndim != 3 or bank.shape[0] == 0:
        raise ValueError(
            f"bank_K has shape {tuple(bank.shape)}; give rises as (n, h, w) with "
            "n >= 1, such as the rise_K dataset of a thermosynth HDF5 file"
        )
    peaks = bank.flatten(1).amax(dim=1)
    bad = torch.nonzero(~(torch.isfinite(peaks) & (peaks > 0))).flatten().tolist()
    if bad or not torch.isfinite(bank).all():
        raise ValueError(
            f"bank_K rises {bad} have no positive finite maximum, or the bank "
            "holds NaN or infinity; keep only the anomalous samples' rises"
        )


def _has_three_channels(image: torch.Tensor) -> bool:
    """Return whether ``image`` is (3, H, W), which is most likely RGB."""
    return image.ndim == 3 and image.shape[0] == 3


def _warn_three_channels(image: torch.Tensor) -> None:
    warnings.warn(
        f"ThermalHotspot got an image of shape {tuple(image.shape)} and adds the "
        "same rise to each of its 3 channels, which on an RGB palette frame makes "
        "colours off the palette. For anomalies blended through the palette, "
        "drop this transform and use the anomalies that OnTheFlyDataset "
        "(anomaly_fraction) or thermosynth generate blend. To keep it, give it "
        "single-channel frames of temperatures or levels. If the 3 channels are "
        "copies of one greyscale frame, ignore this warning. Each ThermalHotspot "
        "warns once.",
        UserWarning,
        stacklevel=_outside_stacklevel(),
    )


def _outside_stacklevel() -> int:
    """Return the ``stacklevel`` of the first frame outside ``_INTERNAL_PACKAGES``.

    Counted for a ``warnings.warn`` in the caller of this function. It points
    at user code for a direct call, a torchvision or albumentations pipeline,
    a DataLoader without workers, and a user's Dataset that calls the
    transform. Where a thermosynth dataset calls it in a DataLoader worker,
    a forked worker points at the line that started the workers, such as
    ``for batch in loader``, because its stack still contains the parent's
    frames. A spawned worker has no such frame, so it points at the top of
    the worker's stack.
    """
    level = 1
    frame = sys._getframe(1)
    while frame.f_back is not None and _is_internal(frame):
        frame = frame.f_back
        level += 1
    return level


def _is_internal(frame: Any) -> bool:
    module = str(frame.f_globals.get("__name__", ""))
    return module.split(".")[0] in _INTERNAL_PACKAGES


def _check_shape(name: str, tensor: torch.Tensor, spot: torch.Tensor) -> None:
    if tuple(tensor.shape[-2:]) != tuple(spot.shape):
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)} but the spot was drawn for "
            f"{tuple(spot.shape)} pixels; pass image and mask of one size"
        )


# --- torchvision ------------------------------------------------------------


def to_torchvision(
    hotspot: ThermalHotspot, *, generator: torch.Generator | None = None
) -> Any:
    """Wrap ``hotspot`` as a ``torchvision.transforms.v2.Transform``.

    The result adds the spot to ``tv_tensors.Image`` inputs and to plain
    tensors that v2 treats as the image, marks it in ``tv_tensors.Mask``
    inputs, and passes other inputs through. It composes with other v2
    transforms, e.g. ``v2.Compose([v2.RandomHorizontalFlip(), spot])``.

    Parameters
    ----------
    hotspot : ThermalHotspot
        The spot to draw.
    generator : torch.Generator, optional
        Source of the spot's draws. The default is torch's global generator,
        as for torchvision's own transforms. A DataLoader seeds that per
        worker from its base seed, so draws then depend on the number of
        workers.

    Raises
    ------
    ModuleNotFoundError
        If torchvision (0.21 or later for the v2 ``make_params`` interface)
        is not installed. The message gives the pip command that installs it.
    """
    return _adapter_class("ThermalHotspotV2")(hotspot, generator=generator)


def _torchvision_install_hint() -> str:
    """Return a pip command for a torchvision that matches the installed torch.

    Each torchvision release requires one torch release, so a plain ``pip
    install torchvision`` can replace the installed torch, such as a CPU
    build by a CUDA build of several GB.
    """
    release, _, build = torch.__version__.partition("+")
    command = f"pip install 'torchvision>=0.21' 'torch=={release}'"
    if build:
        command += f" --index-url https://download.pytorch.org/whl/{build}"
    return command


def _build_torchvision_class() -> type:
    _require_optional(
        "torchvision",
        needs="torchvision 0.21 or later",
        install=f"{_torchvision_install_hint()}. Where pip finds no "
        f"torchvision built for torch {torch.__version__}, call ThermalHotspot "
        "directly, which needs only torch",
        caller="to_torchvision",
    )
    from torchvision import tv_tensors  # type: ignore[import-not-found,unused-ignore]
    from torchvision.transforms import v2  # type: ignore[import-not-found,unused-ignore]

    class ThermalHotspotV2(v2.Transform):  # type: ignore[misc]
        """``ThermalHotspot`` as a torchvision v2 transform."""

        def __init__(
            self, hotspot: ThermalHotspot, *, generator: torch.Generator | None
        ) -> None:
            super().__init__()
            self.hotspot = hotspot
            self.generator = generator

        def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
            tensors = [x for x in flat_inputs if isinstance(x, torch.Tensor)]
            if not tensors:
                raise TypeError(
                    "ThermalHotspotV2 needs a tensor image; convert PIL images "
                    "with v2.ToImage() first"
                )
            height, width = tensors[0].shape[-2:]
            generator = self.generator or torch.default_generator
            return self.hotspot.make_params(int(height), int(width), generator)

        def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
            if isinstance(inpt, tv_tensors.Mask):
                marked = self.hotspot.apply_mask(inpt.as_subclass(torch.Tensor), params)
                return tv_tensors.wrap(marked, like=inpt)
            if isinstance(inpt, tv_tensors.Image):
                heated = self.hotspot.apply_image(
                    inpt.as_subclass(torch.Tensor), params
                )
                return tv_tensors.wrap(heated, like=inpt)
            if isinstance(inpt, tv_tensors.TVTensor) or not isinstance(
                inpt, torch.Tensor
            ):
                return inpt
            return self.hotspot.apply_image(inpt, params)

        # torchvision before 0.21 calls these private names.
        _get_params = make_params

        def _transform(self, inpt: Any, params: dict[str, Any]) -> Any:
            return self.transform(inpt, params)

    return ThermalHotspotV2


# --- albumentations ---------------------------------------------------------


def to_albumentations(hotspot: ThermalHotspot, *, p: float = 1.0) -> Any:
    """Wrap ``hotspot`` as an ``albumentations.DualTransform``.

    Images and masks are numpy arrays (H, W) or (H, W, C) as albumentations
    passes them; the spot is drawn from albumentations' own random generator,
    which ``A.Compose(..., seed=...)`` seeds.

    Raises
    ------
    ModuleNotFoundError
        If albumentations (2.0 or later) is not installed. The message gives
        the pip command that installs it.
    """
    return _adapter_class("ThermalHotspotAlbumentations")(hotspot, p=p)


def _build_albumentations_class() -> type:
    _require_optional(
        "albumentations",
        needs="albumentations 2.0 or later",
        install="pip install 'albumentations>=2.0'",
        caller="to_albumentations",
    )
    import albumentations as A  # type: ignore[import-not-found,unused-ignore]

    class ThermalHotspotAlbumentations(A.DualTransform):  # type: ignore[misc]
        """``ThermalHotspot`` as an albumentations transform."""

        def __init__(self, hotspot: ThermalHotspot, p: float = 1.0) -> None:
            super().__init__(p=p)
            self.hotspot = hotspot

        def get_params_dependent_on_data(
            self, params: dict[str, Any], data: dict[str, Any]
        ) -> dict[str, Any]:
            height, width = params["shape"][:2]
            seed = int(self.random_generator.integers(2**63 - 1))
            generator = torch.Generator().manual_seed(seed)
            spot = self.hotspot.make_params(int(height), int(width), generator)
            return {"thermal": spot}

        def apply(
            self, img: np.ndarray, thermal: dict[str, Any], **params: Any
        ) -> np.ndarray:
            return _apply_hwc(self.hotspot.apply_image, img, thermal)

        def apply_to_mask(
            self, mask: np.ndarray, thermal: dict[str, Any], **params: Any
        ) -> np.ndarray:
            return _apply_hwc(self.hotspot.apply_mask, mask, thermal)

        def get_transform_init_args_names(self) -> tuple[str, ...]:
            return ("hotspot",)

    return ThermalHotspotAlbumentations


def _apply_hwc(function: Any, array: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Run a (..., H, W) tensor function on an (H, W) or (H, W, C) array."""
    channels_last = array.ndim == 3
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if channels_last:
        tensor = tensor.permute(2, 0, 1)
    result = function(tensor, params)
    if channels_last:
        result = result.permute(1, 2, 0)
    return np.ascontiguousarray(result.numpy())


# --- lazy adapter classes -----------------------------------------------------


def _require_optional(module: str, *, needs: str, install: str, caller: str) -> None:
    """Import an optional package, or raise an error that gives its install command.

    A package that is present but misses one of its own dependencies keeps
    the original error, which names that dependency.
    """
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise ModuleNotFoundError(
            f"thermosynth.transforms.{caller} needs {needs}, which is not "
            f"installed, and no thermosynth extra installs it; install it with "
            f"{install}",
            name=module,
        ) from exc


_BUILDERS = {
    "ThermalHotspotV2": _build_torchvision_class,
    "ThermalHotspotAlbumentations": _build_albumentations_class,
}


def _adapter_class(name: str) -> type:
    """Build an adapter class on first use and publish it in this module.

    Published under its own name, the class pickles by reference, so
    DataLoader workers started with spawn can unpickle it; module
    ``__getattr__`` builds it there on demand.
    """
    if name not in _ADAPTER_CLASSES:
        cls = _BUILDERS[name]()
        cls.__module__ = __name__
        cls.__qualname__ = name
        _ADAPTER_CLASSES[name] = cls
    return _ADAPTER_CLASSES[name]


def __getattr__(name: str) -> Any:
    if name in _BUILDERS:
        return _adapter_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
