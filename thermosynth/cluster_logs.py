"""Keep Dask's shutdown logs of a local cluster out of the command line's output.

Imported only where a local cluster starts, because it imports Dask.

This process closes its local cluster on purpose: at the end of a run, after
Ctrl-C or SIGTERM, and after a failed task. The cancelled tasks, closed
connections and failed heartbeats that Dask then logs (CancelledError and
CommClosedError tracebacks) tell the user nothing, because the exception or
the summary line shows what happened. With -vv they are printed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from distributed import Worker
from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

logger = logging.getLogger(__name__)

# Loggers that report the cancelled tasks and closed connections of a cluster
# that shuts down after Ctrl-C (CommClosedError, CancelledError).
_SHUTDOWN_LOGGERS = ("distributed", "tornado", "asyncio")

_CLOSING = (Status.closing, Status.closing_gracefully, Status.closed)


def shutdown_levels() -> dict[str, int]:
    """Return the levels of the shutdown loggers, for `restore_levels`."""
    return {name: logging.getLogger(name).level for name in _SHUTDOWN_LOGGERS}


def restore_levels(levels: dict[str, int]) -> None:
    """Set the shutdown loggers back to ``levels`` of `shutdown_levels`."""
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def worker_plugins() -> tuple[QuietWorkerClose, ...]:
    """Return the plugins of a local cluster's workers: none with -vv."""
    if logger.isEnabledFor(logging.DEBUG):
        return ()
    return (QuietWorkerClose(),)


@contextlib.contextmanager
def quiet_on_error() -> Iterator[None]:
    """Silence distributed's logs while a cluster shuts down after an error.

    After Ctrl-C or a failed task, the cancelled tasks and the killed worker
    processes are expected; the exception itself shows the user what happened.
    Enter it after the cluster and the client, so that their shutdown is
    silent too; the caller restores the levels. With -vv nothing is silenced.
    """
    try:
        yield
    except BaseException:
        if not logger.isEnabledFor(logging.DEBUG):
            for name in _SHUTDOWN_LOGGERS:
                logging.getLogger(name).setLevel(logging.CRITICAL)
        raise


class QuietWorkerClose(WorkerPlugin):
    """Dask worker plugin that drops the worker's Dask logs once it closes.

    A worker process writes its logs to the terminal itself, so the levels
    that `quiet_on_error` sets in the client do not reach it. The client
    closes the worker processes when it closes the cluster, and their Dask
    logs from then on are shutdown noise. Records below CRITICAL from the
    shutdown loggers are dropped once the worker's status is closing or
    closed, by a filter on the handlers that exist when the worker starts.
    """

    name = "thermosynth-quiet-close"

    def setup(self, worker: Worker) -> None:
        """Add the filter to the handlers of the shutdown loggers and the root."""
        closing = _DropWhileClosing(worker)
        names = (*_SHUTDOWN_LOGGERS, None)
        for handler in {h for n in names for h in logging.getLogger(n).handlers}:
            handler.addFilter(closing)


class _DropWhileClosing(logging.Filter):
    """Log filter that drops a closing worker's records below CRITICAL."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL or self.worker.status not in _CLOSING:
            return True
        return record.name.split(".")[0] not in _SHUTDOWN_LOGGERS
