"""Atomic output: build in a hidden folder, then move it into place.

A run that fails or is killed leaves the previous output, if any, untouched,
and never leaves a half-written folder under the final name. A new output
keeps the files and folders a user added to the one it replaces (`added`). `staged_dir`
removes its staging folder on failure; `open_staging` names it after the
recipe so that a resumed run can reuse what a killed one completed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from thermosynth.errors import OutputError
from thermosynth.output.added import (
    Move,
    journal_path,
    log_kept,
    move_added,
    plan_moves,
    put_back_added,
    read_journal,
)

logger = logging.getLogger(__name__)


# Every output folder of thermosynth contains this file, written as the folder
# moves into place, and --overwrite replaces only folders that contain it.
OUTPUT_MARKER = ".thermosynth-output"
MARKER_TEXT = "written by thermosynth; --overwrite may replace this folder\n"
# The marker then lists the folder's files and folders at every depth, one
# relative path a line (folders end in "/"), after this line, so that
# --overwrite can name the ones a user added.
MARKER_LIST_HEADER = "files and folders that thermosynth wrote here, at every depth:"
# Markers of earlier versions list only the top-level entries, after this line.
TOP_LEVEL_LIST_HEADER = "files and folders that thermosynth wrote here:"
# Top-level entries of a ``generate`` output, of this version and earlier ones.
# An output of an earlier version has no marker, so --overwrite names every
# other entry as added by the user.
GENERATE_ENTRIES = ("dataset.h5", "folder/", "manifest.json", "recipe.yaml", "shards/")


def check_writable(target: Path, *, overwrite: bool) -> None:
    """Raise OutputError before any work if ``target`` may not be written.

    Without ``overwrite`` an existing ``target`` is an error. With it,
    ``target`` may be replaced only if it is a folder that thermosynth wrote
    (or an empty one), and not the working folder or one that contains it.
    """
    _check_parents(target)
    check_not_dangling(target)
    if target.exists() and not target.is_dir():
        raise OutputError(
            f"output path {target} is a file, and the output is a folder; "
            "choose a folder path for the output (--overwrite replaces only "
            "folders)"
        )
    if target.exists() and not overwrite:
        raise OutputError(
            f"output already exists: {target}; pass --overwrite (overwrite=True "
            "in Python) to replace it, or choose another output folder"
        )
    if target.exists():
        _check_replaceable(target)


def check_not_dangling(target: Path) -> None:
    """Raise OutputError if ``target`` is a symbolic link to nothing.

    Writing through such a link would create its target, and the folders
    above it, somewhere the user did not name.
    """
    if target.is_symlink() and not target.exists():
        raise OutputError(
            f"output path {target} is a symbolic link to {os.readlink(target)}, "
            "which does not exist; remove the link or choose another output folder"
        )


def _check_replaceable(target: Path) -> None:
    """Refuse to replace the working folder or a folder thermosynth did not write."""
    working = Path.cwd().resolve()
    if target.resolve() in (working, *working.parents):
        raise OutputError(
            f"output folder {target} is the working folder or contains it, so "
            "--overwrite would delete it; choose a new folder for the output"
        )
    if any(target.iterdir()) and not is_thermosynth_output(target):
        raise OutputError(
            f"output folder {target} contains files that thermosynth did not write "
            f"(it has no {OUTPUT_MARKER} file), and --overwrite replaces only "
            "thermosynth's outputs; choose a new folder, or delete this one "
            "yourself if an older thermosynth wrote it"
        )


# Files that `thermosynth validate closeness` writes into a generate output
# after the output's marker was written, so the marker does not list them.
CLOSENESS_WRITE_BACK = ("closeness.csv", "dataset_closeness.h5")


def is_thermosynth_output(folder: Path) -> bool:
    """Return whether ``folder`` is an output folder that thermosynth wrote.

    Folders of this version contain `OUTPUT_MARKER`. A ``generate`` output of
    an earlier version is known by its manifest.json, a JSON object with the
    recipe's hash and the sample count. Other files of common names, such as
    a report.md, prove nothing.
    """
    if (folder / OUTPUT_MARKER).is_file():
        return True
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and {"recipe_sha256", "n_samples"} <= set(
        manifest
    )


@contextlib.contextmanager
def staged_dir(target: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a staging folder that replaces ``target`` when the block succeeds.

    The staging folder sits beside ``target`` so that the final rename stays
    on one file system. On an exception it is removed and ``target`` is
    unchanged. Its name carries this host and process id, so that a later
    run removes the staging folders of killed runs on this host.
    """
    recover_replaced(target)
    check_writable(target, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    prefix = f".{target.name}.partial-{_host()}-{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    staging.chmod(0o777 & ~_umask())
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replace(staging, target)


def _host() -> str:
    """Return this host's name, each character but letters, digits and dots as _."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _remove_abandoned(target: Path) -> None:
    """Remove `staged_dir` folders of ``target`` whose process on this host ended."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.partial-(.+)-(\d+)-[^-]+")
    for path in target.parent.glob(f".{target.name}.partial-*"):
        match = pattern.fullmatch(path.name)
        if match is None or match[1] != _host() or _alive(int(match[2])):
            continue
        logger.info("removing %s, left by a run that was killed", path)
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Return whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # The process exists but belongs to another user.
        return True
    return True


