"""The ``read-map`` protocol: read every cell of the chip and record its conductance map.

Each reading is committed to the run as it arrives, with Ctrl-C and SIGTERM held between taking
it and committing it, so an interrupted map loses nothing it measured and a resumed run reads
only the cells it has not read yet. The map recorded at the end covers every
cell read in this run, across resumptions.
"""

from __future__ import annotations

import numpy as np

from xbarlab.bench.protocols import register_protocol
from xbarlab.safety import signals_held


@register_protocol("read-map")
def read_map(bench, run, progress, v_read: float = 0.2, scheme: str = "ground",
             current_limit: float = 1e-3) -> dict:
    """Read every unmasked cell at `v_read` volts with `scheme` bias; conductance map in S."""
    done = run.done_cells("read")
    cells = bench.map_cells(skip=done)
    progress.start(len(cells), f"read map ({scheme}, {v_read:g} V)")
    batches = bench.iter_read_batches(v_read, scheme, skip=done, current_limit=current_limit)
    while True:
        with signals_held():  # a reading taken is a reading stored, even on Ctrl-C
            batch = next(batches, None)
            if batch is None:
                break
            run.record_points([
                {"row": r.row, "col": r.col, "operation": "read", "voltage": r.voltage,
                 "current": r.current, "compliance": r.compliance, "t": r.timestamp}
                for r in batch
            ])
        progress.advance(len(batch))
    conductance = np.full((bench.rows, bench.cols), np.nan)
    compliant = 0
    for point in run.points(operation="read"):
        conductance[point.row, point.col] = point.current / point.voltage
        compliant += point.compliance
    run.record_map("conductance", conductance)
    read = np.isfinite(conductance)
    trips = bench.round_trips()
    reads = sum(trips.get(op, {"calls": 0})["calls"] for op in ("read", "read_row"))
    round_trips = sum(trips.get(op, {"round_trips": 0})["round_trips"]
                      for op in ("read", "read_row"))
    return {
        "cells_read": int(read.sum()),
        "cells_read_now": len(cells),
        "cells_in_compliance": int(compliant),
        "median_conductance_s": float(np.median(conductance[read])) if read.any() else None,
        "read_operations": reads,
        "round_trips_per_cell": round_trips / len(cells) if cells else 0.0,
    }
