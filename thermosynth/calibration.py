"""Fit a cell's thermal conductivity and surface cooling to an IR measurement.

The experiment this module reads heats a pouch cell lying flat through a
circular heater fixed to the centre of its lower face. The heater follows a
measured temperature, the rest of the lower face is insulated, and an infrared
camera records the upper face on a grid of points. :func:`calibrate` adjusts
the in-plane conductivities ``k_x``, ``k_y``, the through-thickness
conductivity ``k_z`` and the heat transfer coefficient ``h`` of the upper face
until :func:`thermosynth.physics.heat.simulate` reproduces the measured
surface temperatures in the least-squares sense.

The heater sits at the centre of the cell, so the simulation covers one
quarter of it, with the heater in the corner of the grid and the two symmetry
edges insulated. A measured point at ``(x, y)`` is compared with the quarter
model at ``(|x - x_c|, |y - y_c|)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from thermosynth.errors import RecipeError
from thermosynth.geometry.layout import Layout, Material
from thermosynth.physics.heat import Boundary, simulate
from thermosynth.physics.profiles import Tabulated
from thermosynth.physics.sources import HeldPatch

logger = logging.getLogger(__name__)

PARAMETER_NAMES = ("k_x_W_mK", "k_y_W_mK", "k_z_W_mK", "h_top_W_m2K")

# Start of the fit [W m-1 K-1, W m-1 K-1, W m-1 K-1, W m-2 K-1]. These are a
# rough starting point, not measured values; the fit moves them.
DEFAULT_GUESS = (20.0, 20.0, 0.6, 12.0)

# Steps of 1 s resolve the heater's rise to its set point, which takes about
# 10 s in the Oxford data; later steps follow the coarser ``dt_s``.
_FINE_STEP_S = 1.0

InitialState = Literal["ambient", "first_frame"]


@dataclass(frozen=True, eq=False)
class Measurement:
    """Surface temperatures of a heater experiment, with its boundary data.

    Attributes
    ----------
    times_s : ndarray
        Frame times [s], shape (n,).
    surface_C : ndarray
        Measured upper-face temperature [C], shape (n, ny, nx).
    x_mm, y_mm : ndarray
        Positions of the grid columns (nx,) and rows (ny,) on the cell [mm],
        measured from one corner of the cell.
    heater_times_s, heater_C : ndarray
        Measured heater temperature [C] over time [s], shape (m,).
    ambient_times_s, ambient_C : ndarray
        Measured ambient temperature [C] over time [s], shape (k,).
    source : str
        Where the data came from, for metadata.
    """

    times_s: np.ndarray
    surface_C: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    heater_times_s: np.ndarray
    heater_C: np.ndarray
    ambient_times_s: np.ndarray
    ambient_C: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        n, ny, nx = np.shape(self.surface_C)
        expected = {"times_s": (n,), "x_mm": (nx,), "y_mm": (ny,)}
        for key, shape in expected.items():
            if np.shape(getattr(self, key)) != shape:
                raise RecipeError(
                    f"measurement: {key} has shape {np.shape(getattr(self, key))} "
                    f"but surface_C has shape {(n, ny, nx)}; give {key} with "
                    f"shape {shape}"
                )

        if np.shape(self.heater_times_s) != np.shape(self.heater_C):
            raise RecipeError(
                "measurement: heater_times_s and heater_C differ in shape; "
                "give one temperature per time"
            )

        if np.shape(self.ambient_times_s) != np.shape(self.ambient_C):
            raise RecipeError(
                "measurement: ambient_times_s and ambient_C differ in shape; "
                "give one temperature per time"
            )


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """Fitted properties of a cell and how well they reproduce the measurement.

    Attributes
    ----------
    k_x_W_mK, k_y_W_mK, k_z_W_mK : float
        Fitted conductivity along x, y and through the thickness [W m-1 K-1].
    h_top_W_m2K : float
        Fitted heat transfer coefficient of the imaged face [W m-2 K-1],
        convection and radiation together.
    sigma : dict of str to float
        One-sigma uncertainty of each fitted value, in its unit, from the
        Jacobian at the optimum. It assumes independent residuals, so it
        understates the uncertainty where the misfit is correlated in time
        and space.
    rho_cp_J_m3K : float
        Volumetric heat capacity used, not fitted [J m-3 K-1].
    rmse_K, max_abs_error_K : float
        Root-mean-square and maximum absolute misfit over all points and
        frames in the window [K].
    runtime_s : float
        Wall time of the fit [s].
    n_simulations : int
        Number of simulations the fit ran.
    settings : dict
        Grid, time step, window and geometry used.
    times_s : ndarray
        Frame times of the window [s], shape (n,).
    measured_C, simulated_C : ndarray
        Measured and simulated surface temperature at the optimum [C],
        shape (n, ny, nx).
    """

    k_x_W_mK: float
    k_y_W_mK: float
    k_z_W_mK: float
    h_top_W_m2K: float
    sigma: dict[str, float]
    rho_cp_J_m3K: float
    rmse_K: float
    max_abs_error_K: float
    runtime_s: float
    n_simulations: int
    settings: dict[str, Any]
    times_s: np.ndarray = field(repr=False)
    measured_C: np.ndarray = field(repr=False)
    simulated_C: np.ndarray = field(repr=False)

    @property
    def values(self) -> dict[str, float]:
        """Fitted values by name, in the units of their names."""
        return {name: float(getattr(self, name)) for name in PARAMETER_NAMES}

    def to_recipe_materials(self, name: str = "cell") -> dict[str, dict[str, float]]:
        """Return the fitted material as a recipe's ``materials:`` section."""
        return {
            name: {
                "k_x_W_mK": self.k_x_W_mK,
                "k_y_W_mK": self.k_y_W_mK,
                "k_z_W_mK": self.k_z_W_mK,
                "rho_cp_J_m3K": self.rho_cp_J_m3K,
            }
        }

    def summary(self) -> dict[str, Any]:
        """Return the fitted values and figures of merit as plain JSON types."""
        return {
            **self.values,
            "sigma": dict(self.sigma),
            "rho_cp_J_m3K": self.rho_cp_J_m3K,
            "rmse_K": self.rmse_K,
            "max_abs_error_K": self.max_abs_error_K,
            "runtime_s": self.runtime_s,
            "n_simulations": self.n_simulations,
            "settings": self.settings,
        }


