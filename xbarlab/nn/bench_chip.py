"""The `xbarlab.nn.chip_loop.Chip` interface over a bench: measure with it, program through it.

Products come from `xbarlab.nn.inference.BenchForward` (matrix-vector products on a board,
measured conductances on a switch-matrix bench). Programming is delegated to a callable the
caller supplies, ``program(row, col, set_on) -> (pulses, energy_j)``, so the programming
algorithm (write-verify, coarse-fine, one pulse) stays with the protocol that owns it; this
class only turns cell writes of a layer into physical cells through the placement, counts
pulses and energy, and has the forward pass re-read what was programmed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xbarlab.nn.inference import BenchForward
from xbarlab.nn.updates import CellWrites

Programmer = Callable[[int, int, bool], tuple[int, float]]
"""(physical row, physical column, True: SET to g_on / False: RESET to g_off)
-> (pulses used, energy in J)."""


class BenchChip:
    """A placed network on a bench (module docstring); satisfies `Chip`."""

    def __init__(self, forward: BenchForward, program: Programmer):
        self._forward = forward
        self._program = program
        self._energy = 0.0
        self.pulses = 0
        """Pulses reported by `program` so far."""

    @property
    def energy(self) -> float:
        """Programming energy reported so far (J)."""
        return self._energy

    def forward(self, layer: int, inputs: np.ndarray) -> np.ndarray:
        return self._forward(layer, inputs)

    def physical_cells(self, writes: CellWrites) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) on the array of the cells of `writes`."""
        tile = self._forward.placement.tiles[writes.layer]
        rows = np.asarray(tile.rows)[writes.rows]
        cols = np.where(writes.sides > 0, np.asarray(tile.plus_cols)[writes.neurons],
                        np.asarray(tile.minus_cols)[writes.neurons])
        return rows.astype(int), cols.astype(int)

    def apply(self, writes: CellWrites) -> int:
        rows, cols = self.physical_cells(writes)
        pulses = 0
        for row, col, on in zip(rows, cols, writes.set_on, strict=True):
            used, energy = self._program(int(row), int(col), bool(on))
            pulses += int(used)
            self._energy += float(energy)
        self.pulses += pulses
        self._forward.refresh(writes.layer, rows, cols)
        return pulses