def staging_path(target: Path, key: str) -> Path:
    """Return the hidden staging folder of ``target`` for a run named ``key``.

    The name depends only on the target and the key (the recipe hash), so a
    run that was killed can find its staging folder again.
    """
    return target.parent / f".{target.name}.partial-{key}"


def open_staging(target: Path, key: str, *, resume: bool) -> Path:
    """Create or reuse the staging folder of ``target``; see `staging_path`.

    With ``resume`` an existing staging folder is kept, so that its complete
    parts can be reused. Without it, a leftover staging folder of the same
    name is removed first. The caller finishes with `commit_staging` or
    `discard_staging`; a killed process leaves the folder for a later resume.
    """
    staging = staging_path(target, key)
    # Staging folders of other recipes are left in place, as that recipe's
    # --resume may still want them; `output_lock` keeps two runs from
    # sharing this one.
    _warn_other_staging(target, staging)
    if staging.exists() and not resume:
        logger.info("removing staging folder %s of an earlier run", staging)
        shutil.rmtree(staging)
    elif staging.exists():
        logger.info("resuming from staging folder %s", staging)
    elif resume:
        replacing = ""
        if target.exists():
            replacing = " and replaces the output there, as --overwrite requests"
        logger.warning(
            "--resume found no staging folder of this recipe for %s, so the run "
            "starts afresh%s; %s",
            target,
            replacing,
            _missing_staging_reason(target),
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir(exist_ok=True)
    except OSError as error:
        raise unwritable_error(target, error) from error
    return staging


def unwritable_error(target: Path, error: OSError) -> OutputError:
    """Return the error for an output whose folder cannot be created or written."""
    where = error.filename or target.parent
    reason = error.strerror or str(error)
    return OutputError(
        f"cannot write the output {target}: {where}: {reason}; choose an output "
        "folder on a writable disk where you may create files"
    )


@contextlib.contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` while a run writes it.

    The lock is ``fcntl.flock`` on the file ``.NAME.lock`` beside ``target``,
    which is deleted on release. A second run into the same output is
    rejected at once, because two runs would delete each other's staging
    files. flock works between processes of one host; whether it also locks
    across hosts depends on the network file system.

    Raises
    ------
    OutputError
        If another process holds the lock, or the lock file cannot be created
        (a missing permission or a read-only disk, say).
    """
    _check_parents(target)
    check_not_dangling(target)
    path = target.parent / f".{target.name}.lock"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = _open_locked(path)
    except BlockingIOError:
        raise OutputError(
            f"another run is writing the output {target} (it has locked "
            f"{path}); wait for it to finish, or choose another output folder"
        ) from None
    except OSError as error:
        raise unwritable_error(target, error) from error
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(descriptor)


def _open_locked(path: Path) -> int:
    """Open and flock ``path``; return the descriptor.

    The holder deletes the file as it releases the lock, so a process that
    locked a file that is no longer at ``path`` tries again with a new one.
    """
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            current = os.stat(path)
        except FileNotFoundError:
            os.close(descriptor)
            continue
        except BaseException:
            os.close(descriptor)
            raise
        if os.fstat(descriptor).st_ino == current.st_ino:
            return descriptor
        os.close(descriptor)


def _warn_other_staging(target: Path, staging: Path) -> None:
    """Warn about staging folders of ``target`` that another recipe left."""
    others = [
        p for p in target.parent.glob(f".{target.name}.partial-*") if p != staging
    ]
    if not others:
        return
    logger.warning(
        "%d staging folder(s) of an interrupted run of another recipe are left "
        "beside %s, such as %s; this run cannot reuse them. Rerun that recipe "
        "with --resume (resume=True in Python) to finish it, or delete them if "
        "you no longer need them",
        len(others),
        target,
        sorted(others)[0],
    )


def _missing_staging_reason(target: Path) -> str:
    """Return why --resume found no staging folder of this recipe for ``target``."""
    others = sorted(target.parent.glob(f".{target.name}.partial-*"))
    if others:
        return "the staging folders beside it are of other recipes (above)"
    if target.exists():
        # Only a run with --overwrite gets here, because check_writable
        # rejects an existing target before any staging folder is opened.
        return (
            "a finished run leaves none, and --resume without --overwrite keeps "
            "an output of this recipe that is already complete"
        )
    return "no earlier run into this folder left one"


def commit_staging(staging: Path, target: Path, *, overwrite: bool) -> None:
    """Move a finished staging folder to ``target``, replacing it if allowed."""
    check_writable(target, overwrite=overwrite)
    _replace(staging, target)


def discard_staging(staging: Path) -> None:
    """Remove a staging folder and everything in it."""
    shutil.rmtree(staging, ignore_errors=True)


def _replace(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``, then delete the output it replaces.

    The files and folders that a user added to the old output, all but the
    closeness files of `CLOSENESS_WRITE_BACK`, first move into ``staging``
    (`move_added`). The old output then moves aside to ``.NAME.old-*/NAME``
    and ``staging`` into its place. Ctrl-C is deferred during these renames,
    and if one fails the old output and the added entries move back. A
    process killed between them leaves the added entries in ``staging`` or
    the old output aside, and `recover_replaced` restores them on the next
    run. Once the new output is in place, an interrupt only stops the
    deletion of the old one.
    """
    _write_marker(staging)
    if not target.exists():
        os.replace(staging, target)
        return

    moves = plan_moves(target, staging, _entries_to_keep(target))
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    deferred = _swap(staging, target, retired, moves)
    logger.info("replaced existing output %s", target)
    log_kept(target, moves)
    if deferred:
        _warn_not_deleted(target, retired)
        return
    try:
        shutil.rmtree(retired, ignore_errors=True)
    except KeyboardInterrupt:
        _warn_not_deleted(target, retired)


def _entries_to_keep(target: Path) -> list[str]:
    """Return the entries a user added to ``target``, all but the closeness files.

    Those files go with the old output, with a warning.
    """
    added = added_entries(target)
    written_back = [name for name in added if name in CLOSENESS_WRITE_BACK]
    if written_back:
        logger.warning(
            "--overwrite removes the per-sample closeness that validate "
            "closeness wrote into %s (%s), because it describes the replaced "
            "samples; run validate closeness again on the new output",
            target,
            ", ".join(written_back),
        )
    return [name for name in added if name not in CLOSENESS_WRITE_BACK]


def _swap(staging: Path, target: Path, retired: Path, moves: list[Move]) -> list[int]:
    """Move the added entries, then the two outputs, and return the deferred signals.

    On failure everything moves back, and ``retired`` is removed if empty.
    """
    aside = retired / target.name
    journal = journal_path(retired, target)
    with _interrupts_deferred() as deferred:
        try:
            move_added(target, staging, moves, journal)
        except BaseException:
            _remove_if_empty(retired)
            raise
        try:
            os.replace(target, aside)
            os.replace(staging, target)
        except BaseException:
            _restore(aside, target)
            put_back_added(target, staging, moves, journal)
            _remove_if_empty(retired)
            raise
    journal.unlink(missing_ok=True)
    return deferred


def _restore(aside: Path, target: Path) -> None:
    """Move an old output back from ``aside`` if the new one is not in place."""
    if aside.exists() and not target.exists():
        os.replace(aside, target)


def _remove_if_empty(folder: Path) -> bool:
    """Remove ``folder`` if it is empty, and return whether it is gone."""
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def _warn_not_deleted(target: Path, retired: Path) -> None:
    logger.warning(
        "interrupted after the new output moved into place: %s is complete, "
        "but the output it replaced was not fully deleted; remove %s",
        target,
        retired,
    )


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[list[int]]:
    """Record SIGINT, and SIGTERM if Python handles it, instead of acting on them.

    Yields the list of the signals that arrived; the caller decides what they
    mean. Only the main thread can set signal handlers, so elsewhere this
    defers nothing.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):
            previous[signum] = signal.signal(signum, record)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def recover_replaced(target: Path) -> None:
    """Restore or name what a killed `_replace` left of an earlier output.

    A process killed between the two renames of `_replace` leaves the old
    output in ``.NAME.old-*/NAME`` and nothing at ``target``; it moves back.
    Entries that a user added to it and that a killed process had moved into
    its staging folder move back too (`put_back_added`). Any other such
    folder is the rest of an old output whose deletion was interrupted, and
    one warning names them all.
    """
    leftovers = sorted(target.parent.glob(f".{target.name}.old-*"))
    if not target.exists() and not target.is_symlink():
        _restore_aside(target, leftovers)
    for retired in list(leftovers):
        _recover_added(retired, target)
        if _remove_if_empty(retired):
            leftovers.remove(retired)
    if leftovers:
        logger.warning(
            "found %d folder(s) with the rest of an earlier output of %s, left by "
            "a run that was stopped while deleting it: %s; remove them",
            len(leftovers),
            target,
            ", ".join(str(path) for path in leftovers),
        )


def _restore_aside(target: Path, leftovers: list[Path]) -> None:
    """Move the first old output found in ``leftovers`` back to ``target``."""
    for retired in leftovers:
        if (retired / target.name).is_dir():
            os.replace(retired / target.name, target)
            logger.warning(
                "restored the earlier output %s from %s, where a run that was "
                "killed while replacing it had moved it",
                target,
                retired,
            )
            return


def _recover_added(retired: Path, target: Path) -> None:
    """Move back the added entries that a killed run moved out of ``target``.

    ``retired``'s journal names them and the staging folder they went to. A
    run that is still alive on this host is left to finish its swap.
    """
    record = read_journal(journal_path(retired, target))
    if record is None:
        return
    host, pid, staging, moves = record
    if host == socket.gethostname() and pid != os.getpid() and _alive(pid):
        return
    moved = [source for source, place in moves if os.path.lexists(staging / place)]
    left = put_back_added(target, staging, moves, journal_path(retired, target))
    if moved and not left:
        logger.warning(
            "moved %d file(s) or folder(s) that you added to %s back from %s, "
            "where a run that was killed while replacing %s had moved them: %s",
            len(moved),
            target,
            staging,
            target,
            ", ".join(moved),
        )


def _write_marker(staging: Path) -> None:
    """Write `OUTPUT_MARKER`, listing the staging folder's entries at every depth."""
    listing = "".join(f"{name}\n" for name in _entries(staging))
    text = f"{MARKER_TEXT}{MARKER_LIST_HEADER}\n{listing}"
    (staging / OUTPUT_MARKER).write_text(text)


def _entries(folder: Path) -> list[str]:
    """List the relative paths below ``folder``, folders ending in ``/``."""
    names = []
    for root, dirs, files in os.walk(folder):
        relative = Path(root).relative_to(folder)
        names += [f"{(relative / d).as_posix()}/" for d in dirs]
        names += [(relative / f).as_posix() for f in files]
    return sorted(name for name in names if name != OUTPUT_MARKER)


def added_entries(folder: Path) -> list[str]:
    """Return the entries of an output that its marker does not list.

    Those are files and folders that someone added after thermosynth wrote
    the output, as paths relative to ``folder``; a folder's name ends in
    ``/``, and the entries inside an added folder are not named again. A
    marker of an earlier version lists only top-level entries, so then only
    those are compared. A ``generate`` output of a version that wrote no
    marker is compared at the top level with `GENERATE_ENTRIES`. A marker
    without a list lists nothing, and the result is empty.
    """
    marker = folder / OUTPUT_MARKER
    if not marker.exists() and is_thermosynth_output(folder):
        return _unlisted(folder, set(GENERATE_ENTRIES), deep=False)
    try:
        lines = marker.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return []

    for header in (MARKER_LIST_HEADER, TOP_LEVEL_LIST_HEADER):
        if header in lines:
            written = set(lines[lines.index(header) + 1 :])
            return _unlisted(folder, written, deep=header == MARKER_LIST_HEADER)
    return []


def _unlisted(folder: Path, written: set[str], *, deep: bool) -> list[str]:
    written = written | {OUTPUT_MARKER}
    added = []
    for root, dirs, files in os.walk(folder):
        relative = Path(root).relative_to(folder)
        for name in sorted(dirs):
            path = f"{(relative / name).as_posix()}/"
            if path not in written and path.rstrip("/") not in written:
                added.append(path)
                dirs.remove(name)
        added += [
            (relative / name).as_posix()
            for name in files
            if (relative / name).as_posix() not in written
        ]
        if not deep:
            dirs.clear()
    return sorted(added)


def write_bytes_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write one file through a temporary name and rename it into place."""
    check_file_writable(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        set_new_file_mode(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def set_new_file_mode(path: Path) -> None:
    """Give a temporary file the mode a new file gets under the umask.

    ``tempfile.mkstemp`` creates files readable by their owner alone, which
    an output renamed from it would keep.
    """
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    """Return the process umask; temporary files start private, outputs should not."""
    current = os.umask(0)
    os.umask(current)
    return current


def check_file_writable(path: Path, *, overwrite: bool) -> None:
    """Raise OutputError if ``path`` is a folder, or exists without ``overwrite``."""
    _check_parents(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file path")
    if path.exists() and not overwrite:
        raise OutputError(
            f"output file already exists: {path}; pass --overwrite "
            "(overwrite=True in Python) to replace it"
        )


def _check_parents(path: Path) -> None:
    """Raise OutputError if a folder above ``path`` exists as a file."""
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(
                f"cannot write {path}: {parent} is a file, not a folder; "
                "choose an output path inside a folder"
            )
