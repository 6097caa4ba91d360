"""Fit a cell's thermal conductivity and surface cooling to an IR measurement.

The experiment this module reads heats a pouch cell lying flat through a
circular heater fixed near the centre of its lower face. A controller keeps
the heater's thermocouple at a measured temperature, the rest of the lower
face is insulated, and an infrared camera records the upper face on a grid of
points. :func:`calibrate` adjusts the in-plane conductivities ``k_x``,
``k_y``, the through-thickness conductivity ``k_z``, the heat transfer
coefficient ``h`` of the upper face and the heater centre until the model
reproduces the measured surface temperatures in the least-squares sense.

The model is linear with one homogeneous, anisotropic material, so it is
solved in modes instead of with :mod:`thermosynth.physics.heat`: cosine modes
in the plane, which make the four edges insulated, and graded finite-volume
layers through the thickness. Every mode shares the same through-thickness
eigenvectors, so one small eigenproblem per parameter set lets each time step
be integrated exactly. The heater is a uniform heat flux over its disc whose
value, step by step, brings the lower face at the heater centre to the
measured heater temperature, as the controller does with its thermocouple.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from thermosynth.errors import RecipeError

logger = logging.getLogger(__name__)

PARAMETER_NAMES = (
    "k_x_W_mK",
    "k_y_W_mK",
    "k_z_W_mK",
    "h_top_W_m2K",
    "heater_x_mm",
    "heater_y_mm",
)

# Start of the fit [W m-1 K-1, W m-1 K-1, W m-1 K-1, W m-2 K-1]. These are a
# rough starting point, not measured values; the fit moves them.
DEFAULT_GUESS = (20.0, 20.0, 0.6, 12.0)

# Each through-thickness layer is this many times thicker than the one below,
# so the layers next to the heater, where the gradients are steepest, are the
# thinnest.
_LAYER_GROWTH = 1.25

# Gauss-Legendre points for the heater disc's modal coefficients.
_HEATER_QUADRATURE_POINTS = 256

# Minimum number of frames in a fit window. One frame shows the surface at one
# instant, with no change over time to fit. On the Oxford recording h_top and
# k_z then trade off almost exactly (correlation 0.999 for the frame at 100 s
# on the default grid). Two frames are necessary, not sufficient: a short
# window can still leave a parameter poorly determined, which
# `_check_determined` catches after the fit.
MIN_WINDOW_FRAMES = 2

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


class WindowError(RecipeError):
    """A fit window that selects fewer than `MIN_WINDOW_FRAMES` frames.

    Attributes
    ----------
    window_s : (float, float or None)
        The window as given [s]; None stands for the last frame.
    frame_times_s : ndarray
        Times of the frames inside the window [s].
    span_s : (float, float)
        Times of the first and last recorded frames [s].
    """

    def __init__(
        self,
        window_s: tuple[float, float | None],
        frame_times_s: np.ndarray,
        span_s: tuple[float, float],
    ) -> None:
        self.window_s = window_s
        self.frame_times_s = frame_times_s
        self.span_s = span_s
        super().__init__(
            self.describe(
                f"window_s = {window_s}",
                "give a window_s = (start, stop) that takes at least "
                f"{MIN_WINDOW_FRAMES} frames within that span",
            )
        )

    def describe(self, window: str, fix: str) -> str:
        """Return the message for ``window``, the window as the caller named it."""
        first, last = self.span_s
        span = f"the frames span {first:g}..{last:g} s"
        n = self.frame_times_s.size
        if n == 0:
            return f"{window} selects no frame; {span}, so {fix}"

        times = ", ".join(f"{t:g}" for t in self.frame_times_s)
        noun = "frame" if n == 1 else "frames"
        return (
            f"{window} selects {n} {noun} ({times} s), but the fit needs at least "
            f"{MIN_WINDOW_FRAMES} frames to see the surface change over time; "
            f"{span}, so {fix}"
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
    heater_x_mm, heater_y_mm : float
        Heater centre in the coordinates of the measured points [mm], fitted
        or held fixed.
    sigma : dict of str to float
        One-sigma uncertainty of each value, in its unit, from the Jacobian
        at the optimum, and 0 for a value held fixed. It assumes independent
        residuals, so it understates the uncertainty where the misfit is
        correlated in time and space.
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
    heater_x_mm: float
    heater_y_mm: float
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
        If a file is missing, cannot be read, or its shape does not match the
        others.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    folder = Path(folder)
    names = ("Exp_E_T11x11_celsius.npy", "Exp.mat", "Th.txt", "Ta.txt")
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise RecipeError(
            f"heater experiment: {missing} not found in {folder}; give the "
            "folder that contains the IR frames, Exp.mat, Th.txt and Ta.txt"
        )

    try:
        surface = np.load(folder / "Exp_E_T11x11_celsius.npy").astype(float)
        positions = loadmat(folder / "Exp.mat", variable_names=["xe", "ye"])
        heater = _read_two_columns(folder / "Th.txt")
        ambient = _read_two_columns(folder / "Ta.txt")
    except (OSError, ValueError, MatReadError) as exc:
        raise RecipeError(
            f"heater experiment in {folder}: a file could not be read ({exc}); "
            "replace the damaged file with the original"
        ) from None
    if "xe" not in positions or "ye" not in positions:
        raise RecipeError(
            f"{folder / 'Exp.mat'} lacks the point positions xe and ye; give "
            "the experiment's original Exp.mat"
        )

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
    cell_mm: float = 2.5,
    n_layers: int = 12,
    dt_s: float = 1.0,
    window_s: tuple[float, float | None] = (30.0, None),
    initial: InitialState = "ambient",
    guess: tuple[float, float, float, float] = DEFAULT_GUESS,
    heater_centre_mm: tuple[float, float] | None = None,
    fit_heater_centre: bool = True,
    max_simulations: int = 100,
    progress: Callable[[int, float], None] | None = None,
) -> CalibrationResult:
    """Fit ``k_x``, ``k_y``, ``k_z``, ``h_top`` and the heater centre to a test.

    Parameters
    ----------
    measurement : Measurement
        Frames, point positions, heater and ambient temperature, for example
        from :func:`load_heater_experiment`.
    width_mm, height_mm, thickness_mm : float
        Size of the cell [mm]. The cell spans ``0..width_mm`` and
        ``0..height_mm`` in the coordinates of the measured points.
    heater_radius_mm : float
        Radius of the circular heater on the lower face [mm].
    rho_cp_J_m3K : float
        Volumetric heat capacity, held fixed [J m-3 K-1]. It cannot be fitted
        together with the conductivities from a held-temperature test, because
        scaling ``k``, ``h`` and ``rho_cp`` by one factor gives the same
        temperatures.
    cell_mm : float
        In-plane resolution [mm]: the shortest half wavelength of the cosine
        modes, so the model keeps ``round(width_mm / cell_mm)`` by
        ``round(height_mm / cell_mm)`` modes.
    n_layers : int
        Through-thickness finite-volume layers, 3 or more, graded so that the
        layers next to the heater are the thinnest.
    dt_s : float
        Time step [s]; the heater power is constant within a step.
    window_s : (float, float or None)
        First and last time [s] compared; None runs to the last frame. The
        window must select at least `MIN_WINDOW_FRAMES` frames. The model
        always runs from 0 s, so the heater and ambient history before a late
        window still enters the fit.
    initial : {"ambient", "first_frame"}
        Initial temperature: the ambient temperature at the first frame, or
        the first frame, uniform through the thickness.
    guess : tuple of 4 float
        Start of the fit: ``k_x``, ``k_y``, ``k_z`` [W m-1 K-1] and ``h_top``
        [W m-2 K-1].
    heater_centre_mm : (float, float), optional
        Heater centre ``(x, y)`` in the coordinates of the measured points
        [mm]; the start of the fit, or the fixed centre when
        ``fit_heater_centre`` is False. None takes the centre of the cell.
    fit_heater_centre : bool
        Fit the heater centre as two more parameters.
    max_simulations : int
        Upper bound on the optimiser's simulations. The finite-difference
        Jacobian's simulations, one per fitted parameter each time it is
        evaluated, come on top, because scipy's ``max_nfev`` leaves them out.
    progress : callable, optional
        Called as ``progress(n_simulations, rmse_K)`` after each simulation.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    WindowError
        If the window selects fewer than `MIN_WINDOW_FRAMES` frames.
    RecipeError
        If an option is invalid, or if the fit leaves a parameter poorly
        determined: a conductivity or ``h_top`` whose one-sigma error exceeds
        its value, or a heater coordinate whose error exceeds the heater
        radius.
    """
    from scipy.optimize import least_squares

    started = time.perf_counter()
    model = _build_model(measurement, locals())
    start = _start_parameters(model, guess, heater_centre_mm)
    n_free = len(start) if fit_heater_centre else 4
    counter = _Counter(progress)

    def residuals(x: np.ndarray) -> np.ndarray:
        params = _parameters_from_vector(x, start, n_free)
        misfit = _simulate_points(model, params) - model.measured_C
        counter.record(misfit)
        return misfit.ravel()

    fit = least_squares(
        residuals,
        np.zeros(n_free),
        diff_step=1e-4,
        xtol=1e-5,
        ftol=1e-7,
        max_nfev=max_simulations,
    )
    if not fit.success:
        logger.warning("calibrate: %s", fit.message)

    params = _parameters_from_vector(fit.x, start, n_free)
    runtime_s = time.perf_counter() - started
    result = _pack_result(model, fit, params, n_free, counter.count, runtime_s)
    _check_determined(result)
    return result


def _start_parameters(
    model: _Model,
    guess: tuple[float, float, float, float],
    heater_centre_mm: tuple[float, float] | None,
) -> np.ndarray:
    if len(guess) != 4 or not all(math.isfinite(g) and g > 0 for g in guess):
        raise RecipeError(
            f"guess = {guess!r} is invalid; give four values > 0: k_x, k_y, k_z "
            "[W m-1 K-1] and h_top [W m-2 K-1]"
        )

    if heater_centre_mm is None:
        heater_centre_mm = (model.width_mm / 2.0, model.height_mm / 2.0)
    return np.array([*guess, *heater_centre_mm], dtype=float)


def _parameters_from_vector(
    x: np.ndarray, start: np.ndarray, n_free: int
) -> np.ndarray:
    """Map the optimiser's vector to parameters.

    The first four entries are log factors on ``k_x``, ``k_y``, ``k_z`` and
    ``h_top``, the next two are shifts of the heater centre [mm].
    """
    params = start.copy()
    params[:4] *= np.exp(x[:4])
    params[4:n_free] += x[4:n_free]
    return params


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

    keys = ("width_mm", "height_mm", "thickness_mm", "heater_radius_mm")
    for key in (*keys, "cell_mm", "dt_s", "rho_cp_J_m3K"):
        if not (math.isfinite(options[key]) and options[key] > 0):
            raise RecipeError(f"{key} = {options[key]!r} is invalid; give a value > 0")

    in_window = _window_mask(measurement.times_s, options["window_s"])
    return _Model(
        **{key: float(options[key]) for key in keys},
        rho_cp_J_m3K=float(options["rho_cp_J_m3K"]),
        cell_mm=float(options["cell_mm"]),
        n_layers=options["n_layers"],
        dt_s=float(options["dt_s"]),
        initial=options["initial"],
        measurement=measurement,
        in_window=in_window,
    )


def _window_mask(
    times_s: np.ndarray, window_s: tuple[float, float | None]
) -> np.ndarray:
    start, stop = window_s
    stop = times_s[-1] if stop is None else stop
    mask = (times_s >= start) & (times_s <= stop)
    if np.count_nonzero(mask) < MIN_WINDOW_FRAMES:
        span_s = (float(times_s[0]), float(times_s[-1]))
        raise WindowError(window_s, times_s[mask], span_s)
    return mask


@dataclass(frozen=True, eq=False)
class _Model:
    """Cell geometry, discretisation and the data the fit compares against."""

    width_mm: float
    height_mm: float
    thickness_mm: float
    heater_radius_mm: float
    rho_cp_J_m3K: float
    cell_mm: float
    n_layers: int
    dt_s: float
    initial: InitialState
    measurement: Measurement
    in_window: np.ndarray

    @property
    def times_s(self) -> np.ndarray:
        return self.measurement.times_s[self.in_window]

    @property
    def measured_C(self) -> np.ndarray:
        return self.measurement.surface_C[self.in_window]

    @cached_property
    def mode_counts(self) -> tuple[int, int]:
        """Number of cosine modes along x and y."""
        nx = max(1, round(self.width_mm / self.cell_mm))
        ny = max(1, round(self.height_mm / self.cell_mm))
        return nx, ny

    @cached_property
    def wavenumbers_per_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Wavenumbers ``pi m / L`` of the x and y modes [mm-1]."""
        nx, ny = self.mode_counts
        return np.pi * np.arange(nx) / self.width_mm, np.pi * np.arange(
            ny
        ) / self.height_mm

    @cached_property
    def layers_m(self) -> np.ndarray:
        """Layer thicknesses from the upper face down [m], graded by _LAYER_GROWTH."""
        growth = _LAYER_GROWTH ** np.arange(self.n_layers)[::-1]
        return self.thickness_mm * 1e-3 * growth / growth.sum()

    @cached_property
    def step_times_s(self) -> np.ndarray:
        last = float(self.times_s[-1])
        n_steps = max(1, math.ceil(last / self.dt_s - 1e-9))
        return np.linspace(0.0, n_steps * self.dt_s, n_steps + 1)

    @cached_property
    def ambient_C(self) -> np.ndarray:
        """Ambient temperature at the step times [C], Ta.txt interpolated."""
        m = self.measurement
        return np.interp(self.step_times_s, m.ambient_times_s, m.ambient_C)

    @cached_property
    def heater_C(self) -> np.ndarray:
        """Heater set temperature at the step times [C], Th.txt interpolated."""
        m = self.measurement
        return np.interp(self.step_times_s, m.heater_times_s, m.heater_C)

    @cached_property
    def point_basis(self) -> np.ndarray:
        """Mode shapes at the measured points, (n_modes, ny_points * nx_points)."""
        ax, ay = self.wavenumbers_per_mm
        yy, xx = np.meshgrid(
            self.measurement.y_mm, self.measurement.x_mm, indexing="ij"
        )
        return _mode_shapes(ax, ay, xx.ravel(), yy.ravel())


