"""What a protocol's phases cost: pulses, their energy, readings, failures, bench, store and wall
time.

A `Ledger` keeps one `Tally` per phase (``characterise``, ``program``, ``loop`` ...) and the
phase now running; `Timed` wraps the bench or the run so that the time spent in their calls is
added to the phase now running (``bench_s``: instrument I/O, on a virtual bench the simulation
too; ``store_s``: committing to the run store). The ledger's `state` is JSON, so a protocol
checkpoints it with its progress and a resumed run continues its totals.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class Tally:
    """The cost of one phase."""

    pulses: int = 0
    energy_j: float = 0.0
    """Σ |V| I t of the pulses (`xbarlab.protocols.programming.pulse_energy`)."""
    reads: int = 0
    failures: int = 0
    """Cells that did not reach their state (defects found on the way)."""
    bench_s: float = 0.0
    store_s: float = 0.0
    wall_s: float = 0.0
    """All the phase's time (the rest of it, beyond bench and store, is computation)."""

    def add(self, other: Tally) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class Ledger:
    """A `Tally` per phase and the phase now running (module docstring)."""

    def __init__(self, state: dict[str, dict] | None = None):
        self.tallies = {name: Tally(**values) for name, values in (state or {}).items()}
        self.phase = "setup"

    @property
    def now(self) -> Tally:
        """The tally of the phase now running."""
        return self.tallies.setdefault(self.phase, Tally())

    @contextmanager
    def phase_of(self, name: str) -> Iterator[Tally]:
        """Book everything inside the block, and its wall-clock time, to phase `name` (then
        back to the one before)."""
        before, self.phase = self.phase, name
        start = time.perf_counter()
        try:
            yield self.now
        finally:
            self.now.wall_s += time.perf_counter() - start
            self.phase = before

    def total(self, phases: Iterable[str] | None = None) -> Tally:
        """The sum of the tallies of `phases` (default: every phase)."""
        total = Tally()
        for name in self.tallies if phases is None else phases:
            if name in self.tallies:
                total.add(self.tallies[name])
        return total

    def state(self) -> dict[str, dict]:
        """Every tally as JSON-ready values (for `Ledger(state)`)."""
        return {name: dataclasses.asdict(tally) for name, tally in self.tallies.items()}


class Timed:
    """`target` with the time of each call of `methods` added to field `field` of the ledger's
    running tally; a call that returns a generator is timed step by step (a read map taken
    batch by batch). Every other attribute is the target's own."""

    def __init__(self, target: Any, methods: Iterable[str], ledger: Ledger, field: str):
        self._target, self._methods = target, frozenset(methods)
        self._ledger, self._field = ledger, field

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name not in self._methods:
            return value
        return self._timed(value)

    def _add(self, seconds: float) -> None:
        tally = self._ledger.now
        setattr(tally, self._field, getattr(tally, self._field) + seconds)

    def _timed(self, method: Callable) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                self._add(time.perf_counter() - start)
            return self._steps(result) if inspect.isgenerator(result) else result

        return call

    def _steps(self, generator: Iterator[Any]) -> Iterator[Any]:
        while True:
            start = time.perf_counter()
            try:
                item = next(generator)
            except StopIteration:
                self._add(time.perf_counter() - start)
                return
            self._add(time.perf_counter() - start)
            yield item
