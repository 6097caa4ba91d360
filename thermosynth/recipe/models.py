"""Typed recipe: what to read, what to simulate, how to blend, where to write.

Every model forbids unknown keys, so a misspelled key stops the run before any
work. Paths are resolved against the recipe file's folder by the loader.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from thermosynth.recipe.distributions import Choice, Distribution, Normal, bounds
from thermosynth.recipe.numbers import Float, Integer

# Strict: a YAML true or "20" is rejected rather than read as 1.0 or 20.0,
# while an integer such as 20 is still accepted.
PositiveFloat = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
# A temperature [C] above absolute zero.
CelsiusFloat = Annotated[float, Strict(), Field(gt=-273.15, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Strict(), Field(gt=0, le=1)]


def _non_empty_rect(rect: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = rect
    if x1 <= x0 or y1 <= y0:
        raise ValueError(
            f"ignore rectangle {rect} is empty; it needs x0 < x1 and y0 < y1"
        )
    return rect


Rect = Annotated[
    tuple[Integer, Integer, Integer, Integer], AfterValidator(_non_empty_rect)
]
"""Half-open pixel box (x0, y0, x1, y1): columns x0 <= x < x1, rows y0 <= y < y1."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive_distribution(value: Distribution, key: str) -> Distribution:
    if isinstance(value, Normal):
        raise ValueError(
            f"{key} must stay positive; use uniform, loguniform or choice "
            "instead of normal"
        )
    low, _ = bounds(value)
    if low <= 0:
        raise ValueError(f"{key} must be positive, but its lowest value is {low}")
    return value


# --- frames -----------------------------------------------------------------


MaskPath = Path | dict[str, Path]
"""A mask image, or a mapping from a file-name part (e.g. CAM1) to a mask."""


OnError = Literal["raise", "skip"]
"""Policy for a frame that cannot be used: stop the run, or log and skip it."""


class _FrameSourceBase(_Model):
    unit: Literal["C", "K", "level"] = "level"
    on_error: OnError = "raise"
    valid_mask: MaskPath | None = None
    ignore_mask: MaskPath | None = None
    ignore_rects: list[Rect] = []


def _check_calibration_unit(frames: ImageFrames | ArrayFrames | HDF5Frames) -> None:
    """Reject a linear calibration on frames whose unit is ``level``."""
    calibrated = frames.scale_per_level is not None or frames.offset is not None
    if calibrated and frames.unit == "level":
        raise ValueError(
            "a calibration (scale_per_level, offset) converts levels to "
            "temperature, so frames.unit must be C or K"
        )


