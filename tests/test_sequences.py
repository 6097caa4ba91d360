from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from demo_overrides import NO_TAB_EMISSIVITY
from PIL import Image
from scipy import ndimage
from small_sequences import SMALL_SEQUENCES
from weak_draws import (
    N_SAMPLES,
    WEAK_AND_STRONG,
    assert_weak_share,
    fake_blend,
)

from thermosynth import sequences as sequences_module
from thermosynth.build import register
from thermosynth.camera import emissivity_map
from thermosynth.camera.optics import blur_radius_px
from thermosynth.cli import main
from thermosynth.errors import FrameError, OutputError, RecipeError, ThermosynthError
from thermosynth.pipeline import generate
from thermosynth.preview_animation import choose_sequences, write_animated_preview
from thermosynth.recipe import load_demo_recipe, load_recipe
from thermosynth.recipe.models import SequenceSpec
from thermosynth.samples import sample_rng
from thermosynth.scenario import choose_scenario
from thermosynth.sequences import (
    SequenceGenerator,
    SequenceSummary,
    frame_times_s,
    generate_sequences,
)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PLAUSIBILITY = "thermosynth.plausibility"
TIMES_S = [5.0, 10.0, 15.0, 20.0]
SMALL = SMALL_SEQUENCES


def small_recipe(out: Path | None = None, *extra: str):
    overrides = [*SMALL, *extra]
    if out is not None:
        overrides.append(f"output.dir={out}")
    return load_demo_recipe(overrides=overrides)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("sequences") / "out"
    generate_sequences(small_recipe(out), progress=False)
    return out


def test_frame_times_cover_window():
    times = frame_times_s(SequenceSpec(fps=0.5, window_s=9.0))
    assert times.tolist() == [2.0, 4.0, 6.0, 8.0]
    assert frame_times_s(SequenceSpec(fps=2.0, window_s=0.5)).tolist() == [0.5]
    with pytest.raises(ValueError, match="shorter than one frame interval"):
        SequenceSpec(fps=2.0, window_s=0.1)


@pytest.mark.parametrize(
    ("window_s", "times"),
    [
        (3.0, [2.0]),
        (5.0, [2.0, 4.0]),
        (7.0, [2.0, 4.0, 6.0]),
        (8.0, [2.0, 4.0, 6.0, 8.0]),
        (8.999, [2.0, 4.0, 6.0, 8.0]),
    ],
)
def test_frame_times_end_at_or_before_window(window_s, times):
    spec = SequenceSpec(fps=0.5, window_s=window_s)
    assert frame_times_s(spec).tolist() == times
    assert spec.n_frames == len(times)


def test_frame_count_survives_round_off():
    assert frame_times_s(SequenceSpec(fps=100.0, window_s=0.29)).size == 29


def test_hdf5_shape_and_times(dataset):
    with h5py.File(dataset / "dataset.h5", "r") as h5:
        assert h5["frames"].shape == (4, 4, 48, 64)
        for name in ("masks", "rise_K", "recorded_rise"):
            assert h5[name].shape == (4, 4, 48, 64), name
        assert h5["times_s"][:].tolist() == TIMES_S
        assert h5["times_s"].attrs["unit"] == "s"
        assert h5["recorded_rise"].attrs["unit"] == "K"
        assert h5["labels"][:].tolist() == [0, 0, 1, 1]
        assert h5["frames"].is_virtual
    with h5py.File(dataset / "shards" / "shard-000000.h5", "r") as shard:
        assert shard["frames"].chunks == (1, 1, 48, 64)
        assert shard["frames"].compression == "gzip"


def test_mask_is_thresholded_recorded_rise(dataset):
    with h5py.File(dataset / "dataset.h5", "r") as h5:
        for i in (2, 3):
            for t in range(len(TIMES_S)):
                mask = h5["masks"][i, t].astype(bool)
                recorded = h5["recorded_rise"][i, t]
                np.testing.assert_array_equal(mask, recorded > 0)
            assert h5["masks"][i, -1].any()


