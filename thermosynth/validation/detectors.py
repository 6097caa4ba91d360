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
:class:`Classifier` and :class:`Draem` average their anomaly maps over the
four flips of a frame at prediction time. :class:`Trimmed` wraps any detector
to drop suspected anomalies from its training normals before it trains, and
:class:`Ensemble` trains several copies and averages their scores.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from thermosynth.validation.features import thermal_features
from thermosynth.validation.metrics import auroc

logger = logging.getLogger(__name__)

ScoreResult = tuple[np.ndarray, np.ndarray | None]
Scorer = Callable[[np.ndarray], ScoreResult]

MIN_ANOMALOUS = 2
"""Minimum number of anomalous frames that Classifier and Draem train on.

Their validation split keeps at least one frame, so one more must be left to
train on.
"""

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
    """Fully convolutional net: a logit per pixel, at half resolution, upsampled."""

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


def _image_logit(logit_map: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
    """Pool each logit map to one image logit, by its mean or its max."""
    if pooling == "max":
        return logit_map.flatten(1).amax(dim=1)
    return logit_map.flatten(1).mean(dim=1)


_FLIP_DIMS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def flip_mean(
    map_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """Average a per-pixel map over the four flips of the input frames.

    Test-time augmentation: ``map_fn`` maps (N, C, H, W) frames to (N, H, W)
    maps. Each flipped input's map is flipped back before averaging, so the
    result stays registered to ``x``.
    """
    total = torch.zeros(())
    for dims in _FLIP_DIMS:
        if dims:
            total = total + torch.flip(map_fn(torch.flip(x, dims)), dims)
        else:
            total = total + map_fn(x)
    return total / len(_FLIP_DIMS)


@dataclass
class Classifier:
    """Binary CNN, normal against anomalous, whose image logit pools a logit map.

    Trained on image labels only. The logit map, upsampled to the frame,
    serves as the anomaly map (a class activation map), so pixel metrics
    apply even without pixel supervision. ``pooling`` turns the map into
    the image logit: "mean" (global average pooling, the default) or "max".
    On the PV development split the max varied far more between training
    seeds than the mean (benchmarks/results/pv_dev_split.md). With
    ``flip_tta`` the predicted map is the mean over the four flips of the
    frame (model selection scores without flips).
    """

    steps: int = 600
    width: int = 8
    flip_tta: bool = True
    pooling: str = "mean"
    uses_pseudo: bool = True

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "max"):
            raise ValueError(
                f"Classifier pooling {self.pooling!r} is invalid; use 'mean' or 'max'"
            )

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
            logits = _image_logit(model(torch.cat([xn[i], xa[j]])), self.pooling)
            target = torch.cat([torch.zeros(spec.batch), torch.ones(spec.batch)])
            loss = F.binary_cross_entropy_with_logits(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return float(loss.detach())

        def score(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m = model(x)
            return _image_logit(m, self.pooling), m

        def score_flips(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m = flip_mean(model, x)
            return _image_logit(m, self.pooling), m

        val = _val_auroc(score, normal[va_n], anomalous[va_a])
        _select_best(model, step, val, spec)
        final = score_flips if self.flip_tta else score
        return lambda images: _predict(final, images)


def _val_auroc(score, normal: np.ndarray, anomalous: np.ndarray) -> Callable[[], float]:  # noqa: ANN001
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    images = np.concatenate([normal, anomalous])
    return lambda: auroc(labels, _predict(score, images)[0])


def _require(anomalous: np.ndarray | None, name: str) -> None:
    if anomalous is None or len(anomalous) == 0:
        raise ValueError(
            f"{name} trains on anomalous frames but got none; pass a generator"
        )
    if len(anomalous) < MIN_ANOMALOUS:
        raise ValueError(
            f"{name} keeps at least one anomalous frame for validation, so it "
            f"needs {MIN_ANOMALOUS} or more to train on but got {len(anomalous)}; "
            "give more anomalous frames"
        )


class _Reconstructor(nn.Module):
    """Encoder-decoder that halves the frame twice and returns it at full size.

    Frames whose sides are not multiples of 4 are padded by repeating their
    last row and column, and the output is cropped back.
    """

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
        height, width = x.shape[-2:]
        padding = (0, -width % 4, 0, -height % 4)
        if any(padding):
            x = F.pad(x, padding, mode="replicate")
        return self.net(x)[..., :height, :width]


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
    mean-pooled mask probability. With ``flip_tta`` the predicted probability
    map is the mean over the four flips of the frame (model selection scores
    without flips). The Adam learning rate ``lr`` defaults to 5e-3 because
    the two nets reach a given validation AUROC in fewer steps than at 2e-3.
    ``width`` is the channel count of both nets' first layer; on the PV
    development split 16 scored no higher than 8
    (benchmarks/results/pv_dev_draem.md).
    """

    steps: int = 600
    flip_tta: bool = True
    lr: float = 5e-3
    width: int = 8
    uses_pseudo: bool = True

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        _require(anomalous, "Draem")
        if masks is None:
            raise ValueError(
                "Draem trains on pixel masks; give masks with the anomalies"
            )
        _seed_torch(rng)
        spec = _TrainSpec(steps=self.steps, lr=self.lr)
        tr, va = _split(len(anomalous), spec.val_fraction, rng)
        tr_n, va_n = _split(len(normal), spec.val_fraction, rng)
        # Pseudo-anomalies are made from the normal frames in the same order.
        clean, xa = to_tensor(normal[: len(anomalous)]), to_tensor(anomalous)
        ym = torch.from_numpy(np.asarray(masks, dtype=np.float32))
        recon, seg = _Reconstructor(self.width), _LogitMap(2, self.width)
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

        def probability(x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(seg(torch.cat([x, recon(x)], dim=1)))

        def score(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            p = probability(x)
            return _pooled_max(p), p

        def score_flips(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            p = flip_mean(probability, x)
            return _pooled_max(p), p

        val = _val_auroc(score, normal[va_n], anomalous[va])
        _select_best(both, step, val, spec)
        final = score_flips if self.flip_tta else score
        return lambda images: _predict(final, images)


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

    Frames are compared in the hand-made feature space of
    `thermosynth.validation.features.thermal_features`, computed on each
    frame centred on its median. Each feature is standardised by the
    training frames' mean and standard deviation, so that no one statistic
    dominates the Euclidean distance. A frame's score is its mean distance
    to its ``k`` nearest training frames.
    """

    k: int = 5
    uses_pseudo: bool = False

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        features = _centred_features(normal)
        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale[scale < _MIN_FEATURE_SCALE] = 1.0
        bank = torch.from_numpy((features - mean) / scale)
        k = min(self.k, len(bank))

        def score(images: np.ndarray) -> ScoreResult:
            query = torch.from_numpy((_centred_features(images) - mean) / scale)
            distances = torch.cdist(query, bank)
            nearest = distances.topk(k, dim=1, largest=False).values
            return nearest.mean(dim=1).numpy().astype(np.float64), None

        return score


_MIN_FEATURE_SCALE = 1e-12
"""Standard deviation below which a feature is left unscaled (a constant)."""


def _centred_features(images: np.ndarray) -> np.ndarray:
    """Return the thermal features of uint8 frames centred on their median."""
    x = np.asarray(images, dtype=np.float64)
    return thermal_features(x - np.median(x, axis=(1, 2), keepdims=True))


def split_lowest(
    scores: np.ndarray, drop_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into the lowest-scoring frames and the dropped rest.

    Returns ``(keep, dropped)``, both sorted int64 arrays;
    ``round(drop_fraction * len(scores))`` frames with the highest scores are
    dropped, ties broken by position.
    """
    n_drop = int(round(drop_fraction * len(scores)))
    order = np.argsort(scores, kind="stable")
    keep = np.sort(order[: len(scores) - n_drop])
    return keep, np.sort(order[len(scores) - n_drop :])


def _rows(
    index: np.ndarray,
    normal: np.ndarray,
    anomalous: np.ndarray | None,
    masks: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Select normal frames and, where made from them, their pseudo-anomalies."""
    if anomalous is None or len(anomalous) != len(normal):
        return normal[index], anomalous, masks
    return normal[index], anomalous[index], None if masks is None else masks[index]


@dataclass
class Trimmed:
    """Train, drop the training normals scored most anomalous, train again.

    A guard against real anomalies hidden among the training normals
    (contamination). Every training normal is scored out of fold: the frames
    are dealt into ``folds`` folds, and a ``scout`` trained on the other folds
    scores each fold. Scores become ranks within their fold, so that models of
    different scale can be compared. The ``drop_fraction`` of frames with the
    highest ranks is dropped, and ``detector`` trains on the rest. Where
    ``anomalous`` has one pseudo-anomaly per normal frame (made from it, as
    :func:`thermosynth.validation.transfer.make_pseudo` does), the
    pseudo-anomalies of dropped frames are dropped too; otherwise (real
    anomalies for a supervised detector) they are all kept.

    Parameters
    ----------
    detector : Detector
        Detector trained on the kept frames.
    drop_fraction : float
        Fraction of training normals dropped, in [0, 1). Set it to an upper
        estimate of the contamination; 0 trains ``detector`` once on all
        frames. The default 0.1 drops one frame in ten.
    folds : int
        Number of folds for the out-of-fold scores, >= 2.
    scout : Detector, optional
        Detector that scores the folds; ``detector`` itself when None. A copy
        with fewer training steps saves time.

    Attributes
    ----------
    dropped : ndarray
        Indices into ``normal`` of the frames that the last ``fit`` dropped.

    Notes
    -----
    NOTE: on the PV benchmark (10 % real hotspots planted, scouts of a
    quarter of the steps) the scouts dropped only 54 % (classifier) and 64 %
    (DRAEM) of the planted frames, so trimming reduces contamination but does
    not remove it.
    """

    detector: Detector
    drop_fraction: float = 0.1
    folds: int = 2
    scout: Detector | None = None
    uses_pseudo: bool = field(init=False)
    dropped: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop_fraction < 1.0:
            raise ValueError(
                f"drop_fraction = {self.drop_fraction} is invalid; use a fraction "
                "in [0, 1)"
            )
        if self.folds < 2:
            raise ValueError(f"folds = {self.folds} is invalid; use 2 or more")
        self.uses_pseudo = self.detector.uses_pseudo
        self.dropped = np.empty(0, dtype=np.int64)

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        if self.drop_fraction == 0.0:
            self.dropped = np.empty(0, dtype=np.int64)
            return self.detector.fit(normal, anomalous, masks, rng)
        if len(normal) < 2 * self.folds:
            raise ValueError(
                f"Trimmed needs at least {2 * self.folds} training normals for "
                f"{self.folds} folds but got {len(normal)}; give more frames"
            )

        ranks = self.out_of_fold_ranks(normal, anomalous, masks, rng)
        keep, self.dropped = split_lowest(ranks, self.drop_fraction)
        logger.info("trimmed %d of %d training normals", len(self.dropped), len(normal))

        return self.detector.fit(*_rows(keep, normal, anomalous, masks), rng)

    def out_of_fold_ranks(
        self,
        normal: np.ndarray,
        anomalous: np.ndarray | None,
        masks: np.ndarray | None,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Score each normal frame with a scout that did not train on it.

        Returns ranks in (0, 1] within each fold, float64 (N,); higher is more
        anomalous.
        """
        scout = self.detector if self.scout is None else self.scout
        fold = rng.permutation(len(normal)) % self.folds
        ranks = np.empty(len(normal))
        for k in range(self.folds):
            inside = np.flatnonzero(fold == k)
            outside = np.flatnonzero(fold != k)
            scorer = scout.fit(*_rows(outside, normal, anomalous, masks), rng)
            scores = scorer(normal[inside])[0]
            order = np.argsort(np.argsort(scores, kind="stable"), kind="stable")
            ranks[inside] = (order + 1) / len(inside)
        return ranks


@dataclass
class Ensemble:
    """Train several copies of a detector and average their scores and maps.

    Each member trains on the same frames with its own random stream, spawned
    from the ``fit`` generator, so members differ in initial weights, batches
    and validation split. Training takes ``members`` times as long. On the
    PV development split, averaging the image scores of three DRAEM networks
    raised image AUROC by 0.006 to 0.010 over the four hotspot classes
    (docs/pv_benchmark.md). Those networks also drew their own
    pseudo-anomalies, which the members of an ensemble share.

    Parameters
    ----------
    detector : Detector
        Detector to train ``members`` times; its ``fit`` must not keep state
        that a later ``fit`` overwrites in the returned scorer.
    members : int
        Number of copies, >= 2.
    """

    detector: Detector
    members: int = 3
    uses_pseudo: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.members < 2:
            raise ValueError(
                f"members = {self.members} is invalid; an ensemble needs 2 or more"
            )
        self.uses_pseudo = self.detector.uses_pseudo

    def fit(self, normal, anomalous, masks, rng) -> Scorer:  # noqa: ANN001
        streams = rng.spawn(self.members)
        scorers = [self.detector.fit(normal, anomalous, masks, s) for s in streams]

        def score(images: np.ndarray) -> ScoreResult:
            results = [scorer(images) for scorer in scorers]
            scores = np.mean([np.asarray(r[0], np.float64) for r in results], axis=0)
            maps = [r[1] for r in results if r[1] is not None]
            if len(maps) < len(results):
                return scores, None
            return scores, np.mean(maps, axis=0)

        return score
