"""Make samples: split frames, draw scenarios, simulate, record and blend.

Every sample's randomness comes from the seed, the sample's split and label,
and its position among the samples of that split and label (`sample_rng`).
So a sample does not depend on which samples were made before it, on which
worker made it, or on how many samples the other splits have.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermosynth.bank import (
    CellTimes,
    EntryRunner,
    ScenarioBank,
    resolve_bank_path,
)
from thermosynth.blend import (
    BlendBase,
    Blended,
    blend,
    blend_base,
    default_threshold,
    saturated_px,
    stretch_metadata,
)
from thermosynth.build import (
    CachedRegistration,
    build_camera,
    build_layout,
    build_source,
    warn_unused_level_scale,
)
from thermosynth.camera.emissivity import check_emissivity_regions, emissivity_map
from thermosynth.camera.model import (
    Camera,
    RecordingBase,
    record_rise,
    recording_base,
)
from thermosynth.errors import (
    FrameError,
    RecipeError,
    ThermosynthError,
)
from thermosynth.frames.encodings import describe_encoding
from thermosynth.frames.frame import Frame, rise_unit
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.registration import footprint, warp_to_frame
from thermosynth.geometry.sampling import samples_per_pixel, warp_samples
from thermosynth.output.sample import Sample
from thermosynth.plausibility import UnitChecks
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.recipe.models import Recipe, SplitSpec
from thermosynth.scenario import (
    DrawnScenario,
    check_scenario_regions,
    choose_scenario_index,
    draw_attempt_sources,
    draw_count,
    draw_on_new_cell,
    heated_cells,
    sources_metadata,
    strength_keys,
    superpose,
)
from thermosynth.simulation import check_emissivity_top_regions, simulate_scenario

logger = logging.getLogger(__name__)

_SPLIT_STREAM = 0
_SAMPLE_STREAM = 1

# Spawn-key code of each group of samples, by (split, label).
_GROUP_CODES = {("train", 0): 0, ("test", 0): 1, ("test", 1): 2}

SAMPLING_VERSION = 3
"""Version of how samples get their frames, random streams and folder levels.

