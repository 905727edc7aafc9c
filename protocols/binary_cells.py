"""Binary cells through the bench: read, switched on (SET) or off (RESET) and verified, defects
found on the way; every pulse and reading recorded, its energy and the bench time counted.

The ``train`` protocol uses it for its cheap defect characterisation, the ex-situ programming
of a network, bringing a chip back to the levels of a checkpoint, and as the programmer of
chip-in-the-loop training (`CellSwitcher.program` is an `xbarlab.nn.bench_chip.Programmer`).

A binary cell has two states a network uses: on (its low-resistance state) and off. One pulse
of the right polarity switches its whole window, so a conductance target between the two is
not a state it can hold and programming is a pulse and a verify, not a search: a cell is on
when its conductance is above `CellSwitcher.threshold`, the geometric mean of the off and on
levels (`probe_levels` measures them on a few cells, the chip's own medians refine them later).
A cell that has not switched after its pulse gets up to ``retries`` more, each ``v_step``
stronger. One that still has not is a defect: stuck-on (stays on under RESET) or stuck-off
(stays off under SET) when it still sits nearer its old level than the threshold (beyond the
geometric mean of the two, a quarter of the window in log scale: a reading of a cell that did
not move shifts with the IR drop of its row, so a relative change cannot tell), unresponsive
when it moved part of the way, or could not be read.

Reads use the ``read_scheme`` bias (``ground`` by default): a board reads every cell of a row in
one measurement, so the cells of a batch are pulsed first and verified with one reading per
row; a switch-matrix bench reads cell by cell. Readings at a current limit, beyond the sensing
range, or NaN (a dry run measures nothing) leave a cell's conductance unknown.

Energy per pulse: `xbarlab.protocols.programming.pulse_energy`, from the readings before and
after it. The defect map is coded as `xbarlab.nn.defects` (0 healthy, 1 stuck-on,
2 stuck-off, 3 unresponsive) with NaN where a cell was never examined; "healthy" means
healthy as far as examined (a cell never asked to switch on is only known not to be stuck-on).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from xbarlab.protocols.programming import pulse_energy
from xbarlab.protocols.recording import recorded_batches

from xbarlab.nn.defects import HEALTHY, STUCK_OFF, STUCK_ON, UNRESPONSIVE
from xbarlab.safety import signals_held

Cell = tuple[int, int]

PROBE_CELLS = 16
"""Cells `probe_levels` switches off and on to measure the two levels."""


@dataclass(frozen=True)
class SwitchSettings:
    """Pulses and verify readings of `CellSwitcher` (volts, seconds, amperes)."""

    v_set: float = 1.6
    v_reset: float = -1.6
    v_step: float = 0.1
    retries: int = 1
    width: float = 1e-7
    pulse_scheme: str = "v/2"
    v_read: float = 0.2
    read_scheme: str = "ground"
    current_limit: float = 1e-2


@dataclass(frozen=True)
class Switched:
    """What one `CellSwitcher.switch` did."""

    pulses: int
    energy_j: float
    failed: tuple[Cell, ...]


class CellSwitcher:
    """Reads and switches binary cells of `bench` (module docstring); records every pulse and
    reading on `run` and counts them in `ledger` (an `xbarlab.protocols.accounting.Ledger`).

    `conductance` holds the latest reading of every cell (S, NaN: unknown), `defects` the
    defect codes found (NaN: never examined)."""

    def __init__(self, bench, run, ledger, settings: SwitchSettings):
        self.bench, self.run, self.ledger, self.settings = bench, run, ledger, settings
        shape = (bench.rows, bench.cols)
        self.conductance = np.full(shape, math.nan)
        self.defects = np.full(shape, math.nan)
        self.threshold = self.off = self.on = math.nan
        self.energy_measured = True
        """Whether every pulse's energy so far is what the instruments measured they delivered
        (False once one was estimated: the selected cell's share, `pulse_energy`)."""
        self._masked = set(bench.spec.chip.masked)

    # -- reading -----------------------------------------------------------------------------

    def read(self, cells: Iterable[Cell]) -> None:
        """Read `cells` (masked cells are not), record the readings, update `conductance`."""
        mask = np.zeros(self.conductance.shape, bool)
        for cell in cells:
            mask[cell] = True
        s = self.settings
        batches = self.bench.iter_read_batches(s.v_read, s.read_scheme, mask,
                                               current_limit=s.current_limit)
        for batch in recorded_batches(self.run, batches):
            for reading in batch:
                known = not (reading.compliance or getattr(reading, "overflow", False))
                self.conductance[reading.row, reading.col] = (
                    reading.conductance if known else math.nan)
            self.ledger.now.reads += len(batch)

    def is_on(self, cells: Sequence[Cell]) -> np.ndarray:
        """Per cell: True above the threshold, False below, None when unknown."""
        g = self.conductance[tuple(np.array(cells).T)] if cells else np.zeros(0)
        return np.array([None if not (math.isfinite(v) and math.isfinite(self.threshold))
                         else bool(v > self.threshold) for v in g], dtype=object)

    # -- levels --------------------------------------------------------------------------------

    def probe_levels(self, cells: Sequence[Cell]) -> tuple[float, float]:
        """Switch the first `PROBE_CELLS` of `cells` off, then on, reading after each, and set
        the threshold between the medians: (off level, on level) in S. Unknown (NaN) when the
        medians are not two distinct positive levels (nothing measured: a dry run)."""
        probe = [cell for cell in cells if cell not in self._masked][:PROBE_CELLS]
        levels = []
        for on in (False, True):
            self._pulse_all(probe, self._volts(on, 0))
            self.read(probe)
            values = self.conductance[tuple(np.array(probe).T)]
            levels.append(float(np.median(values)) if np.isfinite(values).all() else math.nan)
        off, on = levels
        self.set_levels(off, on)
        return off, on

    def set_levels(self, off: float, on: float) -> None:
        """The threshold between on and off: the geometric mean of the two levels (S)."""
        distinct = math.isfinite(off) and math.isfinite(on) and 0 < off < on
        self.off, self.on = (off, on) if distinct else (math.nan, math.nan)
        self.threshold = math.sqrt(off * on) if distinct else math.nan

    # -- switching -----------------------------------------------------------------------------

    def switch(self, cells: Sequence[Cell], on: bool) -> Switched:
        """Switch `cells` on (SET) or off (RESET): a pulse each, a verify, up to ``retries``
        stronger pulses for those that did not switch; failures get their defect code. Cells
        whose state is unknown before are pulsed too; masked cells are left alone."""
        tally = self.ledger.now
        pulses, energy = tally.pulses, tally.energy_j
        pending = [cell for cell in cells if cell not in self._masked]
        for attempt in range(1 + self.settings.retries):
            if not pending:
                break
            before = {cell: self.conductance[cell] for cell in pending}
            volts = self._volts(on, attempt)
            delivered = self._pulse_all(pending, volts)
            self.read(pending)
            for cell in pending:
                spent = delivered[cell]
                if spent is None:  # not measured: the selected cell's share, estimated
                    self.energy_measured = False
                    spent = pulse_energy(volts, before[cell], self.conductance[cell],
                                         self.settings.width, self.settings.current_limit)
                tally.energy_j += spent if math.isfinite(spent) else 0.0
            state = self.is_on(pending)
            pending = [cell for cell, now in zip(pending, state, strict=True)
                       if now is not None and now != on]
        for cell in pending:
            self._found_defect(cell, on)
        tally.failures += len(pending)
        return Switched(tally.pulses - pulses, tally.energy_j - energy, tuple(pending))

    def program(self, row: int, col: int, set_on: bool) -> tuple[int, float]:
        """One cell switched on or off: (pulses, energy in J), an
        `xbarlab.nn.bench_chip.Programmer`."""
        done = self.switch([(row, col)], set_on)
        return done.pulses, done.energy_j

    def bring_to(self, wanted: dict[Cell, bool], read_first: bool = True) -> Switched:
        """Every cell of `wanted` in its state (True: on): read them (unless `read_first` is
        False and every one of them was read before), then switch those on the wrong side,
        except cells already known stuck."""
        cells = list(wanted)
        if read_first or not np.isfinite(self.conductance[tuple(np.array(cells).T)]).all():
            self.read(cells)
        stuck = {STUCK_ON, STUCK_OFF}
        state = dict(zip(cells, self.is_on(cells), strict=True))
        results = []
        for on in (False, True):
            todo = [cell for cell in cells if wanted[cell] == on and state[cell] != on
                    and self.defects[cell] not in stuck]
            results.append(self.switch(todo, on))
        return Switched(sum(r.pulses for r in results), sum(r.energy_j for r in results),
                        sum((r.failed for r in results), ()))

    def mark_healthy(self, cells: Iterable[Cell]) -> None:
        """Examined cells with no defect found (NaN entries become HEALTHY)."""
        for cell in cells:
            if math.isnan(self.defects[cell]):
                self.defects[cell] = HEALTHY

    # -- helpers -------------------------------------------------------------------------------

    def _volts(self, on: bool, attempt: int) -> float:
        s = self.settings
        return s.v_set + attempt * s.v_step if on else s.v_reset - attempt * s.v_step

    def _pulse_all(self, cells: Sequence[Cell], volts: float) -> dict[Cell, float | None]:
        """One pulse per cell, each recorded as it is sent; the energy the instruments
        measured they delivered for each (None where they did not measure it)."""
        s = self.settings
        operation = "set" if volts > 0 else "reset"
        delivered = {}
        for row, col in cells:
            with signals_held():
                self.bench.pulse(row, col, volts, s.width, s.pulse_scheme,
                                 current_limit=s.current_limit)
                delivered[row, col] = self.bench.last_pulse_energy
                self.run.record_point(row, col, operation, voltage=volts, pulse_width=s.width)
            self.ledger.now.pulses += 1
        return delivered

    def _found_defect(self, cell: Cell, on: bool) -> None:
        """The code of a cell that did not switch `on` (module docstring)."""
        g = self.conductance[cell]
        if on and g < math.sqrt(self.off * self.threshold):
            self.defects[cell] = STUCK_OFF
        elif not on and g > math.sqrt(self.on * self.threshold):
            self.defects[cell] = STUCK_ON
        else:  # part of the way, or unknown (NaN compares false)
            self.defects[cell] = UNRESPONSIVE
