"""Tests for thermosynth.calibration against the Oxford pouch-cell heater data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from thermosynth import calibration
from thermosynth.calibration import (
    Measurement,
    WindowError,
    _sigma_of_fit_vector,
    calibrate,
    load_heater_experiment,
    plot_calibration,
)
from thermosynth.errors import RecipeError

# Values of a commercial finite-element fit to the same data: k_x, k_y, k_z
# [W m-1 K-1], h_top [W m-2 K-1] and the heater at the centre of the cell [mm].
FE_PARAMETERS = np.array([26.4, 25.1, 0.485, 17.0, 95.0, 75.0])


def build_model(measurement, *, cell_mm, n_layers, initial="ambient"):
    options = {
        "width_mm": 190.0,
        "height_mm": 150.0,
        "thickness_mm": 7.2,
        "heater_radius_mm": 12.0,
        "rho_cp_J_m3K": 2183.0 * 1083.0,
        "cell_mm": cell_mm,
        "n_layers": n_layers,
        "dt_s": 1.0,
        "initial": initial,
        "window_s": (30.0, None),
    }
    return calibration._build_model(measurement, options)


@pytest.fixture(scope="module")
def measurement(data_dir):
    return load_heater_experiment(data_dir / "pouch-cell-heater-ir")


@pytest.fixture(scope="module")
def short_fit(measurement):
    return calibrate(
        measurement,
        window_s=(30.0, 300.0),
        cell_mm=10.0,
        n_layers=6,
        max_simulations=60,
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


@pytest.mark.parametrize("damaged", ["Exp.mat", "Exp_E_T11x11_celsius.npy"])
def test_loader_damaged_file(data_dir, tmp_path, damaged):
    source = data_dir / "pouch-cell-heater-ir"
    for name in ("Exp_E_T11x11_celsius.npy", "Exp.mat", "Th.txt", "Ta.txt"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    (tmp_path / damaged).write_bytes((source / damaged).read_bytes()[:200])

    with pytest.raises(RecipeError, match="a file could not be read"):
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
    message = (
        "window_s = (2000.0, None) selects no frame; the frames span 0..976 s, "
        "so give a window_s = (start, stop) that takes at least 2 frames within "
        "that span"
    )
    with pytest.raises(WindowError) as empty:
        calibrate(measurement, window_s=(2000.0, None))
    assert str(empty.value) == message
    assert empty.value.frame_times_s.size == 0


@pytest.mark.parametrize("window_s", [(100.0, 100.0), (976.0, None), (99.5, 100.5)])
def test_calibrate_rejects_one_frame_window(measurement, window_s):
    with pytest.raises(WindowError, match="but the fit needs at least 2 frames") as one:
        calibrate(measurement, window_s=window_s)
    assert str(one.value).startswith(f"window_s = {window_s} selects 1 frame (")
    assert one.value.frame_times_s.size == 1
    assert one.value.span_s == (0.0, 976.0)


def test_window_of_two_frames_accepted(measurement):
    mask = calibration._window_mask(measurement.times_s, (100.0, 101.0))
    assert np.flatnonzero(mask).tolist() == [100, 101]


def test_short_window_h_top_poorly_determined(measurement):
    # Three frames leave h_top at 0.33 +- 10 W m-2 K-1 on this grid, with
    # every other error finite and below its value.
    with pytest.raises(RecipeError, match=r"leave h_top_W_m2K = \S+ \+- \S+ poorly"):
        calibrate(measurement, window_s=(100.0, 102.0), cell_mm=10.0, n_layers=6)


def test_calibrate_rejects_bad_guess(measurement):
    with pytest.raises(RecipeError, match="guess = .* is invalid"):
        calibrate(measurement, guess=(20.0, 20.0, -0.5, 12.0))


def test_heater_coefficient_mean_is_area_fraction(measurement):
    model = build_model(measurement, cell_mm=5.0, n_layers=3)
    for centre in [(95.0, 75.0), (60.0, 40.0)]:
        coefficients = calibration._heater_coefficients(model, centre)
        assert coefficients[0] == pytest.approx(np.pi * 12.0**2 / (190.0 * 150.0))


def test_heater_series_is_one_inside_disc(measurement):
    # A truncated 2D Fourier series of a disc converges slowly and oscillates
    # inside it, so the tolerance is loose.
    model = build_model(measurement, cell_mm=0.5, n_layers=3)
    coefficients = calibration._heater_coefficients(model, (95.0, 75.0))
    ax, ay = model.wavenumbers_per_mm
    x = np.array([95.0, 101.0, 120.0])
    y = np.array([75.0, 75.0, 75.0])
    series = coefficients @ calibration._mode_shapes(ax, ay, x, y)
    assert series[0] == pytest.approx(1.0, abs=0.03)
    assert series[1] == pytest.approx(1.0, abs=0.03)
    assert series[2] == pytest.approx(0.0, abs=0.02)


def test_first_frame_projection_uniform(measurement):
    model = build_model(measurement, cell_mm=10.0, n_layers=3, initial="first_frame")
    plane = calibration._project_first_frame(model)
    assert plane[0] == pytest.approx(measurement.surface_C[0].mean())
    assert np.max(np.abs(plane[1:])) < 1e-9


def test_simulation_converges_with_grid(measurement):
    surfaces = []
    for cell_mm, n_layers in [(5.0, 12), (2.5, 12), (2.5, 24)]:
        model = build_model(measurement, cell_mm=cell_mm, n_layers=n_layers)
        surfaces.append(calibration._simulate_points(model, FE_PARAMETERS))
    in_plane = surfaces[0] - surfaces[1]
    through = surfaces[1] - surfaces[2]
    assert np.sqrt(np.mean(in_plane**2)) < 0.07
    assert np.sqrt(np.mean(through**2)) < 0.02


def test_simulation_no_heating_stays_ambient(measurement):
    flat = Measurement(
        times_s=measurement.times_s[:100],
        surface_C=np.full((100, 11, 11), 20.0),
        x_mm=measurement.x_mm,
        y_mm=measurement.y_mm,
        heater_times_s=np.array([0.0, 100.0]),
        heater_C=np.array([20.0, 20.0]),
        ambient_times_s=np.array([0.0, 100.0]),
        ambient_C=np.array([20.0, 20.0]),
    )
    model = build_model(flat, cell_mm=10.0, n_layers=4)
    surface = calibration._simulate_points(model, FE_PARAMETERS)
    np.testing.assert_allclose(surface, 20.0, atol=1e-9)


def test_short_fit_rmse(short_fit):
    assert short_fit.rmse_K < 0.08
    assert short_fit.max_abs_error_K < 0.4


def test_short_fit_physical_values(short_fit):
    values = short_fit.values
    assert values["k_x_W_mK"] > 10 * values["k_z_W_mK"]
    assert values["k_y_W_mK"] > 10 * values["k_z_W_mK"]
    assert 10.0 < values["k_x_W_mK"] < 40.0
    assert 0.1 < values["k_z_W_mK"] < 1.0
    assert all(np.isfinite(s) and s > 0 for s in short_fit.sigma.values())
    assert abs(values["heater_x_mm"] - 95.0) < 5.0
    assert abs(values["heater_y_mm"] - 75.0) < 5.0


def test_fixed_heater_centre(measurement):
    result = calibrate(
        measurement,
        window_s=(30.0, 200.0),
        cell_mm=19.0,
        n_layers=3,
        heater_centre_mm=(95.0, 73.0),
        fit_heater_centre=False,
    )
    assert result.heater_x_mm == 95.0
    assert result.heater_y_mm == 73.0
    assert result.sigma["heater_x_mm"] == 0.0
    assert result.settings["heater_centre_fitted"] is False


def test_check_determined_thresholds(short_fit):
    at_limit = dict(short_fit.sigma)
    at_limit["k_z_W_mK"] = short_fit.k_z_W_mK
    at_limit["heater_x_mm"] = 12.0
    calibration._check_determined(dataclasses.replace(short_fit, sigma=at_limit))

    cases = [
        ("k_z_W_mK", 1.01 * short_fit.k_z_W_mK),
        ("h_top_W_m2K", float("inf")),
        ("heater_y_mm", 12.5),
    ]
    for name, sigma in cases:
        loose = dataclasses.replace(short_fit, sigma={**short_fit.sigma, name: sigma})
        with pytest.raises(RecipeError, match=f"leave {name} = .* poorly") as error:
            calibration._check_determined(loose)
        assert "in the window 30..300 s with 19 x 15 modes" in str(error.value)
        assert str(error.value).count(" +- ") == 1


def test_short_fit_recipe_materials(short_fit):
    cell = short_fit.to_recipe_materials()["cell"]
    assert cell["k_z_W_mK"] == short_fit.k_z_W_mK
    assert cell["rho_cp_J_m3K"] == pytest.approx(2183.0 * 1083.0)


def test_plot_calibration_writes_png(short_fit, tmp_path):
    path = plot_calibration(short_fit, tmp_path / "fit.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sigma_of_undetermined_parameter_is_infinite():
    rng = np.random.default_rng(4)
    jac = rng.normal(size=(40, 3))
    residuals = rng.normal(scale=0.1, size=40)
    full = _sigma_of_fit_vector(jac, residuals, 3)

    zero_column = jac.copy()
    zero_column[:, 1] = 0.0
    collinear = jac.copy()
    collinear[:, 2] = 2.0 * collinear[:, 0]

    variance = residuals @ residuals / 37
    expected = np.sqrt(np.diag(variance * np.linalg.inv(jac.T @ jac)))
    np.testing.assert_allclose(full, expected, rtol=1e-10)
    assert list(np.isinf(_sigma_of_fit_vector(zero_column, residuals, 3))) == [
        False,
        True,
        False,
    ]
    assert list(np.isinf(_sigma_of_fit_vector(collinear, residuals, 3))) == [
        True,
        False,
        True,
    ]
