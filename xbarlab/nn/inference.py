"""A placed network's layer products measured through a bench, on any kind of bench.

The same code serves both kinds of bench, chosen by what the bench can do (`can_mvm`):

* array board: one matrix-vector product per input vector and tile (`mvm`): the tile's rows
  at ``x * v_read`` (`xbarlab.nn.data.row_voltages`), every other row at 0 V, every column at
  0 V and sensed; the plus and minus columns' currents decode to the products
  (`xbarlab.nn.mapping.decode_products`). Every parasitic of the array is in the measurement.
  A correction function (e.g. the chip's parasitic calibration) may be applied to the
  measured column currents first: ``correct(v_rows, currents) -> currents``, both over the
  whole array (rows,) and (cols,).
* switch-matrix benches (no matrix-vector product): each tile's cells are read once, cell by
  cell (`read_map` with a mask, ``scheme`` bias, default ``ground``), and the products are
  computed from the measured conductances. Slow to start, then free; `refresh` re-reads cells
  after they were programmed. The correction function does not apply (no column currents are
  measured; the bench's reads carry their own calibration).

A reading at a sense or driver limit (compliance) is refused (`InferenceError`), never used:
its current is the limit, not the product.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from xbarlab.nn.data import row_voltages
from xbarlab.nn.mapping import ConductanceLevels, decode_products
from xbarlab.nn.placement import Placement, Tile

CurrentCorrection = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(row voltages (rows,), measured column currents (cols,)) -> corrected column currents."""


class MeasuringBench(Protocol):
    """What inference needs from a bench (`xbarlab.bench.Bench` satisfies it).

    `mvm` is used only when `can_mvm` is true; a bench without a matrix-vector product may
    leave it out. `read_map` returns cell currents (A) at `v_read` (NaN where not read),
    `read` one cell's reading (with a ``current`` in A).
    """

    rows: int
    cols: int

    @property
    def can_mvm(self) -> bool: ...

    def mvm(self, v_rows: Sequence[float], current_limit: float | None = None) -> Any: ...

    def read_map(self, v_read: float = 0.2, scheme: str = "float",
                 mask: np.ndarray | None = None,
                 current_limit: float | None = None) -> np.ndarray: ...

    def read(self, row: int, col: int, v_read: float = 0.2, scheme: str = "float",
             current_limit: float | None = None) -> Any: ...


class InferenceError(RuntimeError):
    """A measurement that cannot give a product (a reading at its limit, a cell not read)."""


class BenchForward:
    """Products of the layers of a placed network, measured through `bench` (module docstring).

    Call it as ``forward(layer, inputs)`` with inputs (samples, n_in + 1) in [0, 1], the bias
    column included: it returns the products (samples, neurons), ideally ``inputs @ W``.
    `levels` are the conductances of a weight of +-1 (g_on) and of 0 (g_off), measured.
    """

    def __init__(self, bench: MeasuringBench, placement: Placement, levels: ConductanceLevels,
                 v_read: float = 0.2, *, correct: CurrentCorrection | None = None,
                 scheme: str = "ground", current_limit: float | None = None):
        placement.check_array(bench.rows, bench.cols)
        row_voltages(np.zeros(1), v_read)  # validates v_read
        self.bench, self.placement, self.levels = bench, placement, levels
        self.v_read, self.correct, self.scheme = v_read, correct, scheme
        self.current_limit = current_limit
        self.mode = "mvm" if bench.can_mvm else "read"
        self._conductances: dict[int, np.ndarray] = {}
        self.vectors = 0
        """Input vectors measured so far (one mvm each on a board)."""

    def __call__(self, layer: int, inputs: np.ndarray) -> np.ndarray:
        tile = self._tile(layer)
        inputs = np.atleast_2d(np.asarray(inputs, float))
        if inputs.shape[1] != tile.inputs:
            raise ValueError(f"layer {layer} takes {tile.inputs} inputs (bias included); got "
                             f"{inputs.shape[1]}")
        voltages = row_voltages(inputs, self.v_read)
        self.vectors += len(inputs)
        if self.mode == "mvm":
            currents = np.array([self._column_currents(tile, v) for v in voltages])
        else:
            g = self.conductances(layer)
            currents = voltages @ g
        plus = currents[:, :tile.neurons]
        minus = currents[:, tile.neurons:]
        return decode_products(plus, minus, self.levels, self.v_read)

    def _tile(self, layer: int) -> Tile:
        if not 0 <= layer < len(self.placement.tiles):
            raise ValueError(f"layer = {layer!r}: allowed 0..{len(self.placement.tiles) - 1}")
        return self.placement.tiles[layer]

    def _column_currents(self, tile: Tile, voltages: np.ndarray) -> np.ndarray:
        """One mvm: the tile's rows at `voltages`, every other row at 0 V; its columns'
        currents (plus columns, then minus columns)."""
        v_rows = np.zeros(self.bench.rows)
        v_rows[list(tile.rows)] = voltages
        result = self.bench.mvm(v_rows, self.current_limit)
        cols = list(tile.cols)
        limited = np.flatnonzero(np.asarray(result.compliance)[cols])
        if limited.size or np.asarray(result.row_compliance)[list(tile.rows)].any():
            where = (f"column {cols[limited[0]]}" if limited.size else "a driven row")
            raise InferenceError(f"{where} reached its current limit during a matrix-vector "
                                 "product; allowed: readings below the limit (lower v_read or "
                                 "raise current_limit)")
        currents = np.asarray(result.currents, float)
        if self.correct is not None:
            currents = np.asarray(self.correct(v_rows, currents), float)
        return currents[cols]

    def conductances(self, layer: int) -> np.ndarray:
        """Measured conductances (S) of layer `layer`'s tile, (inputs, plus then minus
        columns); read cell by cell the first time (read mode only)."""
        if layer not in self._conductances:
            tile = self._tile(layer)
            mask = np.zeros((self.bench.rows, self.bench.cols), bool)
            mask[np.ix_(tile.rows, tile.cols)] = True
            currents = self.bench.read_map(self.v_read, self.scheme, mask, self.current_limit)
            g = currents[np.ix_(tile.rows, tile.cols)] / self.v_read
            missing = np.argwhere(np.isnan(g))
            if missing.size:
                i, j = missing[0]
                raise InferenceError(f"cell ({tile.rows[i]}, {tile.cols[j]}) of layer {layer} "
                                     "was not read (masked on this bench); allowed: tiles on "
                                     "readable cells (mark masked cells in the defect map)")
            self._conductances[layer] = g
        return self._conductances[layer]

    def refresh(self, layer: int, rows: np.ndarray, cols: np.ndarray) -> None:
        """Re-read the tile cells (physical `rows`, `cols` pairs) after programming them
        (read mode; nothing to do on a board, which measures every product afresh)."""
        if self.mode == "mvm" or layer not in self._conductances:
            return
        tile = self._tile(layer)
        row_index = {r: i for i, r in enumerate(tile.rows)}
        col_index = {c: j for j, c in enumerate(tile.cols)}
        g = self._conductances[layer]
        for row, col in zip(rows, cols, strict=True):
            reading = self.bench.read(int(row), int(col), self.v_read, self.scheme,
                                      self.current_limit)
            g[row_index[int(row)], col_index[int(col)]] = reading.current / self.v_read
