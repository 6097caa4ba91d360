"""Select frame files by the labels in a data set's metadata file."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from thermosynth.errors import FrameError


def select_files(
    metadata: Path, *, path_key: str, where: Mapping[str, Any]
) -> list[str]:
    """List the file names whose metadata record matches every ``where`` item.

    Parameters
    ----------
    metadata : Path
        JSON file holding a list of records or a mapping of id to record, or a
        CSV file with a header row.
    path_key : str
        Record field that holds the file's path; only its file name is kept.
    where : mapping
        Field values a record must have, e.g. ``{"anomaly_class": "No-Anomaly"}``.

    Raises
    ------
    FrameError
        If the file cannot be parsed, a field is missing, or nothing matches.
        The last two name the recipe key ``frames.select.path_key`` or
        ``frames.select.where`` in their ``keys``.
    """
    records = _records(metadata)
    for field in (path_key, *where):
        if records and field not in records[0]:
            key = ("path_key",) if field == path_key else ("where", field)
            raise FrameError(
                f"{metadata}: records have no field {field!r}; available fields: "
                f"{', '.join(records[0])}",
                keys=(("frames", "select", *key),),
            )

    names = [
        Path(str(record[path_key])).name
        for record in records
        if all(str(record.get(k)) == str(v) for k, v in where.items())
    ]
    if not names:
        raise FrameError(
            f"{metadata}: no record matches {dict(where)}; check frames.select, "
            "or drop it with --set frames.select=null to read every file",
            keys=(("frames", "select", "where"),),
        )
    return names


def _records(metadata: Path) -> list[Mapping[str, Any]]:
    try:
        if metadata.suffix.lower() == ".csv":
            with metadata.open(newline="") as stream:
                return list(csv.DictReader(stream))
        data = json.loads(metadata.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"could not read metadata file {metadata}: {exc}") from None

    if isinstance(data, Mapping):
        data = list(data.values())
    if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
        raise FrameError(
            f"{metadata}: expected a list of records or a mapping of id to record"
        )
    return data