Version 3 fits the 8-bit folder scale to frames spread over the frame
source instead of the first training frame alone. Version 2 keys each
sample's stream by split, label and position within them, and takes test
frames from the back of the split's permutation and training frames from
its front. Version 1 keyed streams by output position and took test frames
after the training frames. The shard manifest records the version, and
``--resume`` reuses no output or shard of another one."""

# Blend keys that the error on a sample with too weak an anomaly names as a fix.
_BLEND_KEYS = (
    ("blend", "min_area_px"),
    ("blend", "threshold"),
    ("blend", "noise_multiple"),
)


def sample_rng(recipe: Recipe, index: int) -> np.random.Generator:
    """Return the random generator of the sample at output position ``index``.

    The stream is ``SeedSequence(seed, spawn_key=(1, group, position))``,
    where ``group`` is 0 for training normals, 1 for test normals and 2 for
    test anomalies, and ``position`` counts from 0 within that group
    (`sample_key`). So a test sample draws the same numbers for any
    ``split.train_normal``, and a training sample for any test counts.
    """
    split, label, position = sample_key(recipe.split, index)
    key = (_SAMPLE_STREAM, _GROUP_CODES[split, label], position)
    return np.random.default_rng(np.random.SeedSequence(recipe.seed, spawn_key=key))


def sample_key(split: SplitSpec, index: int) -> tuple[str, int, int]:
    """Return the split, the label and the position within them of sample ``index``.

    ``index`` is the output position: training normals come first, then test
    normals, then test anomalies, as `Plan.entries` yields them. An index
    past the last sample is a test anomaly, the one that a larger
    ``split.test_anomalous`` would put there.

    Raises
    ------
    IndexError
        If ``index`` is negative.
    """
    if index < 0:
        raise IndexError(f"sample index {index} is invalid; give an index >= 0")
    if index < split.train_normal:
        return "train", 0, index
    position = index - split.train_normal
    if position < split.test_normal:
        return "test", 0, position
    return "test", 1, position - split.test_normal


@dataclass(frozen=True)
class Plan:
    """Which source frame each sample uses, in output order."""

    train_normal: list[int]
    test_normal: list[int]
    test_anomalous: list[int]

    def entries(self) -> Iterator[tuple[int, str, int, int]]:
        """Yield (sample index, split, label, frame index) in output order."""
        rows = [("train", 0, i) for i in self.train_normal]
        rows += [("test", 0, i) for i in self.test_normal]
        rows += [("test", 1, i) for i in self.test_anomalous]
        for index, (split, label, frame_index) in enumerate(rows):
            yield index, split, label, frame_index


def _selection_note(recipe: Recipe) -> str:
    """Name the frames.select filter that removed files from the source, if any."""
    select = getattr(recipe.frames, "select", None)
    if select is None:
        return ""
    return (
        f" after frames.select removed the files that {select.metadata} does "
        f"not list with {dict(select.where)}"
    )


def _selection_fix(recipe: Recipe) -> str:
    if getattr(recipe.frames, "select", None) is None:
        return ""
    return ", or drop the selection with --set frames.select=null"


def _split_keys(recipe: Recipe, *names: str) -> tuple[tuple[str, ...], ...]:
    """Return the keys of a split error: the split counts and any selection."""
    keys = tuple(("split", name) for name in names)
    if getattr(recipe.frames, "select", None) is None:
        return keys
    return (*keys, ("frames", "select"))


def plan_split(recipe: Recipe, n_frames: int, *, source: str = "recipe") -> Plan:
    """Assign frames to splits; anomalies never reuse a training frame.

    Training and test normal frames are disjoint. Anomalous samples cycle
    through the frames not used for training, so a detector never saw the
    normal version of an anomalous test frame. They take the frames that no
    test normal uses first, so a test normal frame returns with an anomaly
    only when the anomalous samples outnumber the unused frames. ``source``,
    the recipe's file name, starts the error messages.

    Training frames come from the front of one permutation of the frames,
    drawn from the seed, and test frames from its back. So the training
    frames do not depend on the test counts, and the test normal frames do
    not depend on ``split.train_normal``. Nor do the anomalous frames while
    the three counts together do not exceed ``n_frames``. Past that, the
    anomalous samples wrap around onto test normal frames at a point that
    ``split.train_normal`` sets.
    """
    split = recipe.split
    if split.train_normal + split.test_normal > n_frames:
        raise FrameError(
            f"{source}: split asks for {split.train_normal} training and "
            f"{split.test_normal} test normal frames but the source has only "
            f"{n_frames}{_selection_note(recipe)}; lower split.train_normal or "
            f"split.test_normal{_selection_fix(recipe)}",
            keys=_split_keys(recipe, "train_normal", "test_normal"),
        )
    if split.test_anomalous and split.train_normal >= n_frames:
        raise FrameError(
            f"{source}: all {n_frames} frames go to training, none are left for "
            f"anomalies{_selection_note(recipe)}; lower split.train_normal"
            f"{_selection_fix(recipe)}",
            keys=_split_keys(recipe, "train_normal"),
        )

    rng = np.random.default_rng(
        np.random.SeedSequence(recipe.seed, spawn_key=(_SPLIT_STREAM,))
    )
    order = [int(i) for i in rng.permutation(n_frames)]
    train = order[: split.train_normal]
    from_end = order[split.train_normal :][::-1]
    test_normal = from_end[: split.test_normal]
    cycle = from_end[split.test_normal :] + test_normal
    anomalous = (
        [cycle[i % len(cycle)] for i in range(split.test_anomalous)] if cycle else []
    )
    _log_wrapped_anomalies(recipe, n_frames, source)
    return Plan(train, test_normal, anomalous)


def _log_wrapped_anomalies(recipe: Recipe, n_frames: int, source: str) -> None:
    """Log where some test anomalies take frames that split.train_normal sets.

    The message is at INFO level (``-v``): small sources, such as the demo's
    24 frames, wrap on purpose. Without training frames the wrap-around is
    the source's size alone, so it is not logged then.
    """
    split = recipe.split
    wrapped = split.train_normal + split.test_normal + split.test_anomalous - n_frames
    if wrapped <= 0 or split.test_anomalous == 0 or split.train_normal == 0:
        return
    logger.info(
        "%s: split asks for %d samples from %d frames, so the last %d test "
        "anomalies reuse frames whose choice depends on split.train_normal; to "
        "keep the test set when split.train_normal changes, keep "
        "split.train_normal + split.test_normal + split.test_anomalous at most %d",
        source,
        n_frames + wrapped,
        n_frames,
        min(wrapped, split.test_anomalous),
        n_frames,
    )


@dataclass(frozen=True)
class PreparedFrame:
    """What every anomalous sample made from one frame shares.

    Attributes
    ----------
    homography : ndarray
        (3, 3) map from layout indices to frame pixels.
    corners : list
        The layout's corners on the frame [px], as stored in the sample metadata.
    threshold : float
        Blend threshold, in the frame's unit.
    covered : ndarray
        Boolean (H, W), the layout's footprint on the frame.
    recording : RecordingBase or None
        Per-frame part of the camera model; None where the frame is not kept,
        because computing it for one sample costs more than it saves.
    blending : BlendBase or None
        Per-frame part of the blend; None where the frame is not kept.
    emissivity : ndarray or None
        Surface emissivity per pixel, float64 (H, W), from the recipe's
        ``camera.emissivity_regions``; None where it is not set.
    """

    homography: np.ndarray
    corners: list[list[float]]
    threshold: float
    covered: np.ndarray
    recording: RecordingBase | None
    blending: BlendBase | None
    emissivity: np.ndarray | None = None


class Generator:
    """Make the samples of one recipe; the writers and preview share it.

    Parameters
    ----------
    loaded : LoadedRecipe
        Validated recipe.
    read_only_bank : bool, optional
        Read the scenario bank with `ScenarioBank.read`, never simulating or
        writing entries. Worker processes use it, because the client builds
        the bank before it hands out shards.
    warn_level_scale : bool, optional
        Warn when ``camera.levels_per_kelvin`` is set on frames in C or K,
        which ignore it (:func:`~thermosynth.build.warn_unused_level_scale`).
        ``validate transfer`` passes False, because it blends into its own
        8-bit frames and uses the key on them.
    """

    def __init__(
        self,
        loaded: LoadedRecipe,
        *,
        read_only_bank: bool = False,
        warn_level_scale: bool = True,
    ):
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.source = build_source(self.recipe.frames, seed=self.recipe.seed)
        self.layout: Layout = build_layout(
            self.recipe.layout,
            self.recipe.materials,
            n_layers=self.recipe.physics.n_layers,
        )
        self.camera = build_camera(self.recipe.camera)
        # Workers build their own Generator; the client has warned already.
        if warn_level_scale and not read_only_bank:
            warn_unused_level_scale(
                self.recipe.camera, self.recipe.frames, loaded.source
            )
        check_emissivity_regions(self.camera, self.layout)
        check_emissivity_top_regions(self.recipe.physics, self.layout)
        check_scenario_regions(self.recipe.scenarios, self.layout)
        self.plan = plan_split(self.recipe, len(self.source), source=loaded.source)
        self._shape: tuple[int, int] | None = None
        self._bank: ScenarioBank | None = None
        self._read_only_bank = read_only_bank
        self._register = CachedRegistration(self.recipe.registration, self.layout)
        self._prepared: dict[int, tuple[weakref.ref[Frame], PreparedFrame]] = {}
        # OnTheFlyDataset runs these checks on its items too.
        self.unit_checks = UnitChecks(self.recipe.physics.ambient_C)

    def __len__(self) -> int:
        split = self.recipe.split
        return split.train_normal + split.test_normal + split.test_anomalous

    def read_frame(self, frame_index: int) -> Frame:
        """Read one source frame and check it matches the first one's size."""
        frame = self.source.read(frame_index)
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise mixed_size_error(frame.source, frame.shape, self._shape)
        return frame

    def samples(self) -> Iterator[tuple[Sample, Frame]]:
        """Yield every sample with the normal frame it came from."""
        for index, split, label, frame_index in self.plan.entries():
            frame = self.read_frame(frame_index)
            if label:
                yield self.anomalous(index, frame), frame
            else:
                position = sample_key(self.recipe.split, index)[2]
                yield normal_sample(index, split, frame, split_position=position), frame

    def planned_scenario(self, index: int) -> str:
        """Name the scenario of anomalous sample ``index``, without simulating.

        `anomalous` chooses this scenario with the same first draw of the
        sample's generator, and its retries keep it.
        """
        rng = sample_rng(self.recipe, index)
        return self._scenario_name(choose_scenario_index(self.recipe.scenarios, rng))

    def anomalous(self, index: int, frame: Frame) -> Sample:
        """Make anomalous sample ``index`` from ``frame``, retrying weak draws.

        The sample's scenario is chosen by weight once, before the first draw.
        A retry after a draw whose mask covers fewer than
        ``blend.min_area_px`` pixels keeps that scenario and draws only its
        parameters again (with a bank: another entry of the scenario, its
        amplitude and mirror image).
        """
        blend_spec = self.recipe.blend
        _check_min_area(blend_spec.min_area_px, frame)
        rng = sample_rng(self.recipe, index)
        prepared = self.prepare(frame)
        threshold = prepared.threshold
        scenario_index = choose_scenario_index(self.recipe.scenarios, rng)
        max_input_rise = 0.0
        for attempt in range(1, blend_spec.max_tries + 1):
            drawn, rise_grid, sources = self._draw_rise(
                rng, scenario_index, attempt=attempt
            )
            sample, peak_input = self._attempt(
                index, frame, prepared, drawn, rise_grid, sources
            )
            max_input_rise = max(max_input_rise, peak_input)
            if sample.metadata["area_px"] >= blend_spec.min_area_px:
                corners = [list(corner) for corner in prepared.corners]
                sample.metadata.update(attempts=attempt, corners_px=corners)
                self.unit_checks.check_sample(index, sample.metadata)
                return sample
            logger.debug(
                "sample %d attempt %d: anomaly below threshold", index, attempt
            )
        unit = rise_unit(frame.unit)
        raise ThermosynthError(
            f"sample {index} ({frame.source}): in {blend_spec.max_tries} draws no "
            f"anomaly covered blend.min_area_px = {blend_spec.min_area_px} pixels "
            f"above the threshold {threshold:.4g} {unit} (the largest rise the "
            f"camera recorded was {max_input_rise:.4g} {unit}); raise the power or "
            f"size of scenario {self._scenario_name(scenario_index)!r}, or lower "
            "blend.min_area_px, blend.threshold or blend.noise_multiple",
            keys=(
                *strength_keys(self.recipe.scenarios, scenario_index),
                *_BLEND_KEYS,
            ),
        )

    def _scenario_name(self, scenario_index: int) -> str:
        spec = self.recipe.scenarios[scenario_index]
        return spec.name or spec.kind

    def prepare(self, frame: Frame) -> PreparedFrame:
        """Register and check ``frame``, and compute what its samples share.

        The result is kept while ``frame`` lives, if its arrays are read-only
        (the synthetic, image folder, array and HDF5 sources return such
        frames and keep the ones read last), so samples drawn from the same
        frame object reuse it. Writable frames could change between samples
        and are prepared afresh every time, without the camera and blend bases.
        """
        key = id(frame)
        entry = self._prepared.get(key)
        if entry is not None and entry[0]() is frame:
            return entry[1]

        homography, corners = self._register(frame)
        covered = footprint(self.layout, homography, frame.shape)
        # Here, not per sample: the frame check takes a median of the frame.
        self.unit_checks.check_frame(frame)
        self.unit_checks.check_placement(frame, corners, covered)
        self.unit_checks.check_scale(frame, self.layout, homography)
        recipe = self.recipe
        keep = _read_only(frame)
        emissivity = emissivity_map(self.camera, self.layout, homography, frame.shape)
        # NOTE: the video source returns new, writable frames on every read,
        # so it reuses only the registration (by digest).
        recording, blending = None, None
        if keep:
            recording = recording_base(
                self.camera,
                frame,
                ambient_C=recipe.physics.ambient_C,
                emissivity_map=emissivity,
            )
            blending = blend_base(frame)

        prepared = PreparedFrame(
            homography=homography,
            corners=corners,
            threshold=blend_threshold(frame, recipe),
            covered=covered,
            recording=recording,
            blending=blending,
            emissivity=emissivity,
        )
        if keep:
            forget = self._prepared.pop
            reference = weakref.ref(frame, lambda _: forget(key, None))
            self._prepared[key] = (reference, prepared)
        return prepared

    def _draw_rise(
        self, rng: np.random.Generator, scenario_index: int, *, attempt: int
    ) -> tuple[DrawnScenario, np.ndarray, dict[str, Any]]:
        """Draw a rise [K] of scenario ``scenario_index``: simulated or from a bank.

        Returns the first drawn source, the sum of the ``count`` sources'
        rises and their metadata (`sources_metadata`).
        """
        recipe = self.recipe
        spec = recipe.scenarios[scenario_index]
        if recipe.bank.mode == "off":
            drawns = draw_attempt_sources(
                spec, recipe.scenarios, self.layout, rng, attempt=attempt
            )
            parts = [self._simulated(drawn) for drawn in drawns]
        else:
            bank = self._bank or self.open_bank()
            parts = [bank.draw(rng, scenario_index=scenario_index)]
            for _ in range(draw_count(spec, rng) - 1):
                parts.append(_other_bank_part(bank, rng, scenario_index, parts))

        rise = superpose([rise for _, rise, _ in parts])
        metadata = sources_metadata([(drawn, info) for drawn, _, info in parts])
        return parts[0][0], rise, metadata

    def _simulated(
        self, drawn: DrawnScenario
    ) -> tuple[DrawnScenario, np.ndarray, dict[str, Any]]:
        events: dict[str, Any] = {}
        rise = simulate_rise(drawn, self.layout, self.recipe, events=events)
        return drawn, rise, events

    def open_bank(
        self, *, progress: bool = False, run_entries: EntryRunner | None = None
    ) -> ScenarioBank:
        """Read or build the recipe's scenario bank, once, and keep it.

        The first anomalous sample opens it if nothing did before. Parameters
        are as for `ScenarioBank.open`, and ignored once the bank is open or
        when the generator reads the bank only.

        Raises
        ------
        RecipeError
            If ``bank.mode`` is ``off``.
        """
        if self._bank is not None:
            return self._bank
        recipe = self.recipe
        if recipe.bank.mode == "off":
            raise RecipeError(
                "scenario bank: bank.mode is off, so there is no bank to open; "
                "set bank.mode: reuse or build",
                keys=(("bank", "mode"),),
            )

        path = resolve_bank_path(recipe.bank.path, self.loaded.source)
        if self._read_only_bank:
            self._bank = ScenarioBank.read(recipe, self.layout, path=path)
        else:
            self._bank = ScenarioBank.open(
                recipe,
                self.layout,
                self.simulate_entry,
                path=path,
                progress=progress,
                run_entries=run_entries,
            )
        return self._bank

    def simulate_entry(self, drawn: DrawnScenario, *, events: CellTimes) -> np.ndarray:
        """Simulate one bank entry; a `thermosynth.bank.SimulateFn`."""
        return simulate_rise(drawn, self.layout, self.recipe, events=events)

    def _attempt(
        self,
        index: int,
        frame: Frame,
        prepared: PreparedFrame,
        drawn: DrawnScenario,
        rise_grid: np.ndarray,
        sources: dict[str, Any],
    ) -> tuple[Sample, float]:
        """Warp, record and blend one drawn rise [K] into ``frame``.

        ``sources`` is the metadata of the drawn sources (`sources_metadata`).
        Returns the sample and the largest recorded rise before the threshold,
        in the frame's unit.
        """
        recipe = self.recipe
        threshold = prepared.threshold
        if rise_grid.shape == self.layout.shape and rise_grid.dtype == np.float64:
            rise_samples = _warp_rise(rise_grid, prepared, frame.shape)
        else:
            rise_samples = warp_to_frame(
                rise_grid, prepared.homography, frame.shape, keep_samples=True
            )
        rise_px = rise_samples.mean(axis=-1)
        result = record_and_blend(
            rise_samples,
            frame,
            recipe,
            self.camera,
            threshold=threshold,
            prepared=prepared,
        )
        metadata = {
            "source_frame": frame.source,
            "split_position": sample_key(recipe.split, index)[2],
            "encoding": describe_encoding(frame.encoding),
            "scenario": drawn.name,
            "kind": drawn.kind,
            "peak_rise_K": float(rise_grid.max()),
            "peak_recorded_rise": float(result.peak_rise),
            "recorded_unit": rise_unit(frame.unit),
            "area_px": int(result.area_px),
            "saturated_px": saturated_px(result, frame),
            "threshold": float(threshold),
            **stretch_metadata(result),
            **sources,
        }
        sample = Sample(
            index=index,
            split="test",
            label=1,
            kind=drawn.name,
            raw=result.raw,
            mask=result.mask,
            rise_K=rise_px.astype(np.float32),
            recorded_rise=result.recorded_rise.astype(np.float32, copy=False),
            metadata=metadata,
        )
        return sample, result.peak_input_rise


