"""One generated sample, as the writers receive it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

METADATA_VERSION = 2
"""Version of the keys that every written sample's metadata contains.

Version 2 adds ``split_position``, the sample's position among the samples
of its split and label. Shard markers record the version, and ``--resume``
writes a shard of version 1 again, so that every sample of the output
records its position.
"""


@dataclass(frozen=True)
class Sample:
    """A normal or anomalous frame with its mask and rise.

    Attributes
    ----------
    index : int
        Position in the dataset, 0-based. With the recipe's split it fixes
        the sample's random stream (`thermosynth.samples.sample_rng`).
    split : {"train", "test"}
        Dataset split.
    label : int
        0 for normal, 1 for anomalous.
    kind : str
        ``"good"`` for normal samples, else the scenario name.
    raw : ndarray
        Frame pixels in the source frame's own dtype and shape.
    mask : ndarray
        Boolean (H, W) anomaly mask; all False for normal samples.
    rise_K : ndarray
        float32 (H, W) simulated surface temperature rise warped to the frame,
        before the camera [K].
    recorded_rise : ndarray
        float32 (H, W) rise applied to the frame before quantisation: the
        camera's recorded rise, less the threshold with ``blend.edge:
        taper``. In the frame's unit, zero outside the mask.
    metadata : dict
        JSON-serialisable description: source frame, drawn parameters with
        units, severity figures. The samples that `thermosynth.samples.Generator`
        makes record ``split_position``, their position from 0 among the
        samples of their split and label, which unlike ``index`` does not
        change with the other groups' counts (`thermosynth.samples.sample_key`).
    """

    index: int
    split: Literal["train", "test"]
    label: int
    kind: str
    raw: np.ndarray
    mask: np.ndarray
    rise_K: np.ndarray
    recorded_rise: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """File stem shared by the image and its mask, fixed width."""
        return f"{self.index:06d}"
