"""Tests for thermosynth.blend: masks, untouched pixels, gains and encodings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from thermosynth.blend import Blended, blend, default_threshold, saturated_px
from thermosynth.errors import FrameError, RecipeError
from thermosynth.frames.encodings import LinearEncoding, PaletteEncoding
from thermosynth.frames.frame import Frame
from thermosynth.frames.palettes import palette_lut
from thermosynth.recipe import load_recipe
from thermosynth.samples import Generator


@dataclass(frozen=True)
class LinearQuantiser:
    """Greyscale encoding: value = offset + step * level, level in the dtype."""

    dtype: type
    offset: float
    step: float

    def decode(self, raw: np.ndarray) -> np.ndarray:
        return self.offset + self.step * raw.astype(np.float64)

    def encode(self, values: np.ndarray) -> np.ndarray:
        top = np.iinfo(self.dtype).max
        levels = np.rint((values - self.offset) / self.step)
        return np.clip(levels, 0, top).astype(self.dtype)


def _palette() -> np.ndarray:
    """Return 256 distinct RGB colours, 17 apart in red or green, blue fixed.

    Neighbouring levels often share the red and blue bytes, so a level change
    shows in one channel only.
    """
    level = np.arange(256)
    red = (level // 16) * 17
    green = (level % 16) * 17
    return np.stack([red, green, np.full(256, 128)], axis=-1).astype(np.uint8)


@dataclass(frozen=True)
class PaletteQuantiser:
    """RGB encoding: 256 levels over [lo, hi], each with its palette colour."""

    lo: float
    hi: float
    palette: np.ndarray

    def decode(self, raw: np.ndarray) -> np.ndarray:
        # Nearest palette colour, so off-palette bytes (JPEG) still decode.
        diff = raw[..., None, :].astype(np.int32) - self.palette.astype(np.int32)
        level = np.argmin((diff**2).sum(axis=-1), axis=-1)
        return self.lo + level * (self.hi - self.lo) / 255.0

    def encode(self, values: np.ndarray) -> np.ndarray:
        level = np.rint((values - self.lo) / (self.hi - self.lo) * 255.0)
        return self.palette[np.clip(level, 0, 255).astype(np.intp)]


def _frame(raw: np.ndarray, encoding, valid: np.ndarray, *, unit="C") -> Frame:
    return Frame(
        raw=raw,
        values=encoding.decode(raw),
        unit=unit,
        valid=valid,
        encoding=encoding,
        noise_sigma=0.05,
        source="synthetic",
    )


@st.composite
def grey_cases(draw):
    """Draw a greyscale frame, a valid mask, a non-negative rise and a threshold."""
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12))
    top = int(np.iinfo(dtype).max)
    raw = draw(hnp.arrays(dtype, shape, elements=st.integers(0, top)))
    valid = draw(hnp.arrays(np.bool_, shape))
    step = draw(st.sampled_from([0.01, 0.1, 0.5]))
    rise = draw(
        hnp.arrays(
            np.float64,
            shape,
            elements=st.floats(0.0, 50.0, allow_nan=False, allow_infinity=False),
        )
    )
    threshold = draw(st.floats(0.0, 20.0, allow_nan=False))
    encoding = LinearQuantiser(dtype=dtype, offset=20.0, step=step)
    return _frame(raw, encoding, valid), rise, threshold


@settings(max_examples=200, deadline=None)
@given(grey_cases())
def test_blend_fixed_properties(case):
    frame, rise, threshold = case
    out = blend(frame, rise, threshold=threshold)

    assert np.array_equal(
        out.mask, frame.valid & (rise > threshold) & (rise.astype(np.float32) > 0)
    )
    assert np.array_equal(out.raw[~out.mask], frame.raw[~out.mask])
    assert np.array_equal(out.raw[~frame.valid], frame.raw[~frame.valid])
    assert out.raw.dtype == frame.raw.dtype
    assert out.raw.shape == frame.raw.shape
    assert np.all(out.values[out.mask] >= frame.values[out.mask])
    assert np.array_equal(out.values, frame.encoding.decode(out.raw))


@settings(max_examples=100, deadline=None)
@given(grey_cases())
def test_blend_severity_figures(case):
    frame, rise, threshold = case
    out = blend(frame, rise, threshold=threshold)

    assert out.recorded_rise.dtype == np.float32
    assert np.all(out.recorded_rise[~out.mask] == 0.0)
    assert np.array_equal(
        out.recorded_rise[out.mask], rise[out.mask].astype(np.float32)
    )
    assert out.area_px == int(out.mask.sum())
    expected_peak = (
        float(rise[out.mask].astype(np.float32).max()) if out.area_px else 0.0
    )
    assert out.peak_rise == expected_peak


@settings(max_examples=100, deadline=None)
@given(grey_cases())
def test_blend_stretch_formula(case):
    frame, rise, threshold = case
    out = blend(frame, rise, threshold=threshold, gain="stretch")

    valid = frame.valid
    assert np.array_equal(
        out.mask, valid & (rise > threshold) & (rise.astype(np.float32) > 0)
    )
    assert np.array_equal(out.raw[~valid], frame.raw[~valid])
    assert out.raw.dtype == frame.raw.dtype
    if not valid.any():
        assert np.array_equal(out.raw, frame.raw)
        return
    v = frame.values
    applied = np.where(out.mask, rise, 0.0)
    lo, hi = v[valid].min(), v[valid].max()
    hi_new = (v + applied)[valid].max()
    if hi_new == hi:
        expected = v + applied
    else:
        expected = lo + (v + applied - lo) * (hi - lo) / (hi_new - lo)
    # The raw pixels sit on the quantiser's grid, so encode(values) == raw and
    # every valid pixel equals the encoded formula.
    assert np.array_equal(out.raw[valid], frame.encoding.encode(expected)[valid])


@dataclass(frozen=True)
class FloatEncoding:
    """Radiometric float frame: raw pixels are the values themselves."""

    def decode(self, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.float64)

    def encode(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float64)


def test_blend_stretch_exact_in_float():
    rng = np.random.default_rng(7)
    raw = rng.uniform(20.0, 30.0, size=(12, 15))
    valid = rng.random((12, 15)) > 0.2
    frame = _frame(raw, FloatEncoding(), valid)
    rise = np.zeros((12, 15))
    rise[3:7, 4:9] = rng.uniform(5.0, 15.0, size=(4, 5))
    out = blend(frame, rise, threshold=0.15, gain="stretch")

    applied = np.where(valid & (rise > 0.15), rise, 0.0)
    lo, hi = raw[valid].min(), raw[valid].max()
    hi_new = (raw + applied)[valid].max()
    expected = lo + (raw + applied - lo) * (hi - lo) / (hi_new - lo)
    assert hi_new > hi
    np.testing.assert_allclose(out.raw[valid], expected[valid], rtol=0, atol=1e-12)
    assert np.array_equal(out.raw[~valid], raw[~valid])
    assert out.raw[valid].max() == pytest.approx(hi, abs=1e-12)


def test_blend_fixed_exact_in_float():
    rng = np.random.default_rng(8)
    raw = rng.uniform(20.0, 30.0, size=(6, 7))
    valid = rng.random((6, 7)) > 0.3
    rise = rng.uniform(0.0, 2.0, size=(6, 7))
    out = blend(_frame(raw, FloatEncoding(), valid), rise, threshold=0.5)

    mask = valid & (rise > 0.5)
    assert np.array_equal(out.raw, np.where(mask, raw + rise, raw))


def test_blend_stretch_moves_outside_pixels():
    encoding = LinearQuantiser(dtype=np.uint8, offset=0.0, step=1.0)
    raw = np.array([[0, 100, 200]], dtype=np.uint8)
    frame = _frame(raw, encoding, np.ones((1, 3), dtype=bool), unit="level")
    rise = np.array([[0.0, 0.0, 200.0]])
    out = blend(frame, rise, threshold=1.0, gain="stretch")

    # lo 0, hi 200, hi_new 400: every value is halved, the hotspot tops at 200.
    assert out.raw.tolist() == [[0, 50, 200]]
    assert out.mask.tolist() == [[False, False, True]]


def test_blend_stretch_flat_frame():
    encoding = LinearQuantiser(dtype=np.uint8, offset=0.0, step=1.0)
    raw = np.full((2, 2), 30, dtype=np.uint8)
    frame = _frame(raw, encoding, np.ones((2, 2), dtype=bool), unit="level")
    out = blend(frame, np.zeros((2, 2)), threshold=0.0, gain="stretch")

    assert np.array_equal(out.raw, raw)
    assert out.area_px == 0


@st.composite
def palette_cases(draw):
    """Draw an RGB frame, partly off-palette, with a valid mask and a rise."""
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8))
    palette = _palette()
    levels = draw(hnp.arrays(np.uint8, shape))
    raw = palette[levels]
    noise = draw(hnp.arrays(np.int16, (*shape, 3), elements=st.integers(-3, 3)))
    off = draw(hnp.arrays(np.bool_, shape))
    raw = np.where(off[..., None], np.clip(raw + noise, 0, 255), raw).astype(np.uint8)
    valid = draw(hnp.arrays(np.bool_, shape))
    rise = draw(
        hnp.arrays(np.float64, shape, elements=st.floats(0.0, 10.0, allow_nan=False))
    )
    threshold = draw(st.floats(0.0, 5.0))
    encoding = PaletteQuantiser(lo=20.0, hi=45.5, palette=palette)
    return _frame(raw, encoding, valid), rise, threshold


@settings(max_examples=100, deadline=None)
@given(palette_cases())
def test_blend_palette_properties(case):
    frame, rise, threshold = case
    out = blend(frame, rise, threshold=threshold)

    assert out.raw.dtype == np.uint8
    assert out.raw.shape == frame.raw.shape
    assert np.array_equal(out.raw[~out.mask], frame.raw[~out.mask])
    new = frame.encoding.encode(frame.values + np.where(out.mask, rise, 0.0))
    old = frame.encoding.encode(frame.values)
    same_level = (new == old).all(axis=-1)
    unchanged = out.mask & same_level
    assert np.array_equal(out.raw[unchanged], frame.raw[unchanged])
    moved = out.mask & ~same_level
    assert np.array_equal(out.raw[moved], new[moved])
    assert np.all(out.values[out.mask] >= frame.values[out.mask])


def test_blend_keeps_off_palette_bytes():
    palette = _palette()
    encoding = PaletteQuantiser(lo=0.0, hi=255.0, palette=palette)
    raw = palette[np.array([[10, 10]])].copy()
    raw[0, 0] += np.array([1, 0, 2], dtype=np.uint8)  # off-palette, decodes to 10
    frame = _frame(raw, encoding, np.ones((1, 2), dtype=bool))
    out = blend(frame, np.array([[0.2, 5.0]]), threshold=0.1)

    assert out.mask.tolist() == [[True, True]]
    assert out.raw[0, 0].tolist() == raw[0, 0].tolist()
    assert out.raw[0, 1].tolist() == palette[15].tolist()


def test_blend_clips_at_dtype_top():
    encoding = LinearQuantiser(dtype=np.uint8, offset=0.0, step=1.0)
    raw = np.array([[250, 10]], dtype=np.uint8)
    frame = _frame(raw, encoding, np.ones((1, 2), dtype=bool), unit="level")
    out = blend(frame, np.array([[100.0, 0.0]]), threshold=0.5)

    assert out.raw.tolist() == [[255, 10]]
    assert out.raw.dtype == np.uint8
    assert out.peak_rise == 100.0


def test_blend_empty_mask():
    encoding = LinearQuantiser(dtype=np.uint16, offset=0.0, step=0.01)
    raw = np.full((3, 4), 2500, dtype=np.uint16)
    frame = _frame(raw, encoding, np.ones((3, 4), dtype=bool))
    out = blend(frame, np.full((3, 4), 0.1), threshold=0.15)

    assert isinstance(out, Blended)
    assert out.area_px == 0
    assert out.peak_rise == 0.0
    assert out.peak_input_rise == pytest.approx(0.1)
    assert np.array_equal(out.raw, raw)


def test_blend_invalid_pixels_with_nan_values():
    encoding = LinearQuantiser(dtype=np.uint8, offset=0.0, step=1.0)
    raw = np.array([[0, 100]], dtype=np.uint8)
    valid = np.array([[False, True]])
    frame = Frame(
        raw=raw,
        values=np.array([[np.nan, 100.0]]),
        unit="level",
        valid=valid,
        encoding=encoding,
        noise_sigma=1.0,
        source="synthetic",
    )
    out = blend(frame, np.array([[9.0, 9.0]]), threshold=1.0)

    assert out.raw.tolist() == [[0, 109]]
    assert out.mask.tolist() == [[False, True]]


def test_blend_peak_input_skips_invalid_pixels():
    encoding = LinearQuantiser(dtype=np.uint8, offset=0.0, step=1.0)
    raw = np.array([[0, 100]], dtype=np.uint8)
    frame = _frame(raw, encoding, np.array([[False, True]]), unit="level")
    out = blend(frame, np.array([[50.0, 0.5]]), threshold=1.0)

    assert out.area_px == 0
    assert out.peak_input_rise == 0.5


def _small_frame() -> Frame:
    encoding = LinearQuantiser(dtype=np.uint8, offset=0.0, step=1.0)
    raw = np.zeros((2, 3), dtype=np.uint8)
    return _frame(raw, encoding, np.ones((2, 3), dtype=bool), unit="level")


def test_blend_rejects_bad_rise():
    frame = _small_frame()
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*shape \(2, 3\)"):
        blend(frame, np.zeros((3, 2)), threshold=0.0)
    with pytest.raises(ValueError, match="negative values"):
        blend(frame, np.full((2, 3), -0.5), threshold=0.0)
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        blend(frame, np.array([[0.0, np.nan, 0.0], [0.0, 0.0, 0.0]]), threshold=0.0)


def test_blend_rejects_bad_options():
    frame = _small_frame()
    with pytest.raises(ValueError, match=r"threshold = -1\.0 is invalid"):
        blend(frame, np.zeros((2, 3)), threshold=-1.0)
    with pytest.raises(RecipeError, match="camera.gain = 'auto' is invalid"):
        blend(frame, np.zeros((2, 3)), threshold=0.0, gain="auto")  # type: ignore[arg-type]


def test_blend_rejects_bad_encoding():
    @dataclass(frozen=True)
    class WrongShape(LinearQuantiser):
        def encode(self, values: np.ndarray) -> np.ndarray:
            return super().encode(values)[..., None].repeat(3, axis=-1)

    raw = np.zeros((2, 3), dtype=np.uint8)
    encoding = WrongShape(dtype=np.uint8, offset=0.0, step=1.0)
    frame = _frame(raw, encoding, np.ones((2, 3), dtype=bool), unit="level")
    with pytest.raises(FrameError, match=r"shape \(2, 3, 3\), expected \(2, 3\)"):
        blend(frame, np.ones((2, 3)), threshold=0.0)


def test_default_threshold():
    frame = _small_frame()
    assert default_threshold(frame) == pytest.approx(3.0 * 0.05)
    assert default_threshold(frame, noise_multiple=2.0) == pytest.approx(0.1)
    with pytest.raises(RecipeError, match=r"noise_multiple = -1\.0 is invalid"):
        default_threshold(frame, noise_multiple=-1.0)


@st.composite
def encoded_cases(draw):
    """Draw a frame with a library encoding, a sparse rise and blend options."""
    from thermosynth.frames.encodings import LinearEncoding, PaletteEncoding

    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12))
    if draw(st.booleans()):
        encoding = LinearEncoding(np.uint16, scale_per_level=0.01, offset=-40.0)
        raw = draw(hnp.arrays(np.uint16, shape, elements=st.integers(5000, 9000)))
    else:
        encoding = PaletteEncoding(_palette(), low=20.0, high=45.5)
        raw = _palette()[draw(hnp.arrays(np.uint8, shape))]
    valid = draw(hnp.arrays(np.bool_, shape))
    rise = draw(
        hnp.arrays(np.float64, shape, elements=st.floats(0.0, 10.0, allow_nan=False))
    )
    rise[draw(hnp.arrays(np.bool_, shape))] = 0.0
    options = {
        "threshold": draw(st.floats(0.0, 5.0)),
        "gain": draw(st.sampled_from(["fixed", "stretch"])),
        "edge": draw(st.sampled_from(["cut", "taper"])),
    }
    return _frame(raw, encoding, valid), rise, options


@settings(max_examples=150, deadline=None)
@given(encoded_cases())
def test_blend_base_same_bytes(case):
    from thermosynth.blend import blend_base

    frame, rise, options = case
    plain = blend(frame, rise, **options)
    based = blend(frame, rise, base=blend_base(frame), **options)

    assert np.array_equal(based.raw, plain.raw)
    assert np.array_equal(based.values, plain.values, equal_nan=True)
    assert np.array_equal(based.mask, plain.mask)
    assert np.array_equal(based.recorded_rise, plain.recorded_rise)
    assert based.area_px == plain.area_px
    assert based.peak_rise == plain.peak_rise


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_saturated_px_counts_clipped_mask_pixels(dtype):
    top = np.iinfo(dtype).max
    raw = np.full((4, 5), top - 3, dtype=dtype)
    raw[0, 0] = top  # saturated already, but outside the rise
    frame = _frame(raw, LinearEncoding(dtype), np.ones((4, 5), bool), unit="level")
    rise = np.zeros((4, 5))
    rise[1:3, 1:3] = [[1.0, 2.0], [5.0, 9.0]]  # the last two pass the top

    result = blend(frame, rise, threshold=0.5)

    assert result.area_px == 4
    assert saturated_px(result, frame) == 2
    assert int(result.raw.max()) == top


def test_saturated_px_zero_for_float_frames():
    raw = np.full((3, 3), 20.0, dtype=np.float32)
    frame = _frame(raw, LinearEncoding(np.float32), np.ones((3, 3), bool))
    result = blend(frame, np.full((3, 3), 1e6), threshold=0.5)

    assert result.area_px == 9
    assert saturated_px(result, frame) == 0


@pytest.mark.parametrize(
    ("low", "high", "top_index"), [(20.0, 40.0, 255), (40.0, 20.0, 0)]
)
def test_palette_at_maximum_follows_value_order(low, high, top_index):
    lut = palette_lut("inferno")
    encoding = PaletteEncoding(lut, low=low, high=high)
    pixels = lut[[[top_index, 128, 255 - top_index]]]

    np.testing.assert_array_equal(encoding.at_maximum(pixels), [[True, False, False]])


def test_palette_at_maximum_with_repeated_top_colour():
    # The top three levels share one colour, so decode returns level 253 for
    # it; a value clipped at the top still counts as saturated.
    lut = np.array([[i, 255 - i, 0] for i in range(254)] + [[255, 255, 255]] * 2)
    lut[253] = [255, 255, 255]
    encoding = PaletteEncoding(lut.astype(np.uint8), low=20.0, high=45.5)
    raw = encoding.encode(np.array([[30.0, 44.0, 60.0]]))
    valid = np.ones((1, 3), bool)
    frame = Frame(raw, encoding.decode(raw), "C", valid, encoding, 0.05, "synthetic")
    out = blend(frame, np.array([[0.0, 5.0, 5.0]]), threshold=0.1, edge="cut")

    assert out.area_px == 2
    np.testing.assert_array_equal(encoding.at_maximum(out.raw), [[False, True, True]])
    assert saturated_px(out, frame) == 2


RECIPES = Path(__file__).resolve().parents[1] / "recipes"
BATTERY_RECIPE = RECIPES / "battery-station-inferno.yaml"


@pytest.fixture(scope="module")
def inferno_frame(data_dir):
    """A real inferno render, stretched to its min..max before it was masked."""
    folder = data_dir / "battery-station-inferno"
    masks = folder / "camera_masks"
    overrides = [
        "bank.mode=off",
        f"frames.path={folder / 'normal_masked'}",
        f"frames.valid_mask={{CAM1: {masks / 'MASK_CAM1_thermal.png'}, "
        f"CAM2: {masks / 'MASK_CAM2_thermal.png'}}}",
    ]
    return Generator(load_recipe(BATTERY_RECIPE, overrides=overrides)).read_frame(0)


def _spot(frame: Frame, rise_level: float) -> np.ndarray:
    """Return a 3 x 3 rise [level] around the inner valid pixel of lowest value."""
    inner = ndimage.binary_erosion(frame.valid, np.ones((3, 3), bool))
    values = np.where(inner, frame.values, np.inf)
    row, col = np.unravel_index(np.argmin(values), frame.shape)
    rise = np.zeros(frame.shape)
    rise[row - 1 : row + 2, col - 1 : col + 2] = rise_level
    return rise


def test_stretch_below_range_top_keeps_frame(inferno_frame):
    # The region of interest spans far less than the palette's 0..255,
    # because the frame's own min and max lay outside it. A spot that stays
    # below level 255 leaves the stretch alone.
    frame = inferno_frame
    valid_max = frame.values[frame.valid].max()
    rise = _spot(frame, 60.0)
    out = blend(frame, rise, threshold=5.0, gain="stretch", edge="cut")

    assert valid_max < 200
    assert (frame.values + rise)[frame.valid].max() > valid_max
    assert out.area_px == 9
    assert out.stretch == (1.0, 0.0)
    assert np.array_equal(out.raw[~out.mask], frame.raw[~out.mask])
    np.testing.assert_array_equal(out.values[out.mask], frame.values[out.mask] + 60.0)


def test_stretch_past_range_top_maps_to_it(inferno_frame):
    frame = inferno_frame
    rise = _spot(frame, 300.0)
    hi_new = (frame.values + rise)[frame.valid].max()
    out = blend(frame, rise, threshold=5.0, gain="stretch", edge="cut")

    gain, offset = out.stretch
    assert hi_new > 255.0
    assert gain == pytest.approx(255.0 / hi_new, rel=1e-12)
    assert offset == 0.0
    assert out.values[frame.valid].max() == 255.0
    assert saturated_px(out, frame) == 0
