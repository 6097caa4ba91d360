"""Warnings for frames and samples that look like a unit or placement mistake.

A calibration in the wrong unit (kelvin offsets on Celsius frames, a 16-bit
scale on 8-bit images), a power in milliwatts where watts are expected,
layout corners that reach past the frame, or a layout stretched far more in
one direction than the other still yield a dataset, so these checks warn
instead of stopping the run.
Each check warns once per `UnitChecks`, so a run of many samples logs each
kind of problem once per process. `UnitChecks` objects that share one
``warned`` set warn once between them.

`thermosynth.samples.Generator` (generate and preview),
`thermosynth.sequences.SequenceGenerator` (sequence recipes) and
`thermosynth.datasets.OnTheFlyDataset` each hold one `UnitChecks`.
"""

from __future__ import annotations

import logging
from collections.abc import MutableSet, Sequence
from typing import Any

import cv2
import numpy as np

from thermosynth.frames.frame import Frame
from thermosynth.geometry.layout import Layout
from thermosynth.scenario import SOURCE_KEYS, scenario_numbers

logger = logging.getLogger(__name__)

KELVIN_OFFSET = 273.15

# Scenes rarely differ this much from the air around them, so a frame whose
# median is further than this from physics.ambient_C is more likely decoded
# with the wrong scale, offset or unit [K].
MAX_AMBIENT_GAP_K = 100.0

# Share of the layout's area [px] that must lie on the frame, and share of
# the covered pixels that must be valid, below which the placement warns.
MIN_ON_FRAME = 0.9
MIN_VALID_COVERED = 0.5

# Largest ratio of the registration's scales [px/mm] across and down the
# layout's centre that passes without a warning. It is an estimate: perspective
# alone rarely foreshortens one direction by more than 2. A larger ratio more
# likely means that the layout's width-to-height ratio differs from the
# battery's in the frame.
MAX_SCALE_RATIO = 2.0

# An estimate: even in thermal runaway a cell's surface stays below about
# 1000 C, so a larger simulated rise points to a power in the wrong unit [K].
MAX_PLAUSIBLE_RISE_K = 1200.0


def implausible_rise(index: int, metadata: dict[str, Any]) -> list[Any] | None:
    """Return [index, scenario name, peak rise [K]] if the rise is implausible.

    The shard markers keep these lists, so that `summarise_implausible` can
    count the samples of every worker at the end of a run.
    """
    peak_K = float(np.max(metadata["peak_rise_K"]))
    if peak_K <= MAX_PLAUSIBLE_RISE_K:
        return None
    return [index, metadata["scenario"], peak_K]


def summarise_implausible(
    rises: Sequence[Sequence[Any]],
    scenarios: Sequence[Any],
    *,
    n_anomalous: int,
    noun: str = "sample",
) -> str | None:
    """Return one line that counts the implausible rises of a run, or None.

    ``rises`` are `implausible_rise` lists and ``scenarios`` the recipe's
    scenario specs, whose keys the line names, such as
    ``scenarios.1.power_W``.
    """
    if not rises:
        return None
    by_name: dict[str, list[int]] = {}
    for index, name, _ in sorted(rises, key=lambda rise: int(rise[0])):
        by_name.setdefault(name, []).append(int(index))
    groups = [
        _implausible_group(name, indices, scenarios, noun)
        for name, indices in by_name.items()
    ]
    peak_K = max(float(rise[2]) for rise in rises)
    return (
        f"{len(rises)} of {n_anomalous} anomalous {noun}s rise more than "
        f"{MAX_PLAUSIBLE_RISE_K:g} K above ambient (the largest {peak_K:.0f} K), "
        f"more than any battery surface: {'; '.join(groups)}. Lower those keys "
        "or check their units"
    )


def _implausible_group(
    name: str, indices: list[int], scenarios: Sequence[Any], noun: str
) -> str:
    """Describe one scenario's implausible samples: first indices and keys."""
    first_indices = ", ".join(str(index) for index in indices[:5])
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    keys = [
        f"scenarios.{number}.{key}"
        for number in scenario_numbers(name, scenarios)
        for key in _rise_keys(scenarios[number])
    ]
    return f"{noun}s {first_indices}{more} of {name!r} ({', '.join(keys)})"


