"""Defect maps: codes, what a tile's weights see, and mapping around defective lines.

A defect map is a 2-D array of the crossbar's shape, either coded (`HEALTHY` 0, `STUCK_ON` 1:
stuck at the LRS, `STUCK_OFF` 2: stuck at the HRS, `UNRESPONSIVE` 3: does not follow
programming, state unknown; reference/techniques.md §2.2) or boolean (True: defective, kind
unknown, taken as `UNRESPONSIVE`).

`avoid_defects` is the line-redundancy remedy (Liu, Hu, Strachan, Li, DAC 2017: remapping to
redundant columns; techniques.md §2.3, issue 13): while some row or column of a tile holds more
defective cells than a free line would give it, the worst one moves onto the best free line.
A line is free for a tile when the tile does not use it and no other tile uses the cells the
tile would take there (a row used by another tile in other columns is free). Each move strictly
lowers the number of defective cells in use, so the search ends; what is left is reported
(`DefectReport.unavoidable`), for training to work around (`effective_levels`, chip-in-the-loop
training in `xbarlab.nn.chip_loop`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xbarlab.nn.placement import Placement, Tile

HEALTHY, STUCK_ON, STUCK_OFF, UNRESPONSIVE = 0, 1, 2, 3
DEFECT_CODES = (HEALTHY, STUCK_ON, STUCK_OFF, UNRESPONSIVE)


def defect_codes(defect_map: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The map as int8 codes (booleans: True -> `UNRESPONSIVE`), validated against `shape`."""
    d = np.asarray(defect_map)
    if d.ndim != 2 or (shape is not None and d.shape != tuple(shape)):
        wanted = f"{shape}" if shape is not None else "a 2-D array"
        raise ValueError(f"defect map of shape {d.shape}: allowed {wanted}")
    if d.dtype == bool:
        return np.where(d, UNRESPONSIVE, HEALTHY).astype(np.int8)
    if not np.issubdtype(d.dtype, np.integer):
        raise ValueError(f"defect map of dtype {d.dtype}: allowed bool or integer codes "
                         f"{DEFECT_CODES}")
    bad = ~np.isin(d, DEFECT_CODES)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"defect map cell ({r}, {c}) = {int(d[r, c])}: allowed codes "
                         f"{DEFECT_CODES} (healthy, stuck-on, stuck-off, unresponsive)")
    return d.astype(np.int8)


def tile_codes(tile: Tile, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Defect codes of every weight's plus and minus cell, each (inputs + 1, neurons)."""
    rows, plus, minus = tile.cells()
    return codes[rows, plus], codes[rows, minus]


def effective_levels(levels: np.ndarray, plus_codes: np.ndarray,
                     minus_codes: np.ndarray) -> np.ndarray:
    """The weights a pair of cells holds when `levels` are programmed into it around defects.

    A stuck-on cell conducts g_on, a stuck-off cell g_off whatever was programmed; an
    unresponsive cell's state is unknown and is taken as programmed. The weight is
    (plus on) - (minus on): e.g. +1 programmed with a stuck-off plus cell holds 0.
    """
    levels = np.asarray(levels, float)
    plus_on = np.where(plus_codes == STUCK_ON, 1.0,
                       np.where(plus_codes == STUCK_OFF, 0.0, levels > 0))
    minus_on = np.where(minus_codes == STUCK_ON, 1.0,
                        np.where(minus_codes == STUCK_OFF, 0.0, levels < 0))
    return plus_on - minus_on


@dataclass(frozen=True)
class LineMove:
    """One line of a tile moved: `kind` "row" or "col", physical line `source` -> `target`."""

    tile: int
    kind: str
    source: int
    target: int
    defects_before: int
    defects_after: int


@dataclass(frozen=True)
class DefectReport:
    """What `avoid_defects` did, and the defective cells still in use."""

    moves: tuple[LineMove, ...]
    defects_before: int
    """Defective cells inside the tiles before the moves."""
    unavoidable: tuple[tuple[int, int, int, int], ...]
    """(tile, physical row, physical column, code) of each defective cell still in use."""

    @property
    def defects_after(self) -> int:
        return len(self.unavoidable)

    def to_dict(self) -> dict:
        return {"moves": [vars(m) for m in self.moves], "defects_before": self.defects_before,
                "defects_after": self.defects_after,
                "unavoidable": [list(c) for c in self.unavoidable]}


def _other_cells(placement: Placement, skip: int) -> np.ndarray:
    used = np.zeros((placement.array_rows, placement.array_cols), bool)
    for k, tile in enumerate(placement.tiles):
        if k != skip:
            used[np.ix_(tile.rows, tile.cols)] = True
    return used


def _best_move(placement: Placement, bad: np.ndarray) -> tuple[int, str, int, int, int, int]:
    """(gain, kind, tile, source, target, target_defects) of the best single line move."""
    best = (0, "", -1, -1, -1, -1)
    for k, tile in enumerate(placement.tiles):
        others = _other_cells(placement, k)
        rows, cols = list(tile.rows), list(tile.cols)
        for kind, lines, across, count, taken in (
            ("row", rows, cols, placement.array_rows, others[:, cols].any(axis=1)),
            ("col", cols, rows, placement.array_cols, others[rows, :].any(axis=0)),
        ):
            on_lines = bad[:, across].sum(axis=1) if kind == "row" else bad[across, :].sum(0)
            free = np.ones(count, bool)
            free[lines] = False
            free &= ~taken
            if not free.any():
                continue
            target = int(np.flatnonzero(free)[np.argmin(on_lines[free])])
            source = max(lines, key=lambda line: on_lines[line])
            gain = int(on_lines[source] - on_lines[target])
            if gain > best[0]:
                best = (gain, kind, k, source, target, int(on_lines[target]))
    return best


def _moved(tile: Tile, kind: str, source: int, target: int) -> Tile:
    def swap(lines: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(target if line == source else line for line in lines)

    if kind == "row":
        return replace(tile, rows=swap(tile.rows))
    return replace(tile, plus_cols=swap(tile.plus_cols), minus_cols=swap(tile.minus_cols))


def _defective_cells(placement: Placement, codes: np.ndarray) -> list[tuple[int, int, int, int]]:
    cells = []
    for k, tile in enumerate(placement.tiles):
        block = codes[np.ix_(tile.rows, tile.cols)]
        for i, j in np.argwhere(block != HEALTHY):
            row, col = tile.rows[i], tile.cols[j]
            cells.append((k, row, col, int(codes[row, col])))
    return cells


def avoid_defects(placement: Placement, defect_map: np.ndarray) -> tuple[Placement, DefectReport]:
    """`placement` with its most defective lines moved onto free ones (module docstring)."""
    codes = defect_codes(defect_map, (placement.array_rows, placement.array_cols))
    bad = (codes != HEALTHY).astype(np.int64)
    before = len(_defective_cells(placement, codes))
    moves = []
    while True:
        gain, kind, k, source, target, after = _best_move(placement, bad)
        if gain <= 0:
            break
        tiles = list(placement.tiles)
        tiles[k] = _moved(tiles[k], kind, source, target)
        placement = replace(placement, tiles=tuple(tiles))
        moves.append(LineMove(k, kind, source, target, after + gain, after))
    return placement, DefectReport(tuple(moves), before, tuple(_defective_cells(placement, codes)))