def _mode_shapes(
    ax: np.ndarray, ay: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray
) -> np.ndarray:
    """Return ``cos(ax x) cos(ay y)`` with modes flattened y-major, (n_modes, n)."""
    cx = np.cos(np.outer(ax, x_mm))
    cy = np.cos(np.outer(ay, y_mm))
    return (cy[:, None, :] * cx[None, :, :]).reshape(-1, np.size(x_mm))


def _heater_coefficients(model: _Model, centre_mm: tuple[float, float]) -> np.ndarray:
    """Project the heater disc's indicator onto the modes, (n_modes,).

    The disc integral of ``cos(ax x) cos(ay y)`` is exact in y and uses
    Gauss-Legendre points in ``x = x_c + R sin(theta)``, where the integrand
    is smooth, so the coefficients vary smoothly with the centre.
    """
    ax, ay = model.wavenumbers_per_mm
    xc, yc = centre_mm
    radius = model.heater_radius_mm
    nodes, weights = np.polynomial.legendre.leggauss(_HEATER_QUADRATURE_POINTS)
    theta = nodes * np.pi / 2
    half_chord = radius * np.cos(theta)

    along_x = np.cos(np.outer(ax, xc + radius * np.sin(theta)))
    along_x *= weights * np.pi / 2 * half_chord
    along_y = 2 * half_chord * np.sinc(np.outer(ay, half_chord) / np.pi)
    along_y *= np.cos(ay * yc)[:, None]

    norm_x = np.where(np.arange(ax.size) == 0, 1.0, 2.0) / model.width_mm
    norm_y = np.where(np.arange(ay.size) == 0, 1.0, 2.0) / model.height_mm
    coefficients = (along_y @ along_x.T) * norm_y[:, None] * norm_x[None, :]
    return coefficients.ravel()


