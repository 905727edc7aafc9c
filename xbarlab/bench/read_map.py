"""The ``read-map`` protocol: read every cell of the chip and record its conductance map.

Each reading is committed to the run as it arrives, so an interrupted map loses nothing and a
resumed run reads only the cells it has not read yet. The map recorded at the end covers every
cell read in this run, across resumptions.
"""

from __future__ import annotations

import numpy as np

from xbarlab.bench.protocols import register_protocol


@register_protocol("read-map")
def read_map(bench, run, progress, v_read: float = 0.2, scheme: str = "ground",
             current_limit: float = 1e-4) -> dict:
    """Read every unmasked cell at `v_read` volts with `scheme` bias; conductance map in S."""
    done = run.done_cells("read")
    cells = bench.map_cells(skip=done)
    progress.start(len(cells), f"read map ({scheme}, {v_read:g} V)")
    for reading in bench.iter_read_map(v_read, scheme, skip=done, current_limit=current_limit):
        run.record_point(reading.row, reading.col, "read", voltage=reading.voltage,
                         current=reading.current, compliance=reading.compliance,
                         t=reading.timestamp)
        progress.advance()
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
