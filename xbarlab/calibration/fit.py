"""Fit the parasitic model to measured terminal currents with `scipy.optimize.least_squares`.

What is measured (`Transfers`): for one programmed pattern of the chip, entries of its terminal
admittance matrix Y: the current into the array at terminal s while terminal t is at a known
voltage and every other line end at 0 V, divided by that voltage (terminals as in
`xbarlab.calibration.model`). Row-to-column entries carry the cells, row-to-row and
column-to-column entries (the current a driven line sends back through the array into the
other lines) carry the path resistances: a row's path lifts its word line when current flows
in from a column, which lets current on to the other columns (Y_cl,cb ~ -sum_i g_il g_ib
r_source[i]), and a column's path lifts its bit line, which lets current back into the other
rows. A line's self entry (the current of the driven line itself) adds its loading. The cell
conductances of a pattern are not known beforehand; they are estimated with the rest.

Unknowns: log G of every cell of every pattern, r_source (m), r_sense (n), r_wire_row,
r_wire_col (ohm, >= 0). Residuals: (model - measured) / sigma of every entry. The model is the
exact nodal solve (`Parasitics.solve`) of the m + n unit excitations of each pattern, whose
branch voltages and currents also give the Jacobian (`model` module docstring). The Jacobian
is kept sparse on large arrays: an entry Y_st depends on the cells of lines s and t at first
order and on every other cell only through products of two small voltages, which are left
out there (the residuals stay exact; only the step directions lose them; small arrays keep
every cell, `EXACT_ENTRIES`), and on every path and wire resistance. The trust-region
solver (`trf`, LSMR subproblems of at most `STEP_ITERATIONS`) works on that sparse cell block
beside the dense resistance block.

The start: G from the row-to-column entries (-Y), the resistances from the first-order forms
above (linear least squares, `first_order_parasitics`). From there the resistances are first
fitted with the cells profiled out (`xbarlab.calibration.profiled`: fast, a few hundred
parameters); on large arrays that is the fit, on small ones everything is then fitted at
once from it, and where it ends far from the noise (strong IR drops) the joint fit starts
from the first-order values, and is done again through one path resistance for all rows and
one for all columns first if it too ends far from the noise (`fit`). Parameters are log
conductances and log resistances, so none can turn negative and no bounds distort the trust
region's scaling.

Confidence intervals: Gauss-Newton covariance of the resistances with the cells profiled out
(the Schur complement of the cell block, refined by block conjugate gradients until the
resistances' information settles), scaled by the reduced chi-square when the residuals are
larger than their sigmas say; 95 % intervals are 1.96 standard errors, and an interval of a
median over lines comes from draws of that covariance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import least_squares
from scipy.sparse.linalg import LinearOperator
from threadpoolctl import threadpool_limits

from xbarlab.calibration.jacobian import (
    cells_per_entry,
    every_cell_block,
    line_cell_block,
    resistance_block,
    segment_grams,
)
from xbarlab.calibration.model import Parasitics, unit_responses
from xbarlab.calibration.profiled import fit_profiled

Z95 = 1.959963984540054
"""Standard normal quantile of a two-sided 95 % interval."""
MEDIAN_DRAWS = 2000
"""Draws of the resistance covariance behind the interval of a median over lines."""
SCHUR_ITERATIONS = 30
SCHUR_RTOL = 1e-4
"""Block conjugate-gradient iterations (at most) that refine the cell block's inverse in the
covariance (arrays of more than DENSE_CELLS cells; below, a direct solve), and the relative
change of every resistance's profiled information that ends them (what is left changes the
standard errors far less than their own uncertainty)."""
DENSE_CELLS = 2048
LOG_OHM, LOG_SIEMENS, LOG_RANGE = 0.0, np.log(1e-5), np.log(1e9)
"""Resistances within 1e-9..1e9 ohm and conductances within 1e-14..1e4 S: a trial step
outside is refused (its residuals are REFUSED) instead of solved."""
REFUSED = 1e12
"""Residual of a refused trial step: the trust region shrinks."""
DEFAULT_PATH, DEFAULT_WIRE = 10.0, 1.0
"""Starting resistances (ohm) where the first-order start has no positive estimate."""
EXACT_ENTRIES = 4_000_000
"""Up to this many (entry, cell) pairs the Jacobian holds every cell of every entry (exact);
beyond, only the cells of the entry's two lines."""
JACOBIAN_FLOOR = 1e-3
"""Jacobian entries (residual sigmas per unit log parameter) below this are left out."""
STEP_ITERATIONS = 50
"""LSMR iterations of one trust-region step at most: an inexact step that the next evaluation
corrects costs less than an exact one (the cells couple through every line's IR drop, so an
exact step takes hundreds on large arrays)."""
START_TOLERANCE = 1e-3
"""Tolerance of the first stage of the second way in (one path resistance per kind of line):
it only brings the last stage near."""
PROFILED_EVALUATIONS = 40
"""Trust-region evaluations of the profiled fit at most."""
RETRY_CHI2 = 3.0
"""A fit whose reduced chi-square is above this is done again by the other way in."""


