"""Animate sequences: normal, anomalous, rise and mask, one time step a frame.

A GIF is encoded with Pillow and an MP4 with ``cv2.VideoWriter`` (codec
``mp4v``). Both are drawn from the same matplotlib frames, one per time step,
with fixed colour scales per row so that growth shows as growth.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # NOTE: the CLI draws to files only; no display is needed.

import cv2  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from PIL import Image  # noqa: E402

from thermosynth.errors import OutputError, ThermosynthError  # noqa: E402
from thermosynth.frames.frame import Frame  # noqa: E402
from thermosynth.output.atomic import (  # noqa: E402
    check_file_writable,
    set_new_file_mode,
    write_bytes_atomic,
)
from thermosynth.output.sequence_writers import SequenceSample  # noqa: E402
from thermosynth.preview import log_drawn, pick_varied  # noqa: E402
from thermosynth.recipe.loading import LoadedRecipe  # noqa: E402
from thermosynth.sequences import SequenceEntry, SequenceGenerator  # noqa: E402

COLUMNS = ("normal", "anomalous", "surface rise [K]", "mask")
FORMATS = (".gif", ".mp4")


def write_animated_preview(
    loaded: LoadedRecipe,
    *,
    n: int,
    path: Path,
    overwrite: bool = False,
    playback_fps: float = 5.0,
) -> tuple[Path, int]:
    """Generate ``n`` anomalous sequences and animate them to ``path``.

    The scenarios take turns, as in `choose_sequences`.

    Parameters
    ----------
    loaded : LoadedRecipe
        Validated recipe with a ``sequence`` section.
    n : int
        Number of anomalous sequences, one row each, >= 1.
    path : Path
        Output file, ``.gif`` or ``.mp4``.
    overwrite : bool, optional
        Replace an existing file.
    playback_fps : float, optional
        Frames per second of the animation [s-1], independent of the
        recipe's ``sequence.fps``, so slow processes play back quickly.

    Returns
    -------
    path : Path
        ``path``, with one animation frame per time step.
    n_drawn : int
        Sequences drawn, fewer than ``n`` when the recipe plans fewer
        anomalous sequences.

    Raises
    ------
    ThermosynthError
        If ``path`` has another suffix, ``n`` < 1 or ``playback_fps`` <= 0.
    OutputError
        If ``path`` exists and ``overwrite`` is false, or the MP4 encoder
        cannot be opened.
    """
    _check_arguments(path, n, playback_fps)
    check_file_writable(path, overwrite=overwrite)
    generator = SequenceGenerator(loaded)
    rows: list[tuple[SequenceSample, list[Frame]]] = []
    entries = choose_sequences(generator, n)
    for entry in entries:
        frames = generator.read_window(entry)
        start = time.perf_counter()
        sample = generator.anomalous(entry.index, frames)
        log_drawn(entry.index, sample.metadata, len(rows) + 1, len(entries), start)
        rows.append((sample, frames))

    images = render_frames(rows, generator.times_s)
    if path.suffix.lower() == ".gif":
        write_bytes_atomic(path, _gif_bytes(images, playback_fps), overwrite=overwrite)
    else:
        _write_mp4(path, images, playback_fps)
    return path, len(rows)


def choose_sequences(generator: SequenceGenerator, n: int) -> list[SequenceEntry]:
    """Choose ``n`` anomalous sequences, taking the scenarios in turn.

    Each scenario gets a row before any gets a second, so a short preview
    shows every kind the recipe makes. A sequence's scenario is chosen once;
    a retry after a weak draw keeps it. Sequences keep their dataset order.

    Raises
    ------
    ThermosynthError
        If the recipe plans no anomalous sequence.
    """
    anomalous = [entry for entry in generator.entries if entry.label]
    if not anomalous:
        raise ThermosynthError(
            "the recipe plans no anomalous sequence to preview; raise "
            "split.test_anomalous",
            keys=(("split", "test_anomalous"),),
        )
    return pick_varied(
        anomalous,
        n=n,
        n_kinds=len(generator.recipe.scenarios),
        kind=lambda entry: generator.planned_scenario(entry.index),
    )


def _check_arguments(path: Path, n: int, playback_fps: float) -> None:
    if path.suffix.lower() not in FORMATS:
        raise ThermosynthError(
            f"animated preview {path} must end in .gif or .mp4; for a still "
            "preview of single frames, remove the recipe's sequence section "
            "or pass --set sequence=null"
        )
    if n < 1:
        raise ThermosynthError(f"n = {n} is invalid; draw at least one sequence")
    if not playback_fps > 0:
        raise ThermosynthError(
            f"playback_fps = {playback_fps} is invalid; it must be > 0 [s-1]"
        )


def render_frames(
    rows: list[tuple[SequenceSample, list[Frame]]], times_s: np.ndarray
) -> list[np.ndarray]:
    """Draw one RGB uint8 image (H, W, 3) per time step, all of one size."""
    figure, axes = plt.subplots(
        len(rows), 4, figsize=(11, 2.6 * len(rows)), squeeze=False, layout="constrained"
    )
    for ax, title in zip(axes[0], COLUMNS, strict=True):
        ax.set_title(title)
    updaters = [
        _draw_row(sample, frames, row)
        for (sample, frames), row in zip(rows, axes, strict=True)
    ]

    canvas = FigureCanvasAgg(figure)
    images = []
    for t, time_s in enumerate(times_s):
        for update in updaters:
            update(t)
        figure.suptitle(f"t = {time_s:.1f} s after onset")
        canvas.draw()
        images.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    plt.close(figure)
    return images


class _RowUpdater:
    """Set one row's images to time step ``t``."""

    def __init__(
        self,
        sample: SequenceSample,
        frames: list[Frame],
        artists: list[AxesImage],
        values: np.ndarray | None,
    ):
        self.sample = sample
        self.frames = frames
        self.artists = artists
        self.values = values

    def __call__(self, t: int) -> None:
        normal, anomalous, rise, mask = self.artists
        if self.values is None:
            normal.set_data(self.frames[t].raw)
            anomalous.set_data(self.sample.raw[t])
        else:
            normal.set_data(self.frames[t].values)
            anomalous.set_data(self.values[t])
        rise.set_data(self.sample.rise_K[t])
        mask.set_data(self.sample.mask[t])
        area = self.sample.metadata["area_px"][t]
        peak = self.sample.metadata["peak_rise_K"][t]
        mask.axes.set_xlabel(f"{area} px, simulated peak {peak:.2f} K", fontsize=8)


