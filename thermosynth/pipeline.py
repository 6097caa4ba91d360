"""Generate a dataset: shard the samples, write them, join and move into place.

Every sample's randomness comes from the seed and the sample's split, label
and position within them alone (`sample_rng`), so a sample does not depend
on which samples were made before it.
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from thermosynth.build import (
    check_camera,
)
from thermosynth.distributed import (
    DaskCluster,
    open_cluster,
    run_shards,
    simulate_entries,
)
from thermosynth.errors import (
    CalibrationError,
    ColorbarFitError,
    FrameError,
    MaskSizeError,
    OutputError,
    RecipeError,
    SimulationError,
    ThermosynthError,
)
from thermosynth.frames.frame import Frame
from thermosynth.geometry.layout import Layout
from thermosynth.output.atomic import (
    OUTPUT_MARKER,
    check_writable,
    commit_staging,
    discard_staging,
    open_staging,
    output_lock,
    recover_replaced,
)
from thermosynth.output.folder import EightBitScale, FolderWriter
from thermosynth.output.folder_levels import (
    fit_folder_scale,
    folder_clipped,
    log_folder_levels,
)
from thermosynth.output.hdf5 import HDF5Writer, write_master
from thermosynth.output.overlap import check_apart_from_inputs
from thermosynth.output.sample import METADATA_VERSION, Sample
from thermosynth.output.shards import (
    MANIFEST,
    SHARD_DIR,
    Shard,
    ShardResult,
    ShardTally,
    load_result,
    plan_shards,
    read_manifest,
    remove_temporaries,
    shard_file,
    temporary_shard_file,
    write_manifest,
)
from thermosynth.plausibility import implausible_rise, summarise_implausible
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.recipe.runnable import input_paths, runnable_text
from thermosynth.samples import (
    SAMPLING_VERSION,
    Generator,
    Plan,
    mixed_size_error,
    normal_sample,
    plan_split,
    sample_key,
    sample_rng,
    simulate_rise,
)
from thermosynth.simulation import resolved_physics

if TYPE_CHECKING:
    from thermosynth.sequences import SequenceSummary

logger = logging.getLogger(__name__)

# Sample making lives in thermosynth.samples; these names stay importable
# from here, where the README and earlier code import them.
__all__ = [
    "FrameSize",
    "Generator",
    "Plan",
    "SAMPLING_VERSION",
    "ShardSource",
    "Summary",
    "all_skipped_error",
    "check_cluster_options",
    "file_attributes",
    "finished_results",
    "first_frame_size",
    "generate",
    "normal_sample",
    "plan_split",
    "sample_key",
    "sample_rng",
    "simulate_rise",
    "summarise",
    "with_skip_hint",
    "write_shard",
    "write_sharded",
]


@dataclass(frozen=True)
class Summary:
    """Counts and severity figures of a finished run."""

    output_dir: Path
    n_samples: int
    n_anomalous: int
    mean_area_px: float
    mean_peak_rise_K: float
    n_skipped: int = 0
    # True when --resume found the output complete and wrote nothing.
    already_complete: bool = False


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
        raise mixed_size_error(frame.source, frame.shape, self.shape, self.source)


def generate(
    loaded: LoadedRecipe,
    *,
    overwrite: bool = False,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
) -> Summary | SequenceSummary:
    """Generate the recipe's dataset shard by shard and move it into place.

    A recipe with a ``sequence`` section goes to
    `thermosynth.sequences.generate_sequences`, with the same options, and
    its `SequenceSummary` is returned. The output is the same, byte for byte,
    for any number of workers and after a resume, because every sample
    depends on the seed and its split, label and position within them alone
    (`sample_rng`), and the shard size comes from ``output.shard_size``.

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
        the same recipe into the same folder left behind. Without
        ``overwrite``, an output folder that already contains the complete
        output of this recipe is kept as it is (see `finished_results`).

    Raises
    ------
    OutputError
        If the output folder exists and ``overwrite`` is false (checked before
        any work) and ``resume`` does not find it complete, another run has
        locked it (`thermosynth.output.atomic.output_lock`), its folder cannot
        be created, or the disk fills up.
    FrameError
        If a frame cannot be used and ``frames.on_error`` is ``raise``.
    """
    _check_split_not_empty(loaded)
    if loaded.recipe.sequence is not None:
        from thermosynth.sequences import generate_sequences

        return generate_sequences(
            loaded,
            overwrite=overwrite,
            progress=progress,
            workers=workers,
            scheduler=scheduler,
            resume=resume,
        )

    target = loaded.recipe.output.dir
    check_output_apart(loaded)
    check_cluster_options(workers, scheduler)
    with output_lock(target):
        recover_replaced(target)
        finished = finished_results(loaded, resume=resume, overwrite=overwrite)
        if finished is not None:
            if any(folder_clipped(result) for result in finished):
                scale = first_frame_size(Generator(loaded)).folder_scale
                log_folder_levels(finished, scale)
            return replace(summarise(target, finished), already_complete=True)

        check_output_dir(target, overwrite=overwrite)
        generator = Generator(loaded)
        reference = first_frame_size(generator)
        check_known_sizes(generator, reference)
        with open_cluster(workers, scheduler) as cluster:
            _open_bank(generator, cluster=cluster, progress=progress)
            results = write_sharded(
                generator,
                reference,
                _shard_runner(cluster),
                overwrite=overwrite,
                resume=resume,
                progress=progress,
            )

    logger.info("wrote %d samples to %s", len(generator), target)
    log_folder_levels(results, reference.folder_scale)
    return summarise(target, results)


def check_output_dir(target: Path, *, overwrite: bool) -> None:
    """Run `check_writable` on the recipe's ``output.dir``, naming that key.

    The key in the error's ``keys`` lets the CLI start the message with the
    option or recipe file that set the folder, such as ``-o out/pv``.
    """
    try:
        check_writable(target, overwrite=overwrite)
    except OutputError as exc:
        exc.keys = (("output", "dir"),)
        raise


def check_output_apart(loaded: LoadedRecipe) -> None:
    """Raise OutputError if ``output.dir`` is, contains or lies inside an input.

    The recipe file is not an input here: ``generate OUT/recipe.yaml
    --overwrite`` runs again the copy that an earlier run wrote into OUT,
    and the new run writes its own copy there.
    """
    inputs = [(f"{key} input", path) for key, path in input_paths(loaded)]
    try:
        check_apart_from_inputs(loaded.recipe.output.dir, inputs)
    except OutputError as exc:
        exc.keys = (("output", "dir"),)
        raise


def _check_split_not_empty(loaded: LoadedRecipe) -> None:
    """Raise RecipeError if the split requests no sample at all."""
    split = loaded.recipe.split
    if split.train_normal + split.test_normal + split.test_anomalous > 0:
        return
    names = ("train_normal", "test_normal", "test_anomalous")
    raise RecipeError(
        f"{loaded.source}: split.train_normal, split.test_normal and "
        "split.test_anomalous are all 0, so there is nothing to generate; set "
        "at least one of them above 0",
        keys=tuple(("split", name) for name in names),
    )


class ShardSource(Protocol):
    """A generator that `write_sharded` can cut into shards."""

    @property
    def loaded(self) -> LoadedRecipe:
        """Validated recipe, which sets the output folder and the shard size."""
        ...

    @property
    def layout(self) -> Layout:
        """Layout whose materials the output's ``physics_json`` records."""
        ...

    def __len__(self) -> int: ...


