"""A torch Perlin anomaly generator that does the work of anomalib's, for timing.

anomalib cannot be installed beside the CPU torch pinned here, because its
torchvision does not import. This module re-implements in plain torch the steps
of ``anomalib.data.utils.generators.PerlinAnomalyGenerator`` (anomalib 2.x, read
from its source) when it has no texture folder:

1. Perlin gradient noise on the next power-of-two grid, with ``2**k`` periods
   per axis, k drawn from 0..5 for each axis, quintic fade, scaled by sqrt(2).
   If no value exceeds 0.5, the noise is rescaled to [-1, 1].
2. A random rotation of the noise in [-90, 90] degrees, bilinear, filled with 0.
3. The mask: noise > 0.5. An empty mask is drawn again, up to 10 times.
4. The texture: the rotated noise itself, ``0.5 * noise + 0.25``, on 3 channels.
5. Three distinct augmentations of the texture, drawn from ten: contrast,
   brightness with a channel shuffle, sharpness, hue and saturation, solarize,
   posterize, invert, an AutoAugment-like pair of operations, equalize, and a
   rotation of up to 45 degrees.
6. The blend: ``image * (1 - mask) + beta * texture * mask + (1 - beta) *
   image * mask`` with beta uniform in [0.2, 1.0].

Each frame is made anomalous (anomalib's ``probability`` set to 1), so the
count matches thermosynth's anomalous frames. The operations follow
torchvision's float-image definitions; AutoAugment is reduced to two random
operations from its ImageNet set, each applied with probability 0.6, which
does about the same amount of work. The output is not meant to equal
anomalib's pixel for pixel, only to cost about the same to make.

benchmarks/end_to_end.py imports it and times it against thermosynth on
real frames. Run as a script, it times the generator alone on one random
3-channel frame, on one torch thread:

    OMP_NUM_THREADS=1 python benchmarks/perlin_torch.py --frames 200
"""

from __future__ import annotations

import math
import time

import torch
from _cli import script_parser
from torch.nn import functional as F

_GREY = (0.2989, 0.587, 0.114)
_MAX_TRIES = 10