@dataclass(frozen=True)
class _Model:
    """Quarter-cell grid and the data the fit compares against."""

    width_mm: float
    height_mm: float
    thickness_mm: float
    heater_radius_mm: float
    rho_cp_J_m3K: float
    cell_mm: float
    n_layers: int
    dt_s: float
    ambient_C: float
    initial: InitialState
    times_s: np.ndarray
    measured_C: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    heater: Tabulated
    first_frame_C: np.ndarray

    @property
    def quarter_shape(self) -> tuple[int, int]:
        nx = max(1, round(self.width_mm / 2 / self.cell_mm))
        ny = max(1, round(self.height_mm / 2 / self.cell_mm))
        return ny, nx

    def layout(self, k_W_mK: tuple[float, float, float]) -> Layout:
        ny, nx = self.quarter_shape
        material = Material("cell", *k_W_mK, self.rho_cp_J_m3K)
        grid = np.zeros((ny, nx), dtype=int)
        return Layout(
            self.width_mm / 2 / nx,
            self.height_mm / 2 / ny,
            self.thickness_mm,
            grid,
            (material,),
            grid.copy(),
            name="pouch quarter",
        )


def load_heater_experiment(folder: str | Path) -> Measurement:
    """Read the Oxford pouch-cell heater experiment from its folder.

    Parameters
    ----------
    folder : str or Path
        Folder with ``Exp_E_T11x11_celsius.npy`` (surface temperature [C],
        (n, 11, 11)), ``Exp.mat`` (``xe``, ``ye``: point positions [mm]),
        ``Th.txt`` (heater) and ``Ta.txt`` (ambient), the text files with
        two columns, time [s] and temperature [C].

    Returns
    -------
    Measurement
        Frames one second apart, starting at 0 s.

    Raises
    ------
    RecipeError
        If a file is missing or its shape does not match the others.
    """
    from scipy.io import loadmat

    folder = Path(folder)
    names = ("Exp_E_T11x11_celsius.npy", "Exp.mat", "Th.txt", "Ta.txt")
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise RecipeError(
            f"heater experiment: {missing} not found in {folder}; give the "
            "folder that contains the IR frames, Exp.mat, Th.txt and Ta.txt"
        )

    surface = np.load(folder / "Exp_E_T11x11_celsius.npy").astype(float)
    positions = loadmat(folder / "Exp.mat", variable_names=["xe", "ye"])
    heater = _read_two_columns(folder / "Th.txt")
    ambient = _read_two_columns(folder / "Ta.txt")

    return Measurement(
        times_s=np.arange(surface.shape[0], dtype=float),
        surface_C=surface,
        x_mm=np.ravel(positions["xe"]).astype(float),
        y_mm=np.ravel(positions["ye"]).astype(float),
        heater_times_s=heater[:, 0],
        heater_C=heater[:, 1],
        ambient_times_s=ambient[:, 0],
        ambient_C=ambient[:, 1],
        source=str(folder),
    )


