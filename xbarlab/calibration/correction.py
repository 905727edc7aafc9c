"""Corrections with a calibrated model: what the cells are, from what the wires made of them.

Everything here uses `xbarlab.physics` as a model (techniques.md §4.4): the calibrated path and
wire resistances (`Parasitics`) and an estimate of every cell's conductance.

* A cell read, any bias scheme: the current a terminal senses is, as a function of one cell's
  conductance g with every other element fixed, exactly linear-fractional,
  I(g) = (a + b g) / (1 + c g) (a rank-one change of the nodal matrix; the Thevenin
  equivalent the cell sees). Three model solves give a, b, c (`cell_response`), and the
  reading inverts to g = (I - a) / (b - c I): sneak currents of a floating or half-selected
  array and IR drops are both removed, as far as the estimate of the other cells is right.
* A row read on a board (one row driven, every other line at 0 V, every column sensed):
  Newton on the row's cells, the residual from the model, the Jacobian from the columns'
  unit responses (`correct_row_read`).
* A matrix-vector product: column j measured y_j; the model with the estimated cells gives
  F_j and the ideal v @ G gives x_j; y_j x_j / F_j is reported (the measured deviation from
  the model carried through the model's gain; `correct_mvm`). When the cells are what the
  estimate says, that is x_j exactly, and a cell that drifted moves it as it would move an
  ideal product.
* Weight pre-distortion (techniques.md §4.4 C2): targets iterated with the model until every
  cell's current under a reference input is its ideal one, clipped to the conductance
  bounds; the clipped cells are reported (`predistort`).
* The cheap alternative (C3): a gain and an offset per column fitted on a few random inputs
  (`LinearColumnCorrection`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.calibration.model import Parasitics, terminal_currents

TRIAL_FACTORS = np.array([1.0, 0.5, 2.0])
"""Trial conductances of the cell (times its estimate) behind the linear-fractional response."""
MIN_DENOMINATOR = 1e-300
"""A response whose inversion divides by less than this is not invertible (an open cell)."""
ROW_NEWTON_STEPS = 8
ROW_RTOL = 1e-9
"""Newton steps of a row read's correction, and the relative current error that ends them."""


@dataclass(frozen=True)
class CellResponse:
    """I(g) = (a + b g) / (1 + c g): the current a reading senses (amperes, as the bench
    reports it: positive from row to column) against the read cell's conductance (S)."""

    a: float
    b: float
    c: float

    def current(self, g):
        return (self.a + self.b * np.asarray(g)) / (1.0 + self.c * np.asarray(g))

    def conductance(self, current):
        """The conductance that gives `current` (NaN where no conductance >= 0 does)."""
        current = np.asarray(current, dtype=float)
        denominator = self.b - self.c * current
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (current - self.a) / denominator
        return np.where(np.abs(denominator) > MIN_DENOMINATOR, g, np.nan)


def sensed_currents(parasitics: Parasitics, G, v_row, v_col, sensed: int) -> np.ndarray:
    """The current the bench reports for a reading sensed at terminal `sensed` (rows 0..m-1,
    columns m..): a column's current out of the array (the cell current), a row's into it."""
    solution = parasitics.solve(G, v_row, v_col)
    into = terminal_currents(solution)[:, sensed]
    m = np.shape(v_row)[-1]
    return into if sensed < m else -into


def cell_response(parasitics: Parasitics, G: np.ndarray, v_row, v_col, row: int, col: int,
                  sensed: int) -> CellResponse:
    """The linear-fractional response of a reading to cell (row, col), the other cells at
    `G`, lines at `v_row`, `v_col` (NaN = floating), sensed at terminal `sensed`."""
    g0 = G[row, col] if G[row, col] > 0 else np.median(G[G > 0]) if np.any(G > 0) else 1e-6
    trials = g0 * TRIAL_FACTORS
    batch = np.repeat(G[None], len(trials), axis=0)
    batch[:, row, col] = trials
    currents = sensed_currents(parasitics, batch, v_row, v_col, sensed)
    x = trials / g0  # solve in units of g0: a + b' x - c' x I = I
    system = np.stack([np.ones_like(x), x, -x * currents], axis=1)
    a, b, c = np.linalg.solve(system, currents)
    return CellResponse(float(a), float(b / g0), float(c / g0))


