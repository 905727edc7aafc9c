"""The fast way to fit (`xbarlab.calibration.fit`): the cells profiled out, the resistances fitted
alone.

A pattern's cross entries (row to column) are one per cell, and each is mostly its own cell's
conductance: given the resistances, the cells that explain them are found by a few Newton
steps (`_Pattern.settle`), and what is left to fit is the resistances (a few hundred numbers)
to every entry at those cells (`_Reduced`). The model is the same exact nodal solve; its
Jacobian in the resistances follows the cells through the implicit derivative
d log g / d log r = -J_cc^-1 J_cr (one factorisation of the cross entries' cell Jacobian, or
on large arrays an iterative solve that the diagonal of that Jacobian nearly does alone).

Where IR drops are strong (a high-resistance cell's entry outweighed by the others' sneak
currents), some cells cannot explain their entries for resistances away from the truth; such
a cell is held at a floor and its entry left as a residual, and the trust region may not get
out of where that leaves it: `fit` then fits everything jointly (`fit_profiled` reports the
reduced chi-square that decides).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lu_factor, lu_solve
from scipy.optimize import OptimizeResult

from xbarlab.calibration.jacobian import (
    cells_per_entry,
    every_cell_block,
    line_cell_block,
    resistance_block,
    segment_grams,
)
from xbarlab.calibration.model import Parasitics, unit_responses

if TYPE_CHECKING:
    from xbarlab.calibration.fit import Transfers

DENSE_CELLS = 1024
"""Up to this many cells a pattern's cell Jacobians are exact (every cell of every entry) and
its cross entries' system is LU-factored; beyond, each entry holds the cells of its two lines
and the system is solved iteratively."""
SOLVE_RTOL, SOLVE_ITERATIONS = 1e-2, 50
"""Relative residual and BiCGSTAB iterations (at most) of the iterative cell-system solves
(their solutions give step directions and the covariance: a percent is plenty)."""
JACOBI_STEPS, PROBES, CONTRACTION = 4, 4, 0.5
"""Jacobi steps at most, the columns that check each, and the factor by which each must
shrink their residuals to go on (else BiCGSTAB)."""
SETTLE_TOLERANCE, SETTLE_ITERATIONS = 1e-3, 30
"""Largest cross-entry residual (in sigmas) of settled cells, and Newton steps at most."""
SETTLE_DAMPING = (1.0, 0.5, 0.25, 0.125, 0.0625)
"""Fractions of a Newton step tried in turn until one reduces the cross residuals."""
CELL_FLOOR = 1e-4
"""A cell is held at least at this fraction of the median start conductance."""
KEPT_STATES = 3
"""Evaluated points whose settled cells and responses are kept."""
VISIBLE = 1.0
"""Singular value of the Jacobian (sigmas per unit log resistance) below which a direction
is left where it is: no entry sees a move along it by more than a sigma."""
STEP_FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0625)
"""Fractions of a Gauss-Newton step tried in turn until one lowers the cost."""
STOP_CHI2 = 1.0
"""The profiled fit ends when a step lowers chi-square by less than this (what is left to
gain is less than the data tell apart)."""
LOG_RANGE = np.log(1e9)
"""Resistances within 1e-9..1e9 ohm: a trial step outside is refused."""
REFUSED = 1e12
"""Residual of a refused trial step: the trust region shrinks."""


def cell_jacobian(pairs, inv_sigma, g, volts, exact: bool):
    """d (Y_st / sigma) / d log g of every cell: dense and exact, or sparse with the cells of
    each entry's two lines."""
    rows, cols = g.shape
    param = np.arange(g.size).reshape(rows, cols)
    indptr = np.zeros(len(pairs) + 1, dtype=np.int64)
    counts = np.full(len(pairs), g.size) if exact else cells_per_entry(pairs, rows, cols)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    values = np.empty(indptr[-1])
    if exact:
        every_cell_block(pairs, inv_sigma, g, volts, param, indptr, indices, values, 0)
    else:
        line_cell_block(pairs, inv_sigma, g, volts, rows, cols, param, indptr, indices,
                        values, 0)
    J = sp.csr_matrix((values, indices, indptr), shape=(len(pairs), g.size))
    return J.toarray() if exact else J


