"""Carry the files and folders a user added to an output into its replacement.

``--overwrite`` replaces what thermosynth wrote, not what a user added after
it (`atomic.added_entries` names those entries). Before the swap,
`move_added` renames each added entry into the staging folder, so that it
becomes part of the new output. A journal beside the old output lists these
moves until the swap is done, so that `put_back_added` can move them back
after a failure, or on the next run after a process was killed in between.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
from pathlib import Path

from thermosynth.errors import OutputError

logger = logging.getLogger(__name__)

Move = tuple[str, str]
"""An added entry's path in the old output and its path in the new one.

Both paths are relative. The first is the name from `atomic.added_entries`,
which ends in "/" for a folder.
"""

# An added entry whose path the new output already uses gets this suffix
# (then "-2", "-3", ...), so that neither entry replaces the other.
KEPT_SUFFIX = ".kept"


def plan_moves(target: Path, staging: Path, added: list[str]) -> list[Move]:
    """Choose where each entry ``added`` to ``target`` goes in ``staging``.

    An entry keeps its relative path unless the new output in ``staging``
    has an entry there, or a file where one of the entry's folders was. Then
    that part of the path gets `KEPT_SUFFIX`, at a name that neither output
    uses.
    """
    folders: dict[str, str] = {}
    planned: set[str] = set()
    moves = []
    for name in added:
        *parents, leaf = name.rstrip("/").split("/")
        place = ""
        for depth, part in enumerate(parents):
            key = "/".join(parents[: depth + 1])
            if key not in folders:
                folders[key] = _free_path(
                    target, staging, place + part, planned, folder=True
                )
            place = folders[key] + "/"
        moves.append(
            (name, _free_path(target, staging, place + leaf, planned, folder=False))
        )
    return moves


def _free_path(
    target: Path, staging: Path, path: str, planned: set[str], *, folder: bool
) -> str:
    """Return ``path`` if ``staging`` can take it, or the first free kept name.

    ``path`` itself is free if nothing in ``staging`` has that name, or if
    ``folder`` (more entries go inside it) and a real folder has it. A kept
    name must also be unused in ``target``, where other added entries keep
    their names.
    """
    inside = staging / path
    if folder and _real_folder(inside):
        return path
    if path not in planned and not os.path.lexists(inside):
        planned.add(path)
        return path
    number = 1
    candidate = path + KEPT_SUFFIX
    while candidate in planned or any(
        os.path.lexists(root / candidate) for root in (staging, target)
    ):
        number += 1
        candidate = f"{path}{KEPT_SUFFIX}-{number}"
    planned.add(candidate)
    return candidate


def _real_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def journal_path(retired: Path, target: Path) -> Path:
    """Return the journal of the moves into ``target``'s replacement.

    It sits in the ``.NAME.old-*`` folder of `atomic._replace`, and its name
    differs from ``target.name``, the old output's name there.
    """
    return retired / f"{target.name}.moved.json"


def move_added(target: Path, staging: Path, moves: list[Move], journal: Path) -> None:
    """Rename the added entries of ``target`` into ``staging``, as ``moves`` plan.

    ``journal`` lists the moves, on disk before the first rename, until the
    caller removes it after the swap.

    Raises
    ------
    OutputError
        If the journal cannot be written, or a rename fails. After a failed
        rename the entries that moved are back in ``target``, and the
        folders this created in ``staging`` are gone.
    """
    if not moves:
        return
    try:
        _write_journal(journal, staging, moves)
    except OSError as error:
        journal.unlink(missing_ok=True)
        raise OutputError(
            f"cannot write {journal}, the list of the entries that --overwrite "
            f"keeps: {error.strerror or error}; {target} is unchanged. Free "
            "space on that disk or make its folder writable, and run again"
        ) from error
    done: list[Move] = []
    created: list[Path] = []
    try:
        for source, destination in moves:
            created += _make_parents(staging, destination)
            os.replace(target / source, staging / destination)
            done.append((source, destination))
    except BaseException as error:
        left = put_back_added(target, staging, done, journal)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, OSError):
            source = moves[len(done)][0]
            raise _move_error(target, source, error, restored=not left) from error
        raise


def _move_error(
    target: Path, source: str, error: OSError, *, restored: bool
) -> OutputError:
    reason = error.strerror or str(error)
    state = f"{target} is unchanged"
    if not restored:
        state = f"the warning above names what is still to move back into {target}"
    return OutputError(
        f"--overwrite (overwrite=True in Python) could not move {source}, which "
        f"you added to {target}, into the new output: {reason}; {state}. Make "
        f"that entry writable, or move it out of {target} yourself, and run again"
    )


def _write_journal(journal: Path, staging: Path, moves: list[Move]) -> None:
    """Write the journal and fsync it, before any entry moves."""
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "staging": staging.name,
        "moves": moves,
    }
    with journal.open("w") as stream:
        json.dump(record, stream)
        stream.flush()
        os.fsync(stream.fileno())


def _make_parents(staging: Path, destination: str) -> list[Path]:
    """Create and return the folders missing above ``destination``, outermost first."""
    missing = [p for p in (staging / destination).parents if not p.exists()]
    missing.reverse()
    for folder in missing:
        folder.mkdir()
    return missing


def put_back_added(
    target: Path, staging: Path, moves: list[Move], journal: Path
) -> list[str]:
    """Move entries of ``moves`` that are in ``staging`` back into ``target``.

    An entry that ``staging`` does not contain (any more) is skipped, and one
    whose path in ``target`` is taken stays in ``staging``. ``journal`` is
    removed once nothing is left in ``staging``. Returns the entries left
    there, which one warning names.
    """
    left = []
    for source, destination in reversed(moves):
        moved = staging / destination
        if not os.path.lexists(moved):
            continue
        try:
            _move_back(moved, target / source)
        except OSError as error:
            left.append(f"{destination} ({error.strerror or error})")
    if left:
        logger.warning(
            "could not move %d file(s) or folder(s) that you added to %s back "
            "from %s: %s; move them back into %s yourself before you delete %s",
            len(left),
            target,
            staging,
            ", ".join(left),
            target,
            staging,
        )
    else:
        journal.unlink(missing_ok=True)
    return left


def _move_back(moved: Path, original: Path) -> None:
    if os.path.lexists(original):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(original))
    original.parent.mkdir(parents=True, exist_ok=True)
    os.replace(moved, original)


def read_journal(journal: Path) -> tuple[str, int, Path, list[Move]] | None:
    """Return the host, process id, staging folder and moves of ``journal``.

    Returns None if it is missing or unreadable. Its moves were then never
    made, because the journal is on disk before the first of them.
    """
    try:
        record = json.loads(journal.read_text())
        moves = [(str(source), str(place)) for source, place in record["moves"]]
        staging = journal.parent.parent / str(record["staging"])
        return str(record["host"]), int(record["pid"]), staging, moves
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


def log_kept(target: Path, moves: list[Move]) -> None:
    """Log one line naming the added entries that the new output ``target`` keeps."""
    if not moves:
        return
    renamed = [
        (source, place) for source, place in moves if source.rstrip("/") != place
    ]
    names = ", ".join(source for source, _ in moves)
    # A warning, not info: files kept inside a dataset's folders, such as
    # folder/train/good/, would join what a detector trains on.
    if not renamed:
        logger.warning(
            "kept %d file(s) or folder(s) you added to %s: %s",
            len(moves),
            target,
            names,
        )
        return
    logger.warning(
        "kept %d file(s) or folder(s) you added to %s: %s; because the new "
        "output uses their paths, %s",
        len(moves),
        target,
        names,
        ", ".join(f"{source} is now {place}" for source, place in renamed),
    )