SourceT = TypeVar("SourceT", bound=ShardSource)

ShardRunner = Callable[
    [SourceT, list[Shard], Path, FrameSize, Callable[[int], object]],
    Iterator[ShardResult],
]
"""Function that writes the given shards and yields each result as it completes."""


def write_sharded(
    generator: SourceT,
    reference: FrameSize,
    runner: ShardRunner[SourceT],
    *,
    overwrite: bool,
    resume: bool,
    progress: bool,
    copied: Sequence[str] = (),
    unit: str = "sample",
) -> list[ShardResult]:
    """Write every shard in a staging folder, join them and move it into place.

    The steps behind `generate`, shared with sequence datasets: shards of
    ``output.shard_size`` items, a manifest and markers for ``resume``, a
    master ``dataset.h5`` over the shard files, and an error that names the
    complete shards kept for ``--resume`` when the run fails.

    Parameters
    ----------
    generator : ShardSource
        Items to write, with their recipe, whose ``output.dir`` is the output
        folder.
    reference : FrameSize
        Size that every frame must have.
    runner : callable
        Function that writes shards in this process or on a cluster
        (`ShardRunner`).
    overwrite, resume, progress : bool
        As for `generate`.
    copied : sequence of str, optional
        Datasets copied from the first shard file into ``dataset.h5``, as
        `thermosynth.output.hdf5.write_master` describes.
    unit : str, optional
        Name of one item on the progress bar.

    Returns
    -------
    list of ShardResult
        Every shard's result, in shard order.
    """
    loaded = generator.loaded
    target = loaded.recipe.output.dir
    shards = plan_shards(len(generator), loaded.recipe.output.shard_size)
    stage = open_staging(target, loaded.sha256[:16], resume=resume)
    physics = resolved_physics(loaded.recipe, generator.layout)
    results: list[ShardResult] | None = None
    try:
        results = _write_shards(
            stage,
            generator,
            shards,
            reference,
            runner,
            progress,
            physics=physics,
            unit=unit,
        )
        _join_shards(stage, loaded, shards, results, physics=physics, copied=copied)
        commit_staging(stage, target, overwrite=overwrite)
        _log_implausible(results, loaded, unit)
    except KeyboardInterrupt as error:
        if results is None or not _moved_into_place(stage, target):
            explained = _explain_failure(
                error, stage, target, n_shards=len(shards), overwrite=overwrite
            )
            raise explained from error
        logger.warning("interrupted after %s was complete; the output is kept", target)
    except BaseException as error:
        explained = _explain_failure(
            error, stage, target, n_shards=len(shards), overwrite=overwrite
        )
        if explained is error:
            raise
        raise explained from error
    assert results is not None  # Every path that leaves results None raises.
    return results


