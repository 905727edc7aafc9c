"""A bench made of the physics model alone, for the nn tests and benchmarks/bench_nn_chip_model.py.

`ModelBench` answers the calls `xbarlab.nn.inference.MeasuringBench` names (and `pulse`)
straight from a `xbarlab.physics.CrossbarArray`: an array board (`mvm`: every row driven,
every column at 0 V and sensed, one solve per vector) or, with ``board=False``, a bench that
reads cell by cell (ground scheme: one solve per read row). Every line end sees ``r_path``
(a driver or relay and its cable). Each measurement lets ``read_time`` pass on the array, so
programmed cells relax as they would between the reads of a real run. Tests and benchmarks
may look inside (``bench.array``); the library never does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from xbarlab.physics import CrossbarArray


@dataclass(frozen=True)
class ModelMvm:
    currents: np.ndarray
    compliance: np.ndarray
    row_compliance: np.ndarray


@dataclass(frozen=True)
class ModelReading:
    current: float


class ModelBench:
    """The bench calls the nn package uses, answered by a `CrossbarArray` (module docstring)."""

    def __init__(self, array: CrossbarArray, *, r_path: float = 0.0, board: bool = True,
                 read_time: float = 0.0, current_limit: float = np.inf):
        self.array = array
        self.rows, self.cols = array.shape
        self.r_path, self.board, self.read_time = r_path, board, read_time
        self.current_limit = current_limit
        self.mvm_calls = self.reads = self.pulses = 0
        self.physics_seconds = 0.0
        """Time spent in the physics model (circuit solves and pulses)."""

    @property
    def can_mvm(self) -> bool:
        return self.board

    def _solve(self, v_rows: np.ndarray):
        start = time.perf_counter()
        solution = self.array.solve(v_rows, np.zeros(self.cols), r_source=self.r_path,
                                    r_sense=self.r_path, noise_per_vector=True)
        vectors = len(v_rows) if np.ndim(v_rows) == 2 else 1
        self.array.advance_time(self.read_time * vectors)
        self.physics_seconds += time.perf_counter() - start
        return solution

    def mvm(self, v_rows, current_limit=None) -> ModelMvm:
        assert self.board, "mvm on a bench without a board"
        solution = self._solve(np.asarray(v_rows, float))
        self.mvm_calls += 1
        limit = self.current_limit if current_limit is None else current_limit
        return ModelMvm(solution.i_col, np.abs(solution.i_col) >= limit,
                        np.abs(solution.i_row) >= limit)

    def read_map(self, v_read=0.2, scheme="ground", mask=None, current_limit=None) -> np.ndarray:
        assert scheme == "ground", "the model bench reads with the ground scheme only"
        mask = np.ones((self.rows, self.cols), bool) if mask is None else np.asarray(mask)
        rows = np.flatnonzero(mask.any(axis=1))
        v = np.zeros((len(rows), self.rows))
        v[np.arange(len(rows)), rows] = v_read
        currents = np.full((self.rows, self.cols), np.nan)
        if len(rows):
            currents[rows] = self._solve(v).i_col
        self.reads += int(mask.sum())
        return np.where(mask, currents, np.nan)

    def read(self, row, col, v_read=0.2, scheme="ground", current_limit=None) -> ModelReading:
        assert scheme == "ground", "the model bench reads with the ground scheme only"
        v = np.zeros(self.rows)
        v[row] = v_read
        self.reads += 1
        return ModelReading(float(self._solve(v).i_col[col]))

    def pulse(self, row: int, col: int, v_pulse: float, width: float) -> float:
        """One V/2-scheme pulse of `v_pulse` across cell (row, col); its energy (J)."""
        v_row = np.full(self.rows, v_pulse / 2)
        v_col = np.full(self.cols, v_pulse / 2)
        v_row[row], v_col[col] = v_pulse, 0.0
        self.pulses += 1
        start = time.perf_counter()
        energy = self.array.apply(v_row, v_col, width, r_source=self.r_path,
                                  r_sense=self.r_path).energy_total
        self.physics_seconds += time.perf_counter() - start
        return energy

    def one_pulse_programmer(self, v_pulse: float = 1.3, width: float = 1e-7):
        """A `xbarlab.nn.bench_chip.Programmer`: one SET (+) or RESET (-) pulse per cell."""

        def program(row: int, col: int, set_on: bool) -> tuple[int, float]:
            return 1, self.pulse(row, col, v_pulse if set_on else -v_pulse, width)

        return program