@dataclass(frozen=True)
class _ThroughThickness:
    """Eigen-decomposition of the through-thickness operator of one mode.

    With capacities ``C = rho_cp dz`` and conductances ``K`` per unit area,
    ``C da/dt = -K a - lambda_m dz a + f`` for mode ``m``. Writing
    ``a = V b`` with ``V = C^-1/2 Q`` and ``Q`` the eigenvectors of
    ``C^-1/2 K C^-1/2`` gives ``db/dt = -(Lambda + lambda_m / rho_cp) b + P f``
    with ``P = Q^T C^-1/2``: every mode shares ``Q`` and only shifts the rates.
    """

    rates_per_s: np.ndarray
    to_layers: np.ndarray
    from_forcing: np.ndarray
    top_conductance_W_m2K: float


def _through_thickness(model: _Model, k_z: float, h_top: float) -> _ThroughThickness:
    dz = model.layers_m
    capacity = model.rho_cp_J_m3K * dz
    between = k_z / (0.5 * (dz[:-1] + dz[1:]))
    top = 1.0 / (1.0 / h_top + dz[0] / (2.0 * k_z))

    stiffness = np.diag(np.r_[between, 0.0] + np.r_[0.0, between])
    stiffness -= np.diag(between, 1) + np.diag(between, -1)
    stiffness[0, 0] += top

    scale = 1.0 / np.sqrt(capacity)
    rates, vectors = np.linalg.eigh(scale[:, None] * stiffness * scale[None, :])
    return _ThroughThickness(
        rates_per_s=rates,
        to_layers=scale[:, None] * vectors,
        from_forcing=vectors.T * scale[None, :],
        top_conductance_W_m2K=top,
    )