def test_pixels_outside_mask_unchanged(dataset):
    generator = SequenceGenerator(small_recipe())
    with h5py.File(dataset / "dataset.h5", "r") as h5:
        for entry in generator.entries:
            base = generator.source.read(entry.frame_indices[0]).raw
            for t in range(len(TIMES_S)):
                outside = ~h5["masks"][entry.index, t].astype(bool)
                frame = h5["frames"][entry.index, t]
                np.testing.assert_array_equal(frame[outside], base[outside])


def test_constant_hotspot_rise_grows(dataset):
    with h5py.File(dataset / "dataset.h5", "r") as h5:
        for i in (2, 3):
            peaks = h5["rise_K"][i].max(axis=(1, 2))
            assert np.all(np.diff(peaks) >= 0), peaks
            # The middle of the demo's 2 layers heats both, so the face warms
            # from the start: 1.46 times its 5 s peak at 20 s.
            assert peaks[-1] > 1.3 * peaks[0]
            areas = h5["masks"][i].sum(axis=(1, 2))
            assert np.all(np.diff(areas) >= 0), areas


def test_normal_still_sequence_repeats_frame(dataset):
    with h5py.File(dataset / "dataset.h5", "r") as h5:
        frames = h5["frames"][0]
        assert not h5["masks"][0].any()
    for t in range(1, len(TIMES_S)):
        np.testing.assert_array_equal(frames[t], frames[0])


def test_same_seed_same_bytes(tmp_path):
    out = tmp_path / "out"
    generate_sequences(small_recipe(out), progress=False)
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    generate_sequences(small_recipe(out), overwrite=True, progress=False)
    second = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(first) == sorted(second)
    for name, data in first.items():
        assert data == second[name], name


def test_folder_tree_layout(dataset):
    folder = dataset / "folder"
    names = ["0000", "0001", "0002", "0003"]
    expected = {f"train/good/000000/{t}.png" for t in names}
    expected |= {f"test/good/000001/{t}.png" for t in names}
    for stem in ("000002", "000003"):
        expected |= {f"test/hotspot/{stem}/{t}.png" for t in names}
        expected |= {f"ground_truth/hotspot/{stem}/{t}_mask.png" for t in names}
    expected |= {"times.json", "scale.json"}
    written = {p.relative_to(folder).as_posix() for p in folder.rglob("*.*")}
    assert written == expected


def test_video_base_uses_consecutive_frames(tmp_path):
    out = tmp_path / "out"
    loaded = small_recipe(
        out,
        "frames.n_frames=12",
        "sequence.base=video",
        "split.train_normal=1",
        "split.test_normal=1",
        "split.test_anomalous=1",
    )
    generator = SequenceGenerator(loaded)
    windows = {(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)}
    train, test_normal, anomalous = generator.entries
    assert {train.frame_indices, test_normal.frame_indices} <= windows
    assert train.frame_indices != test_normal.frame_indices
    assert anomalous.frame_indices != train.frame_indices

    generate_sequences(loaded, progress=False)
    with h5py.File(out / "dataset.h5", "r") as h5:
        normal = h5["frames"][0]
    first = generator.entries[0].frame_indices
    for t, index in enumerate(first):
        np.testing.assert_array_equal(normal[t], generator.source.read(index).raw)
    assert not np.array_equal(normal[0], normal[1])


def test_video_window_longer_than_source():
    loaded = small_recipe(None, "sequence.base=video", "sequence.window_s=100")
    with pytest.raises(FrameError, match="fewer than one sequence of 20"):
        SequenceGenerator(loaded)


def test_bank_is_rejected():
    with pytest.raises(RecipeError, match="bank.mode = 'reuse' does not work"):
        SequenceGenerator(small_recipe(None, "bank.mode=reuse"))


def test_video_frames_need_sequence_section():
    with pytest.raises(RecipeError, match="add a sequence section"):
        load_demo_recipe(overrides=["frames={kind: video, path: clip.avi}"])


def test_animated_gif_has_one_frame_per_time(tmp_path):
    path, n_drawn = write_animated_preview(small_recipe(), n=1, path=tmp_path / "p.gif")
    assert n_drawn == 1
    with Image.open(path) as image:
        assert image.n_frames == len(TIMES_S)


