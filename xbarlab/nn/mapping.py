"""Signed weights as differential conductance pairs, and column currents back to products.

Each weight w_ij (row i of a layer's matrix, the bias row last; neuron j) is a pair of cells on
one row: G+ on neuron j's plus column and G- on its minus column (reference/techniques.md
§1.2, complementary mapping; Truong et al., Nanoscale Res. Lett. 10, 405 (2015)):

    G+ = g_off + max(w, 0) (g_on - g_off),   G- = g_off + max(-w, 0) (g_on - g_off)

For binary levels +-1 that is (g_on, g_off) / (g_off, g_on); a ternary zero is the equal pair
(g_off, g_off), whose currents cancel exactly. Weights strictly between the levels map linearly
(|w| <= 1), so the same decoding serves any weight in [-1, 1].

With row voltages v = x v_read (`xbarlab.nn.data.row_voltages`) and ideal lines, the column
currents are I+- = v @ G+-, so

    products = (I+ - I-) / ((g_on - g_off) v_read) = x @ W

exactly (`decode_products`); the quantizer's scale is applied afterwards, digitally.
The levels g_on and g_off are arguments: a protocol passes those it measured on the chip
(`measured_levels`: medians of its read map over the cells programmed on and off), never a
preset's nominal numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xbarlab.nn.placement import Placement

UNUSED, OFF, ON = -1, 0, 1
"""Codes of `cell_targets`."""


@dataclass(frozen=True)
class ConductanceLevels:
    """The two programmed conductances (S): g_on (LRS) for a +-1 cell, g_off (HRS) otherwise."""

    g_on: float
    g_off: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.g_off) and self.g_off >= 0.0):
            raise ValueError(f"g_off = {self.g_off!r} S: allowed a finite conductance >= 0 S")
        if not (math.isfinite(self.g_on) and self.g_on > self.g_off):
            raise ValueError(f"g_on = {self.g_on!r} S: allowed a finite conductance above "
                             f"g_off = {self.g_off!r} S")

    @property
    def step(self) -> float:
        """g_on - g_off (S): the conductance difference of a weight of 1."""
        return self.g_on - self.g_off


def conductance_pairs(weights: np.ndarray, levels: ConductanceLevels) -> tuple[
    np.ndarray, np.ndarray
]:
    """(G+, G-) for signed weights in [-1, 1] (module docstring), each of the weights' shape."""
    w = np.asarray(weights, float)
    if w.size and not (np.isfinite(w).all() and np.abs(w).max() <= 1.0):
        raise ValueError(f"weights must lie in [-1, 1] (levels -1, 0, +1); got values in "
                         f"[{np.nanmin(w):.4g}, {np.nanmax(w):.4g}]")
    g_plus = levels.g_off + np.maximum(w, 0.0) * levels.step
    g_minus = levels.g_off + np.maximum(-w, 0.0) * levels.step
    return g_plus, g_minus


def decode_products(i_plus: np.ndarray, i_minus: np.ndarray, levels: ConductanceLevels,
                    v_read: float) -> np.ndarray:
    """Products x @ W from the currents of the plus and minus columns (A), per neuron."""
    if not (math.isfinite(v_read) and v_read > 0):
        raise ValueError(f"v_read = {v_read!r} V: allowed a finite voltage > 0 V")
    return (np.asarray(i_plus, float) - np.asarray(i_minus, float)) / (levels.step * v_read)


def cell_targets(placement: Placement, levels: Sequence[np.ndarray]) -> np.ndarray:
    """int8 map of the array: `ON` where a cell holds g_on for `levels` (one matrix per tile,
    values -1, 0, +1), `OFF` where it holds g_off, `UNUSED` outside the tiles."""
    if len(levels) != len(placement.tiles):
        raise ValueError(f"{len(levels)} level matrices for {len(placement.tiles)} tiles")
    targets = np.full((placement.array_rows, placement.array_cols), UNUSED, np.int8)
    for k, (tile, w) in enumerate(zip(placement.tiles, levels, strict=True)):
        w = np.asarray(w)
        if w.shape != (tile.inputs, tile.neurons):
            raise ValueError(f"levels of layer {k} have shape {w.shape}: allowed "
                             f"{(tile.inputs, tile.neurons)}")
        rows, plus, minus = tile.cells()
        targets[rows, plus] = np.where(w > 0, ON, OFF)
        targets[rows, minus] = np.where(w < 0, ON, OFF)
    return targets


def measured_levels(conductances: np.ndarray, targets: np.ndarray) -> ConductanceLevels:
    """g_on and g_off as the medians of measured `conductances` (S) over the cells `targets`
    (`cell_targets`) says are on and off; NaN (unread) cells are left out. Medians, so that
    stuck cells and outliers among them move the levels little."""
    g = np.asarray(conductances, float)
    levels = []
    for code, name in ((ON, "on"), (OFF, "off")):
        values = g[(targets == code) & ~np.isnan(g)]
        if not values.size:
            raise ValueError(f"no measured cell is programmed {name}: levels need both")
        levels.append(float(np.median(values)))
    return ConductanceLevels(*levels)
