"""Generate a dataset: read frames, simulate, record, blend, write.

Every sample's randomness comes from ``(seed, index)`` alone, so a sample does
not depend on which samples were made before it.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from thermosynth.bank import ScenarioBank, resolve_bank_path
from thermosynth.blend import blend, default_threshold
from thermosynth.build import (
    CachedRegistration,
    build_camera,
    build_layout,
    build_source,
    check_camera,
)
from thermosynth.camera.model import record_rise
from thermosynth.errors import (
    FrameError,
    OutputError,
    RecipeError,
    ThermosynthError,
)
from thermosynth.frames.frame import Frame
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.output.atomic import (
    check_writable,
    commit_staging,
    discard_staging,
    open_staging,
)
from thermosynth.output.folder import EightBitScale, FolderWriter
from thermosynth.output.hdf5 import HDF5Writer, write_master
from thermosynth.output.sample import Sample
from thermosynth.output.shards import (
    SHARD_DIR,
    Shard,
    ShardResult,
    commit_shard,
    load_result,
    plan_shards,
    remove_temporaries,
    shard_file,
    temporary_shard_file,
    write_manifest,
)
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.recipe.models import Recipe
from thermosynth.scenario import (
    DrawnScenario,
    choose_scenario,
    draw_scenario,
)
from thermosynth.simulation import simulate_scenario

logger = logging.getLogger(__name__)

_SPLIT_STREAM = 0
_SAMPLE_STREAM = 1


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """Return the random generator of sample ``index``, from the seed alone."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_SAMPLE_STREAM, index))
    )


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


def plan_split(recipe: Recipe, n_frames: int) -> Plan:
    """Assign frames to splits; anomalies never reuse a training frame.

    Training and test normal frames are disjoint. Anomalous samples cycle
    through the frames not used for training, so a detector never saw the
    normal version of an anomalous test frame.
    """
    split = recipe.split
    if split.train_normal + split.test_normal > n_frames:
        raise FrameError(
            f"split asks for {split.train_normal} training and {split.test_normal} "
            f"test normal frames but the source has only {n_frames}; lower "
            "split.train_normal or split.test_normal"
        )
    if split.test_anomalous and split.train_normal >= n_frames:
        raise FrameError(
            f"all {n_frames} frames go to training, none are left for anomalies; "
            "lower split.train_normal"
        )

    rng = np.random.default_rng(
        np.random.SeedSequence(recipe.seed, spawn_key=(_SPLIT_STREAM,))
    )
    order = [int(i) for i in rng.permutation(n_frames)]
    train = order[: split.train_normal]
    rest = order[split.train_normal :]
    test_normal = rest[: split.test_normal]
    anomalous = (
        [rest[i % len(rest)] for i in range(split.test_anomalous)] if rest else []
    )
    return Plan(train, test_normal, anomalous)