def test_animated_preview_logs_each_sequence(data_dir, tmp_path, caplog):
    overrides = (
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=1",
        "sequence={fps: 0.2, window_s: 10, base: still}",
    )
    recipe = RECIPES / "module-growing-hotspot-sequence.yaml"
    loaded = load_recipe(recipe, overrides=overrides)
    with caplog.at_level(logging.INFO, logger="thermosynth.preview"):
        write_animated_preview(loaded, n=1, path=tmp_path / "p.gif")

    messages = [
        r.getMessage() for r in caplog.records if r.name == "thermosynth.preview"
    ]
    assert len(messages) == 1
    assert messages[0].startswith("preview: drew sample ")
    assert "(growing_hotspot), 1 of 1, in " in messages[0]


@pytest.mark.parametrize("name", ["p.gif", "p.mp4"])
def test_animated_preview_file_mode_follows_umask(tmp_path, name):
    previous = os.umask(0o022)
    try:
        path, _ = write_animated_preview(small_recipe(), n=1, path=tmp_path / name)
    finally:
        os.umask(previous)

    assert path.stat().st_mode & 0o777 == 0o644
    assert cv2.VideoCapture(str(path)).isOpened()


def test_animated_preview_counts_planned_sequences(tmp_path):
    # The small recipe plans two anomalous sequences, fewer than asked.
    _, n_drawn = write_animated_preview(small_recipe(), n=5, path=tmp_path / "p.gif")
    assert n_drawn == 2


TWO_KINDS = (
    "split.test_anomalous=6",
    "frames.n_frames=8",
    "seed=20",
    "scenarios=[{kind: hotspot, name: small, power_W: 2.0, radius_mm: 4.0, "
    "duration_s: 20, layer: middle}, {kind: hotspot, name: large, power_W: 4.0, "
    "radius_mm: 8.0, duration_s: 20, layer: middle}]",
)


def test_animated_preview_takes_scenarios_in_turn():
    generator = SequenceGenerator(small_recipe(None, *TWO_KINDS))
    anomalous = [entry for entry in generator.entries if entry.label]
    planned = [generator.planned_scenario(entry.index) for entry in anomalous]
    assert planned[:4] == ["small", "small", "small", "large"]

    chosen = choose_sequences(generator, 2)
    assert [entry.index for entry in chosen] == [anomalous[0].index, anomalous[3].index]
    assert [generator.make(entry).kind for entry in chosen] == ["small", "large"]
    assert len(choose_sequences(generator, 3)) == 3


def test_animated_preview_rejects_png(tmp_path):
    with pytest.raises(ThermosynthError, match="must end in .gif or .mp4"):
        write_animated_preview(small_recipe(), n=1, path=tmp_path / "p.png")


def test_animated_preview_needs_anomalies(tmp_path):
    loaded = small_recipe(None, "split.test_anomalous=0")
    with pytest.raises(ThermosynthError, match="raise split.test_anomalous"):
        write_animated_preview(loaded, n=1, path=tmp_path / "p.gif")


def test_cli_routes_sequence_recipes(tmp_path, capsys):
    sets = [arg for item in SMALL for arg in ("--set", item)]
    out = tmp_path / "out"
    code = main(["generate", "--demo", *sets, "-o", str(out), "--no-progress"])
    assert code == 0
    assert "wrote 4 sequences of 4 frames" in capsys.readouterr().out
    with h5py.File(out / "dataset.h5", "r") as h5:
        assert h5["frames"].ndim == 4

    preview = tmp_path / "preview.gif"
    assert main(["preview", "--demo", *sets, "-n", "1", "-o", str(preview)]) == 0
    assert preview.is_file()
    assert f"wrote animated preview of 1 sequence to {preview}" in (
        capsys.readouterr().out
    )


RUNAWAY_MODULE = (
    "scenarios=[{kind: runaway, power_W: 300, radius_mm: 6, duration_s: 40, "
    "trigger_s: 20, venting: true}]",
    "layout={kind: module, resolution_mm: 6, n_cells: 2, cell_width_mm: 30, "
    "cell_height_mm: 60, thickness_mm: 20, gap_mm: 6}",
    "physics.n_layers=1",
    "sequence={fps: 0.1, window_s: 40}",
    "split.test_anomalous=1",
    *NO_TAB_EMISSIVITY,
)