def correct_row_read(parasitics: Parasitics, G: np.ndarray, row: int, v_read: float,
                     currents: np.ndarray, column_volts: np.ndarray) -> np.ndarray:
    """Conductances of row `row` from one board read of it (row at `v_read`, every other line
    at 0 V, every column's cell current measured, `currents` (n,)). `G` holds the estimate of
    every cell (the row's as the start); `column_volts` (n, m, n) are the cell voltages of
    the columns' unit excitations (`model.unit_responses`), which give the Jacobian."""
    m, n = G.shape
    v_row = np.zeros(m)
    v_row[row] = v_read
    v_col = np.zeros(n)
    trial = G.copy()
    g = np.where(G[row] > 0, G[row], np.median(G[G > 0]))
    for _ in range(ROW_NEWTON_STEPS):
        trial[row] = g
        solution = parasitics.solve(trial, v_row, v_col)
        model = solution.i_col
        residual = currents - model
        if np.max(np.abs(residual)) <= ROW_RTOL * np.max(np.abs(currents)):
            break
        # d i_col[b] / d g[j] = -d(Y_cb,r V) / d g = -V v_cb[row, j] v_r[row, j] (model module)
        jacobian = -column_volts[:, row, :] * solution.v_cell[row][None, :]
        g = np.maximum(g + np.linalg.solve(jacobian, residual), 0.0)
    return g


def correct_mvm(currents, v_rows, conductances: np.ndarray, parasitics: Parasitics
                ) -> np.ndarray:
    """Column currents of matrix-vector products as ideal ones: ``y x / F`` per column, y
    the measured currents (B, n) or (n,) (into the columns, the bench's sign), x the ideal
    ``v_rows @ conductances`` and F the model's currents for the same inputs (columns at
    0 V); where F is 0 the measured deviation is added as it is. A plain function of the
    currents and input voltages (for a network's inference)."""
    y = np.asarray(currents, dtype=float)
    v = np.asarray(v_rows, dtype=float)
    ideal = v @ conductances
    solution = parasitics.solve(conductances, v, np.zeros(v.shape[:-1] + (conductances.shape[1],)))
    model = solution.i_col
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(np.abs(model) > MIN_DENOMINATOR, ideal / model, 1.0)
    return ideal + (y - model) * gain


@dataclass(frozen=True)
class Predistortion:
    """Conductances to program so that the model's cell currents under the reference input
    are the targets' ideal ones; `clipped` marks cells held at a bound (they limit the
    correction), `column_error` is the model's largest column error relative to the ideal
    full scale, before (programming the targets) and after."""

    conductances: np.ndarray
    clipped: np.ndarray
    iterations: int
    column_error_before: float
    column_error_after: float


def predistort(targets: np.ndarray, parasitics: Parasitics, v_ref: float, g_min, g_max,
               max_iterations: int = 50, tolerance: float = 1e-6) -> Predistortion:
    """Iterate G' = clip(targets v_ref / V_cell(G'), g_min, g_max) (every row at `v_ref`,
    columns at 0 V; techniques.md §4.4 C2) until G' changes by less than `tolerance`
    relative. `g_min`, `g_max`: scalars or (m, n) bounds of each cell."""
    m, n = targets.shape
    v_row, v_col = np.full(m, float(v_ref)), np.zeros(n)
    ideal = v_row @ targets
    scale = np.abs(ideal).max()

    def column_error(conductances):
        solution = parasitics.solve(conductances, v_row, v_col)
        return float(np.abs(solution.i_col - ideal).max() / scale)

    before = column_error(targets)
    programmed = targets.copy()
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported)
        v_cell = parasitics.solve(programmed, v_row, v_col).v_cell
        with np.errstate(divide="ignore", invalid="ignore"):
            wanted = np.where(v_cell > 0, targets * v_ref / v_cell, g_max)
        new = np.clip(wanted, g_min, g_max)
        change = np.max(np.abs(new - programmed) / np.maximum(programmed, 1e-300))
        programmed = new
        if change < tolerance:
            break
    low, high = np.broadcast_to(g_min, targets.shape), np.broadcast_to(g_max, targets.shape)
    clipped = (programmed <= low) | (programmed >= high)
    return Predistortion(programmed, clipped, iterations, before, column_error(programmed))


@dataclass(frozen=True)
class LinearColumnCorrection:
    """y_j -> gain_j y_j + offset_j per column (techniques.md §4.4 C3; Hu 2018), fitted by
    least squares on measured and ideal column currents of a few random inputs."""

    gain: np.ndarray
    offset: np.ndarray

    @classmethod
    def fit(cls, measured, ideal) -> LinearColumnCorrection:
        measured, ideal = np.atleast_2d(measured), np.atleast_2d(ideal)
        if measured.shape != ideal.shape or measured.shape[0] < 2:
            raise ValueError(f"measured and ideal must be (K, n) with K >= 2 inputs, got "
                             f"{measured.shape} and {ideal.shape}")
        gain, offset = np.empty(measured.shape[1]), np.empty(measured.shape[1])
        for j in range(measured.shape[1]):
            design = np.stack([measured[:, j], np.ones(len(measured))], axis=1)
            gain[j], offset[j] = np.linalg.lstsq(design, ideal[:, j], rcond=None)[0]
        return cls(gain, offset)

    def apply(self, currents) -> np.ndarray:
        return np.asarray(currents) * self.gain + self.offset