def _read_two_columns(path: Path) -> np.ndarray:
    table = np.loadtxt(path, dtype=float, ndmin=2)
    if table.shape[1] != 2:
        raise RecipeError(
            f"{path}: {table.shape[1]} columns found; give two columns, "
            "time [s] and temperature [C]"
        )
    return table


def calibrate(
    measurement: Measurement,
    *,
    width_mm: float = 190.0,
    height_mm: float = 150.0,
    thickness_mm: float = 7.2,
    heater_radius_mm: float = 12.0,
    rho_cp_J_m3K: float = 2183.0 * 1083.0,
    cell_mm: float = 10.0,
    n_layers: int = 6,
    dt_s: float = 10.0,
    window_s: tuple[float, float | None] = (30.0, None),
    initial: InitialState = "ambient",
    guess: tuple[float, float, float, float] = DEFAULT_GUESS,
    max_simulations: int = 60,
    progress: Callable[[int, float], None] | None = None,
) -> CalibrationResult:
    """Fit ``k_x``, ``k_y``, ``k_z`` and ``h_top`` to a heater experiment.

    Parameters
    ----------
    measurement : Measurement
        Frames, point positions, heater and ambient temperature, for example
        from :func:`load_heater_experiment`.
    width_mm, height_mm, thickness_mm : float
        Size of the cell [mm]; the heater sits at the centre of its lower
        face and the measured positions are taken from the same corner.
    heater_radius_mm : float
        Radius of the circular heater [mm].
    rho_cp_J_m3K : float
        Volumetric heat capacity, held fixed [J m-3 K-1].
    cell_mm : float
        In-plane grid spacing [mm], rounded so that a whole number of cells
        spans each half of the cell.
    n_layers : int
        Through-thickness layers, 3 or more; the heater is held in the lowest
        and the camera sees the highest.
    dt_s : float
        Time step after the first 30 s [s]; the first 30 s take steps of
        1 s so that the heater's rise is resolved.
    window_s : (float, float or None)
        First and last time [s] compared; None runs to the last frame.
    initial : {"ambient", "first_frame"}
        Initial temperature: the ambient temperature at the first frame, or
        the first frame interpolated onto the grid for all layers.
    guess : tuple of 4 float
        Start of the fit: ``k_x``, ``k_y``, ``k_z`` [W m-1 K-1] and ``h_top``
        [W m-2 K-1].
    max_simulations : int
        Upper bound on simulations, including the Jacobian's.
    progress : callable, optional
        Called as ``progress(n_simulations, rmse_K)`` after each simulation.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    RecipeError
        If an option is invalid or the window holds no frame.
    """
    from scipy.optimize import least_squares

    started = time.perf_counter()
    model = _build_model(measurement, locals())
    p0 = np.asarray(guess, dtype=float)
    counter = _Counter(progress)

    def residuals(x: np.ndarray) -> np.ndarray:
        misfit = _simulate_surface(model, p0 * np.exp(x)) - model.measured_C
        counter.record(misfit)
        return misfit.ravel()

    fit = least_squares(
        residuals,
        np.zeros(p0.size),
        diff_step=1e-3,
        x_scale=np.ones(p0.size),
        xtol=1e-4,
        ftol=1e-6,
        max_nfev=max_simulations,
    )
    if not fit.success:
        logger.warning("calibrate: %s", fit.message)

    return _pack_result(model, fit, p0, counter.count, time.perf_counter() - started)