def _other_bank_part(
    bank: ScenarioBank,
    rng: np.random.Generator,
    scenario_index: int,
    parts: list[tuple[DrawnScenario, np.ndarray, dict[str, Any]]],
) -> tuple[DrawnScenario, np.ndarray, dict[str, Any]]:
    """Draw one more source of a sample from an entry that ``parts`` did not use.

    A ``one_cell`` source is drawn again while its mirror image heats a cell
    that ``parts`` heat already, as `draw_more_sources` does for direct draws.
    """
    keys = [info["bank_entry"] for _, _, info in parts]
    heated = heated_cells([drawn for drawn, _, _ in parts])
    return draw_on_new_cell(
        lambda: bank.draw(rng, scenario_index=scenario_index, avoid=keys), heated
    )


def blend_threshold(frame: Frame, recipe: Recipe) -> float:
    """Return the rise below which ``frame`` is left unchanged, in its unit."""
    spec = recipe.blend
    if spec.threshold is not None:
        return float(spec.threshold)
    return default_threshold(frame, noise_multiple=spec.noise_multiple)


def record_and_blend(
    rise_px_K: np.ndarray,
    frame: Frame,
    recipe: Recipe,
    camera: Camera,
    *,
    threshold: float,
    prepared: PreparedFrame | None = None,
    emissivity: np.ndarray | None = None,
) -> Blended:
    """Record a surface rise at frame pixels [K] and blend it into ``frame``.

    ``rise_px_K`` is (H, W), or (H, W, s) with ``s`` samples of each pixel's
    footprint, whose radiance the camera averages (`record_rise`).

    ``prepared``, from `Generator.prepare` for this frame, saves the per-frame
    work; the result is the same, bit for bit. It contains the frame's surface
    emissivity per pixel too. Without it, pass that map as ``emissivity``
    (from `thermosynth.camera.emissivity_map`, required when
    ``camera.emissivity_regions`` is set).
    """
    if prepared is not None and emissivity is not None:
        raise ValueError(
            "record_and_blend got both prepared and emissivity; prepared contains "
            "the frame's emissivity map, so pass only prepared"
        )
    base = None if prepared is None else prepared.recording
    if prepared is not None and base is None:
        emissivity = prepared.emissivity
    recorded = record_rise(
        camera,
        rise_px_K,
        frame,
        ambient_C=recipe.physics.ambient_C,
        base=base,
        emissivity_map=emissivity,
    )
    return blend(
        frame,
        recorded,
        threshold=threshold,
        gain=recipe.camera.gain,
        edge=recipe.blend.edge,
        base=None if prepared is None else prepared.blending,
    )