class Generator:
    """Make the samples of one recipe; the writers and preview share it."""

    def __init__(self, loaded: LoadedRecipe):
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.source = build_source(self.recipe.frames, seed=self.recipe.seed)
        self.layout: Layout = build_layout(self.recipe.layout, self.recipe.materials)
        self.camera = build_camera(self.recipe.camera)
        self.plan = plan_split(self.recipe, len(self.source))
        self._shape: tuple[int, int] | None = None
        self._bank: ScenarioBank | None = None
        self._register = CachedRegistration(self.recipe.registration, self.layout)

    def __len__(self) -> int:
        split = self.recipe.split
        return split.train_normal + split.test_normal + split.test_anomalous

    def read_frame(self, frame_index: int) -> Frame:
        """Read one source frame and check it matches the first one's size."""
        frame = self.source.read(frame_index)
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise FrameError(
                f"frames of mixed sizes: {frame.source} is {frame.shape[1]} x "
                f"{frame.shape[0]} px but earlier frames are {self._shape[1]} x "
                f"{self._shape[0]} px; keep one size per recipe"
            )
        return frame

    def samples(self) -> Iterator[tuple[Sample, Frame]]:
        """Yield every sample with the normal frame it came from."""
        for index, split, label, frame_index in self.plan.entries():
            frame = self.read_frame(frame_index)
            if label:
                yield self.anomalous(index, frame), frame
            else:
                yield normal_sample(index, split, frame), frame

    def anomalous(self, index: int, frame: Frame) -> Sample:
        """Make anomalous sample ``index`` from ``frame``, retrying weak draws."""
        rng = sample_rng(self.recipe.seed, index)
        homography, corners = self._register(frame)
        threshold = self._threshold(frame)
        blend_spec = self.recipe.blend
        best_peak = 0.0
        for attempt in range(1, blend_spec.max_tries + 1):
            sample = self._attempt(index, frame, rng, homography, threshold)
            best_peak = max(best_peak, sample.metadata["peak_recorded_rise"])
            if sample.metadata["area_px"] >= blend_spec.min_area_px:
                sample.metadata.update(attempts=attempt, corners_px=corners)
                return sample
            logger.debug(
                "sample %d attempt %d: anomaly below threshold", index, attempt
            )
        raise ThermosynthError(
            f"sample {index} ({frame.source}): in {blend_spec.max_tries} draws no "
            f"anomaly covered blend.min_area_px = {blend_spec.min_area_px} pixels "
            f"above the threshold {threshold:.4g} {frame.unit} (largest recorded "
            f"rise {best_peak:.4g}); raise the scenario power or size, or lower "
            "blend.threshold or blend.noise_multiple"
        )

    def _threshold(self, frame: Frame) -> float:
        spec = self.recipe.blend
        if spec.threshold is not None:
            return float(spec.threshold)
        return default_threshold(frame, noise_multiple=spec.noise_multiple)

    def _draw_rise(
        self, rng: np.random.Generator
    ) -> tuple[DrawnScenario, np.ndarray, dict[str, Any]]:
        """Draw a scenario and its rise [K]: simulated, or from the bank."""
        recipe = self.recipe
        if recipe.bank.mode == "off":
            spec = choose_scenario(recipe.scenarios, rng)
            drawn = draw_scenario(spec, self.layout, rng)
            return drawn, simulate_rise(drawn, self.layout, recipe), {}

        if self._bank is None:
            self._bank = ScenarioBank.open(
                recipe,
                self.layout,
                lambda drawn: simulate_rise(drawn, self.layout, recipe),
                path=resolve_bank_path(recipe.bank.path, self.loaded.source),
            )
        return self._bank.draw(rng)

    def _attempt(
        self,
        index: int,
        frame: Frame,
        rng: np.random.Generator,
        homography: np.ndarray,
        threshold: float,
    ) -> Sample:
        recipe = self.recipe
        drawn, rise_grid, bank_info = self._draw_rise(rng)
        rise_px = warp_to_frame(rise_grid, homography, frame.shape)
        recorded = record_rise(
            self.camera, rise_px, frame, ambient_C=recipe.physics.ambient_C
        )
        result = blend(
            frame,
            recorded,
            threshold=threshold,
            gain=recipe.camera.gain,
            edge=recipe.blend.edge,
        )
        metadata = {
            "source_frame": frame.source,
            "scenario": drawn.name,
            "kind": drawn.kind,
            "duration_s": drawn.duration_s,
            "params": drawn.params,
            "peak_rise_K": float(rise_grid.max()),
            "peak_recorded_rise": float(result.peak_rise),
            "recorded_unit": frame.unit if frame.unit != "C" else "K",
            "area_px": int(result.area_px),
            "threshold": float(threshold),
            **bank_info,
        }
        return Sample(
            index=index,
            split="test",
            label=1,
            kind=drawn.name,
            raw=result.raw,
            mask=result.mask,
            rise_K=rise_px.astype(np.float32),
            recorded_rise=result.recorded_rise.astype(np.float32),
            metadata=metadata,
        )


def normal_sample(index: int, split: str, frame: Frame) -> Sample:
    """Wrap an unchanged normal frame as a sample."""
    zeros = np.zeros(frame.shape, dtype=np.float32)
    return Sample(
        index=index,
        split=split,  # type: ignore[arg-type]
        label=0,
        kind="good",
        raw=frame.raw,
        mask=np.zeros(frame.shape, dtype=bool),
        rise_K=zeros,
        recorded_rise=zeros,
        metadata={"source_frame": frame.source},
    )


def simulate_rise(drawn: Any, layout: Layout, recipe: Recipe) -> np.ndarray:
    """Simulate a drawn scenario; return the imaged face's final rise [K]."""
    return simulate_scenario(drawn, layout, recipe)[-1]