def _moved_into_place(stage: Path, target: Path) -> bool:
    """Return whether the staging folder has become the output folder."""
    return not stage.exists() and (target / OUTPUT_MARKER).is_file()


def _log_implausible(
    results: list[ShardResult], loaded: LoadedRecipe, noun: str
) -> None:
    """Warn once with the count of every item whose rise is implausible."""
    rises = [rise for result in results for rise in result.implausible_rises]
    line = summarise_implausible(
        rises,
        loaded.recipe.scenarios,
        n_anomalous=sum(len(result.areas_px) for result in results),
        noun=noun,
    )
    if line is not None:
        logger.warning("%s", line)


def finished_results(
    loaded: LoadedRecipe, *, resume: bool, overwrite: bool
) -> list[ShardResult] | None:
    """Return the shard results of an output that ``resume`` finds complete.

    A finished run moves its staging folder, manifest and shard markers
    included, to ``output.dir``. With ``resume`` and without ``overwrite``,
    an output whose manifest has this recipe's hash and whose shards are all
    complete is kept as it is, and its results are returned. Otherwise the
    result is None and the run goes on, with `check_writable` deciding about
    an existing output folder.

    Raises
    ------
    OutputError
        If ``resume`` without ``overwrite`` finds an output of another recipe,
        or one of this recipe with missing shards.
    """
    target = loaded.recipe.output.dir
    if not resume or overwrite or not (target / MANIFEST).is_file():
        return None

    manifest = read_manifest(target)
    if manifest["recipe_sha256"] != loaded.sha256:
        raise OutputError(
            f"--resume cannot reuse {target}: its {MANIFEST} has recipe_sha256 "
            f"{str(manifest['recipe_sha256'])[:16]}..., but this recipe's is "
            f"{loaded.sha256[:16]}..., "
            "so it was written by another recipe (any change to the recipe, its "
            "--set options or -o changes the hash); pass --overwrite to replace "
            "it, or choose another output folder"
        )

    _check_sampling_version(target, manifest)

    shards = plan_shards(manifest["n_samples"], manifest["shard_size"])
    hdf5 = loaded.recipe.output.hdf5
    results = [load_result(target, shard, hdf5=hdf5) for shard in shards]
    missing = [s.name for s, r in zip(shards, results, strict=True) if r is None]
    if missing:
        raise OutputError(
            f"--resume cannot reuse {target}: {len(missing)} of its {len(shards)} "
            f"shards are missing or incomplete, such as {SHARD_DIR}/{missing[0]}; "
            "pass --overwrite to write the output again"
        )

    logger.info("%s already contains the complete output of this recipe", target)
    complete = [result for result in results if result is not None]
    _log_old_metadata(target, complete, hdf5=hdf5)
    return complete


