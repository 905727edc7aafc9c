"""Which cells a protocol works on: a cell selection (``cells``) and a mask file (``mask``).

Shared by the protocols of this package; `check_cells` and `check_mask` are the parameter
checks of their declarations (`xbarlab.protocols.parameters`), run against the bench file's
chip before any instrument is opened.
"""

from __future__ import annotations

import numpy as np


def parse_cells(text: str, rows: int, cols: int, parameter: str = "cells") -> np.ndarray:
    """Boolean (rows, cols) selection from ``"all"`` or ``"ROWS,COLS"``.

    ROWS and COLS are each an index (``3``), an inclusive range (``0-7``) or ``*`` (every one),
    e.g. ``"3,4"`` (one cell), ``"0-7,0-3"`` (a block), ``"*,5"`` (column 5).
    """
    selection = np.zeros((rows, cols), bool)
    text = text.strip().lower()
    if text == "all":
        selection[:] = True
        return selection
    parts = text.split(",")
    allowed = (f"'all' or 'ROWS,COLS' with each an index, a range a-b or '*' "
               f"(rows 0..{rows - 1}, columns 0..{cols - 1})")
    if len(parts) != 2:
        raise ValueError(f"{parameter} = {text!r}: allowed {allowed}")
    spans = []
    for part, size in zip(parts, (rows, cols), strict=True):
        part = part.strip()
        if part == "*":
            spans.append(slice(0, size))
            continue
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last) if dash else int(first)
        except ValueError:
            raise ValueError(f"{parameter} = {text!r}: allowed {allowed}") from None
        if not 0 <= low <= high < size:
            raise ValueError(f"{parameter} = {text!r}: {part!r} is out of range; allowed {allowed}")
        spans.append(slice(low, high + 1))
    selection[spans[0], spans[1]] = True
    return selection


def load_mask(path: str, rows: int, cols: int) -> np.ndarray:
    """Boolean (rows, cols) mask from a ``.npy`` file or a text/CSV file of 0/1 values."""
    try:
        if path.endswith(".npy"):
            data = np.load(path, allow_pickle=False)
        else:
            data = np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2)
    except (OSError, ValueError):  # its content is not quoted back: it may be any file
        raise ValueError(f"mask = {path!r} cannot be read as a mask; allowed: a .npy file or "
                         f"a text/CSV file of 0/1, shape ({rows}, {cols})") from None
    if data.shape != (rows, cols):
        raise ValueError(f"mask = {path!r} has shape {data.shape}; allowed ({rows}, {cols})")
    return np.asarray(data, bool)


def check_cells(text: str, spec) -> None:
    """Parameter check: `text` selects at least one cell of the chip of bench file `spec` that
    the bench file does not mask."""
    selection = parse_cells(text, spec.chip.rows, spec.chip.cols)
    for row, col in spec.chip.masked:
        selection[row, col] = False
    if not selection.any():
        raise ValueError(f"cells = {text!r}: selects no cell that the bench file does not "
                         "mask (chip.masked); allowed: a selection with unmasked cells")


def check_mask(path: str, spec) -> None:
    """Parameter check: `path` ('' for none) is a mask of the chip of bench file `spec`."""
    if path:
        load_mask(path, spec.chip.rows, spec.chip.cols)


def selected_cells(text: str, spec) -> int:
    """How many cells ``cells`` = `text` selects on the chip of bench file `spec` (for the
    planned-operation bounds)."""
    return int(parse_cells(text, spec.chip.rows, spec.chip.cols).sum())
