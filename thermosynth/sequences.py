"""Generate sequences: anomalies that unfold in time, one frame per camera tick.

A sequence recipe has a ``sequence`` section (``fps``, ``window_s``, ``base``).
Each anomalous sequence draws one scenario, simulates it once with an output
at every frame time and registers the layout once, on its first base frame.
Each time step is then warped, recorded and blended into its own base frame:
the same frame repeated (``base: still``) or consecutive source frames
(``base: video``). Normal sequences are the base frames unchanged.

Every sequence's randomness comes from the seed and the sequence's split,
label and position within them alone, as for single frames
(`thermosynth.pipeline.sample_rng`). So `generate_sequences` cuts the
sequences into shards and writes, resumes and joins them with the machinery of
`thermosynth.pipeline.write_sharded`, in one process or on a Dask cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from thermosynth.blend import Blended, saturated_px, stretch_metadata
from thermosynth.build import (
    build_camera,
    build_layout,
    build_source,
    register,
    warn_unused_level_scale,
)
from thermosynth.camera.emissivity import check_emissivity_regions, emissivity_map
from thermosynth.distributed import DaskCluster, open_cluster, run_shards
from thermosynth.errors import (
    FrameError,
    OutputError,
    RecipeError,
    SimulationError,
    ThermosynthError,
)
from thermosynth.frames.continuity import find_jump
from thermosynth.frames.encodings import describe_encoding
from thermosynth.frames.frame import Frame, rise_unit
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.registration import footprint, warp_to_frame
from thermosynth.output.atomic import output_lock, recover_replaced
from thermosynth.output.folder import EightBitScale
from thermosynth.output.folder_levels import fit_folder_scale, log_folder_levels
from thermosynth.output.sequence_writers import (
    SequenceFolderWriter,
    SequenceHDF5Writer,
    SequenceSample,
)
from thermosynth.output.shards import (
    Shard,
    ShardResult,
    ShardTally,
    temporary_shard_file,
)
from thermosynth.pipeline import (
    FrameSize,
    ShardRunner,
    all_skipped_error,
    check_cluster_options,
    check_output_apart,
    check_output_dir,
    file_attributes,
    finished_results,
    plan_split,
    sample_key,
    sample_rng,
    summarise,
    with_skip_hint,
    write_sharded,
)
from thermosynth.plausibility import UnitChecks, implausible_rise
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.recipe.models import Recipe, SequenceSpec
from thermosynth.samples import blend_threshold, record_and_blend
from thermosynth.scenario import (
    DrawnScenario,
    check_scenario_regions,
    choose_scenario,
    choose_scenario_index,
    draw_attempt_sources,
    sources_metadata,
    strength_keys,
    superpose,
)
from thermosynth.simulation import check_emissivity_top_regions, simulate_scenario

logger = logging.getLogger(__name__)

_ROUND_OFF_K = 1e-6
"""Negative rises smaller than this [K] are solver round-off and set to 0."""


def frame_times_s(spec: SequenceSpec) -> np.ndarray:
    """Return the time of each frame after the anomaly's onset [s].

    The frames fall at ``k / fps`` for ``k = 1 .. floor(window_s * fps)``
    (`SequenceSpec.n_frames`, at least one, as the recipe checks), so the
    last frame falls at or before ``window_s``, less than one frame interval
    before it, and no frame shows the onset itself, where the rise is zero.
    """
    return np.arange(1, spec.n_frames + 1, dtype=np.float64) / spec.fps


@dataclass(frozen=True)
class SequenceEntry:
    """One planned sequence: its place in the dataset and its base frames."""

    index: int
    split: str
    label: int
    frame_indices: tuple[int, ...]


def plan_sequences(
    recipe: Recipe, n_frames: int, n_times: int, *, source: str = "recipe"
) -> list[SequenceEntry]:
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
        frames or windows than the source has. ``source``, the recipe's file
        name, starts the messages of `plan_split`.
    """
    assert recipe.sequence is not None
    if recipe.sequence.base == "still":
        plan = plan_split(recipe, n_frames, source=source)
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
    plan = plan_split(recipe, n_windows, source=source)
    return [
        SequenceEntry(index, split, label, tuple(range(w * n_times, (w + 1) * n_times)))
        for index, split, label, w in plan.entries()
    ]