def _log_old_metadata(target: Path, results: list[ShardResult], *, hdf5: bool) -> None:
    """Log where a complete output's samples do not record ``split_position``."""
    old = [r for r in results if r.n_written and r.metadata_version < METADATA_VERSION]
    if not hdf5 or not old:
        return
    logger.info(
        "%s: %d of its %d shards were written by an earlier thermosynth, whose "
        "sample metadata lack split_position; it is kept as it is, so pass "
        "--overwrite to write it again with split_position",
        target,
        len(old),
        len(results),
    )


def _check_sampling_version(target: Path, manifest: dict[str, Any]) -> None:
    """Raise OutputError if ``manifest`` records samples drawn another way.

    Manifests written before ``sampling_version`` existed are version 1.
    """
    version = manifest.get("sampling_version", 1)
    if version == SAMPLING_VERSION:
        return
    newer = (
        ", or resume with the newer thermosynth that wrote it"
        if isinstance(version, int) and version > SAMPLING_VERSION
        else ""
    )
    raise OutputError(
        f"--resume cannot reuse {target}: its {MANIFEST} has sampling_version "
        f"{version}, but this thermosynth draws samples by version "
        f"{SAMPLING_VERSION}, so the same recipe now gives other frames, "
        "anomalies or folder/ levels; pass --overwrite to write the output "
        f"again{newer}"
    )


def first_frame_size(generator: Generator) -> FrameSize:
    """Read frames in output order until one is usable; return its size.

    Raises
    ------
    FrameError
        If a frame cannot be read and ``frames.on_error`` is ``raise``, or no
        frame of the split can be read.
    """
    on_error = generator.recipe.frames.on_error
    first_error: FrameError | None = None
    for _, _, _, frame_index in generator.plan.entries():
        try:
            frame = generator.source.read(frame_index)
        except FrameError as error:
            if on_error == "raise":
                raise with_skip_hint(error) from None
            first_error = first_error or error
            continue
        check_camera(generator.recipe.camera, frame)
        output, source = generator.recipe.output, generator.loaded.source
        scale = fit_folder_scale(output, frame, source=source, frames=generator.source)
        return FrameSize(frame.shape, frame.source, scale)

    raise all_skipped_error(
        generator.loaded.source,
        f"{len(generator.source)} frames of the split",
        first_error,
    )


def check_known_sizes(generator: Generator, reference: FrameSize) -> None:
    """Raise FrameError if a planned frame's size, known unread, is not the first's.

    It runs before the scenario bank is built, so that mixed sizes stop the
    run before any simulation. Only sources with a ``frame_shape`` method,
    which reads file headers (`ArraySource`), know sizes unread; frames of
    other sources are checked as they are read. With ``frames.on_error:
    skip`` nothing is checked here, because the run skips such frames.
    """
    frame_shape = getattr(generator.source, "frame_shape", None)
    if frame_shape is None or generator.recipe.frames.on_error == "skip":
        return

    planned = sorted({entry[3] for entry in generator.plan.entries()})
    for frame_index in planned:
        shape = frame_shape(frame_index)
        if shape is None or shape == reference.shape:
            continue
        source = generator.source.sources[frame_index]
        error = mixed_size_error(source, shape, reference.shape, reference.source)
        raise with_skip_hint(error)


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
        position = sample_key(generator.recipe.split, index)[2]
        return normal_sample(index, split, frame, split_position=position), frame
    except (OutputError, RecipeError, SimulationError):
        # Skipping frames cannot help a scenario that the solver cannot run.
        raise
    except ThermosynthError as error:
        if frame is not None and frame.source not in str(error):
            error = type(error)(f"{frame.source}: {error}", keys=error.keys)
        if generator.recipe.frames.on_error == "raise":
            raise with_skip_hint(error) from None
        skipped.append(f"skipped sample {index}: {error}")
        return None