@dataclass(frozen=True)
class Transfers:
    """Measured terminal admittances of one pattern: ``values[k]`` (S) is the current into
    terminal ``pairs[k, 0]`` per volt on terminal ``pairs[k, 1]`` (every other end at 0 V),
    with standard error ``sigma[k]`` (S)."""

    pairs: np.ndarray
    values: np.ndarray
    sigma: np.ndarray

    def __post_init__(self) -> None:
        pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        values = np.asarray(self.values, dtype=float).ravel()
        sigma = np.asarray(self.sigma, dtype=float).ravel()
        if not (len(pairs) == len(values) == len(sigma)):
            raise ValueError(f"pairs, values and sigma must have one entry each, got "
                             f"{len(pairs)}, {len(values)} and {len(sigma)}")
        if not (np.all(np.isfinite(values)) and np.all(sigma > 0) and np.all(np.isfinite(sigma))):
            raise ValueError("values must be finite and sigma finite and > 0")
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "sigma", sigma)

    def reciprocal_mean(self) -> Transfers:
        """One entry per unordered pair: Y is symmetric, so an entry measured both ways
        (s driven, t sensed and the reverse) is one quantity; the inverse-variance mean."""
        key = np.sort(self.pairs, axis=1)
        unique, inverse = np.unique(key, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        weight = 1.0 / self.sigma**2
        total = np.bincount(inverse, weight * self.values, len(unique))
        weights = np.bincount(inverse, weight, len(unique))
        return Transfers(unique, total / weights, 1.0 / np.sqrt(weights))


@dataclass
class FitResult:
    """Fitted resistances with standard errors, the cell conductances of each pattern, and
    how well the model explains the data."""

    parasitics: Parasitics
    stderr: np.ndarray  # of Parasitics.as_vector(), ohm
    conductances: list[np.ndarray]  # per pattern, (m, n) siemens
    chi2_reduced: float
    residual_rms: float  # of the residuals in units of their sigma
    iterations: int
    evaluations: int
    data_count: int
    status: str
    covariance: np.ndarray = field(repr=False)

    def intervals(self) -> dict:
        """Each resistance (per line, and median over lines) with its 95 % interval."""
        m, n = self.parasitics.shape
        r = self.parasitics.as_vector()
        low, high = r - Z95 * self.stderr, r + Z95 * self.stderr
        rng = np.random.default_rng(0)
        draws = rng.multivariate_normal(r, self.covariance, MEDIAN_DRAWS, method="eigh")

        def summary(name, index):
            entry = {"value": float(np.median(r[index])) if len(index) > 1 else float(r[index][0])}
            if len(index) > 1:
                medians = np.median(draws[:, index], axis=1)
                entry["ci95"] = [float(np.percentile(medians, 2.5)),
                                 float(np.percentile(medians, 97.5))]
                entry["per_line"] = r[index].tolist()
                entry["per_line_ci95"] = np.stack([low[index], high[index]], axis=1).tolist()
            else:
                entry["ci95"] = [float(low[index][0]), float(high[index][0])]
            entry["unit"] = "ohm"
            return name, entry

        return dict([
            summary("r_source", np.arange(m)),
            summary("r_sense", np.arange(m, m + n)),
            summary("r_wire_row", np.array([m + n])),
            summary("r_wire_col", np.array([m + n + 1])),
        ])


# ------------------------------------------------------------------------- start values


def start_conductances(data: Transfers, rows: int, cols: int) -> np.ndarray:
    """Cell conductances from the row-to-column entries (-Y_rc, reciprocal pairs averaged);
    cells without an entry get the median of the others."""
    total, count = np.zeros((rows, cols)), np.zeros((rows, cols))
    s, t = data.pairs[:, 0], data.pairs[:, 1]
    for a, b in ((s, t), (t, s)):
        cross = (a < rows) & (b >= rows)
        np.add.at(total, (a[cross], b[cross] - rows), -data.values[cross])
        np.add.at(count, (a[cross], b[cross] - rows), 1)
    g = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    floor = np.nanmedian(g[g > 0]) * 1e-3 if np.any(g > 0) else 1e-9
    g = np.where(np.isfinite(g), g, np.nanmedian(g) if np.isfinite(g).any() else floor)
    return np.maximum(g, floor)


def first_order_parasitics(data: list[Transfers], conductances: list[np.ndarray]
                           ) -> Parasitics:
    """Resistances from the same-kind entries at first order (small g r):
    Y_rk,ra = -sum_j g_kj g_aj (r_sense[j] + r_wire_col (m - 1 - max(k, a))) and
    Y_cl,cb = -sum_i g_il g_ib (r_source[i] + r_wire_row min(l, b)); linear least squares
    weighted by sigma. A path without a positive estimate gets the median of its kind's,
    a wire without one `DEFAULT_WIRE`."""
    m, n = conductances[0].shape
    blocks = {"col": ([], []), "row": ([], [])}
    for d, g in zip(data, conductances, strict=True):
        s, t = d.pairs[:, 0], d.pairs[:, 1]
        rows = (s < m) & (t < m) & (s != t)
        cols = (s >= m) & (t >= m) & (s != t)
        k, a = s[rows], t[rows]
        coeff = g[k] * g[a]
        shared = (m - 1 - np.maximum(k, a))[:, None]  # bit-line segments both currents cross
        blocks["col"][0].append(-np.hstack([coeff, coeff.sum(1, keepdims=True) * shared])
                                / d.sigma[rows, None])
        blocks["col"][1].append(d.values[rows] / d.sigma[rows])
        c, b = s[cols] - m, t[cols] - m
        coeff = (g[:, c] * g[:, b]).T
        shared = np.minimum(c, b)[:, None]  # word-line segments both currents cross
        blocks["row"][0].append(-np.hstack([coeff, coeff.sum(1, keepdims=True) * shared])
                                / d.sigma[cols, None])
        blocks["row"][1].append(d.values[cols] / d.sigma[cols])
    solved = {}
    for kind, size in (("col", n), ("row", m)):
        A, y = np.vstack(blocks[kind][0]), np.concatenate(blocks[kind][1])
        r = np.full(size + 1, np.nan)
        if len(A) > size:
            r = np.linalg.lstsq(A, y, rcond=None)[0]
        paths = r[:-1]
        good = np.isfinite(paths) & (paths > 0)
        r[:-1] = np.where(good, paths, np.median(paths[good]) if good.any() else DEFAULT_PATH)
        if not (np.isfinite(r[-1]) and r[-1] > 0):
            r[-1] = DEFAULT_WIRE
        solved[kind] = r
    return Parasitics(solved["row"][:-1], solved["col"][:-1], solved["row"][-1],
                      solved["col"][-1])


# ------------------------------------------------------------------------- Jacobian


class _Problem:
    """The least-squares problem of one stage of `fit`.

    Parameters: the log conductances of every cell of every pattern, then the resistances
    as ``exp(basis @ parameters)``. Residuals: every entry of ``data``. Unit responses are
    computed once per parameter vector for both the residuals and the sparse Jacobian."""

    def __init__(self, data: list[Transfers], log_g: list[np.ndarray], basis: np.ndarray):
        self.data, self.basis = data, basis
        self.log_g = log_g
        self.rows, self.cols = log_g[0].shape
        self.cells = self.rows * self.cols
        self.n_cells = len(data) * self.cells
        self.n_params = self.n_cells + basis.shape[1]
        self.param = [p * self.cells + np.arange(self.cells).reshape(self.rows, self.cols)
                      for p in range(len(data))]
        self.size = sum(len(d.values) for d in data)
        # every cell of every entry while that fits EXACT_ENTRIES, else lines s and t only
        self.exact = self.size * self.cells <= EXACT_ENTRIES
        self.counts = [np.full(len(d.values), self.cells) if self.exact else
                       cells_per_entry(d.pairs, self.rows, self.cols) for d in data]
        self._x = None
        self._responses = None
        self._warm: list = [None] * len(data)

    def start(self, parasitics: Parasitics) -> np.ndarray:
        """The parameter vector of the start cells and `parasitics`."""
        log_r = np.linalg.lstsq(self.basis, np.log(parasitics.as_vector()), rcond=None)[0]
        return np.concatenate([v.ravel() for v in self.log_g] + [log_r])

    def sane(self, x) -> bool:
        """Whether every resistance and conductance of `x` is within the range the model is
        meant for (a trust-region trial step may leave it)."""
        log_r = self.basis @ x[self.n_cells:]
        return bool(np.all(np.abs(log_r - LOG_OHM) < LOG_RANGE)
                    and np.all(np.abs(x[:self.n_cells] - LOG_SIEMENS) < LOG_RANGE))

    def split(self, x) -> tuple[list[np.ndarray], Parasitics]:
        """Conductances of every pattern and the resistances at `x`."""
        g = [np.exp(x[index]) for index in self.param]
        r = np.exp(self.basis @ x[self.n_cells:])
        return g, Parasitics.from_vector(r, self.rows, self.cols)

    def responses(self, x):
        if self._x is None or not np.array_equal(x, self._x):
            g, parasitics = self.split(x)
            result = []
            for p, gp in enumerate(g):
                response, solution = unit_responses(gp, parasitics, self._warm[p])
                self._warm[p] = solution
                result.append(response)
            self._x, self._responses = x.copy(), result
        return self._responses

    def residuals(self, x):
        if not self.sane(x):  # a trial step far outside the physical range: refused
            return np.full(self.size, REFUSED)
        out = []
        for d, u in zip(self.data, self.responses(x), strict=True):
            model = u.admittance[d.pairs[:, 1], d.pairs[:, 0]]
            out.append((model - d.values) / d.sigma)
        return np.concatenate(out)

    def blocks(self, x) -> tuple[sp.csr_matrix, np.ndarray]:
        """The Jacobian in the fitted log conductances (sparse: the cells of lines s and t)
        and in the resistance parameters (dense)."""
        g, parasitics = self.split(x)
        per_parameter = parasitics.as_vector()[:, None] * self.basis  # d r / d parameters
        m, n = self.rows, self.cols
        indptr = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum(np.concatenate(self.counts), out=indptr[1:])
        indices = np.empty(indptr[-1], dtype=np.int32)
        values = np.empty(indptr[-1])
        dense = []
        offset = 0
        for p, (d, u) in enumerate(zip(self.data, self.responses(x), strict=True)):
            inv = 1.0 / d.sigma
            if self.exact:
                every_cell_block(d.pairs, inv, g[p], u.cell_volts, self.param[p], indptr,
                                 indices, values, offset)
            else:
                line_cell_block(d.pairs, inv, g[p], u.cell_volts, m, n, self.param[p], indptr,
                                indices, values, offset)
            grams = segment_grams(u, m, n)
            dense.append(resistance_block(d.pairs, inv, u, grams) @ per_parameter)
            offset += len(d.pairs)
        cells = sp.csr_matrix((values, indices, indptr), shape=(self.size, self.n_cells))
        return cells, np.vstack(dense)

    def jacobian(self, x) -> LinearOperator:
        """The Jacobian as an operator: the sparse cell block without entries below
        `JACOBIAN_FLOOR` (a parameter moved by a factor e would move that residual by less
        than a thousandth of its sigma) beside the dense resistance block, each multiplied
        as what it is (the dense block inside a sparse matrix would double every product)."""
        cells, resistances = self.blocks(x)
        cells.data[np.abs(cells.data) < JACOBIAN_FLOOR] = 0.0
        cells.eliminate_zeros()
        return _BlockJacobian(cells, resistances)


class _BlockJacobian(LinearOperator):
    """[cells | resistances]: a sparse block and a dense one, side by side."""

    def __init__(self, cells: sp.csr_matrix, resistances: np.ndarray):
        super().__init__(float, (cells.shape[0], cells.shape[1] + resistances.shape[1]))
        self.cells, self.cells_t, self.resistances = cells, cells.T.tocsr(), resistances
        self.split = cells.shape[1]

    def _matvec(self, v):
        v = np.ravel(v)
        return self.cells @ v[:self.split] + self.resistances @ v[self.split:]

    def _rmatvec(self, u):
        u = np.ravel(u)
        return np.concatenate([self.cells_t @ u, self.resistances.T @ u])

    def _matmat(self, V):
        return self.cells @ V[:self.split] + self.resistances @ V[self.split:]

    def _rmatmat(self, U):
        return np.vstack([self.cells_t @ U, self.resistances.T @ U])


# ------------------------------------------------------------------------- fit


def uniform_basis(rows: int, cols: int) -> np.ndarray:
    """Resistances from four numbers: one path for every row, one for every column, and the
    two wire segments."""
    basis = np.zeros((rows + cols + 2, 4))
    basis[:rows, 0] = 1.0
    basis[rows:rows + cols, 1] = 1.0
    basis[rows + cols, 2] = 1.0
    basis[rows + cols + 1, 3] = 1.0
    return basis


def fit_parasitics(data: list[Transfers], rows: int, cols: int, **options) -> FitResult:
    """`fit` with BLAS on one thread: the trust-region solver makes thousands of small vector
    operations, which a multithreaded BLAS slows down (several times over on a busy
    machine)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return fit(data, rows, cols, **options)


def fit(data: list[Transfers], rows: int, cols: int, start: Parasitics | None = None,
        max_evaluations: int = 200, tolerance: float = 1e-7) -> FitResult:
    """Fit path, wire and cell parameters to the measured admittances of each pattern.

    `data` has one `Transfers` per programmed pattern (the cells differ, the resistances are
    shared). From the start (cells from their own entries, resistances at first order or
    `start`) everything is fitted at once. When that ends far from the noise (reduced
    chi-square above RETRY_CHI2: a start the trust region cannot get out of), it is done
    again through one path resistance for all rows and one for all columns first, and the
    better fit is kept. Raises ValueError when the data cannot determine the parameters."""
    if not data:
        raise ValueError("data must hold the transfers of at least one pattern")
    for d in data:
        if d.pairs.size and (d.pairs.min() < 0 or d.pairs.max() >= rows + cols):
            raise ValueError(f"pairs must name terminals 0..{rows + cols - 1}")
    unknowns = len(data) * rows * cols + rows + cols + 2
    size = sum(len(d.values) for d in data)
    if size < unknowns:
        raise ValueError(f"{size} measured entries cannot determine {unknowns} unknowns; "
                         "measure more pairs or patterns")
    data = [d.reciprocal_mean() for d in data]
    log_g = [np.log(start_conductances(d, rows, cols)) for d in data]
    parasitics = start if start is not None else first_order_parasitics(
        data, [np.exp(v) for v in log_g])
    every = np.eye(rows + cols + 2)
    profiled = fit_profiled(data, log_g, parasitics, min(max_evaluations, PROFILED_EVALUATIONS))
    evaluations = profiled[4].nfev if profiled is not None else 0
    if profiled is not None and profiled[0] <= RETRY_CHI2:
        chi2, parasitics, conductances, covariance, result, size = profiled
        if size * rows * cols > EXACT_ENTRIES:  # the joint fit would take many minutes
            return _result(parasitics, covariance, chi2, conductances, result, evaluations,
                           size)
        log_g = [np.log(g) for g in conductances]  # the joint fit polishes it
    paths = ([(every, tolerance)],
             [(uniform_basis(rows, cols), START_TOLERANCE), (every, tolerance)])
    best = None
    for stages in paths:
        problem, result, used = _stages(data, log_g, parasitics, stages, max_evaluations)
        evaluations += used
        chi2 = float(2 * result.cost / max(problem.size - problem.n_params, 1))
        if best is None or chi2 < best[0]:
            best = (chi2, problem, result)
        if chi2 <= RETRY_CHI2:
            break
    chi2, problem, result = best
    g, parasitics = problem.split(result.x)
    cells, resistances = problem.blocks(result.x)
    return _result(parasitics, _resistance_covariance(cells, resistances), chi2, g, result,
                   evaluations, problem.size)


def _result(parasitics: Parasitics, covariance: np.ndarray, chi2: float, conductances,
            result, evaluations: int, size: int) -> FitResult:
    """The fit's result from the covariance of log r (unscaled)."""
    r = parasitics.as_vector()
    covariance = covariance * max(chi2, 1.0) * np.outer(r, r)
    return FitResult(
        parasitics=parasitics,
        stderr=np.sqrt(np.diag(covariance)),
        conductances=conductances,
        chi2_reduced=chi2,
        residual_rms=float(np.sqrt(np.mean(result.fun**2))),
        iterations=int(result.njev or 0),
        evaluations=int(evaluations),
        data_count=size,
        status=result.message,
        covariance=covariance,
    )


def _stages(data, log_g, parasitics, stages, max_evaluations):
    """Trust-region fits in turn, each from where the last ended: per stage a basis of the
    resistance parameters and a tolerance (the parameters unscaled: scaling them by their
    Jacobian columns' norms left a line 45 % off on a hypothesis example, log10 kappa 0.875,
    seed 170). Returns the last problem, its result and the evaluations used."""
    used = 0
    for basis, stop in stages:
        problem = _Problem(data, log_g, basis)
        start = problem.start(parasitics)
        result = least_squares(problem.residuals, start, jac=problem.jacobian, method="trf",
                               tr_solver="lsmr", tr_options={"maxiter": STEP_ITERATIONS},
                               ftol=stop, xtol=stop, gtol=stop, max_nfev=max_evaluations)
        g, parasitics = problem.split(result.x)
        log_g = [np.log(v) for v in g]
        used += result.nfev
    return problem, result, used


def _resistance_covariance(Jc: sp.csr_matrix, Jr: np.ndarray) -> np.ndarray:
    """Covariance of the resistances with the cells profiled out: the inverse of the Schur
    complement Jr'Jr - Jr'Jc (Jc'Jc)^-1 Jc'Jr; the cell solve is direct up to DENSE_CELLS
    cells (Cholesky), beyond by block conjugate gradients preconditioned by the diagonal of
    Jc'Jc."""
    Jc = Jc.tocsc()
    rhs = np.asarray(Jc.T @ Jr)
    if Jc.shape[1] <= DENSE_CELLS:
        X = _solve_normal((Jc.T @ Jc).toarray(), rhs)
        schur = Jr.T @ Jr - rhs.T @ X
        return np.linalg.pinv((schur + schur.T) / 2, hermitian=True)
    diagonal = np.asarray(Jc.multiply(Jc).sum(axis=0)).ravel()
    diagonal = np.where(diagonal > 0, diagonal, 1.0)
    X = np.zeros_like(rhs)
    R = rhs.copy()
    Z = R / diagonal[:, None]
    P = Z.copy()
    rz = np.einsum("ij,ij->j", R, Z)
    information = np.einsum("ij,ij->j", Jr, Jr)
    for _ in range(SCHUR_ITERATIONS):
        AP = np.asarray(Jc.T @ (Jc @ P))
        alpha = rz / np.maximum(np.einsum("ij,ij->j", P, AP), 1e-300)
        X += P * alpha
        R -= AP * alpha
        # what this iteration took off each resistance's information (its Schur diagonal)
        taken = alpha * np.einsum("ij,ij->j", rhs, P)
        profiled = information - np.einsum("ij,ij->j", rhs, X)
        if np.all(np.abs(taken) <= SCHUR_RTOL * np.maximum(profiled, 1e-300)):
            break
        Z = R / diagonal[:, None]
        rz_new = np.einsum("ij,ij->j", R, Z)
        P = Z + P * (rz_new / np.maximum(rz, 1e-300))
        rz = rz_new
    schur = Jr.T @ Jr - rhs.T @ X
    schur = (schur + schur.T) / 2
    return np.linalg.pinv(schur, hermitian=True)


def _solve_normal(normal: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``normal^-1 rhs`` for a symmetric positive semi-definite `normal`: by Cholesky (a few
    seconds for thousands of cells, where an SVD takes a minute), by least squares when a
    cell the data do not determine makes it singular."""
    try:
        return cho_solve(cho_factor(normal), rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(normal, rhs, rcond=None)[0]
