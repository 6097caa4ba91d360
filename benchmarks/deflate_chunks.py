"""Time deflate libraries on the HDF5 writer's chunks and check their repeatability.

Makes demo samples of 256 x 256 pixels without writing them and applies
HDF5's byte shuffle to their four images as the writer does. It then
compresses every chunk with each library that is installed: stdlib zlib
with its default strategy and with ``Z_RLE`` (the writer's), ISA-L
(``isal``, the writer's before), libdeflate (``deflate``) and zlib-ng
(``zlib-ng``). Each library's
best of ``--repeats`` passes is reported, with the bytes against ISA-L's and
whether stdlib zlib decodes every chunk.

``--rounds`` then compresses the same chunks again that many times, each
time in a new thread after freeing random bytes of the sizes that deflate
calls allocate, and counts the chunks that come out different.

``--end-to-end N`` times ``generate`` with both writers on N samples of the
recipe of ``benchmarks/end_to_end.py`` once per installed library, in
interleaved rounds, with the HDF5 writer's deflate swapped for that
library's, and prints each library's samples per second against zlib's.

    OMP_NUM_THREADS=1 python benchmarks/deflate_chunks.py --samples 40 --rounds 50
    OMP_NUM_THREADS=1 python benchmarks/deflate_chunks.py --end-to-end 200
"""

from __future__ import annotations

import datetime
import importlib
import platform
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _cli import script_parser

from thermosynth.output.hdf5 import GZIP_LEVEL, deflate
from thermosynth.pipeline import Generator
from thermosynth.recipe.loading import load_demo_recipe


def shuffled_bytes(image: np.ndarray, dtype: np.dtype) -> bytes:
    """Return an image's bytes in ``dtype`` after HDF5's byte shuffle filter."""
    image = np.ascontiguousarray(image, dtype=dtype)
    size = image.dtype.itemsize
    shuffled = image.reshape(-1).view(np.uint8).reshape(-1, size).T
    return np.ascontiguousarray(shuffled).tobytes()


def demo_chunks(n: int) -> list[bytes]:
    """Return the shuffled frame, mask, rise and recorded rise of n demo samples."""
    with tempfile.TemporaryDirectory() as work:
        recipe = load_demo_recipe(
            overrides=[
                "frames.shape=[256, 256]",
                f"split.test_anomalous={n}",
                "split.train_normal=0",
                "split.test_normal=0",
                f"output.dir={Path(work) / 'out'}",
            ]
        )
        samples = [sample for sample, _ in Generator(recipe).samples()]
    chunks = []
    for s in samples:
        chunks.append(shuffled_bytes(s.raw, s.raw.dtype))
        chunks.append(shuffled_bytes(s.mask, np.uint8))
        chunks.append(shuffled_bytes(s.rise_K, np.float32))
        chunks.append(shuffled_bytes(s.recorded_rise, np.float32))
    return chunks


def compressors() -> dict[str, Callable[[bytes], bytes]]:
    """Return a zlib-stream compressor per installed library, at the writer's level."""
    found: dict[str, Callable[[bytes], bytes]] = {
        "zlib (stdlib)": lambda data: zlib.compress(data, GZIP_LEVEL),
        "zlib Z_RLE (the writer's)": deflate,
    }
    optional = {
        "ISA-L (isal)": ("isal.isal_zlib", "compress"),
        "libdeflate (deflate)": ("deflate", "zlib_compress"),
        "zlib-ng (zlib-ng)": ("zlib_ng.zlib_ng", "compress"),
    }
    for name, (module_name, function) in optional.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        compress = getattr(module, function)
        found[name] = lambda data, compress=compress: bytes(compress(data, GZIP_LEVEL))
    return found


def count_changed(
    compress: Callable[[bytes], bytes], chunks: list[bytes], rounds: int
) -> int:
    """Compress ``chunks`` again ``rounds`` times, as described above; count changes."""
    expected = [compress(c) for c in chunks]
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(rounds):
        garbage = [
            rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            for size in (4096, 65536, 282624, 1 << 20)
        ]
        del garbage
        outputs: list[bytes] = []
        worker = threading.Thread(
            target=lambda out=outputs: out.extend(compress(c) for c in chunks)
        )
        worker.start()
        worker.join()
        changed += sum(o != e for o, e in zip(outputs, expected, strict=True))
    return changed


def end_to_end(n: int, rounds: int) -> None:
    """Print generate's samples per second with each library's deflate."""
    from end_to_end import recipe

    import thermosynth.output.hdf5 as hdf5
    from thermosynth.pipeline import generate

    libraries = compressors()
    rates: dict[str, list[float]] = {name: [] for name in libraries}
    with tempfile.TemporaryDirectory() as work:
        list(Generator(recipe(work, 2, writers=False)).samples())  # the bank
        for _ in range(rounds):
            for name, compress in libraries.items():
                hdf5.deflate = compress
                started = time.perf_counter()
                generate(recipe(work, n, writers=True), overwrite=True, progress=False)
                rates[name].append(n / (time.perf_counter() - started))
    hdf5.deflate = deflate
    base = np.array(rates["zlib (stdlib)"])
    print("| library | samples / s, median | median of the rounds' ratios to zlib |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        ratio = np.median(np.array(values) / base)
        print(f"| {name} | {np.median(values):.1f} | {ratio:.2f}x |")


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--samples", type=int, default=40, help="demo samples")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes")
    parser.add_argument(
        "--rounds", type=int, default=0, help="repeatability rounds (default 0)"
    )
    parser.add_argument(
        "--end-to-end",
        type=int,
        default=0,
        help="samples per generate run (default 0: skip)",
    )
    args = parser.parse_args()
    if args.end_to_end:
        end_to_end(args.end_to_end, rounds=args.repeats + 2)
        return

    chunks = demo_chunks(args.samples)
    print(
        f"`OMP_NUM_THREADS=1 python benchmarks/deflate_chunks.py --samples "
        f"{args.samples} --repeats {args.repeats} --rounds {args.rounds}`, "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, "
        f"{len(chunks)} chunks, {sum(map(len, chunks)) / 1e6:.1f} MB before "
        f"deflate, level {GZIP_LEVEL}.\n"
    )
    print(
        "| library | ms per sample (4 chunks) | bytes | bytes vs ISA-L "
        "| zlib decodes | chunks changed |"
    )
    print("|---|---:|---:|---:|---|---:|")
    rows = []
    for name, compress in compressors().items():
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            outputs = [compress(c) for c in chunks]
            best = min(best, time.perf_counter() - started)
        decodes = all(
            zlib.decompress(o) == c for o, c in zip(outputs, chunks, strict=True)
        )
        changed = count_changed(compress, chunks, args.rounds) if args.rounds else "-"
        rows.append((name, best, sum(map(len, outputs)), decodes, changed))
    isal_bytes = next((r[2] for r in rows if r[0].startswith("ISA-L")), None)
    for name, seconds, size, decodes, changed in rows:
        ratio = f"{size / isal_bytes:.3f}" if isal_bytes else "-"
        print(
            f"| {name} | {1e3 * seconds / args.samples:.2f} | {size} | {ratio} "
            f"| {decodes} | {changed} |"
        )


if __name__ == "__main__":
    main()
