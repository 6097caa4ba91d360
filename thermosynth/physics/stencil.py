"""Explicit finite-volume heat stencil in torch, for linear problems.

Same grid, face conductivities and convective loss as
:mod:`thermosynth.physics.fast`: cell-centred finite volumes, the harmonic
mean of the two cells' conductivity along each face normal, and the loss
``g = h / dz`` on the top and bottom layers. Instead of one implicit Euler
solve per step, each step of ``dt_s`` is split into equal explicit (forward)
Euler sub-steps no longer than

    safety * min over cells of rho_cp / (sum of face conductances + g)

which keeps every sub-step stable. Per unit volume one sub-step is

    r += dt_sub / rho_cp * (-K r + f_0 + g (T_a - T_0 - r) + q)

for the rise ``r`` over the initial state ``T_0``, with ``K`` the conduction
operator, ``f_0`` the heat conducted by ``T_0`` and ``q`` the source density
at the end of the step, kept constant over its sub-steps as in the implicit step.
A batch of scenarios advances as one (B, n_layers, ny, nx) tensor on CPU or
CUDA.

NOTE: the CUDA path has not been run (no GPU was available); only CPU is tested.

Only linear problems are accepted: no radiation (emissivity 0) and no held
patches. Forward and implicit Euler differ by O(dt), so the two solvers agree
to the time error of the implicit step, not to round-off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from thermosynth.errors import RecipeError, SimulationError
from thermosynth.geometry.layout import Layout
from thermosynth.physics.grid import face_conductances, layer_dz_m, layer_volume_ratio
from thermosynth.physics.heat import (
    Boundary,
    FailurePolicy,
    HeatResult,
    _check_policy,
    _check_sources,
    _check_times,
    _initial_state,
    _output_times,
    _step_ends,
)
from thermosynth.physics.sources import (
    HeldPatch,
    VolumeSource,
    cell_volume_m3,
    check_n_layers,
)

logger = logging.getLogger(__name__)

Source = VolumeSource | HeldPatch

_DEFAULT_BOUNDARY = Boundary()

# Fraction of the forward Euler stability limit used as the sub-step.
DEFAULT_SAFETY = 0.9


def simulate_stencil(
    layout: Layout,
    sources: Sequence[Source],
    *,
    boundary: Boundary = _DEFAULT_BOUNDARY,
    n_layers: int = 1,
    duration_s: float,
    dt_s: float,
    output_times_s: Sequence[float] | None = None,
    initial_C: float | np.ndarray | None = None,
    on_failure: FailurePolicy = "raise",
    progress: Callable[[int, int], None] | None = None,
    device: str = "cpu",
    safety: float = DEFAULT_SAFETY,
) -> HeatResult:
    """Simulate one linear scenario with the explicit stencil.

    Takes the arguments of :func:`thermosynth.physics.fast.simulate_fast`
    and returns the same result, plus ``device`` (a torch device, e.g.
    ``"cpu"`` or ``"cuda"``) and ``safety`` (fraction of the stability limit
    used as the sub-step, in (0, 1]). ``dt_s`` sets the output grid and the
    times at which source powers are sampled; the sub-steps are shorter.

    Raises
    ------
    RecipeError
        If the problem is not linear (a HeldPatch, or an emissivity above 0),
        or as in ``simulate_fast``.
    SimulationError
        If the rise becomes non-finite and ``on_failure == "raise"``.

    Examples
    --------
    >>> from thermosynth.geometry.layout import Layout, Material
    >>> from thermosynth.physics.sources import hotspot
    >>> steel = Material("steel", 15.0, 15.0, 15.0, 3.6e6)
    >>> grid = np.zeros((8, 8), dtype=int)
    >>> layout = Layout(1.0, 1.0, 1.0, grid, (steel,), grid - 1)
    >>> source = hotspot(layout, x_mm=4, y_mm=4, radius_mm=1, power_W=0.1)
    >>> result = simulate_stencil(layout, [source], duration_s=1.0, dt_s=0.1)
    >>> result.rise_K.shape
    (1, 8, 8)
    """
    return simulate_stencil_batch(
        layout,
        [sources],
        boundary=boundary,
        n_layers=n_layers,
        duration_s=duration_s,
        dt_s=dt_s,
        output_times_s=output_times_s,
        initial_C=initial_C,
        on_failure=on_failure,
        progress=progress,
        device=device,
        safety=safety,
    )[0]


def simulate_stencil_batch(
    layout: Layout,
    batch: Sequence[Sequence[Source]],
    *,
    boundary: Boundary = _DEFAULT_BOUNDARY,
    n_layers: int = 1,
    duration_s: float,
    dt_s: float,
    output_times_s: Sequence[float] | None = None,
    initial_C: float | np.ndarray | None = None,
    on_failure: FailurePolicy = "raise",
    progress: Callable[[int, int], None] | None = None,
    device: str = "cpu",
    safety: float = DEFAULT_SAFETY,
) -> list[HeatResult]:
    """Simulate several linear scenarios on one layout as one tensor.

    Arguments as in :func:`simulate_stencil`; ``batch`` contains one list of
    sources per scenario, as in :func:`thermosynth.physics.fast.simulate_batch`.
    Result ``i`` equals ``simulate_stencil(layout, batch[i], ...)`` to
    round-off.
    """
    _check_times(duration_s, dt_s)
    check_n_layers(n_layers, layout)
    outputs = _output_times(output_times_s, duration_s)
    _check_policy(on_failure)
    _check_linear(batch, boundary, (n_layers, *layout.shape), safety)
    initial = _initial_state(initial_C, boundary.ambient_C, layout, n_layers)

    stencil = _Stencil(layout, boundary, initial, torch.device(device))
    state = _State(stencil, batch)
    step_ends = _step_ends(duration_s, dt_s, outputs)
    dt_stable = safety * stencil.stable_dt_s
    return _run(state, step_ends, outputs, dt_stable, on_failure, progress)


def stable_substeps(
    layout: Layout,
    *,
    boundary: Boundary = _DEFAULT_BOUNDARY,
    n_layers: int = 1,
    dt_s: float,
    safety: float = DEFAULT_SAFETY,
) -> int:
    """Return the number of sub-steps the stencil takes per step of ``dt_s``."""
    initial = _initial_state(None, boundary.ambient_C, layout, n_layers)
    stencil = _Stencil(layout, boundary, initial, torch.device("cpu"))
    return max(math.ceil(dt_s / (safety * stencil.stable_dt_s) - 1e-9), 1)


def _check_linear(
    batch: Sequence[Sequence[Source]],
    boundary: Boundary,
    shape: tuple[int, ...],
    safety: float,
) -> None:
    if len(batch) == 0:
        raise RecipeError(
            "simulate_stencil_batch: batch is empty; give one list of sources "
            "per scenario"
        )
    if not 0.0 < safety <= 1.0:
        raise RecipeError(f"safety = {safety} is invalid; use a value in (0, 1]")
    if boundary.radiates:
        top = float(np.max(boundary.top_emissivity((shape[1], shape[2]))))
        raise RecipeError(
            "the stencil solver is linear and takes no radiation, but emissivity "
            f"is up to {top} (top) / {boundary.emissivity_bottom} (bottom); set "
            "both to 0 or use the fast solver"
        )

    for sources in batch:
        _check_sources(sources, shape)
        if any(isinstance(s, HeldPatch) for s in sources):
            raise RecipeError(
                "the stencil solver takes no held patches (HeldPatch); use the "
                "fast solver for such scenarios"
            )


class _Stencil:
    """Face conductances, capacity and loss of one layout on one device."""

    def __init__(
        self,
        layout: Layout,
        boundary: Boundary,
        initial_C: np.ndarray,
        device: torch.device,
    ) -> None:
        self.shape = initial_C.shape
        self.device = device
        n_layers = self.shape[0]
        self.volume_m3 = cell_volume_m3(layout, n_layers)
        dz_m = layer_dz_m(layout, n_layers)

        rho_cp = layout.layer_property_map("rho_cp_J_m3K", n_layers)
        self.conductances = face_conductances(layout, self.shape)
        loss = _loss_coefficient(boundary, self.shape, dz_m)
        self.stable_dt_s = _stable_dt(rho_cp, self.conductances, loss)

        as_tensor = self._tensor
        self.rho_cp = as_tensor(rho_cp)
        self.loss = as_tensor(loss)
        # A layer's cell volume is volume_m3 times its volume_ratio, which
        # is exactly 1 without a stack.
        ratio = layer_volume_ratio(layout, n_layers)
        self.volume_ratio = as_tensor(ratio[:, None, None])
        self.faces = [
            (axis, as_tensor(c_first), as_tensor(c_second))
            for axis, c_first, c_second in self.conductances
        ]
        self.initial = as_tensor(initial_C)
        self.initial_flow = self.conduct(self.initial[None])[0]
        self.gain_ambient = self.loss * (boundary.ambient_C - self.initial)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.array(array, dtype=np.float64), device=self.device)

    def conduct(self, rise: torch.Tensor) -> torch.Tensor:
        """Return the net heat conducted into each cell [W m-3], (B, L, ny, nx)."""
        net = torch.zeros_like(rise)
        for axis, c_first, c_second in self.faces:
            dim = axis + 1
            n = rise.shape[dim]
            difference = rise.narrow(dim, 1, n - 1) - rise.narrow(dim, 0, n - 1)
            net.narrow(dim, 0, n - 1).add_(c_first * difference)
            net.narrow(dim, 1, n - 1).sub_(c_second * difference)
        return net


def _loss_coefficient(
    boundary: Boundary, shape: tuple[int, ...], dz_m: np.ndarray
) -> np.ndarray:
    """Return g = h / dz [W m-3 K-1] per cell, on the top and bottom layers.

    ``dz_m`` is the thickness of each layer [m].
    """
    loss = np.zeros(shape)
    loss[0] += boundary.h_top_W_m2K / dz_m[0]
    loss[-1] += boundary.h_bottom_W_m2K / dz_m[-1]
    return loss


def _stable_dt(
    rho_cp: np.ndarray,
    conductances: list[tuple[int, np.ndarray, np.ndarray]],
    loss: np.ndarray,
) -> float:
    """Return min rho_cp / (sum of face conductances + g) [s], forward Euler's limit."""
    total = loss.copy()
    for axis, c_first, c_second in conductances:
        n = total.shape[axis]
        low = [slice(None)] * 3
        high = [slice(None)] * 3
        low[axis] = slice(0, n - 1)
        high[axis] = slice(1, n)
        total[tuple(low)] += c_first
        total[tuple(high)] += c_second

    with np.errstate(divide="ignore"):
        limit = np.where(total > 0, rho_cp / np.where(total > 0, total, 1.0), np.inf)
    return float(limit.min())


