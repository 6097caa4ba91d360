"""Solves of ``(C + diag(d)) x = b`` that reuse LU factorisations while d drifts.

An implicit step of heat conduction with a radiating face solves a matrix
whose diagonal changes every step, because the radiative loss is linearised
at the current temperature and the step length may change. The conduction
part ``C`` stays fixed. Far fewer factorisations are needed if a recent LU
factorisation, of ``C + diag(d0)``, serves as the preconditioner of the
iteration

    x_{k+1} = x_k + (C + diag(d0))^-1 (b - (C + diag(d)) x_k),

which converges to the exact solution. For a conduction matrix (zero row
sums, off-diagonal entries <= 0) and a positive diagonal, its contraction
factor in the max norm is at most ``max |d - d0| / d0``, because
``(C + diag(d0))^-1`` has no negative entry and maps ``d0`` to a vector of
ones.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

logger = logging.getLogger(__name__)


class DiagonalReuseSolver:
    """Solve ``(C + diag(d)) x = b`` for a fixed ``C`` and a drifting ``d``.

    Parameters
    ----------
    matrix : scipy.sparse matrix
        The fixed part ``C``, shape (n, n): a conduction matrix with zero
        row sums and off-diagonal entries <= 0, so that the iteration
        contracts.
    max_change : float
        Largest relative change ``max |d - d0| / d0`` of the diagonal that
        reuses the factorisation of ``C + diag(d0)``; a larger change
        factorises anew. It bounds the contraction factor of the iteration.
    tolerance : float
        The iteration stops once its last correction is at most this in
        every entry, in the unit of ``x``. With the contraction factor at
        most ``max_change``, the remaining error is then at most
        ``tolerance * max_change / (1 - max_change)``.
    max_corrections : int
        Corrections tried before the solver gives up on the old
        factorisation and factorises anew.
    max_kept : int
        Factorisations kept. The solver reuses the one whose diagonal is
        closest to the new one, so steps that alternate between a few
        lengths reuse each.

    Attributes
    ----------
    n_factorisations, n_reused : int
        Solves that factorised and solves that reused a factorisation.
    """

    def __init__(
        self,
        matrix: sp.spmatrix | sp.sparray,
        *,
        max_change: float = 0.1,
        tolerance: float = 1e-9,
        max_corrections: int = 16,
        max_kept: int = 4,
    ) -> None:
        self.matrix = sp.csr_matrix(matrix)
        self.max_change = max_change
        self.tolerance = tolerance
        self.max_corrections = max_corrections
        self.max_kept = max_kept
        self.n_factorisations = 0
        self.n_reused = 0
        # (LU factorisation, its diagonal d0), the most recently used last.
        self._kept: list[tuple[Any, np.ndarray]] = []

    def solve(self, diagonal: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Return x with ``(C + diag(diagonal)) x = rhs``, within ``tolerance``.

        ``diagonal`` must be positive.
        """
        changes = [
            float((np.abs(diagonal - factored) / factored).max())
            for _, factored in self._kept
        ]
        if changes and min(changes) <= self.max_change:
            closest = self._kept.pop(int(np.argmin(changes)))
            self._kept.append(closest)
            x = self._iterate(closest[0], diagonal, rhs)
            if x is not None:
                self.n_reused += 1
                return x

        lu = splu((self.matrix + sp.diags(diagonal)).tocsc())
        self._kept.append((lu, diagonal.copy()))
        del self._kept[: -self.max_kept]
        self.n_factorisations += 1
        return np.asarray(lu.solve(rhs))

    def _iterate(
        self, lu: Any, diagonal: np.ndarray, rhs: np.ndarray
    ) -> np.ndarray | None:
        """Return the iterated solution, or None if it did not converge."""
        x = lu.solve(rhs)
        for _ in range(self.max_corrections):
            residual = rhs - self.matrix @ x - diagonal * x
            correction = lu.solve(residual)
            x += correction
            if float(np.abs(correction).max()) <= self.tolerance:
                return np.asarray(x)
        logger.debug(
            "LU reuse: no convergence after %d corrections, so the matrix is "
            "factorised anew",
            self.max_corrections,
        )
        return None