def test_runaway_metadata_has_cell_times(tmp_path):
    out = tmp_path / "out"
    generate_sequences(small_recipe(out, *RUNAWAY_MODULE), progress=False)
    with h5py.File(out / "dataset.h5", "r") as h5:
        text = h5["metadata"].asstr()[2]
    metadata = json.loads(text)

    assert "NaN" not in text
    onset, short, vent = metadata["onset_s"], metadata["short_s"], metadata["vent_s"]
    assert len(onset) == len(short) == len(vent) == 2  # one per battery cell
    onsets = [t for t in onset if t is not None]
    assert len(onsets) == 1  # the short sets off one of the two cells
    assert 0.0 < onsets[0] <= 40.0
    assert short == [None, None]  # the scenario has no separator short
    assert metadata["params"]["trigger_s"] == 20.0


def test_animated_preview_into_folder_rejected(tmp_path, monkeypatch):
    folder = tmp_path / "x.gif"
    folder.mkdir()
    monkeypatch.setattr(sequences_module.SequenceGenerator, "anomalous", None)

    with pytest.raises(OutputError, match=r"x\.gif is a folder; give a file path"):
        write_animated_preview(small_recipe(), n=1, path=folder, overwrite=True)
    assert folder.is_dir()


def test_pipeline_generate_writes_sequences(tmp_path):
    out = tmp_path / "out"
    summary = generate(small_recipe(out), progress=False)

    assert isinstance(summary, SequenceSummary)
    assert summary.n_sequences == 4
    assert summary.n_times == 4
    with h5py.File(out / "dataset.h5", "r") as h5:
        assert h5["frames"].shape == (4, 4, 48, 64)
        assert h5["times_s"][:].tolist() == TIMES_S


def test_cli_sequence_preview_rejects_png(tmp_path, capsys):
    sets = [arg for item in SMALL for arg in ("--set", item)]
    still = tmp_path / "preview.png"

    code = main(["preview", "--demo", *sets, "-n", "1", "-o", str(still)])

    assert code == 2
    error = capsys.readouterr().err
    assert "must end in .gif or .mp4" in error
    assert "--set sequence=null" in error
    assert not still.exists()
    assert not still.with_suffix(".gif").exists()


MIXED_CAMERAS = (
    "sequence.base=video",
    "sequence.window_s=10",
    "split.train_normal=2",
    "split.test_normal=1",
    "split.test_anomalous=1",
)


def jump_warnings(caplog) -> list[str]:
    records = [r for r in caplog.records if r.name == "thermosynth.sequences"]
    return [r.getMessage() for r in records if "consecutive frames jump" in r.message]


def test_generate_warns_video_jump(data_dir, tmp_path, caplog):
    # The battery-station folder alternates two cameras with their own masks.
    overrides = (*MIXED_CAMERAS, "split.test_anomalous=0", f"output.dir={tmp_path}/o")
    recipe = RECIPES / "module-growing-hotspot-sequence.yaml"
    with caplog.at_level(logging.WARNING, logger="thermosynth.sequences"):
        generate_sequences(load_recipe(recipe, overrides=overrides), progress=False)

    assert len(jump_warnings(caplog)) == 1


def test_preview_warns_video_jump(data_dir, tmp_path, caplog, monkeypatch):
    def stop(self, index, frames):
        raise RuntimeError("stopped before simulating")

    monkeypatch.setattr(SequenceGenerator, "anomalous", stop)
    recipe = RECIPES / "module-growing-hotspot-sequence.yaml"
    loaded = load_recipe(recipe, overrides=MIXED_CAMERAS)
    with caplog.at_level(logging.WARNING, logger="thermosynth.sequences"):
        with pytest.raises(RuntimeError, match="stopped before simulating"):
            write_animated_preview(loaded, n=1, path=tmp_path / "p.gif")

    assert len(jump_warnings(caplog)) == 1


