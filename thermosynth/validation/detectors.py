"""Small anomaly detectors trained from scratch on 8-bit greyscale frames.

A detector is an object with ``uses_pseudo`` (whether it trains on
pseudo-anomalies) and ``fit(normal, anomalous, masks, rng) -> Scorer``.
``anomalous`` and ``masks`` are pseudo-anomalies made from normal frames (or,
for a supervised ceiling, real anomalies with ``masks=None``); one-class
detectors ignore them. A scorer maps uint8 (N, H, W) frames to image scores
(N,) and anomaly maps (N, H, W), or None where the detector gives no map.

Every network receives ``(image - median(image)) / 32`` so that the overall
brightness of a module, which varies with the survey, does not matter. Model
selection uses a validation split carved from the training arrays alone.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from thermosynth.validation.metrics import auroc

logger = logging.getLogger(__name__)

ScoreResult = tuple[np.ndarray, np.ndarray | None]
Scorer = Callable[[np.ndarray], ScoreResult]

_LEVEL_SCALE = 32.0


class Detector(Protocol):
    """Detector interface that ``transfer.transfer_report`` trains and scores."""

    uses_pseudo: bool

    def fit(
        self,
        normal: np.ndarray,
        anomalous: np.ndarray | None,
        masks: np.ndarray | None,
        rng: np.random.Generator,
    ) -> Scorer: ...


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """Centre each uint8 frame on its median and scale; returns (N, 1, H, W) float32."""
    x = np.asarray(images, dtype=np.float32)
    x = (x - np.median(x, axis=(1, 2), keepdims=True)) / _LEVEL_SCALE
    return torch.from_numpy(x[:, None])


def max_minus_median(images: np.ndarray) -> ScoreResult:
    """Score each frame by its max minus its median [level], the heuristic baseline."""
    x = np.asarray(images, dtype=np.float64)
    return x.max(axis=(1, 2)) - np.median(x, axis=(1, 2)), None


@dataclass
class _TrainSpec:
    steps: int = 600
    batch: int = 64
    lr: float = 2e-3
    eval_every: int = 100
    val_fraction: float = 0.15


def _split(
    n: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_val = max(1, int(round(n * fraction)))
    return order[n_val:], order[:n_val]


def _seed_torch(rng: np.random.Generator) -> None:
    torch.manual_seed(int(rng.integers(2**31)))


@torch.no_grad()
def _predict(
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]],
    images: np.ndarray,
    batch: int = 512,
) -> ScoreResult:
    scores: list[np.ndarray] = []
    maps: list[np.ndarray] = []
    for start in range(0, len(images), batch):
        s, m = fn(to_tensor(images[start : start + batch]))
        scores.append(s.numpy())
        if m is not None:
            maps.append(m.numpy())
    score = np.concatenate(scores).astype(np.float64)
    if not maps:
        return score, None
    return score, np.concatenate(maps).astype(np.float64)


def _select_best(
    model: nn.Module,
    step_fn: Callable[[int], float],
    val_fn: Callable[[], float],
    spec: _TrainSpec,
) -> float:
    """Run ``spec.steps`` steps, keep the weights with the best validation score."""
    best, best_state = -np.inf, copy.deepcopy(model.state_dict())
    for step in range(1, spec.steps + 1):
        model.train()
        loss = step_fn(step)
        if step % spec.eval_every == 0 or step == spec.steps:
            model.eval()
            value = val_fn()
            logger.debug("step %d loss %.4f validation %.4f", step, loss, value)
            if value > best:
                best, best_state = value, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return best


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())


class _LogitMap(nn.Module):
    """Fully convolutional net: a logit per pixel; the image logit is the max."""

    def __init__(self, c_in: int = 1, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(c_in, width),
            nn.MaxPool2d(2),
            _conv(width, 2 * width),
            _conv(2 * width, 2 * width),
            nn.Conv2d(2 * width, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.body(x)
        return F.interpolate(logits, size=x.shape[-2:], mode="nearest")[:, 0]


def _image_logit(logit_map: torch.Tensor) -> torch.Tensor:
    return logit_map.flatten(1).amax(dim=1)


@dataclass
class Classifier:
    """Binary CNN, normal against anomalous; the image logit is the max of a logit map.

    Trained on image labels only. The logit map, upsampled to the frame,
    serves as the anomaly map, so pixel metrics apply even without pixel
    supervision.
    """

    steps: int = 600
    width: int = 8
    uses_pseudo: bool = True

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        _require(anomalous, "Classifier")
        _seed_torch(rng)
        spec = _TrainSpec(steps=self.steps)
        tr_n, va_n = _split(len(normal), spec.val_fraction, rng)
        tr_a, va_a = _split(len(anomalous), spec.val_fraction, rng)
        xn, xa = to_tensor(normal[tr_n]), to_tensor(anomalous[tr_a])
        model = _LogitMap(1, self.width)
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr)

        def step(_: int) -> float:
            i = torch.from_numpy(rng.integers(len(xn), size=spec.batch))
            j = torch.from_numpy(rng.integers(len(xa), size=spec.batch))
            logits = _image_logit(model(torch.cat([xn[i], xa[j]])))
            target = torch.cat([torch.zeros(spec.batch), torch.ones(spec.batch)])
            loss = F.binary_cross_entropy_with_logits(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return float(loss.detach())

        def score(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m = model(x)
            return _image_logit(m), m

        val = _val_auroc(score, normal[va_n], anomalous[va_a])
        _select_best(model, step, val, spec)
        return lambda images: _predict(score, images)


def _val_auroc(score, normal: np.ndarray, anomalous: np.ndarray) -> Callable[[], float]:  # noqa: ANN001
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    images = np.concatenate([normal, anomalous])
    return lambda: auroc(labels, _predict(score, images)[0])


def _require(anomalous: np.ndarray | None, name: str) -> None:
    if anomalous is None or len(anomalous) == 0:
        raise ValueError(
            f"{name} trains on anomalous frames but got none; pass a generator"
        )


class _Reconstructor(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _conv(1, width),
            nn.MaxPool2d(2),
            _conv(width, 2 * width),
            nn.MaxPool2d(2),
            _conv(2 * width, 2 * width),
            nn.Upsample(scale_factor=2),
            _conv(2 * width, width),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _pooled_max(maps: torch.Tensor) -> torch.Tensor:
    """Return the max of the 3 x 3 mean-pooled map, DRAEM's image score."""
    pooled = F.avg_pool2d(
        maps[:, None], 3, stride=1, padding=1, count_include_pad=False
    )
    return pooled.flatten(1).amax(dim=1)


