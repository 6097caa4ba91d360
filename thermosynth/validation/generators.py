"""Pseudo-anomaly generators to compare: thermosynth's physics and the usual ones.

Every generator is a callable ``generator(image, rng) -> (anomalous, mask)``
on 8-bit greyscale images: ``image`` is uint8 (H, W), ``anomalous`` is uint8
(H, W) and ``mask`` is boolean (H, W). Pixels outside ``mask`` are returned
bit for bit unchanged, and all output stays on the 8-bit grid, so that a
detector cannot tell pseudo-anomalies by fractional levels. Pixels inside the
mask may keep their level where the change rounds to zero.

The baselines follow the published schemes in spirit, scaled to small frames:
additive Gaussian noise in a region, CutPaste (a patch from another normal
frame), a blend of two normal frames, a self-blend with a shifted and
re-scaled copy, and DRAEM's Perlin-noise mask with texture blending. DRAEM
blends textures from the DTD texture set; here the texture is another normal
frame with a random flip and intensity change, because nothing may be
downloaded at run time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from thermosynth.blend import blend, default_threshold
from thermosynth.build import register
from thermosynth.camera.model import Camera, record_rise
from thermosynth.errors import RecipeError
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame
from thermosynth.frames.noise import estimate_noise
from thermosynth.geometry.layout import Layout
from thermosynth.geometry.registration import warp_to_frame
from thermosynth.geometry.sampling import samples_per_pixel
from thermosynth.physics.fast import simulate_batch
from thermosynth.pipeline import Generator
from thermosynth.recipe.loading import LoadedRecipe
from thermosynth.recipe.models import ScenarioSpec
from thermosynth.scenario import (
    DrawnScenario,
    build_sources,
    choose_scenario,
    draw_more_sources,
    draw_scenario,
)
from thermosynth.simulation import boundary_from

logger = logging.getLogger(__name__)

PseudoGenerator = Callable[
    [np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]
]

_MAX_TRIES = 20

MAX_BANK_SAMPLE_BYTES = 512 * 2**20
"""Largest size [bytes] of a bank's footprint samples (`simulate_rise_bank`)."""


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(
            f"image is {image.dtype} with shape {image.shape}; the generators take "
            "8-bit greyscale frames, uint8 (H, W)"
        )
    return image


def _check_pool(pool: np.ndarray) -> np.ndarray:
    pool = np.asarray(pool)
    if pool.dtype != np.uint8 or pool.ndim != 3 or len(pool) == 0:
        raise ValueError(
            f"pool is {pool.dtype} with shape {pool.shape}; give normal frames as "
            "uint8 (N, H, W) with N >= 1"
        )
    return pool


