from __future__ import annotations

import cv2
import numpy as np
import pytest

from thermosynth.errors import FrameError
from thermosynth.frames.palettes import palette_lut
from thermosynth.frames.video import VideoSource


def write_video(path, frames_rgb):
    """Write RGB frames losslessly (FFV1), so decoded pixels match exactly."""
    height, width = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"FFV1"), 5.0, (width, height)
    )
    assert writer.isOpened()
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def grey_frames(n=5):
    rng = np.random.default_rng(0)
    levels = [rng.integers(0, 256, size=(24, 32), dtype=np.uint8) for _ in range(n)]
    return levels, [np.repeat(level[..., None], 3, axis=2) for level in levels]


def test_greyscale_frames_in_order(tmp_path):
    levels, frames = grey_frames()
    write_video(tmp_path / "clip.avi", frames)
    source = VideoSource(
        tmp_path / "clip.avi", unit="C", scale_per_level=0.1, offset=20
    )
    assert len(source) == 5
    for index in (0, 3, 1, 2, 4):  # forward and backward seeks
        frame = source.read(index)
        np.testing.assert_array_equal(frame.raw, levels[index])
        np.testing.assert_allclose(frame.values, 20 + 0.1 * levels[index])
    assert frame.source.endswith("clip.avi#4")


def test_palette_frames_decode_through_lut(tmp_path):
    lut = palette_lut("inferno")
    index = np.arange(24 * 32).reshape(24, 32) % lut.shape[0]
    write_video(tmp_path / "clip.avi", [lut[index]])
    frame = VideoSource(tmp_path / "clip.avi", mode="palette", palette="inferno").read(
        0
    )
    np.testing.assert_allclose(frame.values, index)
    assert frame.valid.all()


def test_colour_frame_in_greyscale_mode(tmp_path):
    _, frames = grey_frames(1)
    frames[0][0, 0] = (255, 0, 0)
    write_video(tmp_path / "clip.avi", frames)
    with pytest.raises(FrameError, match="has colour pixels"):
        VideoSource(tmp_path / "clip.avi").read(0)


def test_missing_video(tmp_path):
    with pytest.raises(FrameError, match="video file not found"):
        VideoSource(tmp_path / "none.avi")


def test_unreadable_video(tmp_path):
    (tmp_path / "bad.avi").write_bytes(b"not a video")
    with pytest.raises(FrameError, match="could not read any frame"):
        VideoSource(tmp_path / "bad.avi")