class _Counter:
    def __init__(self, progress: Callable[[int, float], None] | None) -> None:
        self.progress = progress
        self.count = 0

    def record(self, misfit: np.ndarray) -> None:
        self.count += 1
        rmse = float(np.sqrt(np.mean(misfit**2)))
        logger.info("calibrate: simulation %d, rmse %.4f K", self.count, rmse)
        if self.progress is not None:
            self.progress(self.count, rmse)


def _build_model(measurement: Measurement, options: dict[str, Any]) -> _Model:
    if not (isinstance(options["n_layers"], int) and options["n_layers"] >= 3):
        raise RecipeError(
            f"n_layers = {options['n_layers']!r} is invalid; give an integer >= 3 "
            "so that the heat crosses the thickness through interior layers"
        )

    if options["initial"] not in ("ambient", "first_frame"):
        raise RecipeError(
            f"initial = {options['initial']!r} is invalid; give 'ambient' or "
            "'first_frame'"
        )

    for key in ("cell_mm", "dt_s", "heater_radius_mm", "rho_cp_J_m3K"):
        if not (math.isfinite(options[key]) and options[key] > 0):
            raise RecipeError(f"{key} = {options[key]!r} is invalid; give a value > 0")

    in_window = _window_mask(measurement.times_s, options["window_s"])
    return _Model(
        width_mm=float(options["width_mm"]),
        height_mm=float(options["height_mm"]),
        thickness_mm=float(options["thickness_mm"]),
        heater_radius_mm=float(options["heater_radius_mm"]),
        rho_cp_J_m3K=float(options["rho_cp_J_m3K"]),
        cell_mm=float(options["cell_mm"]),
        n_layers=options["n_layers"],
        dt_s=float(options["dt_s"]),
        ambient_C=_mean_ambient_C(measurement, measurement.times_s[in_window]),
        initial=options["initial"],
        times_s=measurement.times_s[in_window],
        measured_C=measurement.surface_C[in_window],
        x_mm=measurement.x_mm,
        y_mm=measurement.y_mm,
        heater=Tabulated(measurement.heater_times_s, measurement.heater_C),
        first_frame_C=measurement.surface_C[0],
    )


def _window_mask(
    times_s: np.ndarray, window_s: tuple[float, float | None]
) -> np.ndarray:
    start, stop = window_s
    stop = times_s[-1] if stop is None else stop
    mask = (times_s >= start) & (times_s <= stop)
    if not mask.any():
        raise RecipeError(
            f"window_s = {window_s} holds no frame; the frames span "
            f"{times_s[0]:g}..{times_s[-1]:g} s"
        )
    return mask


def _mean_ambient_C(measurement: Measurement, times_s: np.ndarray) -> float:
    # NOTE: simulate() takes one ambient temperature, so the fit uses the
    # mean over the window. The Oxford ambient drifts by 0.06 K in 977 s.
    return float(
        np.mean(np.interp(times_s, measurement.ambient_times_s, measurement.ambient_C))
    )


def _simulate_surface(model: _Model, params: np.ndarray) -> np.ndarray:
    """Return the simulated upper-face temperature at the measured points [C]."""
    k_x, k_y, k_z, h_top = (float(p) for p in params)
    layout = model.layout((k_x, k_y, k_z))
    patch = _heater_patch(model, layout)
    initial_C = _initial_field(model, layout)
    boundary = Boundary(ambient_C=model.ambient_C, h_top_W_m2K=h_top)

    duration_s = float(model.times_s[-1])
    outputs = _output_times(duration_s, model.dt_s)
    result = simulate(
        layout,
        [patch],
        boundary=boundary,
        n_layers=model.n_layers,
        duration_s=duration_s,
        dt_s=model.dt_s,
        output_times_s=outputs,
        initial_C=initial_C,
    )

    top_C = initial_C[0] + result.rise_K
    surface_C = _surface_from_top_layer(top_C, model, layout, k_z, h_top)
    at_points = _sample_points(surface_C, model, layout)
    return _interpolate_in_time(outputs, at_points, model.times_s)


def _output_times(duration_s: float, dt_s: float) -> np.ndarray:
    fine = np.arange(0.0, min(30.0, duration_s), _FINE_STEP_S)
    coarse = np.arange(fine[-1] + _FINE_STEP_S, duration_s, dt_s)
    return np.unique(np.concatenate([fine, coarse, [duration_s]]))