@dataclass
class Draem:
    """DRAEM's scheme, small: restore normal content, then segment the difference.

    A reconstructive net learns to return the normal frame from a
    pseudo-anomalous one (L2 loss). A discriminative net receives the input and its
    reconstruction and segments the pseudo-anomaly mask (binary cross-entropy
    in place of DRAEM's focal loss). The image score is the max of the 3 x 3
    mean-pooled mask probability.
    """

    steps: int = 600
    uses_pseudo: bool = True

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        _require(anomalous, "Draem")
        if masks is None:
            raise ValueError(
                "Draem trains on pixel masks; give masks with the anomalies"
            )
        _seed_torch(rng)
        spec = _TrainSpec(steps=self.steps)
        tr, va = _split(len(anomalous), spec.val_fraction, rng)
        tr_n, va_n = _split(len(normal), spec.val_fraction, rng)
        # Pseudo-anomalies are made from the normal frames in the same order.
        clean, xa = to_tensor(normal[: len(anomalous)]), to_tensor(anomalous)
        ym = torch.from_numpy(np.asarray(masks, dtype=np.float32))
        recon, seg = _Reconstructor(), _LogitMap(2)
        params = list(recon.parameters()) + list(seg.parameters())
        opt = torch.optim.Adam(params, lr=spec.lr)
        both = nn.ModuleList([recon, seg])

        def step(_: int) -> float:
            i = torch.from_numpy(rng.choice(tr, size=spec.batch))
            keep = torch.from_numpy(rng.random(spec.batch) < 0.5)
            x = torch.where(keep[:, None, None, None], clean[i], xa[i])
            y = torch.where(keep[:, None, None], 0.0, ym[i])
            r = recon(x)
            logits = seg(torch.cat([x, r], dim=1))
            loss = F.mse_loss(r, clean[i]) + F.binary_cross_entropy_with_logits(
                logits, y
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            return float(loss.detach())

        def score(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            p = torch.sigmoid(seg(torch.cat([x, recon(x)], dim=1)))
            return _pooled_max(p), p

        val = _val_auroc(score, normal[va_n], anomalous[va])
        _select_best(both, step, val, spec)
        return lambda images: _predict(score, images)


@dataclass
class Autoencoder:
    """One-class baseline: reconstruction error of a small convolutional autoencoder.

    The image score is the max of the 3 x 3 mean-pooled squared error. Model
    selection keeps the weights with the lowest validation reconstruction error.
    """

    steps: int = 600
    uses_pseudo: bool = False

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        _seed_torch(rng)
        spec = _TrainSpec(steps=self.steps)
        tr, va = _split(len(normal), spec.val_fraction, rng)
        x, xv = to_tensor(normal[tr]), to_tensor(normal[va])
        model = _Reconstructor()
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr)

        def step(_: int) -> float:
            i = torch.from_numpy(rng.integers(len(x), size=spec.batch))
            loss = F.mse_loss(model(x[i]), x[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return float(loss.detach())

        def val() -> float:
            with torch.no_grad():
                return -float(F.mse_loss(model(xv), xv))

        def score(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            err = (model(xb) - xb)[:, 0] ** 2
            return _pooled_max(err), err

        _select_best(model, step, val, spec)
        return lambda images: _predict(score, images)


class _Encoder(nn.Module):
    """Bias-free encoder, as Deep SVDD needs to avoid a constant solution."""

    def __init__(self, width: int = 8, dim: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.LazyLinear(dim, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class DeepSVDD:
    """One-class baseline: distance to a centre in a learned feature space.

    Deep SVDD (Ruff et al. 2018).

    The centre is the mean feature of the training frames under the initial
    weights. Model selection keeps the lowest validation distance.
    """

    steps: int = 600
    uses_pseudo: bool = False

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        _seed_torch(rng)
        spec = _TrainSpec(steps=self.steps, lr=1e-3)
        tr, va = _split(len(normal), spec.val_fraction, rng)
        x, xv = to_tensor(normal[tr]), to_tensor(normal[va])
        model = _Encoder()
        with torch.no_grad():
            centre = model(x).mean(dim=0)
        opt = torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=1e-6)

        def distance(xb: torch.Tensor) -> torch.Tensor:
            return ((model(xb) - centre) ** 2).sum(dim=1)

        def step(_: int) -> float:
            i = torch.from_numpy(rng.integers(len(x), size=spec.batch))
            loss = distance(x[i]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return float(loss.detach())

        def val() -> float:
            with torch.no_grad():
                return -float(distance(xv).mean())

        _select_best(model, step, val, spec)
        return lambda images: _predict(lambda xb: (distance(xb), None), images)


@dataclass
class KNearest:
    """One-class baseline: mean distance to the k nearest training frames.

    Features are the median-centred pixels themselves.
    NOTE: the shared feature extractors of thermosynth.validation.features were
    not available when this was written; pixels are a weak feature space.
    """

    k: int = 5
    uses_pseudo: bool = False

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        bank = to_tensor(normal).flatten(1)

        def score(x: torch.Tensor) -> tuple[torch.Tensor, None]:
            d = torch.cdist(x.flatten(1), bank)
            return d.topk(self.k, dim=1, largest=False).values.mean(dim=1), None

        return lambda images: _predict(score, images, batch=256)
