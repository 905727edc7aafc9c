"""What a bench knows of its chip: calibrated parasitics and an estimate of every cell.

A `ChipModel` is attached to a bench (`Bench.chip_model`) when a calibration of its chip exists;
the bench then reports every cell read and matrix-vector product corrected with it
(`xbarlab.calibration.correction`). The estimate of the cells starts from the calibration's
own map and follows the chip: every corrected read of a cell replaces that cell's estimate,
so the context a correction uses (the other cells) is what the bench last saw of them.

A single cell's correction depends on the other cells through three solves of the model; it is
kept per cell and bias state and made again when the cells it depends on have changed
(`CONTEXT_RTOL` of the sums of its row, its column or the whole array). A row read's
correction uses the columns' unit responses, made again when the array has changed by
`RESPONSES_RTOL`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from xbarlab.calibration.correction import (
    CellResponse,
    cell_response,
    correct_mvm,
    correct_row_read,
)
from xbarlab.calibration.model import Parasitics, unit_responses

CONTEXT_RTOL = 1e-3
"""A cell's response is made again when the sum of its row, its column (the cell left out)
or the whole array has moved by this fraction since."""
RESPONSES_RTOL = 1e-2
"""The columns' unit responses are made again when the array's summed absolute change since
is this fraction of its total conductance."""
MAP_SWEEPS = 4
MAP_RTOL = 1e-6
"""Sweeps of a whole map's correction (each with the estimates of the last), and the largest
relative change of a cell that ends them."""


def _one_blas_thread(method):
    """Run `method` with BLAS on one thread: a correction makes many small solves (a row's
    128 x 128 Newton system), which a multithreaded BLAS slows down tens of times on a busy
    machine (37 ms instead of 1.3 ms at load 5 on 2 cores) and never speeds up."""
    @functools.wraps(method)
    def limited(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return method(*args, **kwargs)
    return limited


class ChipModel:
    """Calibrated parasitics and the cells' estimate of one chip on one bench (see the module
    docstring); `calibration_id` names the record it came from."""

    def __init__(self, parasitics: Parasitics, conductances: np.ndarray,
                 calibration_id: int | None = None):
        if conductances.shape != parasitics.shape:
            raise ValueError(f"conductances of shape {conductances.shape} do not fit "
                             f"parasitics of a {parasitics.shape} chip")
        self.parasitics = parasitics
        self.estimate = np.where(np.isfinite(conductances) & (conductances > 0), conductances,
                                 np.nanmedian(conductances[conductances > 0]))
        self.calibration_id = calibration_id
        self._responses: dict[tuple, tuple[CellResponse, tuple[float, float, float]]] = {}
        self._columns: np.ndarray | None = None
        self._columns_at: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.estimate.shape

    # ------------------------------------------------------------------ cell reads

    def _context(self, row: int, col: int) -> tuple[float, float, float]:
        e = self.estimate
        return (e[row].sum() - e[row, col], e[:, col].sum() - e[row, col], e.sum())

    def response(self, levels: Mapping, row: int, col: int) -> CellResponse:
        """The linear-fractional response of a reading of cell (row, col) with the lines at
        `levels` (`xbarlab.bench.bias_levels`), kept while its context holds."""
        context = self._context(row, col)
        v_row, v_col = _level_vectors(levels, *self.shape)
        key = (row, col, v_row.tobytes(), v_col.tobytes())
        kept = self._responses.get(key)
        if kept is not None and np.allclose(kept[1], context, rtol=CONTEXT_RTOL, atol=0.0):
            return kept[0]
        response = cell_response(self.parasitics, self.estimate, v_row, v_col, row, col,
                                 self.shape[0] + col)
        self._responses[key] = (response, context)
        return response

    @_one_blas_thread
    def correct_cell(self, levels: Mapping, row: int, col: int, currents,
                     trusted=True) -> np.ndarray:
        """Conductances of cell (row, col) from readings `currents` (the bench's sign: from
        row to column) taken with the lines at `levels`; the cell's estimate becomes the mean
        of the `trusted` ones (a reading at a source's limit is not of the cell)."""
        g = self.response(levels, row, col).conductance(currents)
        kept = g[np.broadcast_to(trusted, np.shape(g)) & np.isfinite(g)]
        self._note(row, col, kept.mean() if kept.size else np.nan)
        return g

    def _note(self, row, col, g) -> None:
        if np.isfinite(g) and g > 0:
            self.estimate[row, col] = g

    # ------------------------------------------------------------------ row reads (boards)

    def _column_volts(self) -> np.ndarray:
        e = self.estimate
        if (self._columns is None
                or np.abs(e - self._columns_at).sum() > RESPONSES_RTOL * e.sum()):
            responses, _ = unit_responses(e, self.parasitics)
            self._columns = responses.cell_volts[self.shape[0]:]
            self._columns_at = e.copy()
        return self._columns

    @_one_blas_thread
    def correct_row(self, row: int, v_read: float, currents: np.ndarray, trusted=True
                    ) -> np.ndarray:
        """Conductances of row `row` from one read of it with every other line at 0 V and
        every column's cell current measured (`currents`, (n,)); the row's estimate becomes
        them where `trusted` (not at a limit)."""
        g = correct_row_read(self.parasitics, self.estimate, row, v_read,
                             np.asarray(currents, float), self._column_volts())
        for col in np.flatnonzero(np.broadcast_to(trusted, g.shape)):
            self._note(row, col, g[col])
        return g

    # ------------------------------------------------------------------ whole maps

    @_one_blas_thread
    def correct_map(self, currents: np.ndarray, v_read: float,
                    levels_of: Callable[[int, int], Mapping] | None) -> np.ndarray:
        """Conductances of every read cell from raw readings `currents` (m, n; NaN = not
        read) all at `v_read`: the corrections again, each with the estimates the last sweep
        left, until no cell moves by MAP_RTOL (at most MAP_SWEEPS). Cell by cell with the
        lines at ``levels_of(row, col)``, or, when `levels_of` is None, a row at a time (a
        board's row reads: the row at `v_read`, every other line at 0 V). Cells read early
        were corrected with the estimates of cells read after them as they were then; this
        is what the map's own readings say of all of them together."""
        m, n = self.shape
        read = np.isfinite(currents)
        result = np.full((m, n), np.nan)
        for _ in range(MAP_SWEEPS):
            before = self.estimate.copy()
            for row in np.flatnonzero(read.any(axis=1)):
                if levels_of is None:
                    row_currents = np.where(read[row], currents[row], self.estimate[row] * v_read)
                    result[row] = np.where(read[row], self.correct_row(row, v_read, row_currents),
                                           np.nan)
                    continue
                for col in np.flatnonzero(read[row]):
                    result[row, col] = self.correct_cell(levels_of(row, col), row, col,
                                                         currents[row, col])
            moved = np.abs(self.estimate - before) / np.maximum(before, 1e-300)
            if moved[read].max(initial=0.0) < MAP_RTOL:
                break
        return result

    # ------------------------------------------------------------------ products

    @_one_blas_thread
    def correct_mvm(self, currents, v_rows) -> np.ndarray:
        """Ideal column currents of matrix-vector products from measured ones, with the
        present estimate of the cells (`correction.correct_mvm`)."""
        return correct_mvm(currents, v_rows, self.estimate, self.parasitics)


def _level_vectors(levels: Mapping, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column levels of a `bias_levels` mapping as arrays, NaN where floating."""
    v_row, v_col = np.full(rows, np.nan), np.full(cols, np.nan)
    for line, level in levels.items():
        if level is not None:
            (v_row if line.kind == "row" else v_col)[line.index] = level
    return v_row, v_col
