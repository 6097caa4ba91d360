"""Tests of the pseudo-anomaly generators in thermosynth.validation.generators."""

import numpy as np
import pytest
from planck_quad import band_radiance_quad, temperature_quad

from thermosynth.camera.model import Camera
from thermosynth.errors import RecipeError
from thermosynth.validation import generators as gen

SHAPE = (40, 24)


def _frames(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(60, 120, SHAPE[0])[:, None] + np.zeros(SHAPE)
    return np.clip(ramp + rng.normal(0, 3, (n, *SHAPE)), 0, 255).astype(np.uint8)


def _bump_bank() -> np.ndarray:
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    bumps = [np.exp(-((y - cy) ** 2 + (x - 12) ** 2) / 8.0) * 10.0 for cy in (10, 30)]
    return np.stack(bumps).astype(np.float32)


def _right_half() -> np.ndarray:
    region = np.zeros(SHAPE, dtype=bool)
    region[:, SHAPE[1] // 2 :] = True
    return region


def _all_generators() -> dict[str, gen.PseudoGenerator]:
    pool = _frames(8, seed=1)
    return {
        "gaussian_noise": gen.GaussianNoise(),
        "cutpaste": gen.CutPaste(pool),
        "normal_blend": gen.NormalBlend(pool),
        "self_blend": gen.SelfBlend(),
        "perlin": gen.PerlinBlend(pool),
        "cutpaste_in_region": gen.InRegion(gen.CutPaste(pool), _right_half()),
        "mixture": gen.Mixture((gen.GaussianNoise(), gen.CutPaste(pool))),
        "thermal": gen.ThermalHotspots(_bump_bank(), Camera(levels_per_kelvin=3.0)),
        "thermal_spread": gen.ThermalHotspots(
            _bump_bank(), Camera(levels_per_kelvin=3.0), spread=2.0
        ),
    }


@pytest.mark.parametrize("name", list(_all_generators()))
def test_generator_changes_only_masked_pixels(name):
    generator = _all_generators()[name]
    rng = np.random.default_rng(0)
    for image in _frames(20):
        anomalous, mask = generator(image, rng)
        assert anomalous.dtype == np.uint8
        assert mask.dtype == bool
        assert mask.any()
        np.testing.assert_array_equal(anomalous[~mask], image[~mask])


@pytest.mark.parametrize("name", list(_all_generators()))
def test_generator_changes_some_masked_pixel(name):
    generator = _all_generators()[name]
    rng = np.random.default_rng(0)
    changed = [(generator(image, rng)[0] != image).any() for image in _frames(20)]
    assert sum(changed) >= 15


@pytest.mark.parametrize("name", list(_all_generators()))
def test_generator_same_seed_same_output(name):
    image = _frames(1)[0]
    first = _all_generators()[name](image, np.random.default_rng(7))
    second = _all_generators()[name](image, np.random.default_rng(7))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_generator_rejects_float_image():
    with pytest.raises(ValueError, match="uint8"):
        gen.GaussianNoise()(np.zeros(SHAPE), np.random.default_rng(0))


def test_pool_rejects_wrong_dtype():
    with pytest.raises(ValueError, match="pool"):
        gen.CutPaste(np.zeros((2, *SHAPE)))


def test_thermal_rise_adds_heat_only():
    generator = gen.ThermalHotspots(_bump_bank(), Camera(levels_per_kelvin=3.0))
    image = _frames(1)[0]
    anomalous, mask = generator(image, np.random.default_rng(0))
    assert np.all(anomalous.astype(int) >= image.astype(int))
    assert int(anomalous.astype(int).sum()) > int(image.astype(int).sum())


def test_thermal_scale_grows_rise():
    image = _frames(1)[0]
    bank = _bump_bank()
    camera = Camera(levels_per_kelvin=3.0)
    small = gen.ThermalHotspots(bank, camera, scale=0.5)(
        image, np.random.default_rng(3)
    )
    large = gen.ThermalHotspots(bank, camera, scale=2.0)(
        image, np.random.default_rng(3)
    )
    assert large[1].sum() > small[1].sum()
    assert large[0].max() > small[0].max()


def _peak_rise(generator: gen.ThermalHotspots, seed: int) -> int:
    image = np.full(SHAPE, 60, dtype=np.uint8)
    anomalous, _ = generator(image, np.random.default_rng(seed))
    return int(anomalous.astype(int).max()) - 60


def test_thermal_spread_bounds_sample_contrast():
    # Both bumps of the bank peak at 10 K, so the plain rise peaks at one
    # level p. A spread of 2 keeps each sample in [p / 2, 2 p], give or take
    # one level of rounding, and reaches near both ends in 200 draws.
    camera = Camera(levels_per_kelvin=3.0)
    plain = _peak_rise(gen.ThermalHotspots(_bump_bank(), camera), 0)
    spread = gen.ThermalHotspots(_bump_bank(), camera, spread=2.0)
    peaks = np.array([_peak_rise(spread, seed) for seed in range(200)])

    assert plain > 10
    assert peaks.min() >= plain / 2 - 1
    assert peaks.max() <= 2 * plain + 1
    assert peaks.min() < 0.7 * plain
    assert peaks.max() > 1.4 * plain


@pytest.mark.parametrize("spread", [0.5, float("inf"), float("nan")])
def test_thermal_spread_invalid_rejected(spread):
    with pytest.raises(ValueError, match=f"spread = {spread}"):
        gen.ThermalHotspots(_bump_bank(), Camera(levels_per_kelvin=3.0), spread=spread)


def test_thermal_shape_mismatch_rejected():
    generator = gen.ThermalHotspots(_bump_bank(), Camera(levels_per_kelvin=3.0))
    with pytest.raises(ValueError, match="simulate the bank"):
        generator(np.zeros((10, 10), dtype=np.uint8), np.random.default_rng(0))


def test_thermal_emissivity_regions_rejected():
    camera = Camera(levels_per_kelvin=3.0, emissivity_regions={"terminals": 0.1})
    with pytest.raises(RecipeError, match="does not support camera.emissivity_regions"):
        gen.ThermalHotspots(_bump_bank(), camera)


def test_in_region_keeps_most_of_each_mask():
    # The CutPaste rectangles are 3-12 px on a side in a 24 px wide frame.
    # A draw with half its mask in the right half comes within the redraws
    # nearly always, and the returned mask is then at least 5 px.
    generator = gen.InRegion(gen.CutPaste(_frames(4, seed=1)), _right_half())
    rng = np.random.default_rng(0)
    for image in _frames(30):
        _, mask = generator(image, rng)
        assert not mask[:, : SHAPE[1] // 2].any()
        assert mask.sum() >= 5


def test_in_region_no_overlap_rejected():
    def corner(image, rng):
        mask = np.zeros(image.shape, dtype=bool)
        mask[0, 0] = True
        return np.where(mask, 255, image).astype(np.uint8), mask

    generator = gen.InRegion(corner, _right_half())
    with pytest.raises(ValueError, match="put no mask pixel in the region"):
        generator(_frames(1)[0], np.random.default_rng(0))


def test_in_region_empty_region_rejected():
    with pytest.raises(ValueError, match="contains no pixel"):
        gen.InRegion(gen.GaussianNoise(), np.zeros(SHAPE, dtype=bool))


def test_mixture_draws_each_member():
    def marked(level):
        def generator(image, rng):
            mask = np.zeros(image.shape, dtype=bool)
            mask[0, 0] = True
            return np.where(mask, level, image).astype(np.uint8), mask

        return generator

    mixture = gen.Mixture((marked(10), marked(200), marked(255)))
    rng = np.random.default_rng(0)
    image = _frames(1)[0]
    levels = [int(mixture(image, rng)[0][0, 0]) for _ in range(300)]
    counts = [levels.count(level) for level in (10, 200, 255)]
    assert sum(counts) == 300
    assert all(70 <= count <= 130 for count in counts), counts


def test_mixture_empty_rejected():
    with pytest.raises(ValueError, match="at least one generator"):
        gen.Mixture(())


def test_perlin_noise_range_and_seed():
    a = gen.perlin_noise(SHAPE, (4, 2), np.random.default_rng(0))
    b = gen.perlin_noise(SHAPE, (4, 2), np.random.default_rng(0))
    assert a.shape == SHAPE
    assert np.abs(a).max() <= 1.0 + 1e-9
    assert a.std() > 0.05
    np.testing.assert_array_equal(a, b)


def test_perlin_noise_changes_sign():
    # Gradient noise is 0 at every lattice point, so it takes both signs.
    a = gen.perlin_noise((40, 40), (4, 4), np.random.default_rng(1))
    assert a.min() < 0.0 < a.max()


def test_perlin_noise_bad_res_rejected():
    with pytest.raises(ValueError, match="periods"):
        gen.perlin_noise(SHAPE, (0, 2), np.random.default_rng(0))


def test_drop_round_off_zeroes_tiny_negatives_only():
    rises = np.array([[[10.0, -1e-14, 0.0], [-0.5, 3.0, 2e-15]]])

    cleaned = gen.drop_round_off(rises)

    np.testing.assert_array_equal(cleaned, [[[10.0, 0.0, 0.0], [-0.5, 3.0, 2e-15]]])
    assert rises[0, 0, 1] == -1e-14


def test_thermal_samples_record_hotter():
    # A bank of four samples per pixel, one 60 K over the 30 C base: the
    # camera averages radiance, so the pixel records about 17.7 K, not the
    # 15 K of the samples' mean.
    bank = np.zeros((1, *SHAPE, 4), dtype=np.float32)
    bank[0, 20, 12, 0] = 60.0
    camera = Camera(levels_per_kelvin=3.0)
    sampled = _peak_rise(gen.ThermalHotspots(bank, camera, flip=False), 0)
    averaged = _peak_rise(
        gen.ThermalHotspots(bank.mean(axis=-1), camera, flip=False), 0
    )

    cold = band_radiance_quad(303.15, (7.5, 14.0))
    hot = band_radiance_quad(363.15, (7.5, 14.0))
    expected_K = temperature_quad(0.75 * cold + 0.25 * hot, (7.5, 14.0)) - 303.15
    assert averaged == pytest.approx(3 * 15.0, abs=1)
    assert sampled == pytest.approx(3 * expected_K, abs=1)
    assert expected_K > 17.0


def test_bank_means_past_memory_bound(monkeypatch, caplog):
    fields = np.zeros((2, 24, 30))
    fields[:, 8, 15] = 36.0
    homography = np.diag([5 / 30, 4 / 24, 1.0])
    homography[:2, 2] = [5 / 30 / 2 - 0.5, 4 / 24 / 2 - 0.5]
    kept = gen._warp_bank(fields, homography, (4, 5))
    monkeypatch.setattr(gen, "MAX_BANK_SAMPLE_BYTES", 1024)
    with caplog.at_level("WARNING", logger=gen.__name__):
        means = gen._warp_bank(fields, homography, (4, 5))

    assert kept.shape == (2, 4, 5, 36)
    assert means.shape == (2, 4, 5, 1)
    np.testing.assert_allclose(means[..., 0], kept.mean(axis=-1), atol=1e-5)
    assert "mean temperature rise instead" in caplog.text
