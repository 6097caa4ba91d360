"""Run the shards of a dataset on a Dask cluster.

Each shard is one task; a worker builds the recipe's `Generator` once per
process and writes the shard's files into the staging folder itself, so only
small results travel back. The workers must see the staging folder and the
input files at the same paths as the client: a local cluster always does, a
multi-node cluster needs a shared file system (see docs/scaling.md).

A run's steps share one `DaskCluster`: the scenario bank's entries, when some
are missing, and then the shards.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from multiprocessing import resource_tracker
from pathlib import Path
from types import TracebackType
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

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_GENERATORS: dict[str, Generator] = {}
"""Generators built in this worker process, by recipe hash."""


class DaskCluster:
    """The Dask cluster that the steps of one run share.

    With ``workers``, a local cluster starts when a step first connects and
    serves every later step. It closes when the last step ends (see
    `connect`), with `close`, or at the end of the ``with`` block. When an
    exception closes it, the logs of the shutdown are silenced. With
    ``scheduler``, each step opens its own connection and closes it when the
    step ends; the cluster keeps running.

    Parameters
    ----------
    workers : int, optional
        Start a local cluster of this many processes, one thread each.
    scheduler : str, optional
        Address of a running scheduler to use instead.
    """

    def __init__(self, *, workers: int | None, scheduler: str | None) -> None:
        self.workers = workers
        self.scheduler = scheduler
        self._local = contextlib.ExitStack()
        self._client: Client | None = None

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self._client = None
        return self._local.__exit__(kind, error, traceback)

    @contextlib.contextmanager
    def connect(self, *, last_step: bool = False) -> Iterator[Client]:
        """Yield a client for one step, starting the local cluster on first use.

        With ``last_step``, a local cluster closes when the step ends, on an
        exception too, so that its tasks have stopped when the exception
        leaves the block.

        Raises
        ------
        ThermosynthError
            If the scheduler cannot be reached.
        KeyboardInterrupt
            From this process's SIGINT or SIGTERM handler, for a signal that
            came while the local cluster started. The cluster is closed first.
        """
        if self.scheduler is not None:
            with _connect(workers=None, scheduler=self.scheduler) as client:
                yield client
            return

        if self._client is None:
            local = _connect(workers=self.workers, scheduler=None)
            self._client = self._local.enter_context(local)
        if not last_step:
            yield self._client
            return

        # The stack passes an exception on to `_connect`, which then closes
        # the cluster without logging the shutdown.
        try:
            with self._local:
                yield self._client
        finally:
            self._client = None

    def close(self) -> None:
        """Close the local cluster, if one was started."""
        self._client = None
        self._local.close()


def open_cluster(
    workers: int | None, scheduler: str | None
) -> contextlib.AbstractContextManager[DaskCluster | None]:
    """Return the run's `DaskCluster`, or a context of None to run in-process."""
    if workers is None and scheduler is None:
        return contextlib.nullcontext()
    return DaskCluster(workers=workers, scheduler=scheduler)


def run_shards(
    generator: Any,
    shards: list[Shard],
    stage: Path,
    reference: FrameSize,
    advance: Callable[[int], object],
    *,
    cluster: DaskCluster,
    task: Callable[[LoadedRecipe, Shard, str, FrameSize], ShardResult] | None = None,
) -> Iterator[ShardResult]:
    """Write ``shards`` on a Dask cluster; yield results as shards complete.

    The shards are the last step of a run, so a local ``cluster`` is closed
    once every shard is written, before the output is joined and moved into
    place. After an error it is closed before the error is raised, because
    its tasks write into ``stage``.

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
    cluster : DaskCluster
        The run's cluster.
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
        cluster.close()
        return
    loaded = generator.loaded
    task = task or _write_shard_task
    with cluster.connect(last_step=True) as client:
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
            if cluster.scheduler is not None:
                client.cancel(futures)


def simulate_entries(
    loaded: LoadedRecipe,
    drawns: Sequence[DrawnScenario],
    *,
    cluster: DaskCluster,
) -> Iterator[tuple[int, SimulatedEntry]]:
    """Simulate scenario bank entries on a Dask cluster, one task per entry.

    Yields ``(i, (rise_K, events))`` for ``drawns[i]`` as tasks complete, a
    `thermosynth.bank.EntryRunner`. The client writes the bank file, so the
    workers need not see it. A local ``cluster`` stays up for the shards.
    """
    from dask.distributed import as_completed

    if not drawns:
        return
    with cluster.connect() as client:
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
            if cluster.scheduler is not None:
                client.cancel(futures)


@contextlib.contextmanager
def _connect(*, workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """Start a loopback-only local cluster, or connect to ``scheduler``."""
    import dask
    from dask.distributed import Client, LocalCluster

    from thermosynth import cluster_logs

    # Without -v, worker processes log critical messages only. Their warnings
    # are about unresponsive event loops during long FiPy steps, or tasks
    # cancelled by Ctrl-C. Their errors after Ctrl-C are failed heartbeats,
    # with CommClosedError tracebacks, as the cluster closes. A task's
    # exception reaches the client anyway. With -v they log warnings, but
    # nothing below CRITICAL once they close (`cluster_logs.QuietWorkerClose`).
    # Dask's own INFO lines (scheduler and nanny start, dashboard hints) come
    # only with -vv.
    worker_level = logging.WARNING
    if not logger.isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if not logger.isEnabledFor(logging.INFO):
        worker_level = logging.CRITICAL
    if scheduler is None:
        levels = cluster_logs.shutdown_levels()
        # The workers' sampling profiler keeps task frames, and the h5py
        # handles in them, alive for random lengths of time. The writers
        # flush in a fixed order against that, and this cluster runs without it.
        with _stop_signals_held() as held, dask.config.set(_NO_PROFILER):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=worker_level,
                plugins=cluster_logs.worker_plugins(),
            )
        try:
            with cluster, Client(cluster) as client, cluster_logs.quiet_on_error():
                _raise_held(held)
                logger.info("started a local Dask cluster of %s workers", workers)
                yield client
        finally:
            cluster_logs.restore_levels(levels)
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
def _stop_signals_held() -> Iterator[list[int]]:
    """Hold back SIGINT and SIGTERM while a local cluster starts; yield them.

    Ctrl-C in a terminal reaches the whole process group. The worker
    processes inherit SIGINT blocked from the threads that start them, so
    they leave the shutdown to this process instead of printing their own
    KeyboardInterrupt tracebacks. This process only records both signals
    here. An exception inside the cluster's constructor would leave its
    worker processes without an owner, so `_raise_held` raises a recorded
    signal once the cluster can be closed.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: object) -> None:
        received.append(signum)

    # The resource tracker's start unblocks SIGINT in the thread that starts
    # it (CPython 3.11 multiprocessing/resource_tracker.py), which would be
    # the thread that then starts a worker process.
    resource_tracker.ensure_running()
    previous = {signum: signal.signal(signum, record) for signum in _STOP_SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield received
    finally:
        # A SIGINT pending since the block reaches `record` here.
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_held(received: list[int]) -> None:
    """Send this process the first signal held back, to its own handler.

    The command line's handlers turn SIGINT into KeyboardInterrupt and
    SIGTERM into `thermosynth.cli.Terminated`. A signal whose handler
    ignores it is ignored now too.
    """
    if received:
        logger.debug("signal %d came while the local cluster started", received[0])
        signal.raise_signal(received[0])


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