class _State:
    """Rise, sources and energy books of a batch of scenarios."""

    def __init__(self, stencil: _Stencil, batch: Sequence[Sequence[Source]]) -> None:
        self.stencil = stencil
        self.n_scenarios = len(batch)
        self.sources = [list(sources) for sources in batch]
        # Held patches were rejected before this point.
        weights = [
            s.weights_m3
            for sources in batch
            for s in sources
            if isinstance(s, VolumeSource)
        ]
        shape = stencil.shape
        stacked = np.stack(weights) if weights else np.zeros((0, *shape))
        n_cells = int(np.prod(shape))
        self.weights = stencil._tensor(stacked.reshape(len(weights), n_cells))

        self.rise = torch.zeros((self.n_scenarios, *shape), dtype=torch.float64)
        self.rise = self.rise.to(stencil.device)
        self.energy_in_J = np.zeros(self.n_scenarios)
        self.energy_lost_J = np.zeros(self.n_scenarios)
        self.alive = np.ones(self.n_scenarios, dtype=bool)

    def source_density(self, t: float) -> torch.Tensor:
        """Return every scenario's heat density at ``t`` [W m-3], (B, L, ny, nx)."""
        powers = np.zeros((self.n_scenarios, self.weights.shape[0]))
        index = 0
        for scenario, sources in enumerate(self.sources):
            for source in sources:
                if isinstance(source, VolumeSource):
                    powers[scenario, index] = source.power_W(t)
                    index += 1
        density = self.stencil._tensor(powers) @ self.weights
        return density.reshape(self.rise.shape)

    def advance(self, dt_s: float, n_sub: int, source: torch.Tensor) -> None:
        """Take ``n_sub`` forward Euler sub-steps that together span ``dt_s``."""
        s = self.stencil
        dt = dt_s / n_sub
        scale = dt / s.rho_cp
        steady = s.initial_flow + s.gain_ambient + source
        lost = torch.zeros(self.n_scenarios, dtype=torch.float64, device=s.device)
        for _ in range(n_sub):
            loss = s.loss * self.rise - s.gain_ambient
            lost += (loss * s.volume_ratio).sum(dim=(1, 2, 3))
            self.rise += scale * (s.conduct(self.rise) - s.loss * self.rise + steady)

        volume = s.volume_m3
        self.energy_lost_J += dt * volume * lost.cpu().numpy()
        source_W_m3 = (source * s.volume_ratio).sum(dim=(1, 2, 3))
        self.energy_in_J += dt_s * volume * source_W_m3.cpu().numpy()

    def results(self, outputs: np.ndarray, recorded: np.ndarray) -> list[HeatResult]:
        """Pack the recorded rises and energy balance of each scenario."""
        s = self.stencil
        stored_J_m3 = (s.rho_cp * self.rise * s.volume_ratio).sum(dim=(1, 2, 3))
        stored = stored_J_m3.cpu().numpy()
        stored = stored * s.volume_m3
        stored[~self.alive] = np.nan
        results = []
        for scenario in range(self.n_scenarios):
            rise_all = recorded[scenario]
            results.append(
                HeatResult(
                    times_s=outputs.copy(),
                    rise_K=rise_all[:, 0].copy(),
                    rise_all_K=rise_all,
                    energy_in_J=float(self.energy_in_J[scenario]),
                    energy_stored_J=float(stored[scenario]),
                    energy_lost_J=float(self.energy_lost_J[scenario]),
                )
            )
        return results


