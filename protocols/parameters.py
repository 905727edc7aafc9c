"""Parameter declarations that several protocols share, declared once (`xbarlab.params`).

A protocol writes ``v_read: VRead = 0.2``: the kind, unit, bounds and help of a read voltage
come from here, so every protocol checks it the same way and says the same in ``--help``.
Bounds that name the bench (``limits.max_voltage``, ``chip.rows``) are resolved against the
bench file when the parameters are checked, before any instrument is opened.
"""

from __future__ import annotations

from typing import Annotated

from xbarlab.protocols.cells import check_cells, check_mask

from xbarlab.bench import PULSE_SCHEMES, READ_SCHEMES
from xbarlab.bench.opening import check_pulse_width
from xbarlab.params import Param

VRead = Annotated[float, Param(
    "read voltage across the selected cell", unit="V", nonzero=True,
    minimum="-limits.max_read_voltage", maximum="limits.max_read_voltage")]
ReadScheme = Annotated[str, Param(
    "bias of the unselected lines during a read", choices=READ_SCHEMES)]
PulseScheme = Annotated[str, Param(
    "bias of the unselected lines during a pulse", choices=PULSE_SCHEMES)]
Compliance = Annotated[float, Param(
    "current limit of the sources", unit="A", above=0.0, maximum="limits.max_compliance")]
Width = Annotated[float, Param(
    "pulse width", unit="s", above=0.0, maximum="limits.max_pulse_width",
    check=check_pulse_width)]
SetVoltage = Annotated[float, Param(
    "SET pulse amplitude", unit="V", above=0.0, maximum="limits.max_voltage")]
ResetVoltage = Annotated[float, Param(
    "RESET pulse amplitude (negative)", unit="V", minimum="-limits.max_voltage", below=0.0)]
Cells = Annotated[str, Param(
    "cells: 'all' or 'ROWS,COLS', each an index, a range a-b or '*' (e.g. '0-3,5')",
    check=check_cells)]
Mask = Annotated[str, Param(
    "file of the chip's shape (.npy of booleans, or text/CSV of 0/1); true = include "
    "('' for none)", check=check_mask)]
Seed = Annotated[int, Param("seed of the random targets", minimum=0, maximum=2**63 - 1)]
Rows = Annotated[int, Param("rows from row 0", zero="every row of the chip", minimum=1,
                            maximum="chip.rows")]
Cols = Annotated[int, Param("columns from column 0", zero="every column of the chip",
                            minimum=1, maximum="chip.cols")]
Correct = Annotated[bool, Param(
    "report reads and products corrected with the chip's calibration record (when it has "
    "one); false reports what the instruments sensed")]
