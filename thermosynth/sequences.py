"""Generate sequences: anomalies that unfold in time, one frame per camera tick.

A sequence recipe has a ``sequence`` section (``fps``, ``window_s``, ``base``).
Each anomalous sequence draws one scenario, simulates it once with an output
at every frame time and registers the layout once, on its first base frame.
Each time step is then warped, recorded and blended into its own base frame:
the same frame repeated (``base: still``) or consecutive source frames
(``base: video``). Normal sequences are the base frames unchanged.

Every sequence's randomness comes from ``(seed, index)`` alone, as for single
frames (`thermosynth.pipeline.sample_rng`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from thermosynth.blend import Blended
from thermosynth.build import build_camera, build_layout, build_source, register
from thermosynth.camera.emissivity import check_emissivity_regions, emissivity_map
from thermosynth.errors import FrameError, RecipeError, ThermosynthError
from thermosynth.frames.encodings import describe_encoding
from thermosynth.frames.frame import Frame, rise_unit
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.output.atomic import check_writable, staged_dir
from thermosynth.output.sequence_writers import (
    SequenceFolderWriter,
    SequenceHDF5Writer,
    SequenceSample,
)
from thermosynth.pipeline import plan_split, sample_rng
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.recipe.models import Recipe, SequenceSpec
from thermosynth.recipe.runnable import runnable_text
from thermosynth.samples import blend_threshold, record_and_blend
from thermosynth.scenario import (
    DrawnScenario,
    choose_scenario,
    draw_scenario,
)
from thermosynth.simulation import check_emissivity_top_regions, simulate_scenario

logger = logging.getLogger(__name__)

_ROUND_OFF_K = 1e-6
"""Negative rises smaller than this [K] are solver round-off and set to 0."""


def frame_times_s(spec: SequenceSpec) -> np.ndarray:
    """Return the time of each frame after the anomaly's onset [s].

    The window holds ``round(window_s * fps)`` frames (the recipe checks that
    this is at least one), at
    ``1 / fps, 2 / fps, ...``, so the last frame falls at about ``window_s``
    and no frame shows the onset itself, where the rise is zero.
    """
    n_times = max(1, round(spec.window_s * spec.fps))
    return np.arange(1, n_times + 1, dtype=np.float64) / spec.fps


@dataclass(frozen=True)
class SequenceEntry:
    """One planned sequence: its place in the dataset and its base frames."""

    index: int
    split: str
    label: int
    frame_indices: tuple[int, ...]


def plan_sequences(recipe: Recipe, n_frames: int, n_times: int) -> list[SequenceEntry]:
    """Assign base frames to sequences, in output order.

    ``base: still`` splits the source frames as `thermosynth.pipeline.plan_split`
    does and repeats each frame ``n_times`` times. ``base: video`` cuts the
    source into consecutive, non-overlapping windows of ``n_times`` frames and
    splits the windows the same way, so an anomalous sequence never reuses a
    training window.

    Raises
    ------
    FrameError
        If the source is shorter than one window, or the split needs more
        frames or windows than the source has.
    """
    assert recipe.sequence is not None
    if recipe.sequence.base == "still":
        plan = plan_split(recipe, n_frames)
        return [
            SequenceEntry(index, split, label, (frame,) * n_times)
            for index, split, label, frame in plan.entries()
        ]

    n_windows = n_frames // n_times
    if n_windows == 0:
        raise FrameError(
            f"the source has {n_frames} frames, fewer than one sequence of "
            f"{n_times} (sequence.window_s * sequence.fps); shorten the window or "
            "lower the rate"
        )
    plan = plan_split(recipe, n_windows)
    return [
        SequenceEntry(index, split, label, tuple(range(w * n_times, (w + 1) * n_times)))
        for index, split, label, w in plan.entries()
    ]


def simulate_sequence_rise(
    drawn: DrawnScenario, layout: Layout, recipe: Recipe, times_s: np.ndarray
) -> np.ndarray:
    """Simulate a drawn scenario; return the imaged face's rise at each time [K].

    The simulation runs from the onset to ``times_s[-1]``, whatever the drawn
    ``duration_s``, which still sets the time scale of ramp and exponential
    power profiles.

    Returns
    -------
    ndarray
        float64 (T, ny, nx) rise on the layout grid [K].
    """
    return simulate_scenario(drawn, layout, recipe, output_times_s=times_s.tolist())


class SequenceGenerator:
    """Make the sequences of one sequence recipe; writers and preview share it.

    Raises
    ------
    RecipeError
        If the recipe has no ``sequence`` section or uses a scenario bank,
        whose entries hold only the final rise of each simulation.
    """

    def __init__(self, loaded: LoadedRecipe):
        recipe = loaded.recipe
        if recipe.sequence is None:
            raise RecipeError(
                f"{loaded.source} has no sequence section; add sequence.fps and "
                "sequence.window_s, or generate single frames instead"
            )
        if recipe.bank.mode != "off":
            raise RecipeError(
                f"bank.mode = {recipe.bank.mode!r} does not work with sequences, "
                "because a bank stores only final rises; set bank.mode: off"
            )
        self.loaded = loaded
        self.recipe = recipe
        self.times_s = frame_times_s(recipe.sequence)
        self.source = build_source(recipe.frames, seed=recipe.seed)
        self.layout = build_layout(recipe.layout, recipe.materials)
        self.camera = build_camera(recipe.camera)
        check_emissivity_regions(self.camera, self.layout)
        check_emissivity_top_regions(recipe.physics, self.layout)
        self.entries = plan_sequences(recipe, len(self.source), len(self.times_s))
        self._shape: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def sequences(self) -> Iterator[SequenceSample]:
        """Yield every sequence in output order."""
        for entry in self.entries:
            yield self.make(entry)

    def make(self, entry: SequenceEntry) -> SequenceSample:
        """Make the sequence of ``entry``: normal or anomalous by its label."""
        frames = self.read_frames(entry.frame_indices)
        if entry.label:
            return self.anomalous(entry.index, frames)
        return normal_sequence(entry.index, entry.split, frames)

    def read_frames(self, indices: tuple[int, ...]) -> list[Frame]:
        """Read base frames, once each, and check that all have one size."""
        cache: dict[int, Frame] = {}
        for index in dict.fromkeys(indices):
            frame = self.source.read(index)
            if self._shape is None:
                self._shape = frame.shape
            if frame.shape != self._shape:
                raise FrameError(
                    f"frames of mixed sizes: {frame.source} is {frame.shape[1]} x "
                    f"{frame.shape[0]} px but earlier frames are {self._shape[1]} "
                    f"x {self._shape[0]} px; keep one size per recipe"
                )
            cache[index] = frame
        return [cache[index] for index in indices]

    def planned_scenario(self, index: int) -> str:
        """Name the scenario that sequence ``index``'s first draw takes.

        A retry after a weak draw draws again, so the sequence made may
        show another scenario; this costs no simulation.
        """
        rng = sample_rng(self.recipe.seed, index)
        spec = choose_scenario(self.recipe.scenarios, rng)
        return spec.name or spec.kind

    def anomalous(self, index: int, frames: list[Frame]) -> SequenceSample:
        """Make anomalous sequence ``index`` over ``frames``, retrying weak draws.

        A draw is kept when its last frame's mask covers at least
        ``blend.min_area_px`` pixels; earlier frames may show less or nothing.
        """
        rng = sample_rng(self.recipe.seed, index)
        homography, corners = register(self.recipe.registration, self.layout, frames[0])
        emissivity = emissivity_map(
            self.camera, self.layout, homography, frames[0].shape
        )
        spec = self.recipe.blend
        best_peak = 0.0
        for attempt in range(1, spec.max_tries + 1):
            sample = self._attempt(index, frames, rng, homography, emissivity)
            best_peak = max(best_peak, *sample.metadata["peak_recorded_rise"])
            if sample.metadata["area_px"][-1] >= spec.min_area_px:
                sample.metadata.update(attempts=attempt, corners_px=corners)
                return sample
            logger.debug("sequence %d attempt %d: anomaly too small", index, attempt)

        raise ThermosynthError(
            f"sequence {index} ({frames[0].source}): in {spec.max_tries} draws no "
            f"anomaly covered blend.min_area_px = {spec.min_area_px} pixels in the "
            f"last frame (largest recorded rise {best_peak:.4g} "
            f"{frames[0].unit}); raise the "
            "scenario power or size, lengthen sequence.window_s, or lower "
            "blend.threshold or blend.noise_multiple"
        )

    def _attempt(
        self,
        index: int,
        frames: list[Frame],
        rng: np.random.Generator,
        homography: np.ndarray,
        emissivity: np.ndarray | None,
    ) -> SequenceSample:
        recipe = self.recipe
        drawn = draw_scenario(choose_scenario(recipe.scenarios, rng), self.layout, rng)
        rise_grid = simulate_sequence_rise(drawn, self.layout, recipe, self.times_s)
        rise_px = warp_to_frame(rise_grid, homography, frames[0].shape)
        results = [
            self._blend_frame(frame, rise, emissivity)
            for frame, rise in zip(frames, rise_px, strict=True)
        ]

        metadata = {
            "source_frames": [frame.source for frame in frames],
            "encoding": describe_encoding(frames[0].encoding),
            "scenario": drawn.name,
            "kind": drawn.kind,
            "duration_s": drawn.duration_s,
            "params": drawn.params,
            "times_s": self.times_s.tolist(),
            "peak_rise_K": [float(r.max()) for r in rise_grid],
            "peak_recorded_rise": [r.peak_rise for r in results],
            "recorded_unit": rise_unit(frames[0].unit),
            "area_px": [r.area_px for r in results],
            "threshold": [blend_threshold(frame, recipe) for frame in frames],
        }
        return SequenceSample(
            index=index,
            split="test",
            label=1,
            kind=drawn.name,
            raw=np.stack([r.raw for r in results]),
            mask=np.stack([r.mask for r in results]),
            rise_K=rise_px.astype(np.float32),
            recorded_rise=np.stack([r.recorded_rise for r in results]),
            frame_unit=frames[0].unit,
            metadata=metadata,
        )

    def _blend_frame(
        self, frame: Frame, rise_K: np.ndarray, emissivity: np.ndarray | None
    ) -> Blended:
        threshold = blend_threshold(frame, self.recipe)
        return record_and_blend(
            rise_K,
            frame,
            self.recipe,
            self.camera,
            threshold=threshold,
            emissivity=emissivity,
        )


def normal_sequence(index: int, split: str, frames: list[Frame]) -> SequenceSample:
    """Wrap unchanged base frames as a normal sequence."""
    shape = (len(frames), *frames[0].shape)
    zeros = np.zeros(shape, dtype=np.float32)
    return SequenceSample(
        index=index,
        split=split,
        label=0,
        kind="good",
        raw=np.stack([frame.raw for frame in frames]),
        mask=np.zeros(shape, dtype=bool),
        rise_K=zeros,
        recorded_rise=zeros,
        frame_unit=frames[0].unit,
        metadata={
            "source_frames": [frame.source for frame in frames],
            "encoding": describe_encoding(frames[0].encoding),
        },
    )


@dataclass(frozen=True)
class SequenceSummary:
    """Counts and mean severity of the sequences that a run wrote."""

    output_dir: Path
    n_sequences: int
    n_anomalous: int
    n_times: int
    mean_final_area_px: float
    mean_final_peak_rise_K: float


def generate_sequences(
    loaded: LoadedRecipe, *, overwrite: bool = False, progress: bool = True
) -> SequenceSummary:
    """Generate a sequence recipe's dataset and move it into place atomically.

    Writes ``dataset.h5`` and ``folder/`` as `thermosynth.output.sequence_writers`
    describes, as the recipe's ``output`` section selects, plus the recipe as
    run in ``recipe.yaml``.

    Parameters
    ----------
    loaded : LoadedRecipe
        Validated recipe with a ``sequence`` section; ``output.dir`` is the
        output folder.
    overwrite : bool, optional
        Replace an existing output folder.
    progress : bool, optional
        Show a progress bar over the sequences.

    Raises
    ------
    OutputError
        If the output folder exists and ``overwrite`` is false (checked before
        any work).
    RecipeError
        If the recipe has no ``sequence`` section or uses a scenario bank.
    FrameError
        If a base frame cannot be used.
    """
    # NOTE: frames.on_error: skip is not honoured here; a bad frame stops the
    # run, and output.shard_size, --workers and --resume do not apply.
    target = loaded.recipe.output.dir
    check_writable(target, overwrite=overwrite)
    generator = SequenceGenerator(loaded)

    finals: list[tuple[int, float]] = []
    with staged_dir(target, overwrite=overwrite) as stage:
        (stage / "recipe.yaml").write_text(runnable_text(loaded))
        with _Writers(stage, loaded, generator.times_s) as writers:
            bar = tqdm(
                generator.sequences(),
                total=len(generator),
                disable=not progress,
                unit="sequence",
            )
            for sample in bar:
                writers.write(sample)
                if sample.label:
                    meta = sample.metadata
                    finals.append((meta["area_px"][-1], meta["peak_rise_K"][-1]))

    logger.info("wrote %d sequences to %s", len(generator), target)
    return SequenceSummary(
        output_dir=target,
        n_sequences=len(generator),
        n_anomalous=len(finals),
        n_times=len(generator.times_s),
        mean_final_area_px=float(np.mean([a for a, _ in finals])) if finals else 0.0,
        mean_final_peak_rise_K=float(np.mean([p for _, p in finals]))
        if finals
        else 0.0,
    )


class _Writers:
    """The HDF5 and folder writers that the recipe's output section selects."""

    def __init__(self, stage: Path, loaded: LoadedRecipe, times_s: np.ndarray):
        self._stage = stage
        self._loaded = loaded
        self._times_s = times_s
        self._hdf5: SequenceHDF5Writer | None = None
        self._folder: SequenceFolderWriter | None = None

    def __enter__(self) -> _Writers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._hdf5 is not None:
            self._hdf5.__exit__(None, None, None)

    def write(self, sample: SequenceSample) -> None:
        """Write one sequence, opening the writers on the first one."""
        output = self._loaded.recipe.output
        unit = sample.frame_unit
        if output.hdf5 and self._hdf5 is None:
            self._hdf5 = SequenceHDF5Writer(
                self._stage / "dataset.h5",
                times_s=self._times_s,
                attributes={
                    "recipe_yaml": self._loaded.text,
                    "recipe_sha256": self._loaded.sha256,
                },
                frame_unit=unit,
            )
        if output.folder and self._folder is None:
            self._folder = SequenceFolderWriter(
                self._stage / "folder", times_s=self._times_s, frame_unit=unit
            )
        if self._hdf5 is not None:
            self._hdf5.write(sample)
        if self._folder is not None:
            self._folder.write(sample)
