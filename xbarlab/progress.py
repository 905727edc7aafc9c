"""Progress of a long run: steps done out of a total, rate and time remaining.

A protocol calls `progress.start(total, "read map")` then `progress.advance()` per step. The
`xbarlab` command shows it as a rich progress bar with an ETA on stderr (stdout stays free for
`--json`); scripts and tests use it silently (`Progress(show=False)`) and read `done`, `total`
and `eta()`. The clock is injectable so that the ETA is testable without sleeping.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any


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
        self._started = 0.0
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int, description: str) -> None:
        """Begin a task of `total` steps (replacing any task in progress)."""
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"total = {total!r}: allowed an integer >= 0")
        self.close()
        self.total, self.done, self.description = total, 0, description
        self._started = self.clock()
        if self.show:
            self._bar = _rich_bar(self.stream)
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        """`steps` more steps are done."""
        self.done += steps
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)

    def describe(self, description: str) -> None:
        """A new description of the task in progress (its counts unchanged)."""
        self.description = description
        if self._bar is not None:
            self._bar.update(self._task, description=description)

    def elapsed(self) -> float:
        return self.clock() - self._started

    def eta(self) -> float:
        """Seconds until the task ends at the mean rate so far (NaN before the first step)."""
        if self.done == 0:
            return math.nan
        return self.elapsed() / self.done * (self.total - self.done)

    def close(self) -> None:
        """Stop rendering (the counts stay readable)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