def with_skip_hint(error: ThermosynthError) -> ThermosynthError:
    """Add to a frame's error how frames.on_error: skip would skip such frames.

    A mask or colour bar that fits no frame and a calibration that cannot
    read the frames get no hint, because skipping would skip every frame of
    that size or kind. Such an error becomes a RecipeError, whose message the
    command line prefixes with the recipe file. Both keep the recipe keys of
    ``error``.
    """
    if isinstance(error, MaskSizeError | ColorbarFitError | CalibrationError):
        return RecipeError(str(error), keys=error.keys)
    return type(error)(
        f"{error}; to skip such frames with a warning instead, set "
        "frames.on_error: skip",
        keys=error.keys,
    )


def all_skipped_error(
    source: str, frames: str, first_error: FrameError | None
) -> FrameError:
    """Return the error for a run whose frames.on_error: skip skipped every frame.

    ``frames`` counts and names the frames, such as "38 frames of the split".
    The error carries the message and the recipe keys of ``first_error``,
    because the frames usually fail for one reason, such as a recipe key that
    fits none of them.
    """
    if first_error is None:
        return FrameError(
            f"{source}: none of the {frames} can be read; check frames.path and "
            "the split sizes"
        )
    return FrameError(
        f"{source}: none of the {frames} can be read, so frames.on_error: skip "
        f"skipped them all; the first failed with: {first_error}",
        keys=first_error.keys,
    )


def check_cluster_options(workers: int | None, scheduler: str | None) -> None:
    if workers is not None and scheduler is not None:
        raise ThermosynthError(
            "give either --workers (a local cluster) or --scheduler (an existing "
            "one), not both"
        )
    if workers is not None and workers < 1:
        raise ThermosynthError(f"--workers {workers} is invalid; use 1 or more")


def _open_bank(
    generator: Generator, *, cluster: DaskCluster | None, progress: bool
) -> None:
    """Read or build the scenario bank in this process, before any shard.

    On a cluster the missing entries are simulated on the workers and written
    here, and the shard tasks then only read the file.
    """
    recipe = generator.recipe
    if recipe.bank.mode == "off" or recipe.split.test_anomalous == 0:
        return

    run_entries = None
    if cluster is not None:
        run_entries = partial(simulate_entries, generator.loaded, cluster=cluster)
    try:
        generator.open_bank(progress=progress, run_entries=run_entries)
    except KeyboardInterrupt as interrupt:
        # The command line prints this after "interrupted; ". The bank's own
        # message gives how many entries its file keeps for a rerun.
        stopped = (
            "stopped while building the scenario bank, before any sample, so no "
            f"output was written and {_RESUME} has no shards to reuse"
        )
        detail = "; ".join(filter(None, [stopped, str(interrupt)]))
        raise type(interrupt)(detail) from interrupt


def _shard_runner(cluster: DaskCluster | None) -> ShardRunner[Generator]:
    """Choose where shards run: in this process, or on a Dask cluster."""
    if cluster is None:
        return _run_in_process
    return partial(run_shards, cluster=cluster)


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
    generator: SourceT,
    shards: list[Shard],
    reference: FrameSize,
    runner: ShardRunner[SourceT],
    progress: bool,
    *,
    physics: dict[str, Any],
    unit: str = "sample",
) -> list[ShardResult]:
    """Write every incomplete shard; return the results of all, in order."""
    loaded = generator.loaded
    manifest = {
        "recipe_sha256": loaded.sha256,
        "seed": loaded.recipe.seed,
        "sampling_version": SAMPLING_VERSION,
        "n_samples": len(generator),
        "shard_size": loaded.recipe.output.shard_size,
        "physics": physics,
    }
    write_manifest(stage, manifest)
    remove_temporaries(stage)
    (stage / "recipe.yaml").write_text(runnable_text(loaded))

    hdf5 = loaded.recipe.output.hdf5
    done = {s.number: load_result(stage, s, hdf5=hdf5) for s in shards}
    results = {
        number: r
        for number, r in done.items()
        if r is not None and _reusable(r, hdf5=hdf5)
    }
    todo = [shard for shard in shards if shard.number not in results]
    if results:
        logger.info("resuming: %d of %d shards complete", len(results), len(shards))

    initial = sum(shards[number].size for number in results)
    with tqdm(
        total=len(generator), initial=initial, disable=not progress, unit=unit
    ) as bar:
        for result in runner(generator, todo, stage, reference, bar.update):
            for message in result.skipped:
                logger.warning("%s", message)
            results[result.number] = result
    return [results[shard.number] for shard in shards]


