"""Property tests for thermosynth.physics.heat on random small layouts.

With every face insulated, no heat leaves the plate, so the heat stored must
equal the heat put in. The implicit scheme keeps the rise of positive sources
non-negative. Without radiation the rise is linear in the source power.

The solver's convergence test rejects some well-conditioned solves (see
``test_uniform_source_converges``), so these tests run it with
``on_failure="warn"`` and ignore that warning: the properties themselves
check the solution.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.sources import held_patch, hotspot, region_source

INSULATED = Boundary(
    ambient_C=25.0,
    h_top_W_m2K=0.0,
    h_bottom_W_m2K=0.0,
    emissivity_top=0.0,
    emissivity_bottom=0.0,
)

conductivity = st.floats(0.1, 400.0)
materials = st.builds(
    Material,
    name=st.sampled_from(["cell", "pad", "tab"]),
    k_x_W_mK=conductivity,
    k_y_W_mK=conductivity,
    k_z_W_mK=conductivity,
    rho_cp_J_m3K=st.floats(1e5, 5e6),
)


@st.composite
def layouts(draw) -> Layout:
    """Draw a grid of 2..5 x 2..5 cells of up to three random materials."""
    table = tuple(draw(st.lists(materials, min_size=1, max_size=3)))
    shape = (draw(st.integers(2, 5)), draw(st.integers(2, 5)))
    ids = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, len(table) - 1)))
    return Layout(
        dx_mm=draw(st.floats(0.5, 5.0)),
        dy_mm=draw(st.floats(0.5, 5.0)),
        thickness_mm=draw(st.floats(0.5, 10.0)),
        material_id=ids,
        materials=table,
        cell_id=np.full(shape, -1),
    )


@st.composite
def cases(draw):
    """Draw a layout, 1..3 constant sources and the time stepping."""
    layout = draw(layouts())
    n_layers = draw(st.integers(1, 2))
    sources = []
    for _ in range(draw(st.integers(1, 3))):
        point = {
            "x_mm": draw(st.floats(0.0, layout.width_mm)),
            "y_mm": draw(st.floats(0.0, layout.height_mm)),
            "radius_mm": draw(st.floats(0.0, 3.0)),
            "layer": draw(st.integers(0, n_layers - 1)),
            "n_layers": n_layers,
        }
        if draw(st.booleans()):
            sources.append(hotspot(layout, **point, power_W=draw(st.floats(0.01, 5.0))))
        else:
            region = draw(hnp.arrays(np.bool_, layout.shape))
            region[draw(st.integers(0, layout.shape[0] - 1)), 0] = True
            power = draw(st.floats(0.01, 5.0))
            sources.append(
                region_source(layout, region, power_W=power, n_layers=n_layers)
            )
    dt_s = draw(st.floats(0.1, 10.0))
    n_steps = draw(st.integers(1, 4))
    return layout, sources, n_layers, dt_s, n_steps


def run(layout, sources, n_layers, dt_s, n_steps, boundary=INSULATED):
    return simulate(
        layout,
        sources,
        boundary=boundary,
        n_layers=n_layers,
        duration_s=dt_s * n_steps,
        dt_s=dt_s,
        on_failure="warn",
    )


ignore_false_non_convergence = pytest.mark.filterwarnings(
    "ignore:heat solver:RuntimeWarning"
)


@ignore_false_non_convergence
@settings(max_examples=30, deadline=None)
@given(cases())
def test_insulated_energy_balance(case):
    layout, sources, n_layers, dt_s, n_steps = case
    result = run(layout, sources, n_layers, dt_s, n_steps)

    total_W = sum(source.power_W(0.0) for source in sources)
    assert result.energy_in_J == pytest.approx(total_W * dt_s * n_steps, rel=1e-12)
    assert result.energy_lost_J == 0.0
    assert result.energy_stored_J == pytest.approx(result.energy_in_J, rel=1e-8)


@ignore_false_non_convergence
@settings(max_examples=25, deadline=None)
@given(cases())
def test_rise_non_negative_for_heat_sources(case):
    layout, sources, n_layers, dt_s, n_steps = case
    result = run(layout, sources, n_layers, dt_s, n_steps)

    peak = float(result.rise_all_K.max())
    assert peak > 0.0
    assert float(result.rise_all_K.min()) >= -1e-9 * peak


@ignore_false_non_convergence
@settings(max_examples=20, deadline=None)
@given(cases(), st.floats(0.1, 10.0))
def test_rise_linear_in_power(case, factor):
    layout, sources, n_layers, dt_s, n_steps = case
    boundary = Boundary(h_top_W_m2K=10.0, h_bottom_W_m2K=5.0)
    scaled = [
        type(source)(source.weights_m3, lambda t, s=source: factor * s.power_W(t), "x")
        for source in sources
    ]
    base = run(layout, sources, n_layers, dt_s, n_steps, boundary)
    more = run(layout, scaled, n_layers, dt_s, n_steps, boundary)

    peak = float(base.rise_all_K.max())
    np.testing.assert_allclose(
        more.rise_all_K, factor * base.rise_all_K, rtol=1e-7, atol=1e-9 * factor * peak
    )


@pytest.mark.xfail(
    strict=True,
    reason="held-patch power is booked as p * (T_held - T) with a penalty p of "
    "1e8 times the largest diagonal entry, so round-off in T is multiplied by "
    "p; on fine grids of high conductivity the balance misses by about 0.5 %",
)
def test_insulated_energy_balance_with_held_patch():
    material = Material("aluminium", 400.0, 400.0, 400.0, 1e5)
    ids = np.zeros((4, 4), dtype=int)
    layout = Layout(0.5, 0.5, 1.0, ids, (material,), ids - 1)
    heat = region_source(layout, np.ones((4, 4), dtype=bool), power_W=0.1)
    heater = held_patch(layout, x_mm=0, y_mm=0, radius_mm=0, temperature_C=40.0)
    result = run(layout, [heat, heater], 1, 10.0, 3)

    assert result.energy_lost_J == 0.0
    assert result.energy_stored_J == pytest.approx(result.energy_in_J, rel=1e-6)


def test_uniform_source_converges():
    material = Material("cell", 6.0, 139.0, 1.0, 1e5)
    ids = np.zeros((2, 2), dtype=int)
    layout = Layout(0.5, 0.5, 1.0, ids, (material,), ids - 1)
    source = region_source(layout, np.ones((2, 2), dtype=bool), power_W=1.0)
    result = simulate(layout, [source], boundary=INSULATED, duration_s=2.0, dt_s=2.0)

    # Uniform heat in an insulated plate: dT = P t / (rho_cp V).
    volume_m3 = 1.0e-9
    np.testing.assert_allclose(result.rise_K, 2.0 / (1e5 * volume_m3), rtol=1e-10)
