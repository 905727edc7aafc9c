"""The calibration experiment: which cells to program and which line currents to measure, so
that the path, wire and cell parameters are identifiable (`xbarlab.calibration.fit`).

* A line's path resistance shows in the current that passes between two of its
  low-resistance cells (through the line's end node): every line needs at least two that
  work, so the patterns give every row the same number (a few more than two: a stuck cell
  does not SET) and spread the columns evenly (`balanced_pattern`).
* The cells show in the row-to-column entries, the loads in the self entries, the paths in
  the same-kind entries; the latter are many (m^2 / 2 and n^2 / 2) and each line is paired
  with a few others, evenly spread (`partner_offsets`).
* What one excitation senses depends on the bench: a board every line, a matrix bench as many
  lines as it has SMU channels (`excitation_plan`).
"""

from __future__ import annotations

import numpy as np

MIN_PER_LINE = 4
"""Low-resistance cells a pattern gives every row at least (two are needed, and a stuck cell
may not SET)."""


def balanced_pattern(rows: int, cols: int, density: float, rng) -> np.ndarray:
    """A random binary pattern with max(MIN_PER_LINE, round(density cols)) low-resistance
    cells in every row (at most cols), each row taking the columns with the fewest so far
    (ties at random), so the columns' counts differ by at most one."""
    per_row = min(cols, max(MIN_PER_LINE, round(density * cols)))
    pattern = np.zeros((rows, cols), bool)
    count = np.zeros(cols)
    for row in rng.permutation(rows):
        chosen = np.lexsort((rng.random(cols), count))[:per_row]
        pattern[row, chosen] = True
        count[chosen] += 1
    return pattern


def partner_offsets(size: int, partners: int) -> np.ndarray:
    """Offsets d (1 <= d <= size // 2) pairing line i with line (i + d) mod size, spread
    evenly; every pair once when `partners` covers them all."""
    if size < 2:
        return np.zeros(0, dtype=int)
    return np.unique(np.round(np.linspace(1, size // 2, min(partners, size // 2))).astype(int))


def excitation_plan(rows: int, cols: int, capacity: int, partners: int
                    ) -> list[tuple[int, tuple[int, ...]]]:
    """(driven terminal, sensed terminals) of every excitation, terminals numbered rows
    first. With `capacity` >= every line, one excitation per line sensing every line;
    otherwise the driven line and up to capacity - 1 others: every column for a row, and
    each line's partners of its own kind."""
    total = rows + cols
    if capacity >= total:
        return [(t, tuple(range(total))) for t in range(total)]
    plan = []
    for kind, size, first in (("row", rows, 0), ("col", cols, rows)):
        offsets = partner_offsets(size, partners)
        for i in range(size):
            targets = [first + (i + d) % size for d in offsets]
            if kind == "row":
                targets = list(range(rows, total)) + targets
            for start in range(0, len(targets), capacity - 1):
                plan.append((first + i, (first + i, *targets[start:start + capacity - 1])))
    return plan
