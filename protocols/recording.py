"""Taking cell readings and storing them as one step, shared by every protocol that reads maps.

A reading that was taken is a reading that is stored: Ctrl-C and SIGTERM are held from the
moment a batch of readings is taken until it is committed to the run, so an interrupted run
loses nothing it measured, and a resumed one does not measure it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from xbarlab.safety import signals_held


def reading_points(batch: Iterable[Any], operation: str = "read") -> list[dict]:
    """Run-store points of a batch of `CellReading`s."""
    return [
        {"row": r.row, "col": r.col, "operation": operation, "voltage": r.voltage,
         "current": r.current, "compliance": r.compliance, "t": r.timestamp}
        for r in batch
    ]


def recorded_batches(run, batches: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
    """Yield each batch of `bench.iter_read_batches` after committing it to `run`; taking the
    batch and storing it happen with signals held."""
    while True:
        with signals_held():
            batch = next(batches, None)
            if batch is None:
                return
            run.record_points(reading_points(batch))
        yield batch