def _reusable(result: ShardResult, *, hdf5: bool) -> bool:
    """Return whether a resumed run keeps a complete shard as it is.

    A shard file whose samples' metadata have another `METADATA_VERSION`,
    such as one written before ``split_position`` existed, is written again.
    Its samples are the same except for the metadata, so the output is the
    output of an unbroken run.
    """
    if not hdf5 or not result.n_written or result.metadata_version == METADATA_VERSION:
        return True
    logger.info(
        "shard %d: its samples' metadata are of version %d, not this "
        "thermosynth's %d, so the shard is written again",
        result.number,
        result.metadata_version,
        METADATA_VERSION,
    )
    return False


def _join_shards(
    stage: Path,
    loaded: LoadedRecipe,
    shards: list[Shard],
    results: list[ShardResult],
    *,
    physics: dict[str, Any],
    copied: Sequence[str] = (),
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
        attributes={
            **file_attributes(loaded),
            "physics_json": json.dumps(physics, sort_keys=True),
        },
        frame_unit=str(written[0].frame_unit),
        copied=copied,
    )


def _explain_failure(
    error: BaseException,
    stage: Path,
    target: Path,
    *,
    n_shards: int,
    overwrite: bool,
) -> BaseException:
    """Keep the staging folder if it contains complete shards; reword the error."""
    kept = sorted((stage / SHARD_DIR).glob("shard-*.json"))
    if not kept:
        discard_staging(stage)
    shards = "shard is" if len(kept) == 1 else "shards are"
    resume = f"; {len(kept)} complete {shards} kept in {stage}" if kept else ""
    options = _rerun_options(target, overwrite=overwrite)

    if _disk_full(error):
        return OutputError(
            f"disk full while writing {stage}: {error}; free space on that disk "
            f"and run again with {options}. The previous output {target}, if "
            "any, is unchanged"
        )
    if kept and isinstance(error, ThermosynthError):
        return type(error)(
            f"{error}{resume}; after fixing this, run again with {options} to "
            "reuse them",
            keys=error.keys,
        )
    if isinstance(error, KeyboardInterrupt):
        return _explain_interrupt(error, stage, len(kept), n_shards, options=options)
    return error


# The options that resume a failed run, with their `generate` arguments for
# callers of the Python API.
_RESUME = "--resume (resume=True in Python)"
_RESUME_OVERWRITE = "--resume --overwrite (resume=True, overwrite=True in Python)"


def _rerun_options(target: Path, *, overwrite: bool) -> str:
    """Return the options that let a rerun reuse the shards of a failed one.

    Without --overwrite, --resume rejects an existing output of another recipe
    or one without a manifest, and keeps a complete output of this recipe as
    it is. So a run that was replacing an output needs both options again.
    """
    if overwrite and target.exists():
        return _RESUME_OVERWRITE
    return _RESUME


def _explain_interrupt(
    error: KeyboardInterrupt,
    stage: Path,
    n_kept: int,
    n_shards: int,
    *,
    options: str = _RESUME,
) -> KeyboardInterrupt:
    """Say how many shards an interrupted run kept and how to go on.

    ``options`` are the command-line options that resume the run
    (`_rerun_options`). The result has the type of ``error``, so that the
    command line can tell SIGTERM from Ctrl-C. The command line prints the
    text after "interrupted; ". A rerun without --resume removes a staging
    folder of the same recipe (`open_staging`).
    """
    interrupt = type(error)
    if not n_kept:
        shards = f"none of the {n_shards} shards was"
        if n_shards == 1:
            shards = "the only shard was not"
        return interrupt(
            f"{shards} complete, so no output was written; a smaller "
            "output.shard_size keeps more of an interrupted run for --resume"
        )
    verb = "is" if n_kept == 1 else "are"
    afresh = "without it"
    if options == _RESUME_OVERWRITE:
        afresh = "with --overwrite alone (overwrite=True in Python)"
    return interrupt(
        f"{n_kept} of {n_shards} shards {verb} complete and kept in {stage}; "
        f"rerun with {options} to finish, or {afresh} to start afresh (which "
        "deletes that folder)"
    )


