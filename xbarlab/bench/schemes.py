"""Bias schemes: the level of every crossbar line when one cell is read or pulsed.

``float`` leaves unselected lines disconnected, ``ground`` holds them at 0 V, ``v/2`` at V/2 and
``v/3`` puts unselected rows at V/3 and unselected columns at 2V/3. ``idle`` leaves them to the
bench's idle state: on a matrix bench they all go to an SMU terminal that stays off, so that
SMU's output-off mode (the bench file's ``off_mode``) decides: held at 0 V (``zero``,
``normal``) or floating together on its matrix input (``high_z``); on a board, the bench's idle
mode. Only differences between row and column levels reach the cells, so every level may move
by one offset (`shift_candidates`) to fit the instruments a bench has.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from xbarlab.benchfile import Line

READ_SCHEMES = ("float", "ground", "v/2", "v/3", "idle")
"""How unselected lines are biased during a read."""
PULSE_SCHEMES = ("float", "v/2", "v/3")
"""How unselected lines are biased during a pulse (half-select protection)."""

def bias_levels(
    scheme: str, row: int, col: int, volts: float, rows: int, cols: int, allowed=READ_SCHEMES
) -> dict[Line, float | None]:
    """Level of every line for cell (row, col) at `volts` under `scheme`; None = floating (or,
    under ``idle``, left to the bench's idle state)."""
    if scheme not in allowed:
        raise ValueError(f"scheme = {scheme!r} is not known; allowed: {', '.join(allowed)}")
    volts = float(volts)  # a plain float (a numpy scalar would slow every comparison later)
    unselected_row, unselected_col = {
        "float": (None, None),
        "idle": (None, None),
        "ground": (0.0, 0.0),
        "v/2": (volts / 2, volts / 2),
        "v/3": (volts / 3, 2 * volts / 3),
    }[scheme]
    row_lines, col_lines = _lines(rows, cols)
    levels: dict[Line, float | None] = dict.fromkeys(row_lines, unselected_row)
    levels.update(dict.fromkeys(col_lines, unselected_col))
    if 0 <= row < rows:
        levels[row_lines[row]] = volts
    if 0 <= col < cols:
        levels[col_lines[col]] = 0.0
    return levels


@cache
def _lines(rows: int, cols: int) -> tuple[tuple[Line, ...], tuple[Line, ...]]:
    """The rows and the columns of a rows x cols chip, made once (a read map asks per cell)."""
    return (tuple(Line("row", i) for i in range(rows)),
            tuple(Line("col", j) for j in range(cols)))


def shifted(levels: Mapping[Line, float | None], offset: float) -> dict[Line, float | None]:
    """Every driven level moved by `offset` (cell voltages unchanged)."""
    moved = {v: tidy(v + offset) for v in set(levels.values()) if v is not None}
    moved[None] = None
    return {line: moved[v] for line, v in levels.items()}


def shift_candidates(levels: Mapping[Line, float | None]) -> list[float]:
    """Offsets worth trying: none, or one that brings a used level to 0 (a ground input)."""
    distinct = sorted({tidy(v) for v in levels.values() if v is not None and v != 0})
    return [0.0] + [-v for v in distinct]


def line_list(lines: frozenset[Line]) -> str:
    shown = sorted(lines)
    text = ", ".join(str(line) for line in shown[:3])
    return text + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")


def tidy(value: float) -> float:
    return float(f"{value:.12g}")