def simulate_sequence_rise(
    drawn: DrawnScenario,
    layout: Layout,
    recipe: Recipe,
    times_s: np.ndarray,
    *,
    events: dict[str, Any] | None = None,
) -> np.ndarray:
    """Simulate a drawn scenario; return the imaged face's rise at each time [K].

    The simulation runs from the onset to ``times_s[-1]``, whatever the drawn
    ``duration_s``, which still sets the time scale of ramp and exponential
    power profiles. ``events`` is filled as
    `thermosynth.simulation.simulate_scenario` fills it.

    Returns
    -------
    ndarray
        float64 (T, ny, nx) rise on the layout grid [K].
    """
    return simulate_scenario(
        drawn, layout, recipe, output_times_s=times_s.tolist(), events=events
    )


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
                "sequence.window_s, or generate single frames instead",
                keys=(("sequence",),),
            )
        if recipe.bank.mode != "off":
            raise RecipeError(
                f"bank.mode = {recipe.bank.mode!r} does not work with sequences, "
                "because a bank stores only final rises; set bank.mode: off",
                keys=(("bank", "mode"),),
            )
        self.loaded = loaded
        self.recipe = recipe
        self.sequence = recipe.sequence
        self.times_s = frame_times_s(recipe.sequence)
        self.source = build_source(recipe.frames, seed=recipe.seed)
        self.layout = build_layout(
            recipe.layout, recipe.materials, n_layers=recipe.physics.n_layers
        )
        self.camera = build_camera(recipe.camera)
        warn_unused_level_scale(recipe.camera, recipe.frames, loaded.source)
        check_emissivity_regions(self.camera, self.layout)
        check_emissivity_top_regions(recipe.physics, self.layout)
        check_scenario_regions(recipe.scenarios, self.layout)
        self.entries = plan_sequences(
            recipe, len(self.source), len(self.times_s), source=loaded.source
        )
        # Size that every frame must have. It is the first frame read's unless
        # a caller sets it first, as every shard does.
        self.frame_size: FrameSize | None = None
        self.unit_checks = UnitChecks(recipe.physics.ambient_C)
        self._warned_jump = False

    def __len__(self) -> int:
        return len(self.entries)

    def sequences(self) -> Iterator[SequenceSample]:
        """Yield every sequence in output order."""
        for entry in self.entries:
            yield self.make(entry)

    def make(self, entry: SequenceEntry) -> SequenceSample:
        """Make the sequence of ``entry``: normal or anomalous by its label."""
        frames = self.read_window(entry)
        if entry.label:
            return self.anomalous(entry.index, frames)
        return normal_sequence(
            entry.index,
            entry.split,
            frames,
            split_position=sample_key(self.recipe.split, entry.index)[2],
        )

    def read_window(self, entry: SequenceEntry) -> list[Frame]:
        """Read the base frames of ``entry``; for ``base: video``, check for jumps.

        `generate_sequences`, `make` and the animated preview all read
        through here, so each warns about a jump as `_warn_jump` describes.
        """
        frames = self.read_frames(entry.frame_indices)
        if self.sequence.base == "video":
            self._warn_jump(frames)
        return frames

    def _warn_jump(self, frames: list[Frame]) -> None:
        """Warn, once per generator, when consecutive base frames jump."""
        if self._warned_jump:
            return
        jump = find_jump(frames)
        if jump is not None:
            logger.warning(
                "sequence.base is 'video', but consecutive frames jump (%s); "
                "give frames.path one camera's frames of one recording, in order, "
                "or use sequence.base: still",
                jump,
            )
            self._warned_jump = True

    def read_frames(self, indices: tuple[int, ...]) -> list[Frame]:
        """Read base frames, once each, and check them against `frame_size`.

        The first frame also goes through the unit checks. It stands for the
        others, because the recipe's one calibration decodes every frame and
        a still sequence repeats it.
        """
        cache: dict[int, Frame] = {}
        for index in dict.fromkeys(indices):
            frame = self.source.read(index)
            if self.frame_size is None:
                self.frame_size = FrameSize(frame.shape, frame.source)
            self.frame_size.check(frame)
            cache[index] = frame
        if indices:
            self.unit_checks.check_frame(cache[indices[0]])
        return [cache[index] for index in indices]

    def planned_scenario(self, index: int) -> str:
        """Name the scenario of anomalous sequence ``index``, without simulating.

        Every draw of the sequence, retries included, is of this scenario.
        """
        rng = sample_rng(self.recipe, index)
        spec = choose_scenario(self.recipe.scenarios, rng)
        return spec.name or spec.kind

    def anomalous(self, index: int, frames: list[Frame]) -> SequenceSample:
        """Make anomalous sequence ``index`` over ``frames``, retrying weak draws.

        A draw is kept when its last frame's mask covers at least
        ``blend.min_area_px`` pixels; earlier frames may show less or nothing.
        The scenario is chosen by weight once (see `planned_scenario`), and a
        retry draws only that scenario's parameters again.
        """
        rng = sample_rng(self.recipe, index)
        scenario_index = choose_scenario_index(self.recipe.scenarios, rng)
        scenario = self.recipe.scenarios[scenario_index]
        homography, corners = register(self.recipe.registration, self.layout, frames[0])
        covered = footprint(self.layout, homography, frames[0].shape)
        self.unit_checks.check_placement(frames[0], corners, covered)
        self.unit_checks.check_scale(frames[0], self.layout, homography)
        emissivity = emissivity_map(
            self.camera, self.layout, homography, frames[0].shape
        )
        spec = self.recipe.blend
        max_input_rise = 0.0
        for attempt in range(1, spec.max_tries + 1):
            drawns = draw_attempt_sources(
                scenario, self.recipe.scenarios, self.layout, rng, attempt=attempt
            )
            sample, peak_input = self._attempt(
                index, frames, drawns, homography, emissivity
            )
            max_input_rise = max(max_input_rise, peak_input)
            if sample.metadata["area_px"][-1] >= spec.min_area_px:
                sample.metadata.update(attempts=attempt, corners_px=corners)
                self.unit_checks.check_sample(index, sample.metadata, noun="sequence")
                return sample
            logger.debug("sequence %d attempt %d: anomaly too small", index, attempt)

        unit = rise_unit(frames[0].unit)
        raise ThermosynthError(
            f"sequence {index} ({frames[0].source}): in {spec.max_tries} draws no "
            f"anomaly covered blend.min_area_px = {spec.min_area_px} pixels in the "
            f"last frame (the largest rise the camera recorded there was "
            f"{max_input_rise:.4g} {unit}); raise the power or size of scenario "
            f"{scenario.name or scenario.kind!r}, lengthen sequence.window_s, or lower "
            "blend.threshold or blend.noise_multiple",
            keys=(
                *strength_keys(self.recipe.scenarios, scenario_index),
                ("sequence", "window_s"),
                ("blend", "threshold"),
                ("blend", "noise_multiple"),
            ),
        )

    def _attempt(
        self,
        index: int,
        frames: list[Frame],
        drawns: list[DrawnScenario],
        homography: np.ndarray,
        emissivity: np.ndarray | None,
    ) -> tuple[SequenceSample, float]:
        """Simulate ``drawns`` and blend each time step into its base frame.

        The sources all start at the onset and their rises add up
        (`superpose`). Returns the sequence and the largest rise recorded in
        its last frame before the threshold, in the frames' unit.
        """
        recipe = self.recipe
        parts = []
        for drawn in drawns:
            events: dict[str, Any] = {}
            rise = simulate_sequence_rise(
                drawn, self.layout, recipe, self.times_s, events=events
            )
            parts.append((drawn, rise, events))
        rise_grid = superpose([rise for _, rise, _ in parts])
        drawn = drawns[0]
        rise_px = warp_to_frame(rise_grid, homography, frames[0].shape)
        # One frame's footprint samples at a time: all of them at once would
        # hold samples**2 times the sequence's rises.
        results = [
            self._blend_frame(
                frame,
                warp_to_frame(rise, homography, frame.shape, keep_samples=True),
                emissivity,
            )
            for frame, rise in zip(frames, rise_grid, strict=True)
        ]

        metadata = {
            "source_frames": [frame.source for frame in frames],
            "split_position": sample_key(recipe.split, index)[2],
            "encoding": describe_encoding(frames[0].encoding),
            "scenario": drawn.name,
            "kind": drawn.kind,
            "times_s": self.times_s.tolist(),
            "peak_rise_K": [float(r.max()) for r in rise_grid],
            "peak_recorded_rise": [r.peak_rise for r in results],
            "recorded_unit": rise_unit(frames[0].unit),
            "area_px": [r.area_px for r in results],
            "saturated_px": [
                saturated_px(r, frame) for r, frame in zip(results, frames, strict=True)
            ],
            "threshold": [blend_threshold(frame, recipe) for frame in frames],
            **_stretch_lists(results),
            **sources_metadata([(drawn, events) for drawn, _, events in parts]),
        }
        sequence = SequenceSample(
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
        return sequence, results[-1].peak_input_rise

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


def normal_sequence(
    index: int,
    split: str,
    frames: list[Frame],
    *,
    split_position: int | None = None,
) -> SequenceSample:
    """Wrap unchanged base frames as a normal sequence.

    ``split_position``, the sequence's position among the normal sequences
    of its split, goes into the metadata where it is given.
    """
    shape = (len(frames), *frames[0].shape)
    metadata: dict[str, Any] = {
        "source_frames": [frame.source for frame in frames],
        "encoding": describe_encoding(frames[0].encoding),
    }
    if split_position is not None:
        metadata["split_position"] = split_position
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
        metadata=metadata,
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
    n_skipped: int = 0
    # True when --resume found the output complete and wrote nothing.
    already_complete: bool = False


def generate_sequences(
    loaded: LoadedRecipe,
    *,
    overwrite: bool = False,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
) -> SequenceSummary:
    """Generate a sequence recipe's dataset shard by shard and move it into place.

    Shards of ``output.shard_size`` sequences are written, joined and moved
    into place as `thermosynth.pipeline.generate` does for single frames.
    Each shard file ``shards/shard-NNNNNN.h5`` has the layout of
    `thermosynth.output.sequence_writers`. ``dataset.h5`` joins the shard
    files through virtual datasets and contains a copy of ``times_s``, and
    ``folder/`` holds every sequence. The output is the same, byte for byte,
    for any number of workers and after a resume, because every sequence
    depends on the seed and its split, label and position within them alone
    (`thermosynth.pipeline.sample_rng`).

    Parameters
    ----------
    loaded : LoadedRecipe
        Validated recipe with a ``sequence`` section; ``output.dir`` is the
        output folder.
    overwrite : bool, optional
        Replace an existing output folder.
    progress : bool, optional
        Show a progress bar over the sequences.
    workers : int, optional
        Run on a local Dask cluster of this many worker processes with one
        thread each. None runs in this process.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
        Its workers must see the output folder's parent and the input files
        at the same paths.
    resume : bool, optional
        Reuse the complete shards that an earlier, killed or failed run of
        the same recipe into the same folder left behind. Without
        ``overwrite``, an output folder that already contains the complete
        output of this recipe is kept as it is.

    Raises
    ------
    OutputError
        If the output folder exists and ``overwrite`` is false (checked before
        any work) and ``resume`` does not find it complete, another run has
        locked it, its folder cannot be created, or the disk fills up.
    RecipeError
        If the recipe has no ``sequence`` section or uses a scenario bank.
    FrameError
        If a base frame cannot be used and ``frames.on_error`` is ``raise``,
        or every sequence was skipped.
    """
    target = loaded.recipe.output.dir
    check_output_apart(loaded)
    check_cluster_options(workers, scheduler)
    with output_lock(target):
        recover_replaced(target)
        finished = finished_results(loaded, resume=resume, overwrite=overwrite)
        if finished is not None and loaded.recipe.sequence is not None:
            n_times = len(frame_times_s(loaded.recipe.sequence))
            summary = _sequence_summary(target, finished, n_times)
            if any(result.folder_clipped_px for result in finished):
                generator = SequenceGenerator(loaded)
                scale = first_sequence_frame_size(generator).folder_scale
                log_folder_levels(finished, scale, noun="sequence")
            return replace(summary, already_complete=True)

        check_output_dir(target, overwrite=overwrite)
        generator = SequenceGenerator(loaded)
        reference = first_sequence_frame_size(generator)
        with open_cluster(workers, scheduler) as cluster:
            results = write_sharded(
                generator,
                reference,
                _sequence_runner(cluster),
                overwrite=overwrite,
                resume=resume,
                progress=progress,
                copied=("times_s",),
                unit="sequence",
            )

    summary = _sequence_summary(target, results, len(generator.times_s))
    logger.info("wrote %d sequences to %s", summary.n_sequences, target)
    log_folder_levels(results, reference.folder_scale, noun="sequence")
    return summary


def _sequence_summary(
    target: Path, results: list[ShardResult], n_times: int
) -> SequenceSummary:
    totals = summarise(target, results)
    return SequenceSummary(
        output_dir=target,
        n_sequences=totals.n_samples,
        n_anomalous=totals.n_anomalous,
        n_times=n_times,
        mean_final_area_px=totals.mean_area_px,
        mean_final_peak_rise_K=totals.mean_peak_rise_K,
        n_skipped=totals.n_skipped,
    )


def first_sequence_frame_size(generator: SequenceGenerator) -> FrameSize:
    """Read base frames in output order until one is usable; return its size.

    Every shard checks its frames against this size, whichever shard a worker
    starts with, and writes its folder through the 8-bit scale fitted to
    that frame, as single frames do.

    Raises
    ------
    FrameError
        If a frame cannot be read and ``frames.on_error`` is ``raise``, or no
        base frame can be read.
    """
    indices = dict.fromkeys(
        index for entry in generator.entries for index in entry.frame_indices
    )
    first_error: FrameError | None = None
    for index in indices:
        try:
            frame = generator.source.read(index)
        except FrameError as error:
            if generator.recipe.frames.on_error == "raise":
                raise with_skip_hint(error) from None
            first_error = first_error or error
            continue
        output, source = generator.recipe.output, generator.loaded.source
        scale = fit_folder_scale(output, frame, source=source, frames=generator.source)
        return FrameSize(frame.shape, frame.source, scale)

    raise all_skipped_error(
        generator.loaded.source,
        f"{len(indices)} base frames of the sequences",
        first_error,
    )


def write_sequence_shard(
    generator: SequenceGenerator,
    shard: Shard,
    stage: Path,
    reference: FrameSize,
    *,
    on_sequence: Callable[[], object] | None = None,
) -> ShardResult:
    """Make and write the sequences of one shard into ``stage``, then mark it complete.

    ``on_sequence`` is called after each sequence, written or skipped.
    """
    generator.frame_size = reference
    writers = _ShardWriters(stage, generator, shard, reference.folder_scale)
    try:
        for entry in generator.entries[shard.start : shard.stop]:
            sample = _sequence_or_skip(generator, entry, writers.skipped)
            if sample is not None:
                writers.write(sample)
            if on_sequence is not None:
                on_sequence()
    finally:
        writers.close()
    return writers.commit()


def _sequence_or_skip(
    generator: SequenceGenerator, entry: SequenceEntry, skipped: list[str]
) -> SequenceSample | None:
    """Make one sequence, or raise or record a skip as ``frames.on_error`` selects."""
    frames: list[Frame] = []
    try:
        frames = generator.read_window(entry)
        if entry.label:
            return generator.anomalous(entry.index, frames)
        position = sample_key(generator.recipe.split, entry.index)[2]
        return normal_sequence(
            entry.index, entry.split, frames, split_position=position
        )
    except (OutputError, RecipeError, SimulationError):
        # Skipping frames cannot help a scenario that the solver cannot run.
        raise
    except ThermosynthError as error:
        if frames and frames[0].source not in str(error):
            error = type(error)(f"{frames[0].source}: {error}", keys=error.keys)
        if generator.recipe.frames.on_error == "raise":
            raise with_skip_hint(error) from None
        skipped.append(f"skipped sequence {entry.index}: {error}")
        return None


def _sequence_runner(cluster: DaskCluster | None) -> ShardRunner[SequenceGenerator]:
    """Choose where shards run: in this process, or on a Dask cluster."""
    if cluster is None:
        return _run_in_process
    return partial(run_shards, cluster=cluster, task=_write_shard_task)


def _run_in_process(
    generator: SequenceGenerator,
    shards: list[Shard],
    stage: Path,
    reference: FrameSize,
    advance: Callable[[int], object],
) -> Iterator[ShardResult]:
    for shard in shards:
        yield write_sequence_shard(
            generator, shard, stage, reference, on_sequence=lambda: advance(1)
        )


_GENERATORS: dict[str, SequenceGenerator] = {}
"""Sequence generators built in this worker process, by recipe hash."""


def _write_shard_task(
    loaded: LoadedRecipe, shard: Shard, stage: str, reference: FrameSize
) -> ShardResult:
    """Write one shard in a worker process, building its generator once.

    The cached generator is safe only with one thread per worker, as local
    clusters start them, because frame sources keep small unlocked caches.
    """
    generator = _GENERATORS.get(loaded.sha256)
    if generator is None:
        generator = SequenceGenerator(loaded)
        _GENERATORS[loaded.sha256] = generator
    return write_sequence_shard(generator, shard, Path(stage), reference)


class _ShardWriters:
    """One shard's HDF5 and folder writers, opened on its first sequence.

    The HDF5 file is written under a hidden name and renamed by `commit`.
    """

    def __init__(
        self,
        stage: Path,
        generator: SequenceGenerator,
        shard: Shard,
        folder_scale: EightBitScale | None = None,
    ):
        self._stage = stage
        self._folder_scale = folder_scale
        self._loaded = generator.loaded
        self._times_s = generator.times_s
        self._shard = shard
        self._hdf5: SequenceHDF5Writer | None = None
        self._hdf5_path: Path | None = None
        self._folder: SequenceFolderWriter | None = None
        self._frame_unit: str | None = None
        self._tally = ShardTally(shard.number)
        self.skipped = self._tally.skipped

    def write(self, sample: SequenceSample) -> None:
        """Write one sequence and keep its final area and peak rise."""
        if self._frame_unit is None:
            self._open(sample.frame_unit)
        if self._folder is not None and self._folder_scale is not None:
            self._note_folder_clipping(sample, self._folder_scale)
        if self._hdf5 is not None:
            self._hdf5.write(sample)
        if self._folder is not None:
            self._folder.write(sample)

        meta = sample.metadata
        final = (meta["area_px"][-1], meta["peak_rise_K"][-1]) if sample.label else None
        self._tally.add(sample.frame_unit, final)
        if sample.label:
            self._tally.note_rise(implausible_rise(sample.index, meta))

    def _note_folder_clipping(
        self, sample: SequenceSample, scale: EightBitScale
    ) -> None:
        """Count the mask pixels that the 8-bit folder scale clips, per frame."""
        # NOTE: unlike still runs, normal sequences are not counted, because a
        # sequence sample carries no valid-pixel mask; their clipped frames
        # go without a warning.
        counts = [
            scale.clipped_px(raw, mask)
            for raw, mask in zip(sample.raw, sample.mask, strict=True)
        ]
        if sample.label:
            sample.metadata["folder_clipped_px"] = counts
        fit = scale.headroom_to_fit(sample.raw, sample.mask)
        self._tally.note_folder_clipping(sample.index, sum(counts), fit)

    def _open(self, frame_unit: str) -> None:
        output = self._loaded.recipe.output
        self._frame_unit = frame_unit
        if output.hdf5:
            self._hdf5_path = temporary_shard_file(self._stage, self._shard)
            self._hdf5 = SequenceHDF5Writer(
                self._hdf5_path,
                times_s=self._times_s,
                attributes=file_attributes(self._loaded),
                frame_unit=frame_unit,
            )
        if output.folder:
            self._folder = SequenceFolderWriter(
                self._stage / "folder",
                times_s=self._times_s,
                frame_unit=frame_unit,
                eight_bit=self._folder_scale,
            )

    def close(self) -> None:
        """Close the HDF5 file; the folder writer keeps no file open."""
        if self._hdf5 is not None:
            self._hdf5.__exit__(None, None, None)
            self._hdf5 = None

    def commit(self) -> ShardResult:
        """Close the files, mark the shard complete and return its result."""
        self.close()
        written = self._folder.written if self._folder is not None else []
        return self._tally.commit(
            self._stage, self._shard, self._hdf5_path, folder_files=written
        )


def _stretch_lists(results: list[Blended]) -> dict[str, list[float]]:
    """Return ``stretch_gain`` and ``stretch_offset`` per frame; empty if fixed."""
    per_frame = [stretch_metadata(r) for r in results]
    if not any(per_frame):
        return {}
    return {key: [m[key] for m in per_frame] for key in per_frame[0]}
