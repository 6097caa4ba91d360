"""Dask worker preload: shard tasks send Ctrl-C once and block until the worker closes.

Set ``DASK_DISTRIBUTED__WORKER__PRELOAD`` to this file's path and
``BLOCKED_SHARDS_FLAG`` to a path that does not exist. The first shard task
of the cluster creates that file and sends SIGINT to its process group, as
Ctrl-C in a terminal does. The worker processes have SIGINT blocked, so only
the client stops. Every shard task waits until its worker closes, so the
workers are busy while the client closes the cluster and no shard completes.
"""

from __future__ import annotations

import os
import signal
import threading

from thermosynth import distributed

_closing = threading.Event()


def _blocked_shard(*args: object) -> None:
    try:
        flag = os.open(os.environ["BLOCKED_SHARDS_FLAG"], os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        pass
    else:
        os.close(flag)
        os.killpg(os.getpgid(0), signal.SIGINT)
    _closing.wait()


def dask_setup(worker: object) -> None:
    distributed._write_shard_task = _blocked_shard


def dask_teardown(worker: object) -> None:
    _closing.set()