def _apply(image: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Round ``values`` to 8 bits and write them into ``image`` under ``mask``."""
    quantised = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.where(mask, quantised, image)


def ellipse_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    axes_px: tuple[float, float] = (1.5, 6.0),
) -> np.ndarray:
    """Draw a filled ellipse at a random centre, with semi-axes in ``axes_px`` [px]."""
    h, w = shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ay, ax = rng.uniform(*axes_px, size=2)
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w] + 0.5
    dy, dx = y - cy, x - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    mask = (u / ax) ** 2 + (v / ay) ** 2 <= 1.0
    if not mask.any():
        mask[min(int(cy), h - 1), min(int(cx), w - 1)] = True
    return mask


@dataclass
class GaussianNoise:
    """Add Gaussian noise of a random standard deviation inside an ellipse.

    Parameters
    ----------
    sigma_levels : tuple of float
        Range of the noise's standard deviation [level], drawn uniformly.
    """

    sigma_levels: tuple[float, float] = (5.0, 25.0)

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image)
        mask = ellipse_mask(image.shape, rng)
        sigma = rng.uniform(*self.sigma_levels)
        noisy = image + rng.normal(0.0, sigma, image.shape)
        return _apply(image, noisy, mask), mask


@dataclass
class CutPaste:
    """Paste a rectangle cut from another normal frame (CutPaste, Li et al. 2021).

    Parameters
    ----------
    pool : ndarray
        Normal frames to cut from, uint8 (N, H, W).
    size_px : tuple of int
        Range of the patch's height and width [px].
    """

    pool: np.ndarray
    size_px: tuple[int, int] = (3, 12)

    def __post_init__(self) -> None:
        self.pool = _check_pool(self.pool)

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image)
        h, w = image.shape
        ph = int(rng.integers(self.size_px[0], min(self.size_px[1], h) + 1))
        pw = int(rng.integers(self.size_px[0], min(self.size_px[1], w) + 1))
        source = self.pool[rng.integers(len(self.pool))]
        sy, sx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
        ty, tx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)

        pasted = image.astype(np.float64)
        pasted[ty : ty + ph, tx : tx + pw] = source[sy : sy + ph, sx : sx + pw]
        mask = np.zeros(image.shape, dtype=bool)
        mask[ty : ty + ph, tx : tx + pw] = True
        return _apply(image, pasted, mask), mask


@dataclass
class NormalBlend:
    """Blend another normal frame into an ellipse with a random opacity.

    Parameters
    ----------
    pool : ndarray
        Normal frames to blend in, uint8 (N, H, W).
    alpha : tuple of float
        Range of the other frame's weight inside the mask, in (0, 1].
    """

    pool: np.ndarray
    alpha: tuple[float, float] = (0.5, 1.0)

    def __post_init__(self) -> None:
        self.pool = _check_pool(self.pool)

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image)
        mask = ellipse_mask(image.shape, rng, axes_px=(2.0, 10.0))
        other = self.pool[rng.integers(len(self.pool))].astype(np.float64)
        a = rng.uniform(*self.alpha)
        mixed = (1.0 - a) * image + a * other
        return _apply(image, mixed, mask), mask


@dataclass
class SelfBlend:
    """Blend a shifted, re-scaled copy of the frame into itself (after SBI, 2022).

    Parameters
    ----------
    shift_px : int
        Maximum shift of the copy along each axis [px].
    gain : tuple of float
        Range of the copy's contrast gain about its mean.
    offset_levels : tuple of float
        Range of the copy's brightness offset [level].
    """

    shift_px: int = 3
    gain: tuple[float, float] = (0.7, 1.5)
    offset_levels: tuple[float, float] = (-20.0, 20.0)

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image)
        mask = ellipse_mask(image.shape, rng, axes_px=(2.0, 8.0))
        dy, dx = rng.integers(-self.shift_px, self.shift_px + 1, size=2)
        copy = np.roll(image.astype(np.float64), (int(dy), int(dx)), axis=(0, 1))
        mean = copy.mean()
        copy = mean + (copy - mean) * rng.uniform(*self.gain)
        copy += rng.uniform(*self.offset_levels)
        a = rng.uniform(0.5, 1.0)
        return _apply(image, (1.0 - a) * image + a * copy, mask), mask


def perlin_noise(
    shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Return 2D Perlin gradient noise, roughly in [-1, 1].

    Parameters
    ----------
    shape : tuple of int
        Output (H, W) [px].
    res : tuple of int
        Number of noise periods along each axis, >= 1.
    rng : numpy.random.Generator
        Source of the random gradient directions.
    """
    ry, rx = res
    if ry < 1 or rx < 1:
        raise ValueError(f"res = {res} is invalid; give periods >= 1 along each axis")
    cy, cx = -(-shape[0] // ry), -(-shape[1] // rx)
    h, w = cy * ry, cx * rx

    angles = rng.uniform(0.0, 2.0 * np.pi, (ry + 1, rx + 1))
    gy, gx = np.sin(angles), np.cos(angles)
    y = (np.arange(h) + 0.5) / cy
    x = (np.arange(w) + 0.5) / cx
    iy, ix = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - iy)[:, None], (x - ix)[None, :]

    def corner(oy: int, ox: int) -> np.ndarray:
        g_y = gy[iy + oy][:, ix + ox]
        g_x = gx[iy + oy][:, ix + ox]
        return g_y * (fy - oy) + g_x * (fx - ox)

    sy, sx = _fade(fy), _fade(fx)
    top = corner(0, 0) * (1 - sx) + corner(0, 1) * sx
    bottom = corner(1, 0) * (1 - sx) + corner(1, 1) * sx
    noise = (top * (1 - sy) + bottom * sy) * np.sqrt(2.0)
    return noise[: shape[0], : shape[1]]


def _fade(t: np.ndarray) -> np.ndarray:
    return 6 * t**5 - 15 * t**4 + 10 * t**3


@dataclass
class PerlinBlend:
    """DRAEM's scheme: a thresholded Perlin-noise mask filled with a texture.

    Inside the mask the frame becomes ``beta * image + (1 - beta) * texture``
    (Zavrtanik et al. 2021), with ``beta`` drawn from ``beta`` and the texture
    a flipped, re-scaled normal frame from ``pool``.

    Parameters
    ----------
    pool : ndarray
        Normal frames to take textures from, uint8 (N, H, W).
    threshold : float
        Perlin value above which a pixel is in the mask.
    beta : tuple of float
        Range of the frame's own weight inside the mask.
    max_period_log2 : int
        Noise periods per axis are ``2**k`` with k in [0, max_period_log2].
    """

    pool: np.ndarray
    threshold: float = 0.5
    beta: tuple[float, float] = (0.0, 0.8)
    max_period_log2: int = 3

    def __post_init__(self) -> None:
        self.pool = _check_pool(self.pool)

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        image = _check_image(image)
        mask = self._mask(image.shape, rng)
        texture = self.pool[rng.integers(len(self.pool))].astype(np.float64)
        texture = texture[:: rng.choice([-1, 1]), :: rng.choice([-1, 1])]
        mean = texture.mean()
        texture = mean + (texture - mean) * rng.uniform(0.5, 3.0)
        texture += rng.uniform(-30.0, 30.0)

        beta = rng.uniform(*self.beta)
        return _apply(image, beta * image + (1.0 - beta) * texture, mask), mask

    def _mask(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        for _ in range(_MAX_TRIES):
            ry, rx = 2 ** rng.integers(0, self.max_period_log2 + 1, size=2)
            mask = perlin_noise(shape, (int(ry), int(rx)), rng) > self.threshold
            if mask.any():
                return mask
        return ellipse_mask(shape, rng)


@dataclass
class InRegion:
    """Keep another generator's pseudo-anomalies inside a region of interest.

    A baseline draws its mask anywhere in the frame, and on frames whose
    region of interest leaves out background most of its draws would land
    off the object, where a detector has nothing to learn. This wrapper
    redraws until at least half of the mask lies in ``region``, then drops
    the mask's pixels outside it and restores them, so the pixels outside
    the returned mask stay bit for bit unchanged. After ``_MAX_TRIES``
    draws it keeps the draw with the most pixels inside.

    A baseline may also copy pixels from elsewhere: CutPaste's patch, a
    shifted or flipped texture. So the generator receives the frame with
    the pixels outside ``region`` set to the region's median level
    (:func:`fill_outside`). Fill its pool the same way, so that no
    background is pasted onto the object.

    Parameters
    ----------
    generator : callable
        ``generator(image, rng) -> (anomalous, mask)`` to wrap.
    region : ndarray
        Boolean (H, W) region of interest with at least one pixel.
    """

    generator: PseudoGenerator
    region: np.ndarray

    def __post_init__(self) -> None:
        self.region = np.asarray(self.region, dtype=bool)
        if not self.region.any():
            raise ValueError(
                "the region of interest contains no pixel; give a region with "
                "at least one pixel"
            )

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        region = _check_region(self.region, image.shape)
        best = image, np.zeros(image.shape, dtype=bool)
        filled = fill_outside(image[None], region)[0]
        for _ in range(_MAX_TRIES):
            anomalous, mask = self.generator(filled, rng)
            inside = mask & region
            if 2 * inside.sum() >= mask.sum() > 0:
                best = anomalous, inside
                break
            if inside.sum() > best[1].sum():
                best = anomalous, inside

        anomalous, inside = best
        if not inside.any():
            raise ValueError(
                f"{_MAX_TRIES} draws of {type(self.generator).__name__} put no "
                f"mask pixel in the region of interest ({region.sum()} px); "
                "widen the region or use larger masks"
            )
        return np.where(inside, anomalous, image), inside


def fill_outside(frames: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Return uint8 ``frames`` (N, H, W) with pixels outside ``region`` at its median.

    Each frame is filled with the median level of its own pixels in the
    boolean (H, W) ``region``.
    """
    frames = _check_pool(frames)
    medians = np.median(frames[:, region], axis=1)
    fill = np.rint(medians).astype(np.uint8)[:, None, None]
    return np.where(region, frames, fill)


@dataclass
class Mixture:
    """Draw each pseudo-anomaly from one of several generators, chosen uniformly.

    It lets one run mix the faults of several recipes, such as a fleet of
    crystalline and thin-film PV modules, each simulated on its own layout.

    Parameters
    ----------
    members : sequence of callable
        ``generator(image, rng) -> (anomalous, mask)``, at least one.
    """

    members: tuple[PseudoGenerator, ...]

    def __post_init__(self) -> None:
        self.members = tuple(self.members)
        if not self.members:
            raise ValueError("members is empty; a Mixture needs at least one generator")

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        member = self.members[int(rng.integers(len(self.members)))]
        return member(image, rng)


@dataclass
class ThermalHotspots:
    """thermosynth's pseudo-anomalies: simulated rises blended through the camera.

    Each call picks one rise from a bank simulated once (see
    :func:`simulate_rise_bank`), flips it at random when ``flip`` is set,
    multiplies it by ``scale`` times a factor drawn log-uniformly in
    [1 / ``spread``, ``spread``], records it with
    :func:`thermosynth.camera.record_rise` and blends it with
    :func:`thermosynth.blend.blend` (fixed gain) into the pixels of
    ``region``. The mask is the blend's mask, so it lies inside ``region``.
    The frame is read as 8-bit levels (unit "level"), so ``camera`` needs
    ``levels_per_kelvin``.

    Parameters
    ----------
    rises_K : ndarray
        True surface rises warped to frame pixels [K], float (M, H, W), or
        (M, H, W, s) with ``s`` samples of each pixel's footprint, whose
        radiance the camera averages (`simulate_rise_bank` keeps them).
    camera : Camera
        The camera that recorded the frames.
    ambient_C : float
        Ambient temperature [C].
    scale : float
        Factor on every rise, > 0; the severity knob.
    spread : float
        Per-sample contrast spread, >= 1: each rise is also multiplied by a
        factor drawn log-uniformly in [1 / spread, spread], so that one bank
        gives fainter and stronger copies of each simulated fault. 1 keeps
        every rise at ``scale``.
    noise_multiple : float
        Blend threshold as a multiple of the frame's estimated noise.
    region : ndarray, optional
        Boolean (H, W) region of interest: the only pixels that the blend may
        change, and the pixels whose noise sets the threshold. None means the
        whole frame.
    flip : bool
        Flip each rise at random along both axes. This is right only where
        the registration maps the layout onto the frame symmetrically (a
        full-frame PV module, whose cell grid is symmetric under both flips),
        not for a module seen in perspective.

    Raises
    ------
    RecipeError
        If ``camera.emissivity_regions`` is set. The bank contains rises already
        warped to frame pixels, without the layout's regions, and the random
        flips move a rise away from the pixels of the region that made it, so
        per-region emissivity is not supported here.
    """

    rises_K: np.ndarray
    camera: Camera
    ambient_C: float = 30.0
    scale: float = 1.0
    noise_multiple: float = 3.0
    spread: float = 1.0
    region: np.ndarray | None = None
    flip: bool = True
    _encoding: LinearEncoding = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.camera.emissivity_regions:
            raise RecipeError(
                "ThermalHotspots does not support camera.emissivity_regions = "
                f"{dict(self.camera.emissivity_regions)}, because its rises "
                "carry no layout regions and are flipped at random; remove "
                "camera.emissivity_regions, or make the anomalies with "
                "'thermosynth generate'"
            )
        if self.rises_K.ndim not in (3, 4) or len(self.rises_K) == 0:
            raise ValueError(
                f"rises_K has shape {self.rises_K.shape}; expected (M, H, W) or "
                "(M, H, W, samples), M >= 1"
            )
        if not self.scale > 0.0:
            raise ValueError(f"scale = {self.scale} is invalid; use a factor > 0")
        if not 1.0 <= self.spread < float("inf"):
            raise ValueError(
                f"spread = {self.spread} is invalid; use a finite factor >= 1 "
                "(1 = none)"
            )
        if self.region is not None:
            self.region = _check_region(self.region, self.rises_K.shape[1:3])
        self._encoding = LinearEncoding(np.uint8)

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        frame = self._frame(_check_image(image))
        threshold = default_threshold(frame, noise_multiple=self.noise_multiple)
        for _ in range(_MAX_TRIES):
            rise = self.rises_K[rng.integers(len(self.rises_K))]
            factor = self.scale
            if self.spread > 1.0:
                factor *= self.spread ** rng.uniform(-1.0, 1.0)
            if self.flip:
                rise = rise[:: rng.choice([-1, 1]), :: rng.choice([-1, 1])]
            rise = rise * factor
            recorded = record_rise(self.camera, rise, frame, ambient_C=self.ambient_C)
            result = blend(frame, recorded, threshold=threshold)
            if result.area_px > 0:
                return result.raw, result.mask
        return image.copy(), np.zeros(image.shape, dtype=bool)

    def _frame(self, image: np.ndarray) -> Frame:
        if image.shape != self.rises_K.shape[1:3]:
            raise ValueError(
                f"image has shape {image.shape} but the rises are "
                f"{self.rises_K.shape[1:3]}; simulate the bank for this frame size"
            )
        values = self._encoding.decode(image)
        valid = np.ones(image.shape, dtype=bool) if self.region is None else self.region
        sigma = estimate_noise(values, valid, quantum=self._encoding.quantum)
        return Frame(image, values, "level", valid, self._encoding, sigma, "array")


def _check_region(region: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    region = np.asarray(region)
    if region.shape != shape or region.dtype != bool:
        raise ValueError(
            f"region is {region.dtype} with shape {region.shape}; give a boolean "
            f"mask of the rises' shape {shape}"
        )
    if not region.any():
        raise ValueError("region contains no pixel; give a region of interest")
    return region


def simulate_rise_bank(
    loaded: LoadedRecipe,
    frame: Frame,
    *,
    n_scenarios: int,
    seed: int,
    n_times: int = 3,
) -> np.ndarray:
    """Simulate the recipe's scenarios once and warp the rises to frame pixels.

    All scenarios run together with :func:`thermosynth.physics.fast.simulate_batch`
    (one factorisation). Each rise is kept at ``n_times`` moments, the
    quantiles 10 % to 90 % of the drawn durations, so the bank holds
    ``n_scenarios * n_times`` rises. A scenario with ``count`` heats its
    sources together in one simulation, from the first source's duration.

    Parameters
    ----------
    loaded : LoadedRecipe
        Recipe with the layout, physics, camera registration and scenarios.
    frame : Frame
        A frame of the target size, used for the registration.
    n_scenarios : int
        Number of scenarios to draw, >= 1.
    seed : int
        Seed of the scenario draws.
    n_times : int
        Moments kept per scenario, >= 1.

    Returns
    -------
    ndarray
        Rises [K], float32 (n_scenarios * n_times, H, W, s), with ``s``
        samples of each pixel's footprint (`warp_to_frame` with
        ``keep_samples``). Where they would take more than
        `MAX_BANK_SAMPLE_BYTES`, each pixel keeps only their mean,
        (n_scenarios * n_times, H, W, 1), and a warning says so.
    """
    # ThermalHotspots converts these rises to 8-bit levels with
    # camera.levels_per_kelvin, even for a recipe whose own frames are in C.
    # So the warning that the key is ignored would be false here.
    generator = Generator(loaded, warn_level_scale=False)
    recipe = generator.recipe
    physics = recipe.physics
    rng = np.random.default_rng(seed)
    drawn = [
        _draw_sources(recipe.scenarios, generator.layout, rng)
        for _ in range(n_scenarios)
    ]
    batch = [
        [s for d in sources for s in build_sources(d, generator.layout, physics)]
        for sources in drawn
    ]
    durations = [sources[0].duration_s for sources in drawn]
    times = np.unique(np.quantile(durations, np.linspace(0.1, 0.9, n_times)))

    boundary = boundary_from(physics, layout=generator.layout)
    results = simulate_batch(
        generator.layout,
        batch,
        boundary=boundary,
        n_layers=physics.n_layers,
        duration_s=float(times[-1]),
        dt_s=min(physics.dt_s, float(times[0]) / 5),
        output_times_s=[float(t) for t in times],
    )

    homography, _ = register(recipe.registration, generator.layout, frame)
    fields = drop_round_off(np.concatenate([r.rise_K for r in results]))
    logger.info("simulated a bank of %d rises", len(fields))
    return _warp_bank(fields, homography, frame.shape)


def _warp_bank(
    fields: np.ndarray, homography: np.ndarray, frame_shape: tuple[int, int]
) -> np.ndarray:
    """Warp a bank of layout rises [K] to float32 footprint samples per pixel."""
    samples = samples_per_pixel(homography, fields.shape[1:], frame_shape)
    size = fields.shape[0] * frame_shape[0] * frame_shape[1] * samples**2 * 4
    if size <= MAX_BANK_SAMPLE_BYTES:
        warped = warp_to_frame(fields, homography, frame_shape, keep_samples=True)
        return warped.astype(np.float32)

    # NOTE: these pixels average temperature, not radiance, over their
    # footprint, so a sub-pixel hot spot records less than it would.
    logger.warning(
        "the bank's footprint samples would take %.0f MiB, more than %.0f MiB; "
        "each pixel keeps their mean temperature rise instead, which records "
        "sub-pixel hot spots fainter; simulate fewer scenarios to keep them",
        size / 2**20,
        MAX_BANK_SAMPLE_BYTES / 2**20,
    )
    warped = warp_to_frame(fields, homography, frame_shape)
    return warped[..., None].astype(np.float32)


def _draw_sources(
    scenarios: list[ScenarioSpec], layout: Layout, rng: np.random.Generator
) -> list[DrawnScenario]:
    """Choose a scenario by weight and draw its ``count`` sources."""
    spec = choose_scenario(scenarios, rng)
    return draw_more_sources(spec, layout, rng, draw_scenario(spec, layout, rng))


def drop_round_off(rises_K: np.ndarray, *, relative: float = 1e-9) -> np.ndarray:
    """Zero the small negative round-off that the solvers leave in rises.

    The solvers leave values of about -1e-14 K far from a source, and
    :func:`thermosynth.blend.blend` rejects a negative recorded rise. Values
    below ``-relative`` times the largest magnitude are kept, so that a real
    error still reaches the blend's check. Returns a new array.
    """
    tolerance = relative * float(np.max(np.abs(rises_K), initial=0.0))
    return np.where((rises_K < 0.0) & (rises_K >= -tolerance), 0.0, rises_K)