def mixed_size_error(
    source: str,
    shape: tuple[int, int],
    expected: tuple[int, int],
    expected_source: str = "the first frame",
) -> FrameError:
    """Return the error for frame ``source`` of ``shape`` among frames of another.

    The error names the key ``frames.path``, so the CLI starts the message
    with the recipe file or the option that set the path.
    """
    return FrameError(
        f"frames of mixed sizes: {source} is {shape[0]} x {shape[1]} px "
        f"(height x width) but {expected_source} is {expected[0]} x "
        f"{expected[1]} px; all frames under frames.path must have one size, so "
        "resize or remove the odd frames, or narrow frames.path or frames.pattern "
        "to frames of one size",
        keys=(("frames", "path"),),
    )


def normal_sample(
    index: int, split: str, frame: Frame, *, split_position: int | None = None
) -> Sample:
    """Wrap an unchanged normal frame as a sample.

    ``split_position``, the sample's position among the normal samples of
    its split (`sample_key`), goes into the metadata where it is given.
    """
    zeros = np.zeros(frame.shape, dtype=np.float32)
    metadata: dict[str, Any] = {
        "source_frame": frame.source,
        "encoding": describe_encoding(frame.encoding),
    }
    if split_position is not None:
        metadata["split_position"] = split_position
    return Sample(
        index=index,
        split=split,  # type: ignore[arg-type]
        label=0,
        kind="good",
        raw=frame.raw,
        mask=np.zeros(frame.shape, dtype=bool),
        rise_K=zeros,
        recorded_rise=zeros,
        metadata=metadata,
    )