def test_shipped_sequence_recipe(data_dir, tmp_path):
    overrides = (
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=1",
        "sequence.window_s=10",
        f"output.dir={tmp_path / 'out'}",
    )
    loaded = load_recipe(
        RECIPES / "module-growing-hotspot-sequence.yaml", overrides=overrides
    )
    summary = generate_sequences(loaded, progress=False)
    assert summary.n_times == 5
    with h5py.File(tmp_path / "out" / "dataset.h5", "r") as h5:
        assert h5["frames"].shape == (2, 5, 60, 80, 3)
        assert h5["masks"][1, -1].sum() >= 3
        metadata = json.loads(h5["metadata"][1])
    # gain: stretch records its map per frame, and a rise never widens the range.
    assert len(metadata["stretch_gain"]) == 5
    assert len(metadata["stretch_offset"]) == 5
    assert all(0.0 < gain <= 1.0 for gain in metadata["stretch_gain"])


TAB_JOULE = (
    "scenarios=[{kind: joule, region: tabs, current_A: 40, resistance_mohm: 2.0, "
    "duration_s: 20}]"
)


def _tab_sequence(*extra: str):
    generator = SequenceGenerator(small_recipe(None, TAB_JOULE, *extra))
    entry = next(e for e in generator.entries if e.label)
    frames = generator.read_frames(entry.frame_indices)
    return generator, frames, generator.anomalous(entry.index, frames)


def test_emissivity_regions_lower_tab_rise():
    _, _, plain = _tab_sequence("camera.emissivity_regions={}")
    generator, frames, bare = _tab_sequence("camera.emissivity_regions={tabs: 0.1}")
    homography, _ = register(generator.recipe.registration, generator.layout, frames[0])
    emissivity = emissivity_map(
        generator.camera, generator.layout, homography, frames[0].shape
    )
    tabs = emissivity == 0.1
    radius = blur_radius_px(generator.camera.blur_sigma_px)
    near = ndimage.binary_dilation(tabs, np.ones((2 * radius + 1,) * 2, bool))

    assert tabs.sum() > 20
    assert bare.rise_K.tobytes() == plain.rise_K.tobytes()
    last_bare, last_plain = bare.recorded_rise[-1], plain.recorded_rise[-1]
    assert last_bare[tabs].max() < 0.5 * last_plain[tabs].max()
    assert np.array_equal(bare.recorded_rise[:, ~near], plain.recorded_rise[:, ~near])


def test_unknown_emissivity_region_rejected_for_sequences():
    with pytest.raises(RecipeError, match="names region 'busbars'"):
        SequenceGenerator(
            small_recipe(None, "camera.emissivity_regions={busbars: 0.1}")
        )


def fake_sequence_rise(drawn, layout, recipe, times_s, **_):
    """Return a uniform rise [K] equal to the drawn power, without simulating."""
    shape = (len(times_s), *layout.shape)
    return np.full(shape, drawn.params["power_W"], dtype=np.float64)


def test_sequence_retry_keeps_scenario(monkeypatch):
    monkeypatch.setattr(sequences_module, "simulate_sequence_rise", fake_sequence_rise)
    monkeypatch.setattr(sequences_module, "record_and_blend", fake_blend)
    overrides = (WEAK_AND_STRONG, "blend.max_tries=30", "blend.min_area_px=10")
    generator = SequenceGenerator(small_recipe(None, *overrides))
    entry = next(entry for entry in generator.entries if entry.label)
    frames = generator.read_frames(entry.frame_indices)
    sequences = [generator.anomalous(i, frames) for i in range(N_SAMPLES)]

    scenarios = generator.recipe.scenarios
    for sample in sequences:
        rng = sample_rng(generator.recipe, sample.index)
        assert sample.kind == choose_scenario(scenarios, rng).name, sample.index
        assert sample.kind == generator.planned_scenario(sample.index)
    kinds = [sample.kind for sample in sequences]
    assert_weak_share(kinds, [sample.metadata["attempts"] for sample in sequences])


