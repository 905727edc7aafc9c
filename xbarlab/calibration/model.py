"""The parasitic model of a crossbar on a bench: what a calibration estimates and corrects with.

Every crossbar line reaches the instrument terminal that drives or senses it through a path of
its own: row i through ``r_source[i]`` (driver output, relay, cable), column j through
``r_sense[j]`` (sense resistance, relay, cable). Along the lines every wire segment between
neighbouring cells is ``r_wire_row`` (word lines) or ``r_wire_col`` (bit lines). With the cell
conductances G this is exactly the network `xbarlab.physics.solve_crossbar` solves, which is
used here as a *model* (reference/physics.md, techniques.md §4.2): to fit measured terminal
currents and to invert readings, never to produce a measurement.

Terminals are numbered rows first (0..m-1), then columns (m..m+n-1). A terminal current is
the current flowing from the instrument into the array (a sensing column at 0 V therefore
reads a negative current when its cells conduct).

Sensitivities (`UnitResponses`). With every line end held by a source, the terminal currents
are I = Y v, Y the terminal admittance matrix, and Y_st = sum_b g_b dV_b(s) dV_b(t) over the
branches b of the network, dV_b(t) being the voltage across branch b when terminal t is at 1 V
and every other terminal at 0 V (Tellegen; the network's Dirichlet energy is stationary in
the node voltages). Hence dY_st / dg_b = dV_b(s) dV_b(t): for a cell the product of its
voltages in the two unit solutions, for a path or wire resistance r (g = 1/r)
dY_st / dr = -i_b(s) i_b(t), the product of the branch currents. One batched solve of the
m + n unit excitations gives Y and every derivative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.physics import solve_crossbar


@dataclass(frozen=True)
class Parasitics:
    """Series resistances of a crossbar on its bench (ohm): per line end, and per wire segment."""

    r_source: np.ndarray
    r_sense: np.ndarray
    r_wire_row: float
    r_wire_col: float

    def __post_init__(self) -> None:
        for name in ("r_source", "r_sense"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.ndim != 1 or not np.all(np.isfinite(value)) or np.any(value < 0):
                raise ValueError(f"{name} must be a 1-D array of finite resistances >= 0 ohm, "
                                 f"got {value!r}")
            object.__setattr__(self, name, value)
        for name in ("r_wire_row", "r_wire_col"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite resistance >= 0 ohm, got {value!r}")
            object.__setattr__(self, name, value)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.r_source), len(self.r_sense)

    @classmethod
    def uniform(cls, rows: int, cols: int, r_source: float, r_sense: float,
                r_wire_row: float, r_wire_col: float) -> Parasitics:
        """One path resistance for every row and one for every column."""
        return cls(np.full(rows, float(r_source)), np.full(cols, float(r_sense)),
                   r_wire_row, r_wire_col)

    def solve(self, G, v_row, v_col, warm_start=None):
        """`solve_crossbar` of conductances `G` with these parasitics (NaN = floating end)."""
        return solve_crossbar(G, v_row, v_col, r_source=self.r_source, r_sense=self.r_sense,
                              r_wire_row=self.r_wire_row, r_wire_col=self.r_wire_col,
                              warm_start=warm_start)

    def terminal_currents(self, G, v_row, v_col) -> np.ndarray:
        """(B, m + n) currents from the terminals into the array (0 where an end floats)."""
        solution = self.solve(G, np.atleast_2d(v_row), np.atleast_2d(v_col))
        return terminal_currents(solution)

    def as_vector(self) -> np.ndarray:
        """[r_source, r_sense, r_wire_row, r_wire_col] as one vector (the fit's order)."""
        return np.concatenate([self.r_source, self.r_sense, [self.r_wire_row, self.r_wire_col]])

    @classmethod
    def from_vector(cls, values: np.ndarray, rows: int, cols: int) -> Parasitics:
        values = np.asarray(values, dtype=float)
        return cls(values[:rows], values[rows:rows + cols], values[rows + cols],
                   values[rows + cols + 1])


def terminal_currents(solution) -> np.ndarray:
    """A solution's terminal currents into the array, (B, m + n): rows' source currents, then
    columns' currents with the sign turned (the solver reports them flowing out)."""
    return np.concatenate([np.atleast_2d(solution.i_row), -np.atleast_2d(solution.i_col)],
                          axis=1)


@dataclass(frozen=True)
class UnitResponses:
    """The network's answer to each unit excitation: terminal t at 1 V, every other at 0 V.

    ``admittance[t, s]`` is the current into the array at terminal s (= Y_st, symmetric);
    ``cell_volts[t]`` the voltage across every cell (word minus bit line), ``end_currents[t]``
    the current through every line's path resistance (rows: into the line; columns: out of
    it, the solver's orientations), ``row_segments[t]`` / ``col_segments[t]`` the current in
    every word-line segment (towards higher column) and bit-line segment (towards the sense
    end). Derivatives of Y follow from products of these (module docstring).
    """

    admittance: np.ndarray  # (T, T)
    cell_volts: np.ndarray  # (T, m, n)
    end_currents: np.ndarray  # (T, m + n)
    row_segments: np.ndarray  # (T, m, n - 1)
    col_segments: np.ndarray  # (T, m - 1, n)


def unit_responses(G: np.ndarray, parasitics: Parasitics, warm_start=None):
    """`UnitResponses` of conductances `G` (m, n) and the solution (for a warm start)."""
    m, n = G.shape
    eye = np.eye(m + n)
    solution = parasitics.solve(G, eye[:, :m], eye[:, m:], warm_start=warm_start)
    cell_currents = G[None] * solution.v_cell
    # A word line is fed at column 0: segment j..j+1 carries the current of the cells beyond j.
    beyond = np.cumsum(cell_currents[:, :, ::-1], axis=2)[:, :, ::-1]
    # A bit line is sensed at row m-1: segment i..i+1 carries the current of the cells above.
    above = np.cumsum(cell_currents, axis=1)
    ends = np.concatenate([solution.i_row, solution.i_col], axis=1)
    return UnitResponses(
        admittance=terminal_currents(solution),
        cell_volts=solution.v_cell,
        end_currents=ends,
        row_segments=beyond[:, :, 1:],
        col_segments=above[:, :-1, :],
    ), solution