def _rise_keys(spec: Any) -> tuple[str, ...]:
    """Return the keys of scenario ``spec`` whose lower values lower its rise.

    A runaway's separator short can heat far more than its trigger, so its
    energy is named too where the scenario sets one.
    """
    keys = SOURCE_KEYS[spec.kind]
    if getattr(spec, "separator_short_energy_J", None) is not None:
        keys += ("separator_short_energy_J",)
    return keys


SOURCE_UNITS = {
    "hotspot": "power_W is in watts",
    "runaway": "power_W is in watts",
    "joule": "current_A is in amperes, its resistance_mohm in milliohms",
    "held_patch": "rise_K is in kelvin",
}


CHECK_NAMES = ("frame", "rise", "saturated", "placement", "scale")
"""Names of the checks of `UnitChecks`, which its ``warned`` set holds."""


class UnitChecks:
    """Warn once per check when frames or samples look like a unit mistake.

    Parameters
    ----------
    ambient_C : float
        The recipe's ``physics.ambient_C`` [C].
    warned : mutable set of str, optional
        Names from `CHECK_NAMES` of the checks that have warned, which stay
        silent from then on. Objects that share one set warn once between
        them. A new empty set by default.
    """

    def __init__(
        self, ambient_C: float, *, warned: MutableSet[str] | None = None
    ) -> None:
        self.ambient_C = ambient_C
        self._warned: MutableSet[str] = set() if warned is None else warned

    def check_frame(self, frame: Frame) -> None:
        """Warn if ``frame``'s median temperature is far from the ambient."""
        if "frame" in self._warned or frame.unit not in ("C", "K"):
            return
        values = frame.values[frame.valid]
        if values.size == 0:
            return
        offset = KELVIN_OFFSET if frame.unit == "K" else 0.0
        median_C = float(np.median(values)) - offset
        if abs(median_C - self.ambient_C) > MAX_AMBIENT_GAP_K:
            self._warn(
                "frame",
                f"{frame.source} decodes to a median of {median_C:.1f} C, "
                f"{abs(median_C - self.ambient_C):.0f} K from physics.ambient_C = "
                f"{self.ambient_C:g} C; check frames.unit, frames.scale_per_level "
                "and frames.offset",
            )

    def check_sample(
        self, index: int, metadata: dict[str, Any], *, noun: str = "sample"
    ) -> None:
        """Warn if anomalous sample ``index`` rises implausibly or saturates.

        ``metadata["peak_rise_K"]`` and ``metadata["saturated_px"]`` hold
        one value, or a sequence's value at each time step, of which the
        largest counts. ``noun`` names the sample in the message: "sample",
        "item" or "sequence".
        """
        peak_K = float(np.max(metadata["peak_rise_K"]))
        kind = metadata.get("kind", "hotspot")
        if peak_K > MAX_PLAUSIBLE_RISE_K:
            units = SOURCE_UNITS.get(kind, SOURCE_UNITS["hotspot"])
            check = f"that the scenario's {units} and its sizes in millimetres"
            if "separator_short" in metadata.get("params", {}):
                check += (
                    ", and that separator_short_energy_J is not too large for "
                    "separator_short_radius_mm"
                )
            self._warn(
                "rise",
                f"{noun} {index} ({metadata['scenario']}) rises {peak_K:.0f} K above "
                f"ambient, more than the {MAX_PLAUSIBLE_RISE_K:g} K of any battery "
                f"surface; check {check}",
            )
        saturated = int(np.max(metadata.get("saturated_px", 0)))
        if saturated:
            name = metadata["scenario"]
            recipe_keys = " or ".join(
                f"scenarios.{name}.{key}" for key in SOURCE_KEYS.get(kind, ("power_W",))
            )
            self._warn(
                "saturated",
                f"{noun} {index} ({name}) has {saturated} mask pixels clipped at "
                "the largest value the frames' encoding holds, so they show less "
                f"than the simulated rise; lower {recipe_keys} or check the "
                f"frames' calibration. Each {noun}'s count is its metadata's "
                "saturated_px",
            )

    def check_placement(
        self,
        frame: Frame,
        corners_px: Sequence[Sequence[float]] | np.ndarray,
        covered: np.ndarray,
    ) -> None:
        """Warn if the registered layout reaches past ``frame`` or its valid pixels.

        ``corners_px`` are the layout's four corners on the frame, (4, 2) as
        (x, y) [px], and ``covered`` the frame pixels that the layout covers.
        """
        if "placement" in self._warned:
            return
        area_px = abs(cv2.contourArea(np.asarray(corners_px, np.float32)))
        on_frame = covered.sum() / area_px if area_px >= 1 else 1.0
        valid = frame.valid[covered].mean() if covered.any() else 0.0
        height, width = frame.shape
        where = f"on {frame.source} ({height} x {width} px, height x width)"
        if on_frame < MIN_ON_FRAME:
            self._warn(
                "placement",
                f"only {on_frame:.0%} of the layout lies {where}; anomalies "
                "placed off the frame are lost. Check registration.corners_px "
                "([x, y] in pixels: top-left, top-right, bottom-right, "
                "bottom-left), registration.fit and the layout's size",
            )
        elif valid < MIN_VALID_COVERED:
            self._warn(
                "placement",
                f"only {valid:.0%} of the pixels under the layout are valid {where} "
                "(the rest lie outside frames.valid_mask, in frames.ignore_mask "
                "or frames.ignore_rects, or do not decode); check "
                "registration.corners_px and those keys",
            )

    def check_scale(self, frame: Frame, layout: Layout, homography: np.ndarray) -> None:
        """Warn if the registration stretches the layout far more one way.

        ``homography`` maps layout grid indices ``(col, row)`` to ``frame``
        pixels, and its scales [px/mm] along x and y at the layout's centre
        are compared. For example, a 908 x 91 mm row of cells placed on a 4:3
        region of the frame scales y about 7 times more than x, so its heat
        spreads on the frame about 7 times further down than across.
        """
        if "scale" in self._warned:
            return
        across_px_mm, down_px_mm = _centre_scales(layout, homography)
        ratio = max(across_px_mm, down_px_mm) / min(across_px_mm, down_px_mm)
        if ratio <= MAX_SCALE_RATIO:
            return
        shape = "taller than wide" if down_px_mm > across_px_mm else "wider than tall"
        self._warn(
            "scale",
            f"the registration places the layout of {layout.width_mm:g} x "
            f"{layout.height_mm:g} mm (width x height) on {frame.source} at "
            f"{across_px_mm:.3g} px/mm across and {down_px_mm:.3g} px/mm down, "
            f"so a round rise appears {ratio:.1f} times {shape}. "
            "Unless the camera sees the battery at a steep angle, check the "
            "layout's size against the battery in the frame, or place it with "
            "registration.method: corners and registration.corners_px",
        )

    def _warn(self, check: str, message: str) -> None:
        if check not in self._warned:
            self._warned.add(check)
            logger.warning("%s", message)


def _centre_scales(layout: Layout, homography: np.ndarray) -> tuple[float, float]:
    """Return the homography's scales [px/mm] along x and y at the layout centre."""
    rows, cols = layout.shape[:2]
    col, row = (cols - 1) / 2, (rows - 1) / 2
    points = np.array(
        [[col - 0.5, row], [col + 0.5, row], [col, row - 0.5], [col, row + 0.5]]
    )
    mapped = cv2.perspectiveTransform(points[None].astype(np.float64), homography)[0]
    across_px = float(np.linalg.norm(mapped[1] - mapped[0]))
    down_px = float(np.linalg.norm(mapped[3] - mapped[2]))
    return across_px / layout.dx_mm, down_px / layout.dy_mm