def test_sequence_test_set_ignores_train_count(monkeypatch):
    monkeypatch.setattr(sequences_module, "simulate_sequence_rise", fake_sequence_rise)
    monkeypatch.setattr(sequences_module, "record_and_blend", fake_blend)
    made_per_count = []
    for train in (1, 3):
        generator = SequenceGenerator(
            small_recipe(None, f"split.train_normal={train}", "frames.n_frames=6")
        )
        test = [entry for entry in generator.entries if entry.split == "test"]
        made_per_count.append([(entry, generator.make(entry)) for entry in test])

    first, second = made_per_count
    assert len(first) == len(second) == 3
    for (entry, sample), (other_entry, other) in zip(first, second, strict=True):
        assert other_entry.frame_indices == entry.frame_indices
        assert other.kind == sample.kind
        assert other.metadata == sample.metadata
        np.testing.assert_array_equal(other.raw, sample.raw)
        np.testing.assert_array_equal(other.mask, sample.mask)
    assert sum(sample.label for _, sample in first) == 2
    assert [sample.metadata["split_position"] for _, sample in first] == [0, 0, 1]


def unit_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == PLAUSIBILITY]


def test_sequence_warns_kelvin_label(data_dir, caplog):
    # Celsius temperatures of a real radiometric frame, labelled kelvin.
    overrides = (
        "frames.unit=K",
        "sequence={fps: 0.2, window_s: 20}",
        "split.train_normal=1",
        "split.test_normal=0",
        "split.test_anomalous=0",
        "bank.mode=off",
    )
    loaded = load_recipe(RECIPES / "radiometric-cabinet.yaml", overrides=overrides)
    generator = SequenceGenerator(loaded)
    with caplog.at_level(logging.WARNING, logger=PLAUSIBILITY):
        sequences = list(generator.sequences())

    messages = unit_warnings(caplog)
    assert [sequence.label for sequence in sequences] == [0]
    assert len(messages) == 1
    assert "T640_celsius.npy[0] decodes to a median of -238.6 C" in messages[0]


def test_sequence_warns_rise_and_clipping_once(caplog):
    milliwatts = (
        "scenarios=[{kind: hotspot, power_W: 5000, radius_mm: 4.0, duration_s: 20, "
        "layer: middle}]"
    )
    generator = SequenceGenerator(small_recipe(None, milliwatts))
    with caplog.at_level(logging.WARNING, logger=PLAUSIBILITY):
        sequences = [s for s in generator.sequences() if s.label]

    messages = unit_warnings(caplog)
    first_peaks = sequences[0].metadata["peak_rise_K"]
    first_clipped = sequences[0].metadata["saturated_px"]
    assert len(sequences) == 2
    assert max(first_peaks) > 1200.0
    assert len(first_clipped) == len(first_peaks)
    assert max(first_clipped) > 0
    assert len(messages) == 2
    assert messages[0].startswith(
        f"sequence {sequences[0].index} (hotspot) rises {max(first_peaks):.0f} K"
    )
    assert messages[1].startswith(
        f"sequence {sequences[0].index} (hotspot) has {max(first_clipped)} mask "
        "pixels clipped"
    )


def test_demo_sequences_do_not_warn(caplog):
    generator = SequenceGenerator(small_recipe())
    with caplog.at_level(logging.WARNING, logger=PLAUSIBILITY):
        labels = [sequence.label for sequence in generator.sequences()]

    assert labels == [0, 0, 1, 1]
    assert not unit_warnings(caplog)


def test_sequence_warns_layout_off_frame(caplog):
    # 64 x 48 px frames; the corners span 80 x 48 px, 16 of them left of x = 0.
    # 3,040 pixel centres fall on the layout, of its 3,840 px^2: 79 %.
    corners = (
        "registration={method: corners, fit: layout, "
        "corners_px: [[-16, 0], [64, 0], [64, 48], [-16, 48]]}"
    )
    generator = SequenceGenerator(small_recipe(None, corners))
    with caplog.at_level(logging.WARNING, logger=PLAUSIBILITY):
        next(s for s in generator.sequences() if s.label)

    messages = unit_warnings(caplog)
    assert len(messages) == 1
    assert messages[0].startswith("only 79% of the layout lies on")
