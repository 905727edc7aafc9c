"""``xbarlab.load(RUN)``: one stored run for a notebook, as a pandas DataFrame of its points and
its maps as 2-D arrays.

pandas because a scientist analyses a run's points by grouping, filtering and plotting columns
(per cell, per operation, against time), which is what a DataFrame is for; the frame carries the
units of its columns in ``attrs`` (``points.attrs["units"]["current"] == "A"``) and the run's
start, since ``t`` counts seconds from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xbarlab.export import CHUNK, POINT_COLUMNS, iso_utc, since_start


@dataclass
class RunData:
    """A run read back: `info` (`RunInfo`: protocol, parameters, bench text, times), `points`
    (a DataFrame, one row per point in recording order), `maps` (the latest map of each name,
    a 2-D array), `map_units` (each map's unit) and `metrics` (as the run stored them)."""

    info: Any
    points: Any
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    map_units: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def load(run: int, store: Any = None) -> RunData:
    """Run `run` of `store` (a `RunStore`, or a directory: else ``$XBARLAB_DATA``, else
    ``./xbarlab-data``) as a `RunData`. The points are read a chunk at a time into their
    columns (no object per point): ``seq``, ``row``, ``col``, ``operation`` (categorical),
    ``voltage`` (V), ``current`` (A), ``pulse_width`` (s), ``compliance`` (bool), ``missing``
    (bits: voltage 1, current 2, pulse width 4 not measured; such values read NaN) and ``t``
    (seconds since the run's start, ``points.attrs["start"]`` in ISO 8601)."""
    import pandas as pd

    from xbarlab.store import OPERATIONS, RunStore

    owned = not isinstance(store, RunStore)
    runs = RunStore(store) if owned else store
    try:
        stored = runs.open_run(run)
        info = stored.info
        columns = {name: np.empty(info.n_points, dtype) for name, (dtype, *_) in
                   POINT_COLUMNS.items()}
        filled = 0
        for chunk in stored.point_chunks(CHUNK):
            size = min(len(chunk["seq"]), info.n_points - filled)
            chunk["t"] = since_start(chunk["t"], info.started_at)
            for name, column in columns.items():
                column[filled:filled + size] = chunk[name][:size]
            filled += size
            if filled == info.n_points:
                break
        columns = {name: column[:filled] for name, column in columns.items()}
        columns["operation"] = pd.Categorical.from_codes(columns["operation"],
                                                         categories=list(OPERATIONS))
        columns["compliance"] = columns["compliance"].astype(bool)
        points = pd.DataFrame(columns)
        points.attrs.update({"run_id": info.run_id, "protocol": info.protocol,
                             "start": iso_utc(info.started_at), "start_unix": info.started_at,
                             "units": {name: POINT_COLUMNS[name][1] for name in columns}})
        latest = {}
        for record in stored.maps():
            latest[record.name] = record
        return RunData(info, points, {name: record.data for name, record in latest.items()},
                       {name: record.unit for name, record in latest.items()},
                       stored.checkpoints().get("metrics") or {})
    finally:
        if owned:
            runs.close()