def _disk_full(error: BaseException) -> bool:
    if not isinstance(error, OSError) or isinstance(error, OutputError):
        return False
    return error.errno in (errno.ENOSPC, errno.EDQUOT) or (
        "No space left on device" in str(error)
    )


def summarise(target: Path, results: list[ShardResult]) -> Summary:
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


def file_attributes(loaded: LoadedRecipe) -> dict[str, Any]:
    """Return the HDF5 file attributes that record the recipe and its seed.

    ``recipe_dir`` is the absolute folder that relative paths in
    ``recipe_yaml`` start from; it is left out where the recipe's folder is
    not known. The seed is an int64, or its decimal string where it does not
    fit one, because an HDF5 attribute stores no larger integer.
    """
    seed = loaded.recipe.seed
    attributes: dict[str, Any] = {"recipe_yaml": loaded.text}
    if loaded.base_dir is not None:
        attributes["recipe_dir"] = str(loaded.base_dir)
    attributes["recipe_sha256"] = loaded.sha256
    attributes["seed"] = seed if seed < 2**63 else str(seed)
    return attributes


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
        self._folder_files: list[Path] = []
        self._tally = ShardTally(shard.number)
        self.skipped = self._tally.skipped

    def write(self, sample: Sample, frame: Frame) -> None:
        output = self._loaded.recipe.output
        if output.hdf5 and self._hdf5 is None:
            self._hdf5_path = temporary_shard_file(self._stage, self._shard)
            self._hdf5 = HDF5Writer(
                self._hdf5_path,
                attributes=file_attributes(self._loaded),
                frame_unit=frame.unit,
            )
        if output.folder and self._folder is None:
            self._folder = FolderWriter(
                self._stage / "folder",
                frame_unit=frame.unit,
                eight_bit=self._folder_scale,
            )
        if self._folder is not None and self._folder_scale is not None:
            self._note_folder_clipping(sample, frame, self._folder_scale)
        if self._hdf5 is not None:
            self._hdf5.write(sample)
        if self._folder is not None:
            self._folder.write(sample)

        meta = sample.metadata
        anomaly = (meta["area_px"], meta["peak_rise_K"]) if sample.label else None
        self._tally.add(frame.unit, anomaly)
        if sample.label:
            self._tally.note_rise(implausible_rise(sample.index, meta))

    def _note_folder_clipping(
        self, sample: Sample, frame: Frame, scale: EightBitScale
    ) -> None:
        """Count the pixels that the 8-bit folder scale clips in a sample.

        An anomalous sample counts its mask pixels, a normal one the frame's
        valid pixels.
        """
        if not sample.label:
            clipped = scale.clipped_px(sample.raw, frame.valid)
            self._tally.note_normal_clipping(sample.index, clipped)
            return

        clipped = scale.clipped_px(sample.raw, sample.mask)
        sample.metadata["folder_clipped_px"] = clipped
        fit = scale.headroom_to_fit(sample.raw, sample.mask)
        self._tally.note_folder_clipping(sample.index, clipped, fit)

    def close(self) -> None:
        try:
            if self._folder is not None:
                self._folder_files += self._folder.written
                self._folder.close()
                self._folder = None
        finally:
            if self._hdf5 is not None:
                self._hdf5.__exit__(None, None, None)
                self._hdf5 = None

    def commit(self) -> ShardResult:
        """Close the files and mark the shard complete; return its result."""
        self.close()
        return self._tally.commit(
            self._stage, self._shard, self._hdf5_path, folder_files=self._folder_files
        )
