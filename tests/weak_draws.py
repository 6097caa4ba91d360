"""Two scenarios whose draws often end too weak, for the tests of retries.

Draws of "weak" have a power below ``CUT_K`` 60 % of the time and end too
weak; "strong" always passes. Weights 1 : 0.5. The fakes replace the
simulation and the blend, so that hundreds of samples take milliseconds.
"""

from __future__ import annotations

import numpy as np

from thermosynth.blend import Blended

WEAK_AND_STRONG = (
    "scenarios=[{kind: hotspot, name: weak, weight: 1.0, power_W: {uniform: "
    "[0.1, 1.1]}, radius_mm: 4.0, duration_s: 20, layer: middle}, {kind: "
    "hotspot, name: strong, weight: 0.5, power_W: 2.0, radius_mm: 4.0, "
    "duration_s: 20, layer: middle}]"
)
CUT_K = 0.7
N_SAMPLES = 400


def fake_rise(drawn, layout, recipe, **_):
    """Return a uniform rise [K] equal to the drawn power, without simulating."""
    return np.full(layout.shape, drawn.params["power_W"], dtype=np.float64)


def fake_blend(rise_px_K, frame, recipe, camera, **_):
    """Blend nothing; cover 10 pixels where the peak rise reaches CUT_K."""
    peak = float(rise_px_K.max())
    area = 10 if peak >= CUT_K else 0
    zeros = np.zeros(frame.shape, dtype=np.float32)
    return Blended(frame.raw, frame.values, zeros > 0, zeros, peak, area, peak)


def assert_weak_share(kinds: list[str], attempts: list[int]) -> None:
    """Check that retries ran and that "weak" keeps its weight's share, 2/3.

    The share must lie within four binomial standard deviations.
    """
    n = len(kinds)
    assert sum(a > 1 for a in attempts) > n // 5  # the retries ran

    share = 1.0 / 1.5
    sd = np.sqrt(n * share * (1 - share))
    assert abs(kinds.count("weak") - share * n) < 4 * sd