def _heater_patch(model: _Model, layout: Layout) -> HeldPatch:
    """Hold the cells of the lowest layer whose centres lie on the heater."""
    x, y = layout.cell_centres_mm()
    disc = x[None, :] ** 2 + y[:, None] ** 2 <= model.heater_radius_mm**2
    if not disc.any():
        disc[0, 0] = True

    mask = np.zeros((model.n_layers, *layout.shape), dtype=bool)
    mask[-1] = disc
    return HeldPatch(mask, model.heater, "heater")


def _initial_field(model: _Model, layout: Layout) -> np.ndarray:
    """Return the initial temperature [C], (n_layers, ny, nx)."""
    shape = (model.n_layers, *layout.shape)
    if model.initial == "ambient":
        return np.full(shape, model.ambient_C)

    x, y = layout.cell_centres_mm()
    frame = _sample_frame(model, x, y)
    return np.broadcast_to(frame, shape).copy()


def _sample_frame(model: _Model, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
    """Average the first frame over the four mirror images of each cell."""
    from scipy.interpolate import RegularGridInterpolator

    order_x = np.argsort(model.x_mm)
    order_y = np.argsort(model.y_mm)
    frame = model.first_frame_C[np.ix_(order_y, order_x)]
    interpolate = RegularGridInterpolator(
        (model.y_mm[order_y], model.x_mm[order_x]),
        frame,
        bounds_error=False,
        fill_value=None,
    )

    cx, cy = model.width_mm / 2, model.height_mm / 2
    total = np.zeros((y_mm.size, x_mm.size))
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            yy, xx = np.meshgrid(cy + sy * y_mm, cx + sx * x_mm, indexing="ij")
            total += interpolate(np.stack([yy, xx], axis=-1))
    return total / 4.0


def _surface_from_top_layer(
    top_C: np.ndarray, model: _Model, layout: Layout, k_z: float, h_top: float
) -> np.ndarray:
    """Extrapolate the top layer's centre temperature to the cooled face [C].

    The face loses ``h (T_s - T_a)``, and the same flux crosses the half
    layer above the cell centre, ``k_z (T_0 - T_s) / (dz / 2)``, so
    ``T_s = (T_0 + B T_a) / (1 + B)`` with ``B = h dz / (2 k_z)``.
    """
    dz_m = layout.thickness_mm * 1e-3 / model.n_layers
    biot = h_top * dz_m / (2.0 * k_z)
    return (top_C + biot * model.ambient_C) / (1.0 + biot)


def _sample_points(surface_C: np.ndarray, model: _Model, layout: Layout) -> np.ndarray:
    """Interpolate quarter-grid fields at the folded measured points.

    Returns an array (n_out, ny_points, nx_points) [C].
    """
    from scipy.interpolate import RegularGridInterpolator

    x, y = layout.cell_centres_mm()
    padded = np.pad(surface_C, ((0, 0), (1, 1), (1, 1)), mode="edge")
    x_axis = np.concatenate([[-x[0]], x, [2 * layout.width_mm - x[-1]]])
    y_axis = np.concatenate([[-y[0]], y, [2 * layout.height_mm - y[-1]]])

    px = np.abs(model.x_mm - model.width_mm / 2)
    py = np.abs(model.y_mm - model.height_mm / 2)
    yy, xx = np.meshgrid(py, px, indexing="ij")
    points = np.stack([yy.ravel(), xx.ravel()], axis=-1)

    fields = np.moveaxis(padded, 0, -1)
    interpolate = RegularGridInterpolator((y_axis, x_axis), fields)
    values = interpolate(points)
    return values.T.reshape(surface_C.shape[0], py.size, px.size)


def _interpolate_in_time(
    times_s: np.ndarray, values: np.ndarray, at_s: np.ndarray
) -> np.ndarray:
    """Linearly interpolate ``values`` (n_out, ...) from ``times_s`` to ``at_s``."""
    right = np.clip(np.searchsorted(times_s, at_s), 1, times_s.size - 1)
    left = right - 1
    weight = (at_s - times_s[left]) / (times_s[right] - times_s[left])
    weight = weight.reshape(-1, *([1] * (values.ndim - 1)))
    return (1.0 - weight) * values[left] + weight * values[right]


def _pack_result(
    model: _Model, fit: Any, p0: np.ndarray, n_simulations: int, runtime_s: float
) -> CalibrationResult:
    params = p0 * np.exp(fit.x)
    misfit = fit.fun.reshape(model.measured_C.shape)
    sigma = params * _sigma_of_log_params(fit.jac, fit.fun, params.size)
    settings = {
        "width_mm": model.width_mm,
        "height_mm": model.height_mm,
        "thickness_mm": model.thickness_mm,
        "heater_radius_mm": model.heater_radius_mm,
        "quarter_grid_ny_nx": list(model.quarter_shape),
        "cell_mm": model.cell_mm,
        "n_layers": model.n_layers,
        "dt_s": model.dt_s,
        "window_s": [float(model.times_s[0]), float(model.times_s[-1])],
        "ambient_C": model.ambient_C,
        "initial": model.initial,
        "optimizer_status": str(fit.message),
    }
    return CalibrationResult(
        **dict(zip(PARAMETER_NAMES, (float(p) for p in params), strict=True)),
        sigma=dict(zip(PARAMETER_NAMES, (float(s) for s in sigma), strict=True)),
        rho_cp_J_m3K=model.rho_cp_J_m3K,
        rmse_K=float(np.sqrt(np.mean(misfit**2))),
        max_abs_error_K=float(np.max(np.abs(misfit))),
        runtime_s=runtime_s,
        n_simulations=n_simulations,
        settings=settings,
        times_s=model.times_s,
        measured_C=model.measured_C,
        simulated_C=model.measured_C + misfit,
    )


def _sigma_of_log_params(jac: np.ndarray, residuals: np.ndarray, n: int) -> np.ndarray:
    """Return one-sigma errors of the log parameters, ``s^2 (J^T J)^-1``."""
    dof = max(residuals.size - n, 1)
    variance = float(residuals @ residuals) / dof
    covariance = variance * np.linalg.pinv(jac.T @ jac)
    return np.sqrt(np.diag(covariance))


def plot_calibration(result: CalibrationResult, path: str | Path) -> Path:
    """Plot measured against simulated surface temperature and save it.

    The figure shows the centre point and the mean over all points against
    time, and measured, simulated and difference maps at three times.

    Parameters
    ----------
    result : CalibrationResult
        A fit from :func:`calibrate`.
    path : str or Path
        Image file to write, such as ``calibration.png``.

    Returns
    -------
    Path
        The written file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 9), layout="constrained")
    grid = fig.add_gridspec(4, 3)
    _plot_traces(fig.add_subplot(grid[0, :]), result)
    _plot_maps(fig, grid, result)

    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_traces(ax: Any, result: CalibrationResult) -> None:
    ny, nx = result.measured_C.shape[1:]
    t = result.times_s
    centre = (slice(None), ny // 2, nx // 2)
    ax.plot(t, result.measured_C[centre], "k-", label="centre, measured")
    ax.plot(t, result.simulated_C[centre], "r--", label="centre, simulated")
    ax.plot(t, result.measured_C.mean(axis=(1, 2)), "b-", label="mean, measured")
    ax.plot(t, result.simulated_C.mean(axis=(1, 2)), "c--", label="mean, simulated")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("temperature [C]")
    ax.set_title(
        f"RMSE {result.rmse_K:.3f} K, max |error| {result.max_abs_error_K:.3f} K"
    )
    ax.legend(fontsize=8)


def _plot_maps(fig: Any, grid: Any, result: CalibrationResult) -> None:
    picks = np.linspace(0, result.times_s.size - 1, 3).astype(int)
    low, high = result.measured_C.min(), result.measured_C.max()
    for column, index in enumerate(picks):
        measured = result.measured_C[index]
        simulated = result.simulated_C[index]
        panels = (
            (measured, f"measured, t = {result.times_s[index]:g} s", low, high),
            (simulated, "simulated", low, high),
            (simulated - measured, "simulated - measured [K]", -0.5, 0.5),
        )
        for row, (image, title, vmin, vmax) in enumerate(panels, start=1):
            ax = fig.add_subplot(grid[row, column])
            cmap = "coolwarm" if row == 3 else "inferno"
            shown = ax.imshow(image, vmin=vmin, vmax=vmax, cmap=cmap)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(shown, ax=ax, shrink=0.8)
