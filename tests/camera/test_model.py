"""Tests for thermosynth.camera.model: Camera settings and record_rise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from planck_quad import band_radiance_quad, temperature_quad

from thermosynth.camera import Camera, apparent_rise_K, blur, record_rise
from thermosynth.camera.radiance import band_radiance, band_temperature
from thermosynth.errors import FrameError, RecipeError, SimulationError
from thermosynth.frames.frame import Frame


@dataclass(frozen=True)
class LinearQuantiser:
    """uint16 encoding: value = offset + step * level."""

    offset: float
    step: float

    def decode(self, raw: np.ndarray) -> np.ndarray:
        return self.offset + self.step * raw.astype(np.float64)

    def encode(self, values: np.ndarray) -> np.ndarray:
        levels = np.rint((values - self.offset) / self.step)
        return np.clip(levels, 0, 65535).astype(np.uint16)


def _frame(unit: str, *, offset: float = 0.0, step: float = 0.01) -> Frame:
    rng = np.random.default_rng(3)
    raw = rng.integers(2000, 4000, size=(16, 20)).astype(np.uint16)
    encoding = LinearQuantiser(offset=offset, step=step)
    return Frame(
        raw=raw,
        values=encoding.decode(raw),
        unit=unit,
        valid=np.ones((16, 20), dtype=bool),
        encoding=encoding,
        noise_sigma=0.05,
        source="synthetic.npy",
    )


def _rise() -> np.ndarray:
    rise = np.zeros((16, 20))
    rise[5:10, 6:12] = 4.0
    return rise


def test_record_rise_identity_in_celsius():
    out = record_rise(Camera(), _rise(), _frame("C"), ambient_C=22.0)

    np.testing.assert_allclose(out, _rise(), rtol=0, atol=1e-10)


def test_record_rise_kelvin_matches_celsius():
    camera = Camera(emissivity_surface=0.7, blur_sigma_px=1.5)
    frame_C = _frame("C")
    frame_K = _frame("K", offset=273.15)
    out_C = record_rise(camera, _rise(), frame_C, ambient_C=22.0)
    out_K = record_rise(camera, _rise(), frame_K, ambient_C=22.0)

    np.testing.assert_allclose(out_K, out_C, rtol=0, atol=1e-9)


def test_record_rise_emissivity_then_blur():
    # The blur acts on the band radiance that the apparent rise adds. The
    # frame's pixels differ by up to 20 K, so the result differs from the
    # blurred apparent rise by up to about 0.3 K.
    camera = Camera(emissivity_surface=0.8, blur_sigma_px=2.0, reflected_C=18.0)
    frame = _frame("C")
    out = record_rise(camera, _rise(), frame, ambient_C=22.0)
    apparent = apparent_rise_K(
        _rise(),
        frame.values,
        emissivity_surface=0.8,
        emissivity_setting=0.95,
        reflected_C=18.0,
    )
    base_K = frame.values + 273.15
    base = band_radiance(base_K)
    excess = band_radiance(base_K + apparent) - base
    expected = band_temperature(base + blur(excess, sigma_px=2.0)) - base_K

    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9)
    assert out.max() < 4.0


def test_record_rise_reflected_defaults_to_ambient():
    frame = _frame("C")
    unset = record_rise(Camera(emissivity_surface=0.6), _rise(), frame, ambient_C=30.0)
    explicit = record_rise(
        Camera(emissivity_surface=0.6, reflected_C=30.0), _rise(), frame, ambient_C=30.0
    )

    assert np.array_equal(unset, explicit)


def test_record_rise_levels():
    camera = Camera(levels_per_kelvin=12.5)
    out = record_rise(camera, _rise(), _frame("level"), ambient_C=25.0)

    np.testing.assert_allclose(out, 12.5 * _rise(), rtol=0, atol=1e-8)


def test_record_rise_levels_use_ambient_base():
    camera = Camera(levels_per_kelvin=2.0, emissivity_surface=0.8)
    out = record_rise(camera, _rise(), _frame("level"), ambient_C=25.0)
    expected = 2.0 * apparent_rise_K(
        _rise(),
        25.0,
        emissivity_surface=0.8,
        emissivity_setting=0.95,
        reflected_C=25.0,
    )

    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_record_rise_invalid_base_pixels():
    frame = _frame("C")
    values = frame.values.copy()
    values[0, :] = np.nan
    valid = np.ones(frame.shape, dtype=bool)
    valid[0, :] = False
    holed = Frame(
        raw=frame.raw,
        values=values,
        unit="C",
        valid=valid,
        encoding=frame.encoding,
        noise_sigma=frame.noise_sigma,
        source=frame.source,
    )
    rise = np.full(frame.shape, 2.0)
    out = record_rise(
        Camera(emissivity_surface=0.8, blur_sigma_px=1.0), rise, holed, ambient_C=21.0
    )

    assert np.all(np.isfinite(out))


def test_record_rise_levels_need_scale():
    with pytest.raises(RecipeError, match="set camera.levels_per_kelvin"):
        record_rise(Camera(), _rise(), _frame("level"), ambient_C=25.0)


def test_record_rise_rejects_bad_rise():
    with pytest.raises(ValueError, match=r"shape \(4, 4\).*shape \(16, 20\)"):
        record_rise(Camera(), np.zeros((4, 4)), _frame("C"), ambient_C=25.0)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, samples\)"):
        record_rise(Camera(), np.zeros((16, 20, 2, 2)), _frame("C"), ambient_C=25.0)
    rise = _rise()
    rise[0, 0] = np.inf
    with pytest.raises(ValueError, match="1 NaN or infinite values"):
        record_rise(Camera(), rise, _frame("C"), ambient_C=25.0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("emissivity_surface", 1.3, r"camera.emissivity_surface = 1\.3 is invalid"),
        ("emissivity_setting", 0.0, r"camera.emissivity_setting = 0\.0 is invalid"),
        ("blur_sigma_px", -0.5, r"camera.blur_sigma_px = -0\.5 is invalid"),
        ("levels_per_kelvin", 0.0, r"camera.levels_per_kelvin = 0\.0 is invalid"),
        ("reflected_C", float("nan"), r"camera.reflected_C = nan is invalid"),
        ("gain", "auto", r"camera.gain = 'auto' is invalid"),
        ("reflected_C", -200.0, r"camera.reflected_C = -200\.0 is invalid"),
        ("band_um", (14.0, 7.5), r"camera.band_um = \(14\.0, 7\.5\) is invalid"),
    ],
)
def test_camera_rejects_bad_settings(key, value, message):
    with pytest.raises(RecipeError, match=message):
        Camera(**{key: value})


@pytest.mark.parametrize("unit", ["C", "K", "level"])
@pytest.mark.parametrize("sigma_px", [0.0, 0.8, 2.5])
def test_record_rise_base_same_bits(unit, sigma_px):
    from thermosynth.camera.model import recording_base

    camera = Camera(
        blur_sigma_px=sigma_px,
        emissivity_surface=0.8,
        emissivity_setting=0.95,
        levels_per_kelvin=12.5 if unit == "level" else None,
    )
    frame = _frame(unit, offset=273.15 if unit == "K" else 0.0)
    base = recording_base(camera, frame, ambient_C=22.0)
    rises = [_rise(), np.zeros((16, 20)), np.full((16, 20), 0.5)]
    corner = np.zeros((16, 20))
    corner[0, 19] = 3.0
    rises.append(corner)

    for rise in rises:
        plain = record_rise(camera, rise, frame, ambient_C=22.0)
        based = record_rise(camera, rise, frame, ambient_C=22.0, base=base)
        assert np.array_equal(based, plain)


def test_record_rise_base_rejects_other_shape():
    from thermosynth.camera.model import recording_base

    camera = Camera(blur_sigma_px=1.0)
    base = recording_base(camera, _frame("C"), ambient_C=22.0)
    other = Frame(
        raw=np.zeros((8, 8), np.uint16),
        values=np.full((8, 8), 25.0),
        unit="C",
        valid=np.ones((8, 8), bool),
        encoding=LinearQuantiser(offset=0.0, step=0.01),
        noise_sigma=0.05,
        source="small.npy",
    )
    with pytest.raises(ValueError, match="made for a frame of shape"):
        record_rise(camera, np.zeros((8, 8)), other, ambient_C=22.0, base=base)


def _flat_frame(unit: str, value: float, shape: tuple[int, int]) -> Frame:
    encoding = LinearQuantiser(offset=0.0, step=0.01)
    values = np.full(shape, value)
    return Frame(
        raw=encoding.encode(values),
        values=values,
        unit=unit,
        valid=np.ones(shape, dtype=bool),
        encoding=encoding,
        noise_sigma=0.05,
        source="flat.npy",
    )


def test_camera_band_default_lwir():
    assert Camera().band_um == (7.5, 14.0)
    assert Camera(band_um=[3, 5]).band_um == (3.0, 5.0)


@pytest.mark.parametrize("unit", ["C", "level"])
def test_blur_mixes_radiance_not_temperature(unit):
    # Alternate columns at 600 C and 25 C, blurred with sigma 3 px, mix half
    # and half inside the frame. The lens averages band radiance, which
    # records 379 C there over 8-14 um (383 C over 7.5-14 um), not the
    # 312.5 C of averaged temperatures. Level frames take the ambient
    # temperature as their base.
    shape = (40, 40)
    band = (8.0, 14.0)
    rise = np.zeros(shape)
    rise[:, ::2] = 575.0
    scale = 2.0 if unit == "level" else None
    camera = Camera(blur_sigma_px=3.0, levels_per_kelvin=scale, band_um=band)
    out = record_rise(camera, rise, _flat_frame(unit, 25.0, shape), ambient_C=25.0)

    cold = band_radiance_quad(298.15, band)
    hot = band_radiance_quad(873.15, band)
    expected_C = temperature_quad(0.5 * (cold + hot), band) - 273.15
    recorded_C = 25.0 + out[15:25, 15:25] / (scale or 1.0)
    np.testing.assert_allclose(recorded_C, expected_C, rtol=0, atol=0.01)
    assert expected_C == pytest.approx(379.0, abs=1.0)


def test_small_rise_blur_matches_temperature_blur():
    # For a 0.5 K rise on a smooth base, blurring radiance differs from
    # blurring temperature only to second order in the rise.
    shape = (48, 64)
    values = 25.0 + np.linspace(0.0, 10.0, shape[1])[None, :] * np.ones(shape)
    frame = Frame(
        raw=np.zeros(shape, np.uint16),
        values=values,
        unit="C",
        valid=np.ones(shape, dtype=bool),
        encoding=LinearQuantiser(offset=0.0, step=0.01),
        noise_sigma=0.05,
        source="gradient.npy",
    )
    rise = np.zeros(shape)
    rise[20:26, 30:36] = 0.5
    camera = Camera(blur_sigma_px=2.0, emissivity_surface=0.9)
    out = record_rise(camera, rise, frame, ambient_C=22.0)
    apparent = apparent_rise_K(
        rise,
        values,
        emissivity_surface=0.9,
        emissivity_setting=0.95,
        reflected_C=22.0,
    )

    np.testing.assert_allclose(out, blur(apparent, sigma_px=2.0), rtol=0, atol=1e-3)
    assert out.max() > 0.1


def test_record_rise_rejects_out_of_range_frame():
    frame = _flat_frame("C", -150.0, (16, 20))
    with pytest.raises(FrameError, match=r"flat\.npy has apparent temperatures of "):
        record_rise(Camera(), _rise(), frame, ambient_C=22.0)


def test_out_of_range_message_own_range():
    # Half the pixels invalid: the ambient that fills in for them is no
    # part of the frame's range.
    frame = _flat_frame("C", -150.0, (16, 20))
    frame.valid[:8] = False
    message = r"apparent temperatures of -150\.00 to -150\.00 C"

    with pytest.raises(FrameError, match=message):
        record_rise(Camera(), _rise(), frame, ambient_C=22.0)


def test_record_rise_rejects_too_hot_rise():
    rise = _rise() * 1e5
    with pytest.raises(SimulationError, match="above 100000 K"):
        record_rise(Camera(), rise, _frame("C"), ambient_C=22.0)


@pytest.mark.parametrize("unit", ["C", "level"])
def test_footprint_samples_mix_radiance(unit):
    # A pixel a quarter covered by a 575 K rise on 25 C integrates a quarter
    # of the hot radiance: 25 C + 575 K averaged in temperature reads
    # 168.75 C, in radiance over 8-14 um far more.
    shape = (6, 6)
    band = (8.0, 14.0)
    samples = np.zeros((*shape, 4))
    samples[2, 3, 0] = 575.0
    scale = 2.0 if unit == "level" else None
    camera = Camera(levels_per_kelvin=scale, band_um=band)
    frame = _flat_frame(unit, 25.0, shape)
    out = record_rise(camera, samples, frame, ambient_C=25.0)

    cold = band_radiance_quad(298.15, band)
    hot = band_radiance_quad(873.15, band)
    expected_C = temperature_quad(0.75 * cold + 0.25 * hot, band) - 273.15
    assert 25.0 + out[2, 3] / (scale or 1.0) == pytest.approx(expected_C, abs=0.01)
    assert expected_C > 168.75 + 50.0
    assert np.count_nonzero(out) == 1


def test_equal_samples_match_plain_rise():
    # Samples that all equal the pixel's rise record what the rise records.
    camera = Camera(blur_sigma_px=1.2, emissivity_surface=0.8)
    frame = _frame("C")
    plain = record_rise(camera, _rise(), frame, ambient_C=22.0)
    samples = np.repeat(_rise()[..., None], 9, axis=-1)
    np.testing.assert_allclose(
        record_rise(camera, samples, frame, ambient_C=22.0), plain, rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("sigma_px", [0.0, 1.5])
def test_footprint_samples_base_same_bits(sigma_px):
    from thermosynth.camera.model import recording_base

    camera = Camera(blur_sigma_px=sigma_px, emissivity_surface=0.8)
    frame = _frame("C")
    base = recording_base(camera, frame, ambient_C=22.0)
    samples = np.zeros((16, 20, 4))
    samples[5:9, 6:10, ::2] = 30.0
    samples[0, 19, 3] = 8.0

    plain = record_rise(camera, samples, frame, ambient_C=22.0)
    based = record_rise(camera, samples, frame, ambient_C=22.0, base=base)
    assert np.array_equal(based, plain)