def _simulate_points(model: _Model, params: np.ndarray) -> np.ndarray:
    """Return the simulated upper-face temperature at the measured points [C].

    The shape is (n_frames_in_window, ny_points, nx_points).
    """
    k_x, k_y, k_z, h_top, x_c, y_c = (float(p) for p in params)
    top_C, _ = _run_modes(model, (k_x, k_y, k_z, h_top), (x_c, y_c))

    dz_top = model.layers_m[0]
    biot = h_top * dz_top / (2.0 * k_z)
    surface_C = (top_C + biot * model.ambient_C[:, None]) / (1.0 + biot)
    at_frames = _interpolate_in_time(model.step_times_s, surface_C, model.times_s)
    return at_frames.reshape(model.measured_C.shape)


def _run_modes(
    model: _Model,
    k_h: tuple[float, float, float, float],
    centre_mm: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Step the modal amplitudes through time with a controlled heater.

    The heater is a uniform heat flux over its disc. In each step its flux
    is held constant and set so that the lower face at the heater centre
    reaches the heater temperature at the end of the step; a negative flux
    is clipped to zero because the heater cannot cool. Each step integrates
    the modal equations exactly for inputs held over the step.

    Returns the top layer's temperature at the measured points [C],
    (n_steps + 1, n_points), and the heater flux [W m-2], (n_steps + 1,).
    """
    k_x, k_y, k_z, h_top = k_h
    z = _through_thickness(model, k_z, h_top)
    rates = _mode_rates(model, k_x, k_y)[:, None] + z.rates_per_s[None, :]
    decay = np.exp(-rates * model.dt_s)
    gain = -np.expm1(-rates * model.dt_s) / rates

    ambient_gain = gain[0] * z.from_forcing[:, 0] * z.top_conductance_W_m2K
    heater = _heater_coefficients(model, centre_mm)
    unit_flux = gain * np.outer(heater, z.from_forcing[:, -1])

    ax, ay = model.wavenumbers_per_mm
    at_centre = _mode_shapes(ax, ay, np.array([centre_mm[0]]), np.array([centre_mm[1]]))
    probe = np.outer(at_centre[:, 0], z.to_layers[-1])
    face_K_per_W_m2 = model.layers_m[-1] / (2.0 * k_z)
    flux_response = float(np.sum(probe * unit_flux)) + face_K_per_W_m2

    amplitudes = _initial_amplitudes(model, z)
    top = np.empty((model.step_times_s.size, amplitudes.shape[0]))
    flux = np.zeros(model.step_times_s.size)
    top[0] = amplitudes @ z.to_layers[0]
    ambient_mid = 0.5 * (model.ambient_C[1:] + model.ambient_C[:-1])
    for step in range(1, model.step_times_s.size):
        amplitudes *= decay
        amplitudes[0] += ambient_mid[step - 1] * ambient_gain
        free = float(np.sum(probe * amplitudes))
        flux[step] = max(0.0, (model.heater_C[step] - free) / flux_response)
        amplitudes += flux[step] * unit_flux
        top[step] = amplitudes @ z.to_layers[0]

    return top @ model.point_basis, flux


def _mode_rates(model: _Model, k_x: float, k_y: float) -> np.ndarray:
    """Return the in-plane decay rate ``(k_x ax^2 + k_y ay^2) / rho_cp`` [s-1]."""
    ax, ay = model.wavenumbers_per_mm
    in_plane = k_y * (ay[:, None] * 1e3) ** 2 + k_x * (ax[None, :] * 1e3) ** 2
    return in_plane.ravel() / model.rho_cp_J_m3K


def _initial_amplitudes(model: _Model, z: _ThroughThickness) -> np.ndarray:
    """Return the modal amplitudes of the initial state, (n_modes, n_layers)."""
    nx, ny = model.mode_counts
    plane = np.zeros(nx * ny)
    if model.initial == "ambient":
        plane[0] = model.ambient_C[0]
    else:
        plane = _project_first_frame(model)

    # Each layer has the same in-plane field; P maps it to the eigenbasis.
    capacity_weighted = z.from_forcing @ (model.rho_cp_J_m3K * model.layers_m)
    return np.outer(plane, capacity_weighted)


def _project_first_frame(model: _Model) -> np.ndarray:
    """Project the first frame, interpolated over the cell, onto the modes."""
    from scipy.fft import dctn
    from scipy.interpolate import RegularGridInterpolator

    m = model.measurement
    order_x, order_y = np.argsort(m.x_mm), np.argsort(m.y_mm)
    frame = m.surface_C[0][np.ix_(order_y, order_x)]
    interpolate = RegularGridInterpolator(
        (m.y_mm[order_y], m.x_mm[order_x]), frame, bounds_error=False, fill_value=None
    )

    nx, ny = model.mode_counts
    x = (np.arange(nx) + 0.5) * model.width_mm / nx
    y = (np.arange(ny) + 0.5) * model.height_mm / ny
    yy, xx = np.meshgrid(y, x, indexing="ij")
    samples = interpolate(np.stack([yy, xx], axis=-1))
    coefficients = dctn(samples, type=2, norm="forward")
    coefficients[:, 1:] *= 2.0
    coefficients[1:, :] *= 2.0
    return coefficients.ravel()


def _interpolate_in_time(
    times_s: np.ndarray, values: np.ndarray, at_s: np.ndarray
) -> np.ndarray:
    """Linearly interpolate ``values`` (n_out, ...) from ``times_s`` to ``at_s``."""
    right = np.clip(np.searchsorted(times_s, at_s), 1, times_s.size - 1)
    left = right - 1
    weight = (at_s - times_s[left]) / (times_s[right] - times_s[left])
    weight = weight.reshape(-1, *([1] * (values.ndim - 1)))
    return (1.0 - weight) * values[left] + weight * values[right]


def _check_determined(result: CalibrationResult) -> None:
    """Raise if the data determine a fitted parameter poorly or not at all.

    A conductivity or ``h_top`` is poorly determined where its one-sigma error
    exceeds its value, so the data cannot tell it from zero. A heater
    coordinate is poorly determined where its error exceeds the heater radius,
    so the data do not place the heater on itself. An infinite error, a
    direction of parameter space that the residuals do not see, is the
    extreme case.
    """
    radius_mm = result.settings["heater_radius_mm"]
    loose = []
    for name, value in result.values.items():
        scale = radius_mm if name.startswith("heater_") else abs(value)
        sigma = result.sigma[name]
        # `not <=` also catches an infinite or NaN error.
        if not sigma <= scale:
            loose.append(f"{name} = {value:.3g} +- {sigma:.2g}")

    if loose:
        nx, ny = result.settings["modes_x_y"]
        first, last = result.settings["window_s"]
        raise RecipeError(
            f"calibration failed: the data leave {', '.join(loose)} poorly "
            "determined, with a one-sigma error above the value (above the "
            "heater radius for the heater centre), in the window "
            f"{first:g}..{last:g} s with {nx} x {ny} modes; widen the window "
            "(window_s, or --start-s and --stop-s), or lower cell_mm (--cell-mm) "
            "to keep more modes"
        )


def _pack_result(
    model: _Model,
    fit: Any,
    params: np.ndarray,
    n_free: int,
    n_simulations: int,
    runtime_s: float,
) -> CalibrationResult:
    misfit = fit.fun.reshape(model.measured_C.shape)
    sigma = np.zeros(params.size)
    sigma[:n_free] = _sigma_of_fit_vector(fit.jac, fit.fun, n_free)
    sigma[:4] *= params[:4]

    _, flux = _run_modes(model, tuple(params[:4]), tuple(params[4:]))
    heater_area_m2 = math.pi * (model.heater_radius_mm * 1e-3) ** 2
    nx, ny = model.mode_counts
    settings = {
        "width_mm": model.width_mm,
        "height_mm": model.height_mm,
        "thickness_mm": model.thickness_mm,
        "heater_radius_mm": model.heater_radius_mm,
        "heater_model": "uniform flux, controlled to hold the lower face at "
        "the heater centre at Th",
        "modes_x_y": [nx, ny],
        "cell_mm": model.cell_mm,
        "n_layers": model.n_layers,
        "layer_growth": _LAYER_GROWTH,
        "dt_s": model.dt_s,
        "window_s": [float(model.times_s[0]), float(model.times_s[-1])],
        "ambient": "Ta interpolated in time",
        "initial": model.initial,
        "heater_centre_fitted": n_free == 6,
        "final_heater_power_W": float(flux[-1] * heater_area_m2),
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


def _sigma_of_fit_vector(jac: np.ndarray, residuals: np.ndarray, n: int) -> np.ndarray:
    """Return one-sigma errors of the optimiser's vector, ``s^2 (J^T J)^-1``.

    A direction of parameter space that leaves the residuals unchanged (a
    zero eigenvalue of ``J^T J``) is not determined by the data. So every
    parameter that moves along it gets an infinite error, where a
    pseudo-inverse alone would give 0.
    """
    dof = max(residuals.size - n, 1)
    variance = float(residuals @ residuals) / dof
    jtj = jac.T @ jac
    eigenvalues, eigenvectors = np.linalg.eigh(jtj)
    null = eigenvalues <= max(eigenvalues.max(), 0.0) * n * np.finfo(float).eps

    sigma = np.sqrt(np.diag(variance * np.linalg.pinv(jtj)))
    undetermined = (np.abs(eigenvectors[:, null]) > 1e-6).any(axis=1)
    sigma[undetermined] = np.inf
    return sigma


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