def simulate_rise(
    drawn: Any,
    layout: Layout,
    recipe: Recipe,
    *,
    events: dict[str, Any] | None = None,
) -> np.ndarray:
    """Simulate a drawn scenario; return the imaged face's final rise [K].

    ``events`` is filled as `thermosynth.simulation.simulate_scenario` fills it.
    """
    return simulate_scenario(drawn, layout, recipe, events=events)[-1]


def _warp_rise(
    rise_grid_K: np.ndarray, prepared: PreparedFrame, frame_shape: tuple[int, int]
) -> np.ndarray:
    """Warp a rise [K] on the layout grid to samples of each frame pixel.

    It does the same as ``warp_to_frame(rise_grid_K, prepared.homography,
    frame_shape, keep_samples=True)`` for one float64 plane of the layout's
    shape, but reuses the frame's footprint instead of mapping every pixel
    through the homography again.
    """
    samples = samples_per_pixel(prepared.homography, rise_grid_K.shape, frame_shape)
    rise_px = warp_samples(rise_grid_K, prepared.homography, frame_shape, samples)
    rise_px[~prepared.covered] = 0
    return rise_px


def _read_only(frame: Frame) -> bool:
    arrays = (frame.raw, frame.values, frame.valid)
    return not any(array.flags.writeable for array in arrays)


def _check_min_area(min_area_px: int, frame: Frame) -> None:
    """Raise before any simulation if no anomaly can cover ``min_area_px``."""
    blendable_px = int(np.count_nonzero(frame.valid))
    if min_area_px > blendable_px:
        raise RecipeError(
            f"blend.min_area_px = {min_area_px} exceeds the {blendable_px} pixels "
            f"that blending may change in {frame.source}; lower blend.min_area_px",
            keys=(("blend", "min_area_px"),),
        )
