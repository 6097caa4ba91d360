"""Every solver delivers a source's exact energy, whatever the step.

The solvers apply each step's mean power, so a pulse that starts and ends
inside one step, or a ramp whose corner falls mid-step, delivers the integral
of its power. Taking the power at each step's end would deliver nothing for
the pulse and too much for the ramp.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from thermosynth.geometry.layouts import module
from thermosynth.physics.adi import simulate_adi
from thermosynth.physics.fast import simulate_fast
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.profiles import Pulse, Ramp
from thermosynth.physics.runaway import simulate_runaway
from thermosynth.physics.sources import hotspot

os.environ.setdefault("OMP_NUM_THREADS", "1")

INSULATED = Boundary(h_top_W_m2K=0.0)

# The 0.25 s pulse lies inside the step from 1.0 to 1.5 s. The 2 W ramp over
# 1.25 s has its corner inside that same step.
POWERS = {
    "pulse": (Pulse(2.0, start_s=1.2, stop_s=1.45), 2.0 * 0.25),
    "ramp": (Ramp(2.0, ramp_s=1.25), 2.0 * 1.25 / 2 + 2.0 * 1.75),
}


def run_heat(layout, source):
    return simulate(
        layout, [source], boundary=INSULATED, n_layers=2, duration_s=3.0, dt_s=0.5
    )


def run_fast(layout, source):
    return simulate_fast(
        layout, [source], boundary=INSULATED, n_layers=2, duration_s=3.0, dt_s=0.5
    )


def run_adi(layout, source):
    return simulate_adi(
        layout, [source], boundary=INSULATED, n_layers=2, duration_s=3.0, dt_s=0.5
    )


def run_runaway(layout, source):
    return simulate_runaway(
        layout,
        boundary=INSULATED,
        n_layers=2,
        duration_s=3.0,
        dt_s=0.5,
        triggers=[source],
    )


SOLVERS = {"fipy": run_heat, "fast": run_fast, "adi": run_adi, "runaway": run_runaway}


@pytest.fixture(scope="module")
def pair():
    """Two 10 x 10 mm prismatic cells with a 2 mm pad between them."""
    return module(
        n_cells=2,
        cell_width_mm=10.0,
        cell_height_mm=10.0,
        thickness_mm=4.0,
        gap_mm=2.0,
        gap_material="thermal_pad",
        resolution_mm=1.0,
        cell_material="prismatic_cell",
    )


@pytest.mark.parametrize("power", POWERS)
@pytest.mark.parametrize("solver", SOLVERS)
def test_energy_in_is_the_power_integral(pair, solver, power):
    profile, expected_J = POWERS[power]
    source = hotspot(
        pair, x_mm=5.0, y_mm=5.0, radius_mm=2.0, power_W=profile, n_layers=2
    )

    result = SOLVERS[solver](pair, source)

    assert result.energy_in_J == pytest.approx(expected_J, rel=1e-9)
    assert result.energy_stored_J == pytest.approx(expected_J, rel=1e-6)
    assert np.asarray(result.rise_K).max() > 0.0