@dataclass(frozen=True)
class Summary:
    """What a run wrote."""

    output_dir: Path
    n_samples: int
    n_anomalous: int
    mean_area_px: float
    mean_peak_rise_K: float
    n_skipped: int = 0


@dataclass(frozen=True)
class FrameSize:
    """Size that every frame must have: that of the first usable frame."""

    shape: tuple[int, int]
    source: str
    folder_scale: EightBitScale | None = None

    def check(self, frame: Frame) -> None:
        """Raise FrameError if ``frame`` is not of this size."""
        if frame.shape == self.shape:
            return
        raise FrameError(
            f"frames of mixed sizes: {frame.source} is {frame.shape[1]} x "
            f"{frame.shape[0]} px but {self.source} is {self.shape[1]} x "
            f"{self.shape[0]} px; keep one size per recipe"
        )


def generate(
    loaded: LoadedRecipe,
    *,
    overwrite: bool = False,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
) -> Summary:
    """Generate the recipe's dataset shard by shard and move it into place.

    The output is the same, byte for byte, for any number of workers and
    after a resume, because every sample depends on ``(seed, index)`` alone
    and the shard size comes from ``output.shard_size``.

    Parameters
    ----------
    loaded : LoadedRecipe
        Validated recipe; ``output.dir`` is the output folder.
    overwrite : bool, optional
        Replace an existing output folder.
    progress : bool, optional
        Show one progress bar over all samples.
    workers : int, optional
        Run on a local Dask cluster of this many worker processes with one
        thread each. None runs in this process.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
        Its workers must see the output folder's parent and the input files
        at the same paths.
    resume : bool, optional
        Reuse the complete shards that an earlier, killed or failed run of
        the same recipe into the same folder left behind.

    Raises
    ------
    OutputError
        If the output folder exists and ``overwrite`` is false (checked before
        any work), or the disk fills up.
    FrameError
        If a frame cannot be used and ``frames.on_error`` is ``raise``.
    """
    target = loaded.recipe.output.dir
    check_writable(target, overwrite=overwrite)
    _check_cluster_options(workers, scheduler)
    generator = Generator(loaded)
    reference = first_frame_size(generator)
    shards = plan_shards(len(generator), loaded.recipe.output.shard_size)

    stage = open_staging(target, loaded.sha256[:16], resume=resume)
    try:
        runner = _shard_runner(workers, scheduler)
        results = _write_shards(stage, generator, shards, reference, runner, progress)
        _join_shards(stage, loaded, shards, results)
        commit_staging(stage, target, overwrite=overwrite)
    except BaseException as error:
        explained = _explain_failure(error, stage, target)
        if explained is error:
            raise
        raise explained from error

    logger.info("wrote %d samples to %s", len(generator), target)
    return _summarise(target, results)


def first_frame_size(generator: Generator) -> FrameSize:
    """Read frames in output order until one is usable; return its size.

    Raises
    ------
    FrameError
        If a frame cannot be read and ``frames.on_error`` is ``raise``, or no
        frame of the split can be read.
    """
    on_error = generator.recipe.frames.on_error
    for _, _, _, frame_index in generator.plan.entries():
        try:
            frame = generator.source.read(frame_index)
        except FrameError as error:
            if on_error == "raise":
                raise _with_skip_hint(error) from None
            continue
        check_camera(generator.recipe.camera, frame)
        scale = None
        if generator.recipe.output.folder_8bit:
            scale = EightBitScale.from_frame(frame)
        return FrameSize(frame.shape, frame.source, scale)

    raise FrameError(
        f"none of the {len(generator.source)} frames of the split can be read; "
        "check frames.path and the split sizes"
    )


def write_shard(
    generator: Generator,
    shard: Shard,
    stage: Path,
    reference: FrameSize,
    *,
    on_sample: Callable[[], object] | None = None,
) -> ShardResult:
    """Make and write the samples of one shard into ``stage``; mark it complete.

    ``on_sample`` is called after each sample, written or skipped.
    """
    entries = list(generator.plan.entries())[shard.start : shard.stop]
    writers = _Writers(stage, generator.loaded, shard, reference.folder_scale)
    try:
        for entry in entries:
            pair = _sample_or_skip(generator, entry, reference, writers.skipped)
            if pair is not None:
                writers.write(*pair)
            if on_sample is not None:
                on_sample()
    finally:
        writers.close()
    return writers.commit()


