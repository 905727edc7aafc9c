"""Helpers of the core tests (a module of its own: several test folders have a conftest, so
`from conftest import` would find whichever was loaded last): small board benches cut from the
embedded board bench, and an ohmic test double that answers measurements from a known
conductance matrix."""

from __future__ import annotations

import math
import time

import numpy as np

from xbarlab.benchfile import Line, load_bench, parse_bench
from xbarlab.dryrun import RecordingBench
from xbarlab.interfaces import BoardReading, BoardReadings, Reading


def small_board_spec(rows: int = 4, cols: int = 4, board_size: int | None = None,
                     row_offset: int = 0, **limits: float):
    """The embedded board bench cut down to a rows x cols chip on a board of `board_size` row
    and column drivers (default: the chip's), chip row i on board row i + `row_offset`, chip
    column j on board column j; optional limit changes."""
    size = board_size or max(rows, cols)
    text = load_bench("board").text
    first_row = 1 + row_offset
    replacements = {
        "rows = 128": f"rows = {size}", "cols = 128": f"cols = {size}",
        'lines = "row:0-127"': f'lines = "row:0-{rows - 1}"',
        'outputs = "1-128"': f'outputs = "{first_row}-{first_row + rows - 1}"',
        'lines = "col:0-127"': f'lines = "col:0-{cols - 1}"',
        'outputs = "129-256"': f'outputs = "{size + 1}-{size + cols}"',
    }
    for old, new in replacements.items():
        text = text.replace(old, new, 1)
    chip = text.index("[chip]")
    text = text[:chip] + text[chip:].replace("rows = 128", f"rows = {rows}", 1).replace(
        "cols = 128", f"cols = {cols}", 1)
    for key, value in limits.items():
        start = text.index(f"{key} = ")
        end = text.index("\n", start)
        text = text[:start] + f"{key} = {value!r}" + text[end:]
    return parse_bench(text, "small-board.toml")


def attach_ohmic_array(recording: RecordingBench, g: np.ndarray) -> None:
    """Make the recording instruments measure a crossbar of conductances `g` (siemens) with no
    wire resistance and no sneak paths through floating lines: the current a source delivers
    into line L is the sum over driven lines K across the array of G * (V_L - V_K)."""

    def current_out_of(line_kind: str, index: int, potentials) -> float:
        own = potentials[Line(line_kind, index)][0]
        total = 0.0
        other_kind = "col" if line_kind == "row" else "row"
        for other, (volts, _) in potentials.items():
            if other.kind != other_kind:
                continue
            cell = g[index, other.index] if line_kind == "row" else g[other.index, index]
            total += cell * (own - volts)
        return total

    for name, smu in recording.smus.items():
        def measure(smu=smu, name=name):
            smu._log("measure", smu.nplc * 0.02)
            potentials = recording.ledger.potentials()
            ledger = recording.ledger
            current = sum(current_out_of(line.kind, line.index, potentials)
                          for line in potentials if ledger.terminal_of(line) == name)
            return Reading(smu.level, current, abs(current) >= smu.limit, time.time())
        smu.measure = measure

    ledger = recording.ledger
    for name, board in recording.boards.items():
        def currents(kind, size, potentials, name=name):
            lines = [ledger.board_line(name, kind, k) for k in range(size)]
            return np.array([current_out_of(kind, line.index, potentials)
                             if line in potentials else math.nan for line in lines])

        def measure_currents(board=board, currents=currents):
            board._log("measure_currents", board.integration_time)
            potentials = ledger.potentials()
            rows = currents("row", board.rows, potentials)
            cols = currents("col", board.columns, potentials)
            return BoardReading(rows, cols, np.abs(rows) >= board.current_limit,
                                np.abs(cols) >= board.current_limit, time.time())

        def measure_repeated(count, rows=(), columns=(), board=board, currents=currents):
            board._log("measure_repeated", count * board.integration_time)
            potentials = ledger.potentials()
            all_rows = currents("row", board.rows, potentials)
            all_cols = currents("col", board.columns, potentials)
            return BoardReadings(tuple(rows), tuple(columns),
                                 np.tile(all_rows[list(rows)], (count, 1)),
                                 np.tile(all_cols[list(columns)], (count, 1)),
                                 np.abs(all_rows) >= board.current_limit,
                                 np.abs(all_cols) >= board.current_limit, time.time())

        def read_one_repeated(row, column, voltage, count, board=board, name=name):
            board._log("read_one", count * board.integration_time)
            cell = g[ledger.board_line(name, "row", row).index,
                     ledger.board_line(name, "col", column).index]
            current = cell * voltage
            reading = Reading(voltage, current, abs(current) >= board.current_limit, time.time())
            return [reading] * count

        board.measure_currents = measure_currents
        board.measure_repeated = measure_repeated
        board.read_one = lambda row, column, voltage, read=read_one_repeated: read(
            row, column, voltage, 1)[0]
        board.read_one_repeated = read_one_repeated
