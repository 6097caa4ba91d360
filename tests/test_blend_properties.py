"""More property tests for thermosynth.blend, with the real LinearEncoding.

tests/test_blend.py covers the cut edge, the stretch formula and palettes.
This file adds the taper edge, float frames, monotonicity in the rise, the
stretch gain's range and a zero rise that changes nothing.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thermosynth.blend import blend
from thermosynth.frames.encodings import LinearEncoding
from thermosynth.frames.frame import Frame

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def make_frame(raw: np.ndarray, encoding: LinearEncoding, valid: np.ndarray) -> Frame:
    return Frame(
        raw=raw,
        values=encoding.decode(raw),
        unit="C",
        valid=valid,
        encoding=encoding,
        noise_sigma=0.05,
        source="hypothesis",
    )


@st.composite
def cases(draw, *, dtypes=DTYPES):
    """Draw a frame in one of ``dtypes``, a valid mask, a rise and a threshold."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=10))
    if dtype.kind == "u":
        elements = st.integers(0, int(np.iinfo(dtype).max))
    else:
        elements = st.floats(-50.0, 150.0, width=dtype.itemsize * 8)
    raw = draw(hnp.arrays(dtype, shape, elements=elements))
    step = draw(st.sampled_from([0.01, 0.1, 1.0]))
    encoding = LinearEncoding(dtype, scale_per_level=step, offset=-20.0)
    valid = draw(hnp.arrays(np.bool_, shape))
    # Rises below float32's range are tested apart, in
    # test_rise_below_float32_range_leaves_mask_empty.
    rises = st.just(0.0) | st.floats(1e-30, 30.0)
    rise = draw(hnp.arrays(np.float64, shape, elements=rises))
    threshold = draw(st.floats(0.0, 10.0))
    return make_frame(raw, encoding, valid), rise, threshold


@settings(max_examples=50, deadline=None)
@given(cases())
def test_taper_edge_properties(case):
    frame, rise, threshold = case
    out = blend(frame, rise, threshold=threshold, edge="taper")

    assert np.array_equal(
        out.mask, frame.valid & (rise > threshold) & (rise.astype(np.float32) > 0)
    )
    assert out.raw.dtype == frame.raw.dtype
    assert out.raw.shape == frame.raw.shape
    assert np.array_equal(out.raw[~out.mask], frame.raw[~out.mask])
    expected = np.where(out.mask, rise - threshold, 0.0).astype(np.float32)
    assert np.array_equal(out.recorded_rise, expected)
    assert np.all(out.values[out.mask] >= frame.values[out.mask])


@settings(max_examples=50, deadline=None)
@given(cases(), st.sampled_from(["cut", "taper"]))
def test_mask_matches_recorded_rise(case, edge):
    frame, rise, threshold = case
    out = blend(frame, rise, threshold=threshold, edge=edge)

    assert np.array_equal(out.mask, out.recorded_rise > 0)


@settings(max_examples=50, deadline=None)
@given(cases(), st.floats(0.0, 20.0), st.sampled_from(["cut", "taper"]))
def test_fixed_gain_monotonic_in_rise(case, extra, edge):
    frame, rise, threshold = case
    low = blend(frame, rise, threshold=threshold, edge=edge)
    high = blend(frame, rise + extra, threshold=threshold, edge=edge)

    assert np.all(high.mask >= low.mask)
    assert np.all(high.values[frame.valid] >= low.values[frame.valid])
    assert high.peak_rise >= low.peak_rise


@settings(max_examples=50, deadline=None)
@given(cases(dtypes=[np.uint8, np.uint16]), st.sampled_from(["cut", "taper"]))
def test_stretch_fills_dtype_range(case, edge):
    frame, rise, threshold = case
    out = blend(frame, rise, threshold=threshold, gain="stretch", edge=edge)

    valid = frame.valid
    assert out.raw.dtype == frame.raw.dtype
    assert np.array_equal(out.raw[~valid], frame.raw[~valid])
    if not valid.any():
        return

    # Integer frames were stretched to their dtype's range, so only a rise
    # past its top re-stretches, and the new top lands on the top level.
    if out.stretch == (1.0, 0.0):
        assert np.array_equal(out.raw[~out.mask], frame.raw[~out.mask])
    else:
        assert out.raw[valid].max() == np.iinfo(frame.raw.dtype).max


@settings(max_examples=40, deadline=None)
@given(
    cases(), st.sampled_from(["fixed", "stretch"]), st.sampled_from(["cut", "taper"])
)
def test_zero_rise_changes_nothing(case, gain, edge):
    frame, _, threshold = case
    out = blend(frame, np.zeros(frame.shape), threshold=threshold, gain=gain, edge=edge)

    assert out.area_px == 0
    assert out.peak_rise == 0.0
    assert np.array_equal(out.raw, frame.raw, equal_nan=True)


def test_rise_below_float32_range_leaves_mask_empty():
    encoding = LinearEncoding(np.float64)
    frame = make_frame(np.array([[10.0, 20.0]]), encoding, np.ones((1, 2), bool))
    out = blend(frame, np.array([[1e-50, 0.0]]), threshold=0.0)

    assert out.area_px == 0
    assert np.array_equal(out.mask, out.recorded_rise > 0)
