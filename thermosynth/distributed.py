"""Run the shards of a dataset on a Dask cluster.

Each shard is one task; a worker builds the recipe's `Generator` once per
process and writes the shard's files into the staging folder itself, so only
small results travel back. The workers must see the staging folder and the
input files at the same paths as the client: a local cluster always does, a
multi-node cluster needs a shared file system (see docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from thermosynth.errors import ThermosynthError
from thermosynth.output.shards import Shard, ShardResult

if TYPE_CHECKING:
    from dask.distributed import Client

    from thermosynth.bank import SimulatedEntry
    from thermosynth.pipeline import FrameSize, Generator
    from thermosynth.recipe.loading import LoadedRecipe
    from thermosynth.scenario import DrawnScenario

logger = logging.getLogger(__name__)

SCHEDULER_TIMEOUT_S = 30
# Dask configuration of the local cluster's workers: no sampling profiler.
_NO_PROFILER = {"distributed.worker.profile.enabled": False}
"""Time to wait for a scheduler given by address before giving up [s]."""

# Loggers that report the cancelled tasks and closed connections of a cluster
# that shuts down after Ctrl-C (CommClosedError, CancelledError).
_SHUTDOWN_LOGGERS = ("distributed", "tornado", "asyncio")

_GENERATORS: dict[str, Generator] = {}
"""Generators built in this worker process, by recipe hash."""


def run_shards(
    generator: Any,
    shards: list[Shard],
    stage: Path,
    reference: FrameSize,
    advance: Callable[[int], object],
    *,
    workers: int | None,
    scheduler: str | None,
    task: Callable[[LoadedRecipe, Shard, str, FrameSize], ShardResult] | None = None,
) -> Iterator[ShardResult]:
    """Write ``shards`` on a Dask cluster; yield results as shards complete.

    Parameters
    ----------
    generator : Generator or SequenceGenerator
        The recipe's generator; workers rebuild it from its recipe.
    shards : list of Shard
        Shards to write.
    stage : Path
        Staging folder, seen by every worker at this path.
    reference : FrameSize
        Size that every frame must have.
    advance : callable
        Called with the number of samples of each completed shard, e.g. a
        progress bar's ``update``.
    workers : int, optional
        Start a local cluster of this many processes, one thread each.
    scheduler : str, optional
        Address of a running scheduler to use instead.
    task : callable, optional
        Module-level function that writes one shard in a worker, called as
        ``task(loaded, shard, stage, reference)``; the default writes single
        frames, and sequence datasets pass their own.

    Raises
    ------
    ThermosynthError
        If the scheduler cannot be reached. A task's exception is raised as is,
        and the remaining tasks are cancelled.
    """
    from dask.distributed import as_completed

    if not shards:
        return
    loaded = generator.loaded
    task = task or _write_shard_task
    with _connect(workers=workers, scheduler=scheduler) as client:
        args = (task, loaded)
        futures = [
            client.submit(_task_with_warnings, *args, shard, str(stage), reference)
            for shard in shards
        ]
        sizes = {
            future.key: shard.size
            for future, shard in zip(futures, shards, strict=True)
        }
        try:
            for future in as_completed(futures):
                result, warnings = future.result()
                for name, message in warnings:
                    logging.getLogger(name).warning("%s", message)
                advance(sizes[future.key])
                yield result
        finally:
            # A local cluster closes right after this, which stops its tasks
            # without the cancellation warnings of its worker processes.
            if scheduler is not None:
                client.cancel(futures)


def simulate_entries(
    loaded: LoadedRecipe,
    drawns: Sequence[DrawnScenario],
    *,
    workers: int | None,
    scheduler: str | None,
) -> Iterator[tuple[int, SimulatedEntry]]:
    """Simulate scenario bank entries on a Dask cluster, one task per entry.

    Yields ``(i, (rise_K, events))`` for ``drawns[i]`` as tasks complete, a
    `thermosynth.bank.EntryRunner`. The client writes the bank file, so the
    workers need not see it. ``workers`` and ``scheduler`` are as for
    `run_shards`. The cluster is started for this step alone and closed
    before the shards run on a cluster of their own.
    """
    from dask.distributed import as_completed

    if not drawns:
        return
    with _connect(workers=workers, scheduler=scheduler) as client:
        # pure=False: equal draws still get a task each.
        futures = [
            client.submit(
                _task_with_warnings, _simulate_entry_task, loaded, drawn, pure=False
            )
            for drawn in drawns
        ]
        indices = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                result, warnings = future.result()
                for name, message in warnings:
                    logging.getLogger(name).warning("%s", message)
                yield indices[future.key], result
        finally:
            if scheduler is not None:
                client.cancel(futures)


@contextlib.contextmanager
def _connect(*, workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """Start a loopback-only local cluster, or connect to ``scheduler``."""
    import dask
    from dask.distributed import Client, LocalCluster

    # Without -v, worker processes log critical messages only. Their warnings
    # are about unresponsive event loops during long FiPy steps, or tasks
    # cancelled by Ctrl-C. Their errors after Ctrl-C are failed heartbeats,
    # with CommClosedError tracebacks, as the scheduler closes. A task's
    # exception reaches the client anyway.
    # Dask's own INFO lines (scheduler and nanny start, dashboard hints) come
    # only with -vv.
    worker_level = logging.WARNING
    if not logger.isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if not logger.isEnabledFor(logging.INFO):
        worker_level = logging.CRITICAL
    if scheduler is None:
        levels = {name: logging.getLogger(name).level for name in _SHUTDOWN_LOGGERS}
        # The workers' sampling profiler keeps task frames, and the h5py
        # handles in them, alive for random lengths of time. The writers
        # flush in a fixed order against that, and this cluster runs without it.
        with _sigint_ignored(), dask.config.set(_NO_PROFILER):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=worker_level,
            )
        try:
            with cluster, Client(cluster) as client, _quiet_on_error():
                logger.info("started a local Dask cluster of %s workers", workers)
                yield client
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
        return

    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except ValueError as error:
        raise ThermosynthError(
            f"--scheduler {scheduler!r} is not a valid address ({error}); give "
            "one such as tcp://10.0.0.5:8786"
        ) from None
    except (OSError, TimeoutError) as error:
        raise ThermosynthError(
            f"could not connect to the Dask scheduler at {scheduler} ({error}); "
            "check the address and that the scheduler is running"
        ) from None
    with client:
        yield client


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while worker processes start, so that they inherit it.

    Ctrl-C in a terminal reaches the whole process group. Worker processes that
    ignore it leave the shutdown to this process instead of printing their own
    KeyboardInterrupt tracebacks. A Ctrl-C during the start itself is lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _quiet_on_error() -> Iterator[None]:
    """Silence distributed's logs while a cluster shuts down after an error.

    After Ctrl-C or a failed task, the cancelled tasks and the killed worker
    processes are expected; the exception itself shows the user what happened.
    Enter it after the cluster and the client, so that their shutdown is
    silent too; the caller restores the levels.
    """
    try:
        yield
    except BaseException:
        for name in _SHUTDOWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        raise


def _task_with_warnings(
    task: Callable[..., Any], *args: Any
) -> tuple[Any, list[tuple[str, str]]]:
    """Run ``task`` in a worker; return its result and thermosynth's warnings.

    A worker process has no log configuration of its own, so the client logs
    the returned (logger name, message) pairs with the format of the command
    line, and a cluster given by --scheduler shows them too.
    """
    warnings: list[tuple[str, str]] = []
    handler = _KeepWarnings(warnings)
    package = logging.getLogger("thermosynth")
    propagate = package.propagate
    package.addHandler(handler)
    package.propagate = False
    try:
        return task(*args), warnings
    finally:
        package.removeHandler(handler)
        package.propagate = propagate


class _KeepWarnings(logging.Handler):
    """Logging handler that appends (logger name, message) of warnings and above."""

    def __init__(self, warnings: list[tuple[str, str]]) -> None:
        super().__init__(logging.WARNING)
        self.warnings = warnings

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings.append((record.name, record.getMessage()))


def _write_shard_task(
    loaded: LoadedRecipe, shard: Shard, stage: str, reference: FrameSize
) -> ShardResult:
    """Write one shard in a worker process."""
    from thermosynth.pipeline import write_shard

    return write_shard(_worker_generator(loaded), shard, Path(stage), reference)


def _simulate_entry_task(loaded: LoadedRecipe, drawn: DrawnScenario) -> SimulatedEntry:
    """Simulate one scenario bank entry in a worker process."""
    from thermosynth.bank import simulate_bank_entry

    return simulate_bank_entry(_worker_generator(loaded).simulate_entry, drawn)


def _worker_generator(loaded: LoadedRecipe) -> Generator:
    """Return this worker process's Generator of ``loaded``, built once.

    It reads the scenario bank only, because the client builds the bank
    before it hands out shards.
    """
    from thermosynth.pipeline import Generator

    # NOTE: one Generator per process is safe only with one thread per worker,
    # as local clusters start them; frame sources keep small unlocked caches.
    generator = _GENERATORS.get(loaded.sha256)
    if generator is None:
        generator = Generator(loaded, read_only_bank=True)
        _GENERATORS[loaded.sha256] = generator
    return generator
