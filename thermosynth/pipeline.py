"""Generate a dataset: read frames, simulate, record, blend, write.

Every sample's randomness comes from ``(seed, index)`` alone, so a sample does
not depend on which samples were made before it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from thermosynth.blend import blend, default_threshold
from thermosynth.build import build_camera, build_layout, build_source, register
from thermosynth.camera.model import record_rise
from thermosynth.errors import FrameError, ThermosynthError
from thermosynth.frames.frame import Frame
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.output.atomic import check_writable, staged_dir
from thermosynth.output.folder import FolderWriter
from thermosynth.output.hdf5 import HDF5Writer
from thermosynth.output.sample import Sample
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.recipe.models import Recipe
from thermosynth.scenario import build_sources, choose_scenario, draw_scenario

logger = logging.getLogger(__name__)

_SPLIT_STREAM = 0
_SAMPLE_STREAM = 1


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """Return the random generator of sample ``index``, from the seed alone."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_SAMPLE_STREAM, index))
    )


@dataclass(frozen=True)
class Plan:
    """Which source frame each sample uses, in output order."""

    train_normal: list[int]
    test_normal: list[int]
    test_anomalous: list[int]

    def entries(self) -> Iterator[tuple[int, str, int, int]]:
        """Yield (sample index, split, label, frame index) in output order."""
        rows = [("train", 0, i) for i in self.train_normal]
        rows += [("test", 0, i) for i in self.test_normal]
        rows += [("test", 1, i) for i in self.test_anomalous]
        for index, (split, label, frame_index) in enumerate(rows):
            yield index, split, label, frame_index


def plan_split(recipe: Recipe, n_frames: int) -> Plan:
    """Assign frames to splits; anomalies never reuse a training frame.

    Training and test normal frames are disjoint. Anomalous samples cycle
    through the frames not used for training, so a detector never saw the
    normal version of an anomalous test frame.
    """
    split = recipe.split
    if split.train_normal + split.test_normal > n_frames:
        raise FrameError(
            f"split asks for {split.train_normal} training and {split.test_normal} "
            f"test normal frames but the source has only {n_frames}; lower "
            "split.train_normal or split.test_normal"
        )
    if split.test_anomalous and split.train_normal >= n_frames:
        raise FrameError(
            f"all {n_frames} frames go to training, none are left for anomalies; "
            "lower split.train_normal"
        )

    rng = np.random.default_rng(
        np.random.SeedSequence(recipe.seed, spawn_key=(_SPLIT_STREAM,))
    )
    order = [int(i) for i in rng.permutation(n_frames)]
    train = order[: split.train_normal]
    rest = order[split.train_normal :]
    test_normal = rest[: split.test_normal]
    anomalous = (
        [rest[i % len(rest)] for i in range(split.test_anomalous)] if rest else []
    )
    return Plan(train, test_normal, anomalous)


class Generator:
    """Make the samples of one recipe; the writers and preview share it."""

    def __init__(self, loaded: LoadedRecipe):
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.source = build_source(self.recipe.frames, seed=self.recipe.seed)
        self.layout: Layout = build_layout(self.recipe.layout, self.recipe.materials)
        self.camera = build_camera(self.recipe.camera)
        self.plan = plan_split(self.recipe, len(self.source))
        self._shape: tuple[int, int] | None = None

    def __len__(self) -> int:
        split = self.recipe.split
        return split.train_normal + split.test_normal + split.test_anomalous

    def read_frame(self, frame_index: int) -> Frame:
        """Read one source frame and check it matches the first one's size."""
        frame = self.source.read(frame_index)
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise FrameError(
                f"frames of mixed sizes: {frame.source} is {frame.shape[1]} x "
                f"{frame.shape[0]} px but earlier frames are {self._shape[1]} x "
                f"{self._shape[0]} px; keep one size per recipe"
            )
        return frame

    def samples(self) -> Iterator[tuple[Sample, Frame]]:
        """Yield every sample with the normal frame it came from."""
        for index, split, label, frame_index in self.plan.entries():
            frame = self.read_frame(frame_index)
            if label:
                yield self.anomalous(index, frame), frame
            else:
                yield normal_sample(index, split, frame), frame

    def anomalous(self, index: int, frame: Frame) -> Sample:
        """Make anomalous sample ``index`` from ``frame``, retrying weak draws."""
        rng = sample_rng(self.recipe.seed, index)
        homography, corners = register(self.recipe.registration, self.layout, frame)
        threshold = self._threshold(frame)
        blend_spec = self.recipe.blend
        best_peak = 0.0
        for attempt in range(1, blend_spec.max_tries + 1):
            sample = self._attempt(index, frame, rng, homography, threshold)
            best_peak = max(best_peak, sample.metadata["peak_recorded_rise"])
            if sample.metadata["area_px"] >= blend_spec.min_area_px:
                sample.metadata.update(attempts=attempt, corners_px=corners)
                return sample
            logger.debug(
                "sample %d attempt %d: anomaly below threshold", index, attempt
            )
        raise ThermosynthError(
            f"sample {index} ({frame.source}): in {blend_spec.max_tries} draws no "
            f"anomaly covered blend.min_area_px = {blend_spec.min_area_px} pixels "
            f"above the threshold {threshold:.4g} {frame.unit} (largest recorded "
            f"rise {best_peak:.4g}); raise the scenario power or size, or lower "
            "blend.threshold or blend.noise_multiple"
        )

    def _threshold(self, frame: Frame) -> float:
        spec = self.recipe.blend
        if spec.threshold is not None:
            return float(spec.threshold)
        return default_threshold(frame, noise_multiple=spec.noise_multiple)

    def _attempt(
        self,
        index: int,
        frame: Frame,
        rng: np.random.Generator,
        homography: np.ndarray,
        threshold: float,
    ) -> Sample:
        recipe = self.recipe
        spec = choose_scenario(recipe.scenarios, rng)
        drawn = draw_scenario(spec, self.layout, rng)
        rise_grid = simulate_rise(drawn, self.layout, recipe)
        rise_px = warp_to_frame(rise_grid, homography, frame.shape)
        recorded = record_rise(
            self.camera, rise_px, frame, ambient_C=recipe.physics.ambient_C
        )
        result = blend(
            frame,
            recorded,
            threshold=threshold,
            gain=recipe.camera.gain,
            edge=recipe.blend.edge,
        )
        metadata = {
            "source_frame": frame.source,
            "scenario": drawn.name,
            "kind": drawn.kind,
            "duration_s": drawn.duration_s,
            "params": drawn.params,
            "peak_rise_K": float(rise_grid.max()),
            "peak_recorded_rise": float(result.peak_rise),
            "recorded_unit": frame.unit if frame.unit != "C" else "K",
            "area_px": int(result.area_px),
            "threshold": float(threshold),
        }
        return Sample(
            index=index,
            split="test",
            label=1,
            kind=drawn.name,
            raw=result.raw,
            mask=result.mask,
            rise_K=rise_px.astype(np.float32),
            recorded_rise=result.recorded_rise.astype(np.float32),
            metadata=metadata,
        )


