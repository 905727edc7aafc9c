"""Crash-safe run store: SQLite (WAL) with every point committed as it is measured.

Public API::

    store = RunStore(data_dir=None)          # argument, else $XBARLAB_DATA, else ./xbarlab-data
    with store.start_run(protocol="read-map", params={...}, bench_text=..., instruments={...},
                         seed=0, shape=(32, 32)) as run:
        run.record_point(row=3, col=5, operation="read", voltage=0.2, current=1.9e-6)
        run.record_map("conductance", G, unit="S")
    store.runs(); store.run_info(run_id); store.open_run(run_id); store.resume(run_id)

See ``xbarlab.export`` for HDF5 and CSV export.
"""

from xbarlab.store.calibrations import CalibrationNotFoundError
from xbarlab.store.records import (
    FINAL_STATUSES,
    OPERATIONS,
    RESUMABLE_STATUSES,
    STATUSES,
    CalibrationRecord,
    MapRecord,
    Point,
    RunEvent,
    RunInfo,
    Snapshot,
)
from xbarlab.store.run import Run, RunNotFoundError, RunStateError
from xbarlab.store.runstore import DATA_DIR_ENV, RunStore, resolve_data_dir, shown_status
from xbarlab.store.schema import StoreOpenError, StoreSchemaError

__all__ = [
    "DATA_DIR_ENV",
    "CalibrationNotFoundError",
    "CalibrationRecord",
    "FINAL_STATUSES",
    "OPERATIONS",
    "RESUMABLE_STATUSES",
    "STATUSES",
    "MapRecord",
    "Point",
    "Run",
    "RunEvent",
    "RunInfo",
    "RunNotFoundError",
    "RunStateError",
    "RunStore",
    "Snapshot",
    "StoreOpenError",
    "StoreSchemaError",
    "resolve_data_dir",
    "shown_status",
]