def _run(
    state: _State,
    step_ends: np.ndarray,
    outputs: np.ndarray,
    dt_stable: float,
    on_failure: FailurePolicy,
    progress: Callable[[int, int], None] | None,
) -> list[HeatResult]:
    shape = state.stencil.shape
    recorded = np.full((state.n_scenarios, outputs.size, *shape), np.nan)
    recorded[:, outputs == 0] = 0.0

    t_prev = 0.0
    for step, t_end in enumerate(step_ends):
        dt = float(t_end) - t_prev
        n_sub = max(math.ceil(dt / dt_stable - 1e-9), 1)
        state.advance(dt, n_sub, state.source_density(float(t_end)))
        _check_finite(state, float(t_end), on_failure)

        hit = np.flatnonzero(np.isclose(outputs, t_end, rtol=0, atol=1e-9 * t_end))
        rise = state.rise.cpu().numpy()
        for index in hit:
            recorded[state.alive, index] = rise[state.alive]
        t_prev = float(t_end)
        if progress is not None:
            progress(step + 1, step_ends.size)
    return state.results(outputs, recorded)


def _check_finite(state: _State, t_s: float, on_failure: FailurePolicy) -> None:
    finite = torch.isfinite(state.rise).flatten(1).all(dim=1).cpu().numpy()
    failed = state.alive & ~finite
    if not failed.any():
        return
    message = (
        f"stencil rise non-finite at t = {t_s:.6g} s in scenarios "
        f"{np.flatnonzero(failed).tolist()}; lower safety or check the sources"
    )
    if on_failure == "raise":
        raise SimulationError(message)
    logger.warning("%s", message)
    state.alive &= finite
