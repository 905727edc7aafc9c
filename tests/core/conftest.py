"""Fixtures for the core tests: recording benches built from the embedded bench files, and an
ohmic test double that answers measurements from a known conductance matrix."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from xbarlab.benchfile import Line, load_bench, parse_bench
from xbarlab.dryrun import RecordingBench
from xbarlab.interfaces import BoardReading, Reading


def small_board_spec(rows: int = 4, cols: int = 4, **limits: float):
    """The embedded board bench cut down to a rows x cols chip, with optional limit changes."""
    text = load_bench("board").text
    text = text.replace("rows = 128", f"rows = {rows}").replace("cols = 128", f"cols = {cols}")
    text = text.replace('lines = "row:0-127"', f'lines = "row:0-{rows - 1}"')
    text = text.replace('outputs = "1-128"', f'outputs = "1-{rows}"')
    text = text.replace('lines = "col:0-127"', f'lines = "col:0-{cols - 1}"')
    text = text.replace('outputs = "129-256"', f'outputs = "{rows + 1}-{rows + cols}"')
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

    for board in recording.boards.values():
        def measure_currents(board=board):
            board._log("measure_currents", board.integration_time)
            potentials = recording.ledger.potentials()
            rows = np.array([current_out_of("row", i, potentials)
                             if Line("row", i) in potentials else math.nan
                             for i in range(board.rows)])
            cols = np.array([current_out_of("col", j, potentials)
                             if Line("col", j) in potentials else math.nan
                             for j in range(board.columns)])
            return BoardReading(rows, cols, np.abs(rows) >= board.current_limit,
                                np.abs(cols) >= board.current_limit, time.time())

        def read_one(row, column, voltage, board=board):
            board._log("read_one", board.integration_time)
            current = g[row, column] * voltage
            return Reading(voltage, current, abs(current) >= board.current_limit, time.time())

        board.measure_currents = measure_currents
        board.read_one = read_one


@pytest.fixture
def default_recording() -> RecordingBench:
    return RecordingBench(load_bench("default"))


@pytest.fixture
def conductances() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(1e-6, 1e-4, size=(32, 32))
