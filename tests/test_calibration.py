"""Tests for thermosynth.calibration against the Oxford pouch-cell heater data."""

from __future__ import annotations

import numpy as np
import pytest

from thermosynth.calibration import (
    Measurement,
    calibrate,
    load_heater_experiment,
    plot_calibration,
)
from thermosynth.errors import RecipeError


@pytest.fixture(scope="module")
def measurement(data_dir):
    return load_heater_experiment(data_dir / "pouch-cell-heater-ir")


@pytest.fixture(scope="module")
def short_fit(measurement):
    return calibrate(
        measurement,
        window_s=(30.0, 300.0),
        cell_mm=19.0,
        n_layers=3,
        dt_s=10.0,
        max_simulations=25,
    )


def test_loader_shapes(measurement):
    assert measurement.surface_C.shape == (977, 11, 11)
    assert measurement.x_mm.shape == (11,)
    assert measurement.y_mm.shape == (11,)
    assert measurement.heater_C.shape == (977,)
    assert measurement.ambient_C.shape == (977,)


def test_loader_values(measurement):
    assert measurement.times_s[-1] == 976.0
    assert measurement.heater_C[-1] == pytest.approx(50.007)
    assert measurement.ambient_C[0] == pytest.approx(18.046)
    assert measurement.x_mm[5] == pytest.approx(95.2369, abs=1e-3)
    assert measurement.surface_C[-1, 5, 5] == pytest.approx(24.86, abs=0.01)


def test_loader_missing_folder(tmp_path):
    with pytest.raises(RecipeError, match="not found in"):
        load_heater_experiment(tmp_path)


def test_measurement_shape_mismatch():
    with pytest.raises(RecipeError, match="x_mm has shape"):
        Measurement(
            times_s=np.arange(2.0),
            surface_C=np.zeros((2, 3, 4)),
            x_mm=np.arange(3.0),
            y_mm=np.arange(3.0),
            heater_times_s=np.arange(2.0),
            heater_C=np.zeros(2),
            ambient_times_s=np.arange(2.0),
            ambient_C=np.zeros(2),
        )


def test_calibrate_rejects_two_layers(measurement):
    with pytest.raises(RecipeError, match="n_layers = 2 is invalid"):
        calibrate(measurement, n_layers=2)


def test_calibrate_rejects_empty_window(measurement):
    with pytest.raises(RecipeError, match="holds no frame"):
        calibrate(measurement, window_s=(2000.0, None))


def test_short_fit_rmse(short_fit):
    assert short_fit.rmse_K < 0.15
    assert short_fit.max_abs_error_K < 0.8


def test_short_fit_physical_values(short_fit):
    values = short_fit.values
    assert values["k_x_W_mK"] > 10 * values["k_z_W_mK"]
    assert values["k_y_W_mK"] > 10 * values["k_z_W_mK"]
    assert 10.0 < values["k_x_W_mK"] < 40.0
    assert 0.1 < values["k_z_W_mK"] < 1.0
    assert all(np.isfinite(s) and s > 0 for s in short_fit.sigma.values())


def test_short_fit_recipe_materials(short_fit):
    cell = short_fit.to_recipe_materials()["cell"]
    assert cell["k_z_W_mK"] == short_fit.k_z_W_mK
    assert cell["rho_cp_J_m3K"] == pytest.approx(2183.0 * 1083.0)


def test_plot_calibration_writes_png(short_fit, tmp_path):
    path = plot_calibration(short_fit, tmp_path / "fit.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
