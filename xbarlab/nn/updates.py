"""Which cells to pulse: significant level changes, gated columns, defect-aware groups.

Chip-in-the-loop training moves full-precision latent weights in software; the chip holds
their levels. These pure functions turn latent weights into pulse decisions:

* `significant_levels` (E3, reference/techniques.md §6.2: apply an update only if it is
  significant and keep accumulating the rest digitally): a programmed level changes only when
  the latent weight lies at least `threshold` inside the new level's interval, i.e. the whole
  interval [w - threshold, w + threshold] quantizes to the new level. A latent weight
  hovering at a decision boundary therefore does not flip its cells back and forth.
  ``threshold = 0`` reprograms every weight whose level changed.
* `plan_writes`: the cells whose target state (on: g_on, off: g_off) changes between two level
  matrices, as SET (to on) and RESET (to off) decisions; cells marked not writable (known stuck
  or unresponsive, B1: never write a stuck cell) are left out.
* `gated_columns` (partial gating, Pham, Nguyen, Min, Micromachines 10, 245 (2019); B5): only
  the fraction of neurons most responsible for the error (largest sum of |d loss / d pre|)
  are retrained; the others keep their programmed weights.
* `column_groups` (group-based synapse- and neuron-aware training, An, Oh, Nguyen, Min,
  Micromachines 13, 273 (2022); B3): neurons sorted by the defective cells of their pair of
  columns; the worst `severe` get per-cell (synapse-aware) treatment, the next `moderate`
  per-neuron (neuron-aware) treatment, the rest none. `defect_map_bits` is the size of the
  defect information that split needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarlab.nn.quantize import Quantizer

NORMAL, NEURON_AWARE, SYNAPSE_AWARE = 0, 1, 2
"""Column groups of `column_groups`."""


def significant_levels(quantizer: Quantizer, latent: np.ndarray, programmed: np.ndarray,
                       threshold: float) -> np.ndarray:
    """Levels after an update: the new level where it is significant, else the programmed."""
    if not threshold >= 0:
        raise ValueError(f"threshold = {threshold!r}: allowed >= 0 (latent weight units)")
    boundary = quantizer.boundary(latent)
    low = quantizer.level_of(latent - threshold, boundary)
    high = quantizer.level_of(latent + threshold, boundary)
    return np.where(low == high, low, programmed)


@dataclass(frozen=True)
class CellWrites:
    """Cells of one layer to program: weight row, neuron, side (+1 plus cell, -1 minus cell)
    and target (True: SET to g_on, False: RESET to g_off), as equal-length arrays."""

    layer: int
    rows: np.ndarray
    neurons: np.ndarray
    sides: np.ndarray
    set_on: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def plan_writes(layer: int, programmed: np.ndarray, levels: np.ndarray,
                writable_plus: np.ndarray | None = None,
                writable_minus: np.ndarray | None = None) -> CellWrites:
    """The cell writes that take a tile from `programmed` levels to `levels` (module docstring)."""
    programmed, levels = np.asarray(programmed), np.asarray(levels)
    if programmed.shape != levels.shape:
        raise ValueError(f"levels of shape {levels.shape} do not match the programmed "
                         f"{programmed.shape}")
    parts = []
    for side, old_on, new_on, writable in ((1, programmed > 0, levels > 0, writable_plus),
                                           (-1, programmed < 0, levels < 0, writable_minus)):
        change = old_on != new_on
        if writable is not None:
            change &= np.asarray(writable, bool)
        rows, neurons = np.nonzero(change)
        parts.append((rows, neurons, np.full(len(rows), side), new_on[rows, neurons]))
    rows, neurons, sides, set_on = (np.concatenate(p) for p in zip(*parts, strict=True))
    return CellWrites(layer, rows, neurons, sides, set_on.astype(bool))


def gated_columns(responsibility: np.ndarray, fraction: float) -> np.ndarray:
    """bool per neuron: the ceil(fraction x neurons) largest `responsibility` (at least one)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"gate fraction = {fraction!r}: allowed 0 < fraction <= 1")
    responsibility = np.asarray(responsibility, float)
    count = max(1, int(np.ceil(fraction * len(responsibility) - 1e-9)))
    chosen = np.zeros(len(responsibility), bool)
    chosen[np.argsort(-responsibility, kind="stable")[:count]] = True
    return chosen


def column_groups(defects_per_neuron: np.ndarray, severe: int, moderate: int) -> np.ndarray:
    """Group of each neuron (`SYNAPSE_AWARE`, `NEURON_AWARE`, `NORMAL`) by its defect count."""
    counts = np.asarray(defects_per_neuron)
    for name, value in (("severe", severe), ("moderate", moderate)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} = {value!r}: allowed an integer >= 0")
    order = np.argsort(-counts, kind="stable")
    groups = np.full(len(counts), NORMAL, np.int8)
    groups[order[:severe]] = SYNAPSE_AWARE
    groups[order[severe:severe + moderate]] = NEURON_AWARE
    return groups


def defect_map_bits(groups: np.ndarray, rows: int, bits_per_neuron: int = 16) -> int:
    """Bits of defect information a group split keeps: 2 bits per cell of a synapse-aware
    neuron's two columns (four codes), `bits_per_neuron` per neuron-aware neuron (a count)."""
    groups = np.asarray(groups)
    return int(2 * 2 * rows * np.sum(groups == SYNAPSE_AWARE)
               + bits_per_neuron * np.sum(groups == NEURON_AWARE))
