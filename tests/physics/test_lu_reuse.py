"""Tests of the solver that reuses an LU factorisation while the diagonal drifts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from thermosynth.geometry.layouts import module
from thermosynth.physics.grid import conduction_matrix
from thermosynth.physics.lu_reuse import DiagonalReuseSolver


@pytest.fixture(scope="module")
def step_matrix():
    """Return the conduction matrix of three prismatic cells and rho_cp / 0.05 s."""
    layout = module(
        n_cells=3,
        cell_width_mm=40.0,
        cell_height_mm=30.0,
        thickness_mm=20.0,
        gap_mm=4.0,
        gap_material="thermal_pad",
        resolution_mm=2.0,
        cell_material="prismatic_cell",
    )
    conduction = conduction_matrix(layout, (1, *layout.shape))
    rho_cp = layout.layer_property_map("rho_cp_J_m3K", 1).ravel()
    return conduction, rho_cp / 0.05


def _direct(conduction, diagonal, rhs):
    return spsolve((conduction + sp.diags(diagonal)).tocsc(), rhs)


@pytest.mark.parametrize("change", [0.0, 1e-4, 0.01, 0.09])
def test_reused_solve_matches_direct(step_matrix, change):
    conduction, diagonal = step_matrix
    rng = np.random.default_rng(3)
    solver = DiagonalReuseSolver(conduction)
    solver.solve(diagonal, rng.uniform(0, 1e9, diagonal.size))
    drifted = diagonal * (1 + change * rng.uniform(-1, 1, diagonal.size))
    rhs = rng.uniform(0, 1e9, diagonal.size)

    solution = solver.solve(drifted, rhs)

    assert solver.n_factorisations == 1
    assert solver.n_reused == 1
    np.testing.assert_allclose(
        solution, _direct(conduction, drifted, rhs), rtol=0, atol=1e-9
    )


def test_large_change_factorises_anew(step_matrix):
    conduction, diagonal = step_matrix
    rhs = np.random.default_rng(4).uniform(0, 1e9, diagonal.size)
    solver = DiagonalReuseSolver(conduction, max_change=0.1)
    solver.solve(diagonal, rhs)

    # Halving the step doubles rho_cp / dt.
    solution = solver.solve(2 * diagonal, rhs)

    assert solver.n_factorisations == 2
    assert solver.n_reused == 0
    np.testing.assert_allclose(
        solution, _direct(conduction, 2 * diagonal, rhs), rtol=1e-12
    )


def test_slow_convergence_factorises_anew(step_matrix):
    conduction, diagonal = step_matrix
    rhs = np.random.default_rng(5).uniform(0, 1e9, diagonal.size)
    solver = DiagonalReuseSolver(conduction, max_corrections=1)
    solver.solve(diagonal, rhs)
    drifted = 1.09 * diagonal

    solution = solver.solve(drifted, rhs)

    assert solver.n_factorisations == 2
    np.testing.assert_allclose(solution, _direct(conduction, drifted, rhs), rtol=1e-12)


def test_alternating_steps_reuse_kept_factorisations(step_matrix):
    conduction, diagonal = step_matrix
    rhs = np.random.default_rng(6).uniform(0, 1e9, diagonal.size)
    solver = DiagonalReuseSolver(conduction, max_kept=2)

    for _ in range(3):
        solver.solve(diagonal, rhs)
        solution = solver.solve(2 * diagonal, rhs)

    assert solver.n_factorisations == 2
    assert solver.n_reused == 4
    np.testing.assert_allclose(
        solution, _direct(conduction, 2 * diagonal, rhs), rtol=0, atol=1e-9
    )