def _sample_or_skip(
    generator: Generator,
    entry: tuple[int, str, int, int],
    reference: FrameSize,
    skipped: list[str],
) -> tuple[Sample, Frame] | None:
    """Make one sample; on a bad frame, raise or record a skip by frames.on_error."""
    index, split, label, frame_index = entry
    frame: Frame | None = None
    try:
        frame = generator.source.read(frame_index)
        reference.check(frame)
        if label:
            return generator.anomalous(index, frame), frame
        return normal_sample(index, split, frame), frame
    except (OutputError, RecipeError):
        raise
    except ThermosynthError as error:
        if frame is not None and frame.source not in str(error):
            error = type(error)(f"{frame.source}: {error}")
        if generator.recipe.frames.on_error == "raise":
            raise _with_skip_hint(error) from None
        skipped.append(f"skipped sample {index}: {error}")
        return None


def _with_skip_hint(error: ThermosynthError) -> ThermosynthError:
    return type(error)(
        f"{error}; to skip such frames with a warning instead, set "
        "frames.on_error: skip"
    )


def _check_cluster_options(workers: int | None, scheduler: str | None) -> None:
    if workers is not None and scheduler is not None:
        raise ThermosynthError(
            "give either --workers (a local cluster) or --scheduler (an existing "
            "one), not both"
        )
    if workers is not None and workers < 1:
        raise ThermosynthError(f"--workers {workers} is invalid; use 1 or more")


ShardRunner = Callable[
    [Generator, list[Shard], Path, FrameSize, Callable[[int], object]],
    Iterator[ShardResult],
]


def _shard_runner(workers: int | None, scheduler: str | None) -> ShardRunner:
    """Choose where shards run: in this process, or on a Dask cluster."""
    if workers is None and scheduler is None:
        return _run_in_process

    from thermosynth.distributed import run_shards

    return partial(run_shards, workers=workers, scheduler=scheduler)


def _run_in_process(
    generator: Generator,
    shards: list[Shard],
    stage: Path,
    reference: FrameSize,
    advance: Callable[[int], object],
) -> Iterator[ShardResult]:
    for shard in shards:
        yield write_shard(
            generator, shard, stage, reference, on_sample=lambda: advance(1)
        )


def _write_shards(
    stage: Path,
    generator: Generator,
    shards: list[Shard],
    reference: FrameSize,
    runner: ShardRunner,
    progress: bool,
) -> list[ShardResult]:
    """Write every incomplete shard; return the results of all, in order."""
    loaded = generator.loaded
    manifest = {
        "recipe_sha256": loaded.sha256,
        "n_samples": len(generator),
        "shard_size": loaded.recipe.output.shard_size,
    }
    write_manifest(stage, manifest)
    remove_temporaries(stage)
    (stage / "recipe.yaml").write_text(loaded.text)

    hdf5 = loaded.recipe.output.hdf5
    done = {s.number: load_result(stage, s, hdf5=hdf5) for s in shards}
    results = {number: r for number, r in done.items() if r is not None}
    todo = [shard for shard in shards if shard.number not in results]
    if results:
        logger.info("resuming: %d of %d shards complete", len(results), len(shards))

    initial = sum(shards[number].size for number in results)
    with tqdm(
        total=len(generator), initial=initial, disable=not progress, unit="sample"
    ) as bar:
        for result in runner(generator, todo, stage, reference, bar.update):
            for message in result.skipped:
                logger.warning("%s", message)
            results[result.number] = result
    return [results[shard.number] for shard in shards]


def _join_shards(
    stage: Path, loaded: LoadedRecipe, shards: list[Shard], results: list[ShardResult]
) -> None:
    """Write the master HDF5 file over the shard files."""
    written = [result for result in results if result.n_written]
    if not written:
        n_skipped = sum(len(result.skipped) for result in results)
        raise FrameError(
            f"all {n_skipped} samples were skipped, so there is nothing to write; "
            "fix the frames named in the warnings, or set frames.on_error: raise "
            "to stop at the first one"
        )
    if not loaded.recipe.output.hdf5:
        return

    files = [
        (shard_file(stage, shard).relative_to(stage).as_posix(), result.n_written)
        for shard, result in zip(shards, results, strict=True)
    ]
    write_master(
        stage / "dataset.h5",
        files,
        attributes=_file_attributes(loaded),
        frame_unit=str(written[0].frame_unit),
    )


