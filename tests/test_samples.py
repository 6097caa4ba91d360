"""Sample making: per-frame preparation and the warp it reuses."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from demo_overrides import NO_TAB_EMISSIVITY
from scipy import ndimage
from weak_draws import (
    N_SAMPLES,
    WEAK_AND_STRONG,
    assert_weak_share,
    fake_blend,
    fake_rise,
)

from thermosynth import samples as samples_module
from thermosynth.camera.optics import blur_radius_px
from thermosynth.errors import RecipeError, ThermosynthError
from thermosynth.frames.sources import ArraySource
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.recipe import load_demo_recipe, load_recipe
from thermosynth.samples import (
    Generator,
    _warp_rise,
    record_and_blend,
    sample_rng,
    simulate_rise,
)
from thermosynth.scenario import choose_scenario, draw_scenario


def _generator() -> Generator:
    return Generator(load_demo_recipe(overrides=["split.test_anomalous=2"]))


def _first_anomalous_frame(generator: Generator):
    entry = next(e for e in generator.plan.entries() if e[2] == 1)
    return generator.read_frame(entry[3])


def test_prepare_reuses_read_only_frame():
    generator = _generator()
    frame = _first_anomalous_frame(generator)
    assert not frame.raw.flags.writeable

    assert generator.prepare(frame) is generator.prepare(frame)


def test_prepare_redoes_writable_frame():
    generator = _generator()
    frame = _first_anomalous_frame(generator)
    writable = replace(frame, raw=frame.raw.copy())

    assert generator.prepare(writable) is not generator.prepare(writable)


def test_prepare_forgets_dead_frame():
    generator = _generator()
    frame = replace(_first_anomalous_frame(generator))
    generator.prepare(frame)
    assert len(generator._prepared) == 1

    del frame
    assert len(generator._prepared) == 0


def test_warp_rise_equals_warp_to_frame():
    generator = _generator()
    frame = _first_anomalous_frame(generator)
    prepared = generator.prepare(frame)
    rise = np.random.default_rng(0).random(generator.layout.shape)

    expected = warp_to_frame(rise, prepared.homography, frame.shape, keep_samples=True)
    assert np.array_equal(_warp_rise(rise, prepared, frame.shape), expected)


def test_prepared_blend_same_bytes():
    generator = _generator()
    frame = _first_anomalous_frame(generator)
    prepared = generator.prepare(frame)
    rise = np.zeros(generator.layout.shape)
    rise[10:20, 15:30] = np.linspace(0.0, 3.0, 15)
    rise_px = warp_to_frame(rise, prepared.homography, frame.shape)
    options = {"threshold": prepared.threshold}

    # The demo's bare tabs need the emissivity map that `prepare` made.
    plain = record_and_blend(
        rise_px, frame, generator.recipe, generator.camera,
        emissivity=prepared.emissivity, **options,
    )  # fmt: skip
    fast = record_and_blend(
        rise_px, frame, generator.recipe, generator.camera, prepared=prepared, **options
    )
    assert plain.area_px > 0
    assert np.array_equal(fast.raw, plain.raw)
    assert np.array_equal(fast.mask, plain.mask)
    assert np.array_equal(fast.recorded_rise, plain.recorded_rise)


def test_prepare_skips_bases_for_writable_frame():
    generator = _generator()
    frame = _first_anomalous_frame(generator)
    writable = replace(frame, raw=frame.raw.copy())
    prepared = generator.prepare(writable)

    assert prepared.recording is None
    assert prepared.blending is None
    assert generator.prepare(frame).recording is not None


def _array_generator(tmp_path, *, cache_bytes: int) -> Generator:
    """Return a demo generator reading its 2 frames from a .npy stack instead."""
    generator = Generator(
        load_demo_recipe(
            overrides=[
                "frames.n_frames=2",
                "split.train_normal=0",
                "split.test_normal=0",
                "split.test_anomalous=4",
            ]
        )
    )
    synthetic = generator.source
    path = tmp_path / "frames.npy"
    if not path.exists():
        np.save(path, np.stack([synthetic.read(i).raw for i in range(2)]))
    encoding = synthetic.encoding
    generator.source = ArraySource(
        path,
        unit="C",
        scale_per_level=encoding.scale_per_level,
        offset=encoding.offset,
        ignore_rects=synthetic.ignore_rects,
        cache_bytes=cache_bytes,
    )
    return generator


def test_array_source_frames_prepared_once(tmp_path):
    generator = _array_generator(tmp_path, cache_bytes=2**20)
    frame = generator.read_frame(1)

    assert generator.read_frame(1) is frame
    prepared = generator.prepare(frame)
    assert prepared.recording is not None
    assert generator.prepare(generator.read_frame(1)) is prepared


def test_samples_same_bytes_with_and_without_cache(tmp_path):
    cached = list(_array_generator(tmp_path, cache_bytes=2**20).samples())
    uncached = list(_array_generator(tmp_path, cache_bytes=0).samples())

    assert len(cached) == len(uncached) == 4
    for (a, _), (b, _) in zip(cached, uncached, strict=True):
        assert a.raw.tobytes() == b.raw.tobytes()
        assert np.array_equal(a.mask, b.mask)
        assert a.rise_K.tobytes() == b.rise_K.tobytes()
        assert a.recorded_rise.tobytes() == b.recorded_rise.tobytes()
        assert a.metadata == b.metadata


CABINET = Path(__file__).resolve().parents[1] / "recipes" / "radiometric-cabinet.yaml"
CABINET_FRAME = "radiometric-samples/decoded_celsius/FLIR_T640_celsius.npy"


def _cabinet(data_dir: Path, *extra: str) -> Generator:
    overrides = ["bank.mode=off", f"frames.path={data_dir / CABINET_FRAME}", *extra]
    return Generator(load_recipe(CABINET, overrides=overrides))


def _terminal_rise(generator: Generator, frame, prepared) -> np.ndarray:
    recipe = generator.recipe
    spec = next(s for s in recipe.scenarios if s.name == "terminal_overheating")
    drawn = draw_scenario(spec, generator.layout, np.random.default_rng(0))
    rise = simulate_rise(drawn, generator.layout, recipe)
    return warp_to_frame(rise, prepared.homography, frame.shape)


def test_terminal_emissivity_lowers_recorded_peak(data_dir):
    plain_generator = _cabinet(data_dir, "camera.emissivity_regions={}")
    bare_generator = _cabinet(data_dir, "camera.emissivity_regions={terminals: 0.1}")
    frame = plain_generator.read_frame(0)
    plain_prepared = plain_generator.prepare(frame)
    bare_prepared = bare_generator.prepare(frame)
    rise_px = _terminal_rise(plain_generator, frame, plain_prepared)
    threshold = plain_prepared.threshold

    plain = record_and_blend(
        rise_px,
        frame,
        plain_generator.recipe,
        plain_generator.camera,
        threshold=threshold,
        prepared=plain_prepared,
    )
    bare = record_and_blend(
        rise_px,
        frame,
        bare_generator.recipe,
        bare_generator.camera,
        threshold=threshold,
        prepared=bare_prepared,
    )

    assert plain_prepared.emissivity is None
    terminals = bare_prepared.emissivity == 0.1
    radius = blur_radius_px(bare_generator.camera.blur_sigma_px)
    box = np.ones((2 * radius + 1,) * 2, bool)
    inside = ndimage.binary_erosion(terminals, box)
    assert inside.sum() > 100
    ratio = bare.recorded_rise[inside].max() / plain.recorded_rise[inside].max()
    # To first order the ratio is 0.1 / 0.95 times (T_true / T_apparent)^3.
    # The terminals appear at about 32 C against 25 C reflected, so at
    # emissivity 0.1 they are truly near 80 C and the ratio is about 0.17.
    assert 0.1 < ratio < 0.25
    assert np.array_equal(bare.raw[~bare.mask], frame.raw[~bare.mask])

    near = ndimage.binary_dilation(terminals, box)
    assert np.array_equal(bare.recorded_rise[~near], plain.recorded_rise[~near])
    assert np.array_equal(bare.raw[~near], plain.raw[~near])


def test_terminal_emissivity_same_bytes_without_prepare(data_dir):
    generator = _cabinet(data_dir, "camera.emissivity_regions={terminals: 0.1}")
    frame = generator.read_frame(0)
    prepared = generator.prepare(frame)
    rise_px = _terminal_rise(generator, frame, prepared)
    options = {"threshold": prepared.threshold}
    recipe, camera = generator.recipe, generator.camera

    fast = record_and_blend(
        rise_px, frame, recipe, camera, prepared=prepared, **options
    )
    plain = record_and_blend(
        rise_px, frame, recipe, camera, emissivity=prepared.emissivity, **options
    )
    assert np.array_equal(fast.recorded_rise, plain.recorded_rise)
    assert np.array_equal(fast.raw, plain.raw)

    writable = replace(frame, raw=frame.raw.copy())
    unkept = generator.prepare(writable)
    assert unkept.recording is None
    slow = record_and_blend(
        rise_px, writable, recipe, camera, prepared=unkept, **options
    )
    assert np.array_equal(slow.recorded_rise, fast.recorded_rise)
    with pytest.raises(RecipeError, match="recorded without an emissivity map"):
        record_and_blend(rise_px, frame, recipe, camera, **options)


def test_unknown_emissivity_region_rejected():
    message = (
        r"camera\.emissivity_regions names region 'terminals'.*'pouch_cell'.*"
        r"background, tab_negative, tab_positive, tabs"
    )
    with pytest.raises(RecipeError, match=message):
        Generator(
            load_demo_recipe(overrides=["camera.emissivity_regions={terminals: 0.1}"])
        )


def _two_scenario_generator(tmp_path, monkeypatch, *bank: str) -> Generator:
    monkeypatch.setattr(samples_module, "simulate_rise", fake_rise)
    monkeypatch.setattr(samples_module, "record_and_blend", fake_blend)
    overrides = [
        WEAK_AND_STRONG,
        "frames.shape=[48, 64]",
        "blend.max_tries=30",
        "blend.min_area_px=10",
        *bank,
    ]
    return Generator(load_demo_recipe(overrides=overrides))


def _check_kinds_kept(generator: Generator) -> list:
    """Make N_SAMPLES samples; check each keeps its first-chosen scenario."""
    recipe = generator.recipe
    frame = _first_anomalous_frame(generator)
    anomalies = [generator.anomalous(i, frame) for i in range(N_SAMPLES)]

    for sample in anomalies:
        chosen = choose_scenario(recipe.scenarios, sample_rng(recipe, sample.index))
        assert sample.kind == chosen.name, sample.index
        assert sample.metadata["scenario"] == chosen.name
    kinds = [sample.kind for sample in anomalies]
    assert_weak_share(kinds, [sample.metadata["attempts"] for sample in anomalies])
    return anomalies


def test_retry_keeps_scenario(tmp_path, monkeypatch):
    _check_kinds_kept(_two_scenario_generator(tmp_path, monkeypatch))


def test_retry_keeps_scenario_with_bank(tmp_path, monkeypatch):
    # bank.size=1 plans one "weak" entry; "strong" gets one more entry.
    generator = _two_scenario_generator(
        tmp_path,
        monkeypatch,
        "bank.mode=reuse",
        f"bank.path={tmp_path / 'bank.h5'}",
        "bank.size=1",
    )
    anomalies = _check_kinds_kept(generator)

    entries = {e.key: e.drawn.name for e in generator._bank.entries}
    assert sorted(entries.values()) == ["strong", "weak"]
    for sample in anomalies:
        assert entries[sample.metadata["bank_entry"]] == sample.kind


def test_weak_scenario_error_names_it(tmp_path, monkeypatch):
    generator = _two_scenario_generator(tmp_path, monkeypatch, "blend.max_tries=2")
    recipe = generator.recipe
    index = next(
        i
        for i in range(100)
        if choose_scenario(recipe.scenarios, sample_rng(recipe, i)).name == "weak"
    )

    def blend_too_weak(rise_px_K, frame, recipe, camera, **_):
        return fake_blend(np.zeros_like(rise_px_K), frame, recipe, camera)

    monkeypatch.setattr(samples_module, "record_and_blend", blend_too_weak)
    frame = _first_anomalous_frame(generator)
    with pytest.raises(
        ThermosynthError, match="raise the power or size of scenario 'weak'"
    ) as info:
        generator.anomalous(index, frame)
    # A rise of Celsius frames is in kelvin.
    assert frame.unit == "C"
    assert re.search(
        r"threshold [\d.]+ K \(the largest rise the camera recorded was 0 K\)",
        str(info.value),
    )


def test_weak_draw_error_reports_rise_below_threshold():
    # A 1 mW short records a rise far below the noise threshold but above 0.
    overrides = [
        "split.test_anomalous=1",
        "scenarios.0.power_W=0.001",
        "blend.max_tries=2",
    ]
    generator = Generator(load_demo_recipe(overrides=overrides))
    recipe = generator.recipe
    index = next(
        i
        for i in range(100)
        if choose_scenario(recipe.scenarios, sample_rng(recipe, i)).name
        == "internal_short"
    )
    frame = _first_anomalous_frame(generator)
    with pytest.raises(ThermosynthError, match="in 2 draws") as info:
        generator.anomalous(index, frame)

    found = re.search(
        r"threshold ([\d.e+-]+) K \(the largest rise the camera recorded was "
        r"([\d.e+-]+) K\)",
        str(info.value),
    )
    assert found is not None
    threshold, peak = float(found[1]), float(found[2])
    assert 0 < peak < threshold


def test_runaway_sample_metadata_has_cell_times():
    overrides = (
        "scenarios=[{kind: runaway, power_W: 300, radius_mm: 6, duration_s: 40}]",
        "layout={kind: module, resolution_mm: 6, n_cells: 2, cell_width_mm: 30, "
        "cell_height_mm: 60, thickness_mm: 20, gap_mm: 6}",
        "physics.n_layers=1",
        "frames.shape=[48, 64]",
        *NO_TAB_EMISSIVITY,
    )
    generator = Generator(load_demo_recipe(overrides=overrides))
    index, _, _, frame_index = next(e for e in generator.plan.entries() if e[2])
    metadata = generator.anomalous(index, generator.source.read(frame_index)).metadata

    assert set(metadata) >= {"onset_s", "short_s", "vent_s"}
    onsets = [t for t in metadata["onset_s"] if t is not None]
    assert len(onsets) == 1  # the short sets off one of the two cells
    assert 0.0 < onsets[0] <= 40.0
    assert metadata["vent_s"] == [None, None]  # venting is off
    json.dumps(metadata, allow_nan=False)


def test_heat_sample_metadata_has_no_cell_times():
    generator = Generator(load_demo_recipe(overrides=["frames.shape=[48, 64]"]))
    index, _, _, frame_index = next(e for e in generator.plan.entries() if e[2])
    metadata = generator.anomalous(index, generator.source.read(frame_index)).metadata

    assert "onset_s" not in metadata
