"""Read output folders and compare two runs byte for byte, HDF5 chunk by chunk."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import h5py
import numpy as np


def read_tree(folder: Path) -> dict[str, bytes]:
    """Return every file under ``folder`` by its relative path, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same_trees(tree: dict[str, bytes], expected: dict[str, bytes]) -> None:
    """Assert equal file names and bytes, allowing re-encoded deflate chunks.

    ISA-L's deflate has now and then encoded a chunk as another valid stream
    of the same length on a Dask worker. An HDF5 file may differ only inside
    such chunks: same chunk places and sizes, same decompressed bytes.
    """
    assert sorted(tree) == sorted(expected)
    for name, data in expected.items():
        if tree[name] != data:
            assert name.endswith(".h5"), name
            assert_same_but_deflate(tree[name], data, name)


def assert_same_but_deflate(data: bytes, expected: bytes, name: str) -> None:
    """Assert two HDF5 files differ only inside chunks of equal content."""
    assert len(data) == len(expected), name
    differ = np.flatnonzero(
        np.frombuffer(data, np.uint8) != np.frombuffer(expected, np.uint8)
    )
    chunks, expected_chunks = _chunks(data), _chunks(expected)
    assert chunks.keys() == expected_chunks.keys(), name
    for key, (start, stop, payload) in expected_chunks.items():
        assert chunks[key][:2] == (start, stop), (name, key)
        if chunks[key][2] != payload:
            assert zlib.decompress(chunks[key][2]) == zlib.decompress(payload), key
        differ = differ[(differ < start) | (differ >= stop)]
    assert differ.size == 0, (name, differ[:10])


def _chunks(data: bytes) -> dict[tuple[str, tuple[int, ...]], tuple[int, int, bytes]]:
    """Map each (dataset, chunk origin) of a file to its byte range and bytes."""
    chunks = {}
    with h5py.File(io.BytesIO(data), "r") as file:
        for name, dataset in file.items():
            if dataset.chunks is None or dataset.compression != "gzip":
                continue
            for i in range(dataset.id.get_num_chunks()):
                info = dataset.id.get_chunk_info(i)
                end = info.byte_offset + info.size
                payload = data[info.byte_offset : end]
                chunks[name, info.chunk_offset] = (info.byte_offset, end, payload)
    return chunks