def _explain_failure(error: BaseException, stage: Path, target: Path) -> BaseException:
    """Keep the staging folder if it contains complete shards; reword the error."""
    kept = sorted((stage / SHARD_DIR).glob("shard-*.json"))
    if not kept:
        discard_staging(stage)
    shards = "shard is" if len(kept) == 1 else "shards are"
    resume = f"; {len(kept)} complete {shards} kept in {stage}" if kept else ""

    if _disk_full(error):
        return OutputError(
            f"disk full while writing {stage}: {error}; free space on that disk "
            f"and run again with --resume. The previous output {target}, if any, "
            "is unchanged"
        )
    if kept and isinstance(error, ThermosynthError):
        return type(error)(
            f"{error}{resume}; after fixing this, run again with --resume to reuse them"
        )
    return error


def _disk_full(error: BaseException) -> bool:
    if not isinstance(error, OSError) or isinstance(error, OutputError):
        return False
    return error.errno in (errno.ENOSPC, errno.EDQUOT) or (
        "No space left on device" in str(error)
    )


def _summarise(target: Path, results: list[ShardResult]) -> Summary:
    areas = [area for result in results for area in result.areas_px]
    peaks = [peak for result in results for peak in result.peak_rises_K]
    return Summary(
        output_dir=target,
        n_samples=sum(result.n_written for result in results),
        n_anomalous=len(areas),
        mean_area_px=float(np.mean(areas)) if areas else 0.0,
        mean_peak_rise_K=float(np.mean(peaks)) if peaks else 0.0,
        n_skipped=sum(len(result.skipped) for result in results),
    )


def _file_attributes(loaded: LoadedRecipe) -> dict[str, Any]:
    return {"recipe_yaml": loaded.text, "recipe_sha256": loaded.sha256}


class _Writers:
    """One shard's HDF5 and folder writers, opened on first use.

    The HDF5 file is written under a hidden name and renamed by `commit`.
    """

    def __init__(
        self,
        stage: Path,
        loaded: LoadedRecipe,
        shard: Shard,
        folder_scale: EightBitScale | None = None,
    ):
        self._folder_scale = folder_scale
        self._stage = stage
        self._loaded = loaded
        self._shard = shard
        self._hdf5: HDF5Writer | None = None
        self._hdf5_path: Path | None = None
        self._folder: FolderWriter | None = None
        self._frame_unit: str | None = None
        self._n_written = 0
        self._areas: list[int] = []
        self._peaks: list[float] = []
        self.skipped: list[str] = []

    def write(self, sample: Sample, frame: Frame) -> None:
        output = self._loaded.recipe.output
        if output.hdf5 and self._hdf5 is None:
            self._hdf5_path = temporary_shard_file(self._stage, self._shard)
            self._hdf5 = HDF5Writer(
                self._hdf5_path,
                attributes=_file_attributes(self._loaded),
                frame_unit=frame.unit,
            )
        if output.folder and self._folder is None:
            self._folder = FolderWriter(
                self._stage / "folder",
                frame_unit=frame.unit,
                eight_bit=self._folder_scale,
            )
        if self._hdf5 is not None:
            self._hdf5.write(sample)
        if self._folder is not None:
            self._folder.write(sample)

        self._frame_unit = frame.unit
        self._n_written += 1
        if sample.label:
            self._areas.append(int(sample.metadata["area_px"]))
            self._peaks.append(float(sample.metadata["peak_rise_K"]))

    def close(self) -> None:
        if self._hdf5 is not None:
            self._hdf5.__exit__(None, None, None)
            self._hdf5 = None

    def commit(self) -> ShardResult:
        """Close the files and mark the shard complete; return its result."""
        self.close()
        result = ShardResult(
            number=self._shard.number,
            n_written=self._n_written,
            frame_unit=self._frame_unit,
            areas_px=self._areas,
            peak_rises_K=self._peaks,
            skipped=self.skipped,
        )
        commit_shard(self._stage, self._shard, result, self._hdf5_path)
        return result
