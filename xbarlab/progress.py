"""Progress of a long run: steps done out of a total, rate and time remaining.

A protocol calls `progress.start(total, "read map")` then `progress.advance()` per step; each
`start` begins a phase. A protocol of several phases says how many with `progress.plan(n)`
(again when it learns better), and progress shows "phase k of n" and an overall ETA: the time
so far over the fraction of phases done (the current one counted by its steps). The `xbarlab`
command shows it as a rich progress bar on stderr (stdout stays free for `--json`) when stderr
is a terminal, and one line per phase otherwise (a log, a pipe, a CI job). Scripts and tests use
it silently (`Progress(show=False)`) and read `done`, `total`, `eta()` and `overall_eta()`. The
clock is injectable so that the ETAs are testable without sleeping.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

LISTEN_PERIOD = 1.0
"""Seconds between two calls of a `Progress.listener` while steps advance."""


class Progress:
    """Counts steps of one task at a time; optionally renders them with rich."""

    def __init__(self, show: bool = True, clock: Callable[[], float] = time.monotonic,
                 stream: Any = None) -> None:
        self.show = show
        self.clock = clock
        self.stream = stream if stream is not None else sys.stderr
        self.description = ""
        self.total = 0
        self.done = 0
        self.phase = 0
        self.phases = 0
        self._started = 0.0
        self._first_started: float | None = None
        self._bar: Any = None
        self._task: Any = None
        self._terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.listener: Callable[[dict[str, Any]], None] | None = None
        """Called with `state()` at most once per `LISTEN_PERIOD` seconds and at each phase's
        start (the engine stores it in the run, for `xbarlab view`)."""
        self._told = -math.inf

    def plan(self, phases: int) -> None:
        """The run has `phases` phases in all (each `start` begins one); may be revised."""
        if isinstance(phases, bool) or not isinstance(phases, int) or phases < 1:
            raise ValueError(f"phases = {phases!r}: allowed an integer >= 1")
        self.phases = phases

    def add_phases(self, count: int = 1) -> None:
        """`count` more phases than planned (work the run found it has to do: cells to
        program again after a re-check)."""
        self.phases += count

    def extend(self, steps: int) -> None:
        """The phase in progress has `steps` more steps than it started with (a re-read's
        further readings of the cells still undecided): the same phase, a longer one."""
        self.total += steps
        if self._bar is not None:
            self._bar.update(self._task, total=self.total)

    def start(self, total: int, description: str) -> None:
        """Begin a phase of `total` steps (ending the one in progress)."""
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"total = {total!r}: allowed an integer >= 0")
        self.close()
        self.total, self.done, self.description = total, 0, description
        self._started = self.clock()
        if self._first_started is None:
            self._first_started = self._started
        self.phase += 1
        self.phases = max(self.phases, self.phase)
        if self.listener is not None:
            self._tell()
        if self.show and self._terminal:
            self._bar = _rich_bar(self.stream)
            self._bar.start()
            self._task = self._bar.add_task(self._label(), total=total)

    def _label(self) -> str:
        """The description with the phase ("phase 3 of 7") and the overall ETA."""
        head = f"phase {self.phase} of {self.phases}: " if self.phases > 1 else ""
        overall = self.overall_eta()
        tail = f" (all phases: ~{duration_text(overall)} left)" if self.phases > 1 \
            and math.isfinite(overall) else ""
        return f"{head}{self.description}{tail}"

    def advance(self, steps: int = 1) -> None:
        """`steps` more steps are done."""
        self.done += steps
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=self._label())
        if self.listener is not None and self.clock() - self._told >= LISTEN_PERIOD:
            self._tell()

    def state(self) -> dict[str, Any]:
        """Where the run is: phase k of n, its description and steps, and both ETAs (seconds,
        None when not known yet)."""
        def known(seconds: float) -> float | None:
            return seconds if math.isfinite(seconds) else None

        return {"phase": self.phase, "phases": self.phases, "description": self.description,
                "done": self.done, "total": self.total, "eta_s": known(self.eta()),
                "overall_eta_s": known(self.overall_eta())}

    def _tell(self) -> None:
        self._told = self.clock()
        self.listener(self.state())

    def describe(self, description: str) -> None:
        """A new description of the task in progress (its counts unchanged)."""
        self.description = description
        if self._bar is not None:
            self._bar.update(self._task, description=self._label())

    def elapsed(self) -> float:
        return self.clock() - self._started

    def eta(self) -> float:
        """Seconds until the task ends at the mean rate so far (NaN before the first step)."""
        if self.done == 0:
            return math.nan
        return self.elapsed() / self.done * (self.total - self.done)

    def overall_eta(self) -> float:
        """Seconds until the last planned phase ends: the time since the first phase began over
        the fraction of phases done, the current one counted by its steps (NaN before any)."""
        if self._first_started is None:
            return math.nan
        current = self.done / self.total if self.total else 1.0
        fraction = (self.phase - 1 + current) / max(self.phases, self.phase)
        if fraction <= 0:
            return math.nan
        spent = self.clock() - self._first_started
        return spent / fraction - spent

    def close(self) -> None:
        """End the phase's rendering (the counts stay readable): without a terminal, its one
        line (phase, steps, time taken, overall ETA)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None
        elif self.show and not self._terminal and self._first_started is not None \
                and self.description:
            print(f"{self._label()}: {self.done}/{self.total} in "
                  f"{duration_text(self.elapsed())}", file=self.stream, flush=True)
            self.description = ""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def duration_text(seconds: float) -> str:
    """Seconds as ``42 s``, ``7 min 5 s`` or ``2 h 3 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"


def _rich_bar(stream: Any):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    return RichProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(file=stream), transient=False,
    )