def perlin_noise(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Return Perlin noise (height, width), roughly in [-1, 1], at random periods."""
    periods = [2 ** int(k) for k in torch.randint(0, 6, (2,), generator=generator)]
    size_y = 1 << max(height - 1, 1).bit_length()
    size_x = 1 << max(width - 1, 1).bit_length()
    cells_y, cells_x = periods

    angles = 2 * math.pi * torch.rand(cells_y + 1, cells_x + 1, generator=generator)
    gradients = torch.stack((torch.cos(angles), torch.sin(angles)), dim=-1)
    y = torch.arange(size_y) * (cells_y / size_y)
    x = torch.arange(size_x) * (cells_x / size_x)
    iy, ix = y.long(), x.long()
    fy, fx = (y - iy)[:, None], (x - ix)[None, :]

    def corner(dy: int, dx: int) -> torch.Tensor:
        g = gradients[iy + dy][:, ix + dx]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    sy, sx = _fade(fy), _fade(fx)
    top = torch.lerp(corner(0, 0), corner(0, 1), sx)
    bottom = torch.lerp(corner(1, 0), corner(1, 1), sx)
    noise = math.sqrt(2.0) * torch.lerp(top, bottom, sy)
    return noise[:height, :width]


def _fade(t: torch.Tensor) -> torch.Tensor:
    return 6 * t**5 - 15 * t**4 + 10 * t**3


def rotate(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate (C, H, W) about its centre, bilinear, filling with 0."""
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    matrix = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]])[None]
    grid = F.affine_grid(matrix, [1, *image.shape], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", align_corners=False)[0]


def _grey(image: torch.Tensor) -> torch.Tensor:
    r, g, b = image[0], image[1], image[2]
    return (_GREY[0] * r + _GREY[1] * g + _GREY[2] * b)[None]


def _mix(image: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)


def contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the mean grey level."""
    return _mix(image, _grey(image).mean(), factor)


def brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale all channels."""
    return (image * factor).clamp(0.0, 1.0)


def saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the grey image."""
    return _mix(image, _grey(image), factor)


def sharpness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with a 3 x 3 smoothed image; border pixels stay."""
    kernel = torch.ones(3, 3)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(image.shape[0], 1, 3, 3)
    smooth = F.conv2d(image[None], kernel, groups=image.shape[0])[0]
    blurred = image.clone()
    blurred[:, 1:-1, 1:-1] = smooth
    return _mix(image, blurred, factor)


def hue(image: torch.Tensor, shift: float) -> torch.Tensor:
    """Shift the hue by ``shift`` turns, through HSV."""
    high, _ = image.max(dim=0)
    low, _ = image.min(dim=0)
    chroma = high - low
    safe = torch.where(chroma == 0, torch.ones_like(chroma), chroma)
    r, g, b = image[0], image[1], image[2]
    h = torch.where(high == r, ((g - b) / safe) % 6, torch.zeros_like(r))
    h = torch.where(high == g, (b - r) / safe + 2, h)
    h = torch.where(high == b, (r - g) / safe + 4, h)
    h = ((h / 6 + shift) % 1.0) * 6
    s = torch.where(high == 0, torch.zeros_like(high), chroma / high.clamp_min(1e-12))
    sector = h.floor()
    f = h - sector
    p, q, t = high * (1 - s), high * (1 - s * f), high * (1 - s * (1 - f))
    choices = torch.stack(
        [
            torch.stack(c)
            for c in (
                (high, t, p),
                (q, high, p),
                (p, high, t),
                (p, q, high),
                (t, p, high),
                (high, p, q),
            )
        ]
    )
    index = (sector.long() % 6)[None, None].expand(1, 3, *h.shape)
    return choices.gather(0, index)[0]


def solarize(image: torch.Tensor, threshold: float) -> torch.Tensor:
    """Invert values at or above ``threshold``."""
    return torch.where(image >= threshold, 1.0 - image, image)


def posterize(image: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep ``bits`` bits per channel."""
    levels = 1 << bits
    return image.mul(levels).floor_().clamp_(0, levels - 1).mul_(1.0 / levels)


def equalize(image: torch.Tensor) -> torch.Tensor:
    """Equalise each channel's 256-bin histogram."""
    levels = (image * 255).round().long().clamp(0, 255)
    out = torch.empty_like(image)
    for channel in range(image.shape[0]):
        counts = torch.bincount(levels[channel].reshape(-1), minlength=256)
        cdf = counts.cumsum(0).double()
        lut = ((cdf - cdf[0]) / max(float(cdf[-1] - cdf[0]), 1.0) * 255).round()
        out[channel] = lut[levels[channel]].float() / 255
    return out


def autocontrast(image: torch.Tensor) -> torch.Tensor:
    """Stretch each channel to [0, 1]."""
    low = image.amin(dim=(1, 2), keepdim=True)
    high = image.amax(dim=(1, 2), keepdim=True)
    return ((image - low) / (high - low).clamp_min(1e-12)).clamp(0.0, 1.0)


def shear(image: torch.Tensor, amount: float) -> torch.Tensor:
    """Shear along x, bilinear, filling with 0."""
    matrix = torch.tensor([[1.0, amount, 0.0], [0.0, 1.0, 0.0]])[None]
    grid = F.affine_grid(matrix, [1, *image.shape], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", align_corners=False)[0]


class PerlinAnomalyTorch:
    """Make anomalous frames the way anomalib's Perlin generator does.

    Parameters
    ----------
    generator : torch.Generator
        Source of all random draws.
    blend_factor : tuple of float
        Range of beta, the texture's weight inside the mask.
    rotation_deg : tuple of float
        Range of the noise rotation [degrees].
    """

    def __init__(
        self,
        generator: torch.Generator,
        *,
        blend_factor: tuple[float, float] = (0.2, 1.0),
        rotation_deg: tuple[float, float] = (-90.0, 90.0),
    ) -> None:
        self.generator = generator
        self.blend_factor = blend_factor
        self.rotation_deg = rotation_deg
        # anomalib draws the solarize threshold once, when the generator is built.
        self.solarize_threshold = self._uniform(32 / 255, 128 / 255)
        self.augmenters = [
            lambda x: contrast(x, self._uniform(0.5, 2.0)),
            self._photometric,
            lambda x: sharpness(x, 2.0),
            self._hue_saturation,
            lambda x: solarize(x, self.solarize_threshold),
            lambda x: posterize(x, 4),
            lambda x: 1.0 - x,
            self._autoaugment,
            equalize,
            lambda x: rotate(x, self._uniform(-45.0, 45.0)),
        ]

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the anomalous image (3, H, W) and its mask (1, H, W)."""
        height, width = image.shape[-2:]
        for _ in range(_MAX_TRIES):
            texture, mask = self._perturbation(height, width)
            if mask.any():
                break
        beta = self._uniform(*self.blend_factor)
        inside = image * mask
        return image - inside + beta * texture + (1.0 - beta) * inside, mask

    def _perturbation(
        self, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        noise = perlin_noise(height, width, self.generator)
        if not (noise > 0.5).any():
            noise = 2 * (noise - noise.min()) / (noise.max() - noise.min()) - 1
        noise = rotate(noise[None], self._uniform(*self.rotation_deg))
        mask = (noise > 0.5).float()

        texture = (0.5 * noise + 0.25).expand(3, -1, -1)
        order = torch.multinomial(
            torch.ones(len(self.augmenters)), 3, generator=self.generator
        )
        for i in order.tolist():
            texture = self.augmenters[i](texture)
        return texture * mask, mask

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def _photometric(self, image: torch.Tensor) -> torch.Tensor:
        image = brightness(image, self._uniform(0.8, 1.2))
        return image[torch.randperm(image.shape[0], generator=self.generator)]

    def _hue_saturation(self, image: torch.Tensor) -> torch.Tensor:
        shift = self._uniform(-50 / 360, 50 / 360)
        factor = self._uniform(0.5, 1.5)
        if self._uniform(0.0, 1.0) < 0.5:
            return saturation(hue(image, shift), factor)
        return hue(saturation(image, factor), shift)

    def _autoaugment(self, image: torch.Tensor) -> torch.Tensor:
        operations = [
            lambda x: posterize(x, 4 + int(self._uniform(0, 4))),
            lambda x: rotate(x, self._uniform(-30.0, 30.0)),
            lambda x: solarize(x, self._uniform(0.0, 1.0)),
            autocontrast,
            equalize,
            lambda x: saturation(x, self._uniform(0.1, 1.9)),
            lambda x: contrast(x, self._uniform(0.1, 1.9)),
            lambda x: sharpness(x, self._uniform(0.1, 1.9)),
            lambda x: shear(x, self._uniform(-0.3, 0.3)),
            lambda x: 1.0 - x,
            lambda x: brightness(x, self._uniform(0.1, 1.9)),
        ]
        picks = torch.randint(0, len(operations), (2,), generator=self.generator)
        for i in picks.tolist():
            if self._uniform(0.0, 1.0) < 0.6:
                image = operations[i](image)
        return image


def main() -> None:
    """Time the generator on one random frame and print the frames per second."""
    parser = script_parser(__doc__)
    parser.add_argument(
        "--frames",
        type=int,
        default=200,
        help="anomalous frames to make (default: %(default)s)",
    )
    parser.add_argument(
        "--size-px",
        type=int,
        default=256,
        help="frame height and width [px] (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="torch generator seed (default: %(default)s)",
    )
    args = parser.parse_args()
    if args.frames < 1:
        parser.error(f"--frames must be at least 1, got {args.frames}")
    if args.size_px < 3:
        # The sharpness augmentation's 3 x 3 kernel needs 3 pixels per side.
        parser.error(f"--size-px must be at least 3, got {args.size_px}")

    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(args.seed)
    image = torch.rand(3, args.size_px, args.size_px, generator=generator)
    perlin = PerlinAnomalyTorch(generator)
    mask_share = 0.0
    start = time.perf_counter()
    for _ in range(args.frames):
        mask_share += float(perlin(image)[1].mean()) / args.frames
    rate = args.frames / (time.perf_counter() - start)
    print(
        f"{args.frames} frames of {args.size_px} x {args.size_px} px: "
        f"{rate:.1f} frames/s on one torch thread, mean mask share {mask_share:.1%}"
    )


if __name__ == "__main__":
    main()