def normal_sample(index: int, split: str, frame: Frame) -> Sample:
    """Wrap an unchanged normal frame as a sample."""
    zeros = np.zeros(frame.shape, dtype=np.float32)
    return Sample(
        index=index,
        split=split,  # type: ignore[arg-type]
        label=0,
        kind="good",
        raw=frame.raw,
        mask=np.zeros(frame.shape, dtype=bool),
        rise_K=zeros,
        recorded_rise=zeros,
        metadata={"source_frame": frame.source},
    )


def simulate_rise(drawn: Any, layout: Layout, recipe: Recipe) -> np.ndarray:
    """Simulate a drawn scenario; return the imaged face's final rise [K]."""
    physics = recipe.physics
    boundary = Boundary(
        ambient_C=physics.ambient_C,
        h_top_W_m2K=physics.h_top_W_m2K,
        h_bottom_W_m2K=physics.h_bottom_W_m2K,
        emissivity_top=physics.emissivity_top,
        emissivity_bottom=physics.emissivity_bottom,
    )
    sources = build_sources(drawn, layout, physics)
    dt_s = min(physics.dt_s, drawn.duration_s / 5)
    result = simulate(
        layout,
        sources,
        boundary=boundary,
        n_layers=physics.n_layers,
        duration_s=drawn.duration_s,
        dt_s=dt_s,
    )
    return np.asarray(result.rise_K[-1], dtype=float)


@dataclass(frozen=True)
class Summary:
    """What a run wrote."""

    output_dir: Path
    n_samples: int
    n_anomalous: int
    mean_area_px: float
    mean_peak_rise_K: float


def generate(
    loaded: LoadedRecipe, *, overwrite: bool = False, progress: bool = True
) -> Summary:
    """Generate the recipe's dataset and write it atomically.

    Raises
    ------
    OutputError
        If the output folder exists and ``overwrite`` is false; checked before
        any work.
    """
    recipe = loaded.recipe
    target = recipe.output.dir
    check_writable(target, overwrite=overwrite)
    generator = Generator(loaded)
    areas: list[int] = []
    peaks: list[float] = []

    with staged_dir(target, overwrite=overwrite) as stage:
        (stage / "recipe.yaml").write_text(loaded.text)
        writers = _Writers(stage, loaded)
        try:
            bar = tqdm(
                generator.samples(),
                total=len(generator),
                disable=not progress,
                unit="sample",
            )
            for sample, frame in bar:
                writers.write(sample, frame)
                if sample.label:
                    areas.append(sample.metadata["area_px"])
                    peaks.append(sample.metadata["peak_rise_K"])
        finally:
            writers.close()

    logger.info("wrote %d samples to %s", len(generator), target)
    return Summary(
        output_dir=target,
        n_samples=len(generator),
        n_anomalous=len(areas),
        mean_area_px=float(np.mean(areas)) if areas else 0.0,
        mean_peak_rise_K=float(np.mean(peaks)) if peaks else 0.0,
    )


class _Writers:
    """The HDF5 and folder writers the recipe asks for, opened on first use."""

    def __init__(self, stage: Path, loaded: LoadedRecipe):
        self._stage = stage
        self._loaded = loaded
        self._hdf5: HDF5Writer | None = None
        self._folder: FolderWriter | None = None

    def write(self, sample: Sample, frame: Frame) -> None:
        output = self._loaded.recipe.output
        if output.hdf5 and self._hdf5 is None:
            attributes = {
                "recipe_yaml": self._loaded.text,
                "recipe_sha256": self._loaded.sha256,
            }
            self._hdf5 = HDF5Writer(
                self._stage / "dataset.h5", attributes=attributes, frame_unit=frame.unit
            )
        if output.folder and self._folder is None:
            self._folder = FolderWriter(self._stage / "folder", frame_unit=frame.unit)
        if self._hdf5 is not None:
            self._hdf5.write(sample)
        if self._folder is not None:
            self._folder.write(sample)

    def close(self) -> None:
        if self._hdf5 is not None:
            self._hdf5.__exit__(None, None, None)