def _draw_row(
    sample: SequenceSample, frames: list[Frame], row: np.ndarray
) -> _RowUpdater:
    """Draw time step 0 with colour scales that fit every time step."""
    unit = {"C": "[C]", "K": "[K]", "level": "[level]"}[frames[0].unit]
    values = None
    if frames[0].raw.ndim == 3:
        normal = row[0].imshow(frames[0].raw)
        anomalous = row[1].imshow(sample.raw[0])
    else:
        values = np.stack(
            [
                frame.encoding.decode(raw)
                for frame, raw in zip(frames, sample.raw, strict=True)
            ]
        )
        valid = np.stack([frame.valid for frame in frames])
        low, high = np.percentile(
            np.stack([frame.values for frame in frames])[valid], [0.5, 99.5]
        )
        high = max(high, float(values[valid].max()))
        normal = row[0].imshow(frames[0].values, cmap="inferno", vmin=low, vmax=high)
        anomalous = row[1].imshow(values[0], cmap="inferno", vmin=low, vmax=high)
        plt.colorbar(anomalous, ax=row[1], label=unit, shrink=0.8)

    peak = max(float(sample.rise_K.max()), 1e-6)
    rise = row[2].imshow(sample.rise_K[0], cmap="magma", vmin=0.0, vmax=peak)
    plt.colorbar(rise, ax=row[2], label="[K]", shrink=0.8)
    mask = row[3].imshow(sample.mask[0], cmap="gray", vmin=0, vmax=1)
    row[0].set_ylabel(f"#{sample.index} {sample.kind}", fontsize=8)
    for ax in row:
        ax.set_xticks([])
        ax.set_yticks([])
    return _RowUpdater(sample, frames, [normal, anomalous, rise, mask], values)


def _gif_bytes(images: list[np.ndarray], playback_fps: float) -> bytes:
    """Encode the images as a looping GIF."""
    frames = [Image.fromarray(image) for image in images]
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=round(1000 / playback_fps),
        loop=0,
    )
    return buffer.getvalue()


def _write_mp4(path: Path, images: list[np.ndarray], playback_fps: float) -> None:
    """Encode the images as MP4 under a temporary name, then rename it."""
    height, width = images[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".mp4", dir=path.parent
    )
    os.close(handle)
    try:
        writer = cv2.VideoWriter(
            temporary, cv2.VideoWriter.fourcc(*"mp4v"), playback_fps, (width, height)
        )
        if not writer.isOpened():
            raise OutputError(
                f"OpenCV could not open an MP4 encoder for {path}; write a .gif instead"
            )
        for image in images:
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        writer.release()
        set_new_file_mode(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