class ColorbarSpec(_Model):
    """Position of the colour bar in the image and the temperatures at its ends."""

    x_px: tuple[Integer, Integer]
    y_px: tuple[Integer, Integer]
    top: Float
    bottom: Float

    @field_validator("x_px")
    @classmethod
    def _columns(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError(
                "columns [px] must be 0 <= first <= last, the bar's left column first"
            )
        return value

    @field_validator("y_px")
    @classmethod
    def _rows(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] < value[1]:
            raise ValueError(
                "rows [px] must be 0 <= first < last; rows count down from 0 at "
                "the top, so the bar's top row comes first"
            )
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ColorbarSpec:
        if self.top <= self.bottom:
            raise ValueError(
                f"colour bar top ({self.top}) must be warmer than its bottom "
                f"({self.bottom})"
            )
        return self


class SelectSpec(_Model):
    """Keep only the files whose record in a metadata file matches."""

    metadata: Path
    path_key: str
    where: dict[str, Any]


class ImageFrames(_FrameSourceBase):
    """A folder of images: greyscale, or pseudo-colour through a palette."""

    kind: Literal["images"]
    path: Path
    pattern: str = "*.png"
    mode: Literal["greyscale", "palette", "colorbar"] = "greyscale"
    scale_per_level: PositiveFloat | None = None
    offset: Float | None = None
    palette: str | None = None
    value_range: tuple[Float, Float] | None = None
    colorbar: ColorbarSpec | None = None
    max_colour_distance: PositiveFloat = 40.0
    select: SelectSpec | None = None

    @model_validator(mode="after")
    def _mode_options(self) -> ImageFrames:
        if self.mode == "palette" and self.palette is None:
            raise ValueError("mode 'palette' needs frames.palette, e.g. inferno")
        if self.mode == "colorbar" and self.colorbar is None:
            raise ValueError("mode 'colorbar' needs frames.colorbar")
        _check_calibration_unit(self)
        return self


class ArrayFrames(_FrameSourceBase):
    """Temperature arrays in .npy files: one file, a stack, or a folder.

    Values are read as given, in ``unit``, unless ``scale_per_level`` and
    ``offset`` set the linear calibration value = level * scale_per_level +
    offset. Integer levels need that calibration to be read in C or K.
    """

    kind: Literal["arrays"]
    path: Path
    pattern: str = "*.npy"
    unit: Literal["C", "K", "level"] = "C"
    scale_per_level: PositiveFloat | None = None
    offset: Float | None = None

    @model_validator(mode="after")
    def _calibration(self) -> ArrayFrames:
        _check_calibration_unit(self)
        return self


class HDF5Frames(_FrameSourceBase):
    """A 2D or 3D dataset of temperatures or levels in an HDF5 file.

    Values are read as for `ArrayFrames`.
    """

    kind: Literal["hdf5"]
    path: Path
    dataset: str
    unit: Literal["C", "K", "level"] = "C"
    scale_per_level: PositiveFloat | None = None
    offset: Float | None = None

    @model_validator(mode="after")
    def _calibration(self) -> HDF5Frames:
        _check_calibration_unit(self)
        return self


FramePixels = Annotated[Integer, Field(ge=32)]


class SyntheticFrames(_Model):
    """Synthetic pouch-cell frames, for the demo that needs no data."""

    kind: Literal["synthetic"]
    on_error: OnError = "raise"
    n_frames: Annotated[Integer, Field(ge=1)] = 40
    # The synthetic pouch cell needs at least 32 x 32 px.
    shape: tuple[FramePixels, FramePixels] = (120, 160)


class VideoFrames(_FrameSourceBase):
    """A video file read with OpenCV, frame by frame; sequence recipes only."""

    kind: Literal["video"]
    path: Path
    mode: Literal["greyscale", "palette"] = "greyscale"
    scale_per_level: PositiveFloat | None = None
    offset: Float | None = None
    palette: str | None = None
    value_range: tuple[Float, Float] | None = None
    max_colour_distance: PositiveFloat = 40.0


FrameSpec = Annotated[
    ImageFrames | ArrayFrames | HDF5Frames | SyntheticFrames | VideoFrames,
    Field(discriminator="kind"),
]


# --- geometry ---------------------------------------------------------------


class LayoutSpec(BaseModel):
    """A layout builder and its keyword arguments, checked by the builder."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: Literal[
        "pouch_cell",
        "prismatic_cell",
        "cylindrical_array",
        "module",
        "cell_grid",
        "mask",
    ]
    resolution_mm: PositiveFloat

    def options(self) -> dict[str, Any]:
        """Return the builder-specific keys, everything but kind."""
        return dict(self.model_extra or {})


class RegistrationSpec(_Model):
    """Placement of the layout rectangle on each frame."""

    method: Literal["corners", "full_frame", "valid_mask", "warm_region"] = "full_frame"
    fit: Literal["cells", "body", "layout"] = "cells"
    corners_px: list[tuple[Float, Float]] | None = None

    @field_validator("corners_px")
    @classmethod
    def _four_corners(
        cls, corners: list[tuple[float, float]] | None, info: ValidationInfo
    ) -> list[tuple[float, float]] | None:
        # Only method 'corners' reads the key, so other methods ignore its length.
        if corners is None or len(corners) == 4 or info.data.get("method") != "corners":
            return corners
        raise ValueError(
            f"method 'corners' needs four [x, y] pixel positions in the order "
            f"top-left, top-right, bottom-right, bottom-left, but it has "
            f"{len(corners)}"
        )

    @model_validator(mode="after")
    def _corners(self) -> RegistrationSpec:
        if self.method == "corners" and self.corners_px is None:
            raise ValueError(
                "method 'corners' needs corners_px: four [x, y] pixel positions "
                "in the order top-left, top-right, bottom-right, bottom-left"
            )
        return self


# --- physics ----------------------------------------------------------------


# Hottest ambient a recipe may give [C]: abuse tests heat cells in ovens at
# up to about 200 C. A larger value is most likely kelvin written as Celsius.
MAX_AMBIENT_C = 200.0

# Most through-thickness simulation layers, given or set by a layout's stack.
# It catches a mistyped count, while 62 electrode layers between a can's two
# walls still fit. Memory grows with it: 64 layers of a 240 x 320 grid are
# 4.9 M cells, 39 MB per float64 field.
MAX_N_LAYERS = 64


class PhysicsSpec(_Model):
    """Boundary conditions and discretisation of the heat equation."""

    ambient_C: Float = 25.0
    h_top_W_m2K: NonNegativeFloat = 10.0
    h_bottom_W_m2K: NonNegativeFloat = 0.0
    emissivity_top: Annotated[Float, Field(ge=0, le=1)] = 0.9
    emissivity_bottom: Annotated[Float, Field(ge=0, le=1)] = 0.0
    # Layout region name -> emissivity of that region's top-face cells, in
    # place of emissivity_top. Where regions overlap, the later key wins.
    emissivity_top_regions: dict[str, Annotated[Float, Field(ge=0, le=1)]] = {}
    n_layers: Annotated[Integer, Field(ge=1, le=MAX_N_LAYERS)] = 1
    dt_s: PositiveFloat = 2.0
    # "adi" splits each implicit step by direction (thermosynth.physics.adi).
    # Scenarios with held patches or stiffly coupled layers go to "fast",
    # which factorises the whole implicit operator once and solves implicit
    # Euler exactly (thermosynth.physics.fast). "fipy" is the FiPy reference.
    solver: Literal["adi", "fast", "fipy"] = "adi"
    # Arithmetic of the "adi" solver's steps. float32 halves its memory
    # traffic and stays within 1e-5 of float64's peak rise, far below the
    # time-stepping error; the other solvers always run in float64.
    precision: Literal["float64", "float32"] = "float32"

    @field_validator("ambient_C")
    @classmethod
    def _ambient(cls, value: float) -> float:
        if not math.isfinite(value) or value <= -273.15:
            raise ValueError(
                "ambient_C must be a finite temperature above absolute zero, -273.15 C"
            )
        if value > MAX_AMBIENT_C:
            raise ValueError(
                f"ambient_C is in degrees Celsius and at most {MAX_AMBIENT_C:g}; "
                "convert a value in kelvin (298.15 K is 25 C)"
            )
        return value

    @field_validator("emissivity_top_regions", mode="before")
    @classmethod
    def _regions_from_pairs(cls, value: Any) -> Any:
        # Dumps write the mapping as [name, emissivity] pairs (see below).
        # Pairs whose name is not a string are left for validation to reject,
        # because dict() raises TypeError on an unhashable name such as a list.
        if isinstance(value, list | tuple) and all(
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            for pair in value
        ):
            return dict(value)
        return value

    @model_serializer(mode="wrap")
    def _dump_regions(self, handler: SerializerFunctionWrapHandler) -> Any:
        # The scenario bank's keys hash the dumped physics with sorted keys.
        # An empty mapping stays out of dumps, which keeps the keys of recipes
        # without it, and a set one is dumped as ordered pairs, because the
        # order decides which of two overlapping regions wins.
        data = handler(self)
        if isinstance(data, dict) and not self.emissivity_top_regions:
            data.pop("emissivity_top_regions", None)
        elif isinstance(data, dict):
            regions = self.emissivity_top_regions.items()
            data["emissivity_top_regions"] = [[name, e] for name, e in regions]
        return data


class _ScenarioBase(_Model):
    name: str | None = None
    weight: PositiveFloat = 1.0
    duration_s: Distribution = 60.0
    profile: Literal["constant", "ramp", "exponential"] = "constant"

    @field_validator("duration_s")
    @classmethod
    def _duration(cls, value: Distribution) -> Distribution:
        return _positive_distribution(value, "duration_s")


# Sources of one scenario that a sample superposes at most (``count``).
MAX_COUNT = 16


def _whole_count(value: float | Choice) -> float | Choice:
    values = value.choice if isinstance(value, Choice) else [value]
    for number in values:
        if number != int(number) or not 1 <= number <= MAX_COUNT:
            raise ValueError(
                f"count is how many sources of the scenario heat one sample, a "
                f"whole number from 1 to {MAX_COUNT} or {{choice: [2, 3]}} of "
                f"such numbers; got {number:g}"
            )
    return value


Count = Annotated[Annotated[float, Strict()] | Choice, AfterValidator(_whole_count)]
"""Number of independent draws of a scenario that one sample superposes."""


class HotspotScenario(_ScenarioBase):
    """A localised internal short or hotspot of given power and radius.

    ``count`` draws that many hotspots, each with its own position, radius,
    power and duration, and the sample shows the sum of their rises.
    """

    kind: Literal["hotspot"]
    power_W: Distribution
    radius_mm: Distribution
    x_mm: Distribution | None = None
    y_mm: Distribution | None = None
    where: str = "cells"
    layer: Literal["top", "middle", "bottom"] = "top"
    count: Count = 1

    @field_validator("power_W", "radius_mm")
    @classmethod
    def _positive(cls, value: Distribution, info: Any) -> Distribution:
        return _positive_distribution(value, info.field_name)


class JouleScenario(_ScenarioBase):
    """Joule heating I^2 R spread over a region, such as tabs or terminals.

    Region ``one_strip`` heats a band ``strip_width_mm`` wide along y, such as
    a thin-film PV cell; no other region takes ``strip_width_mm``. With region
    ``one_cell`` or ``one_strip``, ``count`` heats that many cells or bands
    drawn independently, each with its own current, resistance and duration.
    """

    kind: Literal["joule"]
    region: str = "tabs"
    current_A: Distribution
    resistance_mohm: Distribution
    strip_width_mm: Distribution | None = None
    count: Count = 1

    @field_validator("current_A", "resistance_mohm", "strip_width_mm")
    @classmethod
    def _positive(cls, value: Distribution | None, info: Any) -> Distribution | None:
        if value is None:
            return None
        return _positive_distribution(value, info.field_name)

    @model_validator(mode="after")
    def _strip_width(self) -> JouleScenario:
        strip = self.region == "one_strip"
        if strip and self.strip_width_mm is None:
            raise ValueError(
                "region 'one_strip' needs strip_width_mm, the band's width [mm], "
                "e.g. strip_width_mm: {uniform: [8, 40]}"
            )
        if not strip and self.strip_width_mm is not None:
            raise ValueError(
                f"strip_width_mm applies to region 'one_strip' only, but region "
                f"is {self.region!r}; remove strip_width_mm or set region: one_strip"
            )
        return self

    @model_validator(mode="after")
    def _count_of_drawn_regions(self) -> JouleScenario:
        if self.count != 1 and self.region not in ("one_cell", "one_strip"):
            raise ValueError(
                f"count applies to regions drawn per sample (one_cell, one_strip), "
                f"but region is {self.region!r}, which every draw heats alike; "
                "remove count, or raise current_A or resistance_mohm instead"
            )
        return self


class HeldPatchScenario(_ScenarioBase):
    """A patch held a given number of kelvin above ambient, like a heater."""

    kind: Literal["held_patch"]
    rise_K: Distribution
    radius_mm: Distribution
    x_mm: Distribution | None = None
    y_mm: Distribution | None = None
    where: str = "cells"
    layer: Literal["top", "middle", "bottom"] = "top"

    @field_validator("rise_K", "radius_mm")
    @classmethod
    def _positive(cls, value: Distribution, info: Any) -> Distribution:
        return _positive_distribution(value, info.field_name)


class RunawayScenario(_ScenarioBase):
    """Thermal runaway started by an internal short, spreading between cells.

    The trigger is a hotspot of ``power_W`` in a disc of ``radius_mm``; the
    decomposition chemistry of every cell then runs coupled to conduction.
    ``trigger_s`` ends the trigger that many seconds after the onset; without
    it the trigger heats until the end of the simulation. The three
    ``separator_short_*`` keys, given together, let each cell whose separator
    fails release ``separator_short_energy_J`` over ``separator_short_s``;
    ``separator_short_radius_mm`` puts that heat in a ball of this radius
    around the cell's hottest grid cell instead of the whole cell.
    """

    kind: Literal["runaway"]
    power_W: Distribution
    radius_mm: Distribution
    x_mm: Distribution | None = None
    y_mm: Distribution | None = None
    where: str = "cells"
    layer: Literal["top", "middle", "bottom"] = "middle"
    venting: bool = False
    vent_sei_conversion: Fraction = 0.9
    vent_energy_J: NonNegativeFloat = 0.0
    vent_heat_capacity_fraction: Fraction = 1.0
    separator_short_C: CelsiusFloat | None = None
    separator_short_energy_J: PositiveFloat | None = None
    separator_short_s: PositiveFloat | None = None
    separator_short_radius_mm: PositiveFloat | None = None
    max_dT_per_step_K: PositiveFloat = 20.0
    trigger_s: Distribution | None = None

    @field_validator("power_W", "radius_mm", "trigger_s")
    @classmethod
    def _positive(cls, value: Distribution | None, info: Any) -> Distribution | None:
        if value is None:
            return None
        return _positive_distribution(value, info.field_name)

    @model_validator(mode="after")
    def _separator_short(self) -> RunawayScenario:
        keys = ("separator_short_C", "separator_short_energy_J", "separator_short_s")
        missing = [key for key in keys if getattr(self, key) is None]
        if 0 < len(missing) < len(keys):
            raise ValueError(
                f"separator short keys missing: {', '.join(missing)}. A separator "
                "short needs separator_short_C (failure temperature [C]), "
                "separator_short_energy_J (energy released [J]) and "
                "separator_short_s (release time [s]), so give all three or none"
            )
        if self.separator_short_radius_mm is not None and missing:
            raise ValueError(
                "separator_short_radius_mm is given without a separator short; "
                "add separator_short_C, separator_short_energy_J and "
                "separator_short_s, or leave the radius out"
            )
        return self


ScenarioSpec = Annotated[
    HotspotScenario | JouleScenario | HeldPatchScenario | RunawayScenario,
    Field(discriminator="kind"),
]


# --- camera, blend, split, output ---------------------------------------------


class CameraSpec(_Model):
    """Camera model that turns the surface rise into recorded pixels."""

    blur_sigma_px: NonNegativeFloat = 0.0
    emissivity_surface: Fraction = 0.95
    emissivity_setting: Fraction = 0.95
    reflected_C: Float | None = None
    gain: Literal["fixed", "stretch"] = "fixed"
    levels_per_kelvin: PositiveFloat | None = None
    emissivity_regions: dict[str, Fraction] = {}
    """Emissivity, in (0, 1], of named layout regions (e.g. ``terminals``) in
    place of ``emissivity_surface``; where regions overlap, the later key wins."""
    band_um: tuple[Float, Float] = (7.5, 14.0)
    """Shortest and longest wavelength [um] of the camera's spectral band, over
    which it integrates radiance; the default is an uncooled microbolometer."""

    @field_validator("band_um", mode="before")
    @classmethod
    def _band(cls, value: Any) -> Any:
        # Imported here: importing thermosynth.camera loads SciPy, numba and
        # OpenCV, which parsing a recipe does not need otherwise.
        from thermosynth.camera.radiance import band_problem

        problem = band_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class BlendSpec(_Model):
    """Threshold and edge rule that decide which part of the rise is anomalous."""

    threshold: PositiveFloat | None = None
    noise_multiple: PositiveFloat = 3.0
    edge: Literal["cut", "taper"] = "taper"
    min_area_px: Annotated[Integer, Field(ge=1)] = 1
    max_tries: Annotated[Integer, Field(ge=1)] = 10


class SplitSpec(_Model):
    """How many samples go where."""

    train_normal: Annotated[Integer, Field(ge=0)] = 20
    test_normal: Annotated[Integer, Field(ge=0)] = 10
    test_anomalous: Annotated[Integer, Field(ge=0)] = 10


class OutputSpec(_Model):
    """Output folder, formats and shard size of the dataset."""

    dir: Path = Path("thermosynth-output")
    hdf5: bool = True
    folder: bool = True
    folder_8bit: bool = True
    """Map 16-bit and float frames to 8 bits in the folder tree, as anomalib
    reads images as 8-bit RGB; HDF5 keeps full precision."""
    folder_headroom: PositiveFloat = 1.0
    """Room above the first frame's range in the 8-bit folder scale, in units
    of that frame's span (max - min). Hotter pixels clip at level 255."""
    shard_size: Annotated[Integer, Field(ge=1)] = 256
    """Samples per shard file; fixed by the recipe so output is the same for any
    number of workers."""


class BankSpec(_Model):
    """A bank of simulated rises, reused across anomalous samples.

    ``off`` simulates every sample. ``reuse`` reads the entries stored at
    ``path`` for this layout, physics and solver and simulates only the
    missing ones. ``build`` simulates every entry again. Both write the file
    atomically and keep the entries of other recipes. ``size`` is the number
    of entries; without it, the sources that the anomalous samples draw
    (``test_anomalous``, times the mean ``count`` where scenarios have one)
    over ``reuse_per_entry``, rounded up.
    """

    path: Path = Path("thermosynth-bank.h5")
    mode: Literal["off", "build", "reuse"] = "off"
    size: Annotated[Integer, Field(ge=1)] | None = None
    reuse_per_entry: Annotated[Integer, Field(ge=1)] = 8

    @field_validator("mode", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        # YAML 1.1, which PyYAML reads, parses an unquoted `off` as false.
        return "off" if value is False else value


# Frames per sequence at most. Each sequence keeps every frame's rise and
# pixels in memory, so 10,000 frames of 240 x 320 pixels take several GB.
MAX_SEQUENCE_FRAMES = 10_000

# Added to window_s * fps before rounding down, so that a floating-point
# product such as 0.29 * 100 = 28.999999999999996 counts 29 frames.
_FRAME_COUNT_SLACK = 1e-9


class SequenceSpec(_Model):
    """Frames at the camera's rate over a window after the anomaly's onset.

    ``base: still`` repeats one normal frame; ``base: video`` blends into
    consecutive source frames, in file or video order.
    """

    fps: PositiveFloat
    window_s: PositiveFloat
    base: Literal["still", "video"] = "still"

    @property
    def n_frames(self) -> int:
        """Frames per sequence: ``floor(window_s * fps)``, at ``k / fps``.

        So the last frame falls at or before ``window_s``, less than one frame
        interval before it.
        """
        return math.floor(self.window_s * self.fps + _FRAME_COUNT_SLACK)

    @model_validator(mode="after")
    def _frame_count(self) -> SequenceSpec:
        if self.n_frames < 1:
            raise ValueError(
                f"window_s = {self.window_s:g} s is shorter than one frame "
                f"interval (1 / fps = {1 / self.fps:g} s); lengthen the window or "
                "raise fps"
            )
        if self.n_frames > MAX_SEQUENCE_FRAMES:
            raise ValueError(
                f"window_s * fps = {self.n_frames} frames per sequence, more than "
                f"{MAX_SEQUENCE_FRAMES}; shorten the window or lower fps"
            )
        return self


# Folder stems are six-digit sample indices, so index 1,000,000 would make a
# stem of which "100000" is a prefix and break anomalib's mask pairing.
MAX_FOLDER_SAMPLES = 1_000_000


class Recipe(_Model):
    """A complete, validated recipe."""

    seed: Annotated[Integer, Field(ge=0)] = 0
    frames: FrameSpec
    layout: LayoutSpec
    materials: dict[str, dict[str, Any]] = {}
    registration: RegistrationSpec = RegistrationSpec()
    physics: PhysicsSpec = PhysicsSpec()
    scenarios: list[ScenarioSpec] = Field(min_length=1)
    camera: CameraSpec = CameraSpec()
    blend: BlendSpec = BlendSpec()
    split: SplitSpec = SplitSpec()
    output: OutputSpec = OutputSpec()
    bank: BankSpec = BankSpec()
    sequence: SequenceSpec | None = None

    @model_validator(mode="after")
    def _video_needs_sequence(self) -> Recipe:
        if self.frames.kind == "video" and self.sequence is None:
            raise ValueError(
                "frames.kind 'video' is read only by sequence recipes; add a "
                "sequence section (fps, window_s), or extract the frames to a folder"
            )
        return self

    @field_validator("output")
    @classmethod
    def _folder_stems_fit(cls, output: OutputSpec, info: ValidationInfo) -> OutputSpec:
        # Validated after split, which comes first; absent if split is invalid.
        split = info.data.get("split")
        if split is None or not output.folder:
            return output
        total = split.train_normal + split.test_normal + split.test_anomalous
        if total > MAX_FOLDER_SAMPLES:
            raise ValueError(
                f"split.train_normal + split.test_normal + split.test_anomalous = "
                f"{total:,}, more than the {MAX_FOLDER_SAMPLES:,} samples whose "
                "six-digit file names the folder tree can hold; lower those keys, "
                "or set output.folder: false and read dataset.h5"
            )
        return output