class _CellSystem:
    """The square system of a pattern's cross entries in its cells' log conductances: exact and
    LU-factored up to DENSE_CELLS cells, beyond sparse (cells of the entry's lines) and solved
    iteratively (`_solve_columns`)."""

    def __init__(self, matrix):
        self.matrix = matrix
        if isinstance(matrix, np.ndarray):
            self.lu = lu_factor(matrix, check_finite=False)
        else:
            self.diagonal = matrix.diagonal()
            self.diagonal[self.diagonal == 0] = 1.0

    def solve(self, rhs: np.ndarray, transposed: bool = False) -> np.ndarray:
        if isinstance(self.matrix, np.ndarray):
            return lu_solve(self.lu, rhs, trans=int(transposed), check_finite=False)
        A = self.matrix.T.tocsr() if transposed else self.matrix
        return _solve_columns(A, self.diagonal, rhs.reshape(len(rhs), -1)).reshape(rhs.shape)


def _norms(M: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->j", M, M))


def _solve_columns(A, diagonal, B):
    """X with A X = B to a relative residual SOLVE_RTOL in every column. Jacobi steps from
    the diagonal's solution while they contract (a cell's entry is mostly its own: on the
    128 x 128 board the diagonal alone leaves 1-5 %, one step a few 1e-4), each step's result
    checked on the PROBES columns the last left worst (the contraction is the matrix's, not a
    column's: one product of A with a few columns, not with all); BiCGSTAB where they do not
    contract (strong IR drops)."""
    d = diagonal[:, None]
    limit = SOLVE_RTOL * _norms(B)
    X = B / d
    R = B - A @ X
    for _ in range(JACOBI_STEPS):
        left = _norms(R)
        if np.all(left <= limit):
            return X
        worst = np.argsort(left / np.maximum(limit, 1e-300))[-PROBES:]
        step = X + R / d
        after = _norms(B[:, worst] - A @ step[:, worst])
        if np.all(after <= limit[worst]):
            return step
        if np.any(after > CONTRACTION * left[worst]):
            break
        X, R = step, B - A @ step
    return _bicgstab(A, d, B, X, R, limit)


def _safe(a, b):
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


def _bicgstab(A, d, B, X, R, limit):
    """BiCGSTAB, column by column (vectorised), preconditioned by the diagonal `d`, from `X`
    with residual `R`, until every column's residual is within `limit`."""
    Rh = R.copy()
    P, V = np.zeros_like(B), np.zeros_like(B)
    rho = alpha = omega = np.ones(B.shape[1])
    for _ in range(SOLVE_ITERATIONS):
        if np.all(_norms(R) <= limit):
            break
        rho_next = np.einsum("ij,ij->j", Rh, R)
        P = R + _safe(rho_next, rho) * _safe(alpha, omega) * (P - omega * V)
        Ph = P / d
        V = A @ Ph
        alpha = _safe(rho_next, np.einsum("ij,ij->j", Rh, V))
        S = R - alpha * V
        Sh = S / d
        T = A @ Sh
        omega = _safe(np.einsum("ij,ij->j", T, S), np.einsum("ij,ij->j", T, T))
        X += alpha * Ph + omega * Sh
        R = S - omega * T
        rho = rho_next
    return X


class _Pattern:
    """One pattern's entries: the cross entries (one per cell, sorted by cell: they
    determine the cells) and the load entries (self and same-kind: the resistances)."""

    def __init__(self, data: Transfers, rows: int, cols: int, log_g: np.ndarray):
        s, t = data.pairs[:, 0], data.pairs[:, 1]
        cross = (s < rows) != (t < rows)
        cell = (np.where(s < rows, s, t) * cols + np.where(s < rows, t, s) - rows)[cross]
        order = np.argsort(cell)
        self.cells = cell[order]
        self.cross = data.pairs[cross][order]
        self.cross_values = data.values[cross][order]
        self.cross_inv = 1.0 / data.sigma[cross][order]
        self.load = data.pairs[~cross]
        self.load_values = data.values[~cross]
        self.load_inv = 1.0 / data.sigma[~cross]
        self.every_cell = len(self.cells) == rows * cols
        self.log_g = log_g.ravel().copy()
        self.floor = np.log(np.median(np.exp(log_g)) * CELL_FLOOR)
        self.warm = None

    def cross_cells(self, J):
        """Columns of a cell Jacobian (every cell) for the cells with a cross entry."""
        return J if self.every_cell else J[:, self.cells]

    def cell_system(self, g, u, exact: bool, free) -> _CellSystem:
        """The free cells' cross entries' Jacobian in their log conductances."""
        J = self.cross_cells(cell_jacobian(self.cross, self.cross_inv, g, u.cell_volts,
                                            exact))
        return _CellSystem(J if free.all() else J[free][:, free])

    def settle(self, parasitics: Parasitics, exact: bool):
        """The cells that explain the cross entries with `parasitics`: damped Newton in the
        log conductances from the last ones, a cell that would go below `floor` (a
        high-resistance cell whose entry the others' sneak currents outweigh with these
        resistances) pinned there with its entry's residual left. Returns the conductances,
        unit responses, the free cells (of the cross entries), and the cross and load
        residuals (in sigmas); None if no step reduces the residuals."""
        rows, cols = parasitics.shape

        def evaluate(log_g):
            g = np.exp(log_g).reshape(rows, cols)
            u, warm = unit_responses(g, parasitics, self.warm)
            cross = (u.admittance[self.cross[:, 1], self.cross[:, 0]] - self.cross_values
                     ) * self.cross_inv
            return g, u, warm, cross

        log_g = self.log_g.copy()
        g, u, self.warm, cross = evaluate(log_g)
        free = log_g[self.cells] > self.floor
        for _ in range(SETTLE_ITERATIONS):
            if np.max(np.abs(cross[free]), initial=0.0) <= SETTLE_TOLERANCE:
                break
            change = np.zeros(len(self.cells))
            change[free] = np.clip(self.cell_system(g, u, exact, free).solve(-cross[free]),
                                   -1.0, 1.0)
            for scale in SETTLE_DAMPING:
                trial = log_g.copy()
                trial[self.cells] = np.maximum(trial[self.cells] + scale * change, self.floor)
                step = evaluate(trial)
                if np.linalg.norm(step[3]) < np.linalg.norm(cross):
                    log_g = trial
                    g, u, self.warm, cross = step
                    break
            else:
                break
            free = log_g[self.cells] > self.floor
        self.log_g = log_g  # the next settle starts here
        load = (u.admittance[self.load[:, 1], self.load[:, 0]] - self.load_values
                ) * self.load_inv
        return g, u, free, cross, load, log_g


class _Reduced:
    """The least-squares problem of one stage of `fit` in the resistances, the cells profiled
    out: at every trial of the resistances (``exp(origin + x)``) each pattern's cells are
    settled to explain its cross entries (`_Pattern.settle`), and the residuals are every
    entry there. Its Jacobian is the entries' total derivative, the free cells following the
    resistances (implicit: d log g / d x = -J_ff^-1 J_fx, f the free cells' cross entries)."""

    def __init__(self, patterns: list[_Pattern], origin: np.ndarray, rows: int, cols: int):
        self.patterns, self.origin, self.shape = patterns, origin, (rows, cols)
        self.exact = rows * cols <= DENSE_CELLS
        self.size = sum(len(p.cross) + len(p.load) for p in patterns)
        self._states: dict[bytes, list | None] = {}

    def parasitics(self, x) -> Parasitics:
        return Parasitics.from_vector(np.exp(self.origin + x), *self.shape)

    def state(self, x):
        """Each pattern's settled cells, responses and residuals at `x` (None when a trial
        leaves the model's range); the last few are kept (the Jacobian and the result are
        asked at points evaluated before), and the patterns' cells are set to those of `x`."""
        key = x.tobytes()
        if key not in self._states:
            states = None
            if np.all(np.abs(self.origin + x) < LOG_RANGE):
                parasitics = self.parasitics(x)
                states = [p.settle(parasitics, self.exact) for p in self.patterns]
            self._states[key] = states
            if len(self._states) > KEPT_STATES:
                del self._states[next(iter(self._states))]
        states = self._states[key]
        for pattern, state in zip(self.patterns, states or [], strict=False):
            pattern.log_g = state[-1]
        return states

    def residuals(self, x) -> np.ndarray:
        states = self.state(x)
        if states is None:  # a trial step outside the physical range: refused
            return np.full(self.size, REFUSED)
        return np.concatenate([np.concatenate([s[3], s[4]]) for s in states])

    def pieces(self, x):
        """Per pattern: the free cells' system, the entries' Jacobian in the free cells, and
        the entries' total Jacobian in x."""
        r = np.exp(self.origin + x)
        m, n = self.shape
        out = []
        for pattern, (g, u, free, _, _, _) in zip(self.patterns, self.state(x), strict=True):
            grams = segment_grams(u, m, n)
            pairs = np.concatenate([pattern.cross, pattern.load])
            inv = np.concatenate([pattern.cross_inv, pattern.load_inv])
            cells = pattern.cross_cells(cell_jacobian(pairs, inv, g, u.cell_volts, self.exact))
            if not free.all():
                cells = cells[:, free]
            crossing = len(pattern.cross)
            system = _CellSystem(cells[:crossing][free] if not free.all() else cells[:crossing])
            resistances = resistance_block(pairs, inv, u, grams) * r
            follow = -system.solve(resistances[:crossing][free])  # d log g / d x
            total = resistances + cells @ follow
            # the free cells keep their entries where they are: what the solve leaves of
            # them (its residual) would only blur the load entries' small derivatives
            total[np.flatnonzero(free)] = 0.0
            out.append((system, cells, total, free))
        return out

    def jacobian(self, x) -> np.ndarray:
        return np.vstack([piece[2] for piece in self.pieces(x)])

    def covariance(self, x) -> np.ndarray:
        """Gauss-Newton covariance of x, every entry's noise followed through the free cells
        it moves: with J the total Jacobian, B the entries' Jacobian in the free cells and
        A their cross entries' (square), the residuals move by -e + B A^-1 e_free, so
        cov = H^-1 J'(I - B A^-1 S)(I - B A^-1 S)'J H^-1, H = J'J (S selects the free cells'
        entries); eigenvalues of H floored at its largest times 1e-15 (a direction no entry
        sees gets a huge variance, not none)."""
        pieces = self.pieces(x)
        J = np.vstack([piece[2] for piece in pieces])
        H = J.T @ J
        noise = np.zeros_like(H)
        for system, cells, total, free in pieces:
            M = total.T  # params x entries of this pattern
            K = system.solve(np.asarray(cells.T @ total), transposed=True).T  # M B A^-1
            own = M.copy()
            own[:, np.flatnonzero(free)] -= K
            noise += own @ own.T
        w, V = np.linalg.eigh((H + H.T) / 2)
        w = np.maximum(w, w.max() * 1e-15)
        inverse = (V / w) @ V.T
        return inverse @ noise @ inverse


def fit_profiled(data, log_g: list[np.ndarray], parasitics: Parasitics, max_evaluations: int):
    """The resistances fitted with the cells profiled out (`_gauss_newton`), from `parasitics`
    and the cells `log_g`. Returns (reduced chi-square, parasitics, conductances per pattern,
    covariance of log r, the minimiser's result, entries), or None when the start is outside
    the model's range."""
    rows, cols = log_g[0].shape
    patterns = [_Pattern(d, rows, cols, v) for d, v in zip(data, log_g, strict=True)]
    problem = _Reduced(patterns, np.log(parasitics.as_vector()), rows, cols)
    if problem.state(np.zeros(rows + cols + 2)) is None:
        return None
    result = _gauss_newton(problem, rows + cols + 2, max_evaluations)
    states = problem.state(result.x)
    free = sum(int(state[2].sum()) for state in states)
    chi2 = float(2 * result.cost / max(problem.size - free - len(result.x), 1))
    conductances = [np.exp(p.log_g).reshape(rows, cols) for p in patterns]
    return (chi2, problem.parasitics(result.x), conductances, problem.covariance(result.x),
            result, problem.size)


def _gauss_newton(problem: _Reduced, size: int, max_evaluations: int) -> OptimizeResult:
    """Gauss-Newton steps in the log resistances relative to the start, each the least-squares
    step within the directions the data see (singular values of the Jacobian of at least
    VISIBLE: a unit move along them changes the residuals by a sigma; along the others, the
    combinations of lines' paths no current tells apart, a step would only wander), halved
    until it lowers the cost. Ends when a step lowers chi-square by less than STOP_CHI2 (or
    none does)."""
    x = np.zeros(size)
    f = problem.residuals(x)
    cost, evaluations, jacobians, message = f @ f, 1, 0, "no step lowers the cost"
    while evaluations < max_evaluations:
        J = problem.jacobian(x)
        jacobians += 1
        _, s, Vt = np.linalg.svd(J, full_matrices=False)
        seen = s >= VISIBLE
        step = -Vt[seen].T @ ((Vt[seen] @ (J.T @ f)) / s[seen]**2)
        for fraction in STEP_FRACTIONS:
            trial = x + fraction * step
            f_trial = problem.residuals(trial)
            evaluations += 1
            if f_trial @ f_trial < cost:
                break
        else:
            break
        x, f, gain, cost = trial, f_trial, cost - f_trial @ f_trial, f_trial @ f_trial
        if gain < STOP_CHI2:
            message = f"a step lowered chi-square by {gain:.2g} < {STOP_CHI2}"
            break
    else:
        message = f"{max_evaluations} evaluations"
    return OptimizeResult(x=x, fun=f, cost=cost / 2, nfev=evaluations, njev=jacobians,
                          message=message)
