"""Export one run from the run store to HDF5 or CSV.

HDF5 layout (``format_version`` 1), modelled on ArC's per-crosspoint time series plus array maps::

    /                               attributes: the run's metadata
        format_version   int        1; readers must check it
        run_id           int
        protocol         str
        params           str        JSON object of the protocol parameters
        bench_text       str        the bench file, verbatim
        instruments      str        JSON object: instrument name -> identity
        software_version str        xbarlab version that recorded the run
        seed             int        omitted if the run had no seed
        shape            int[2]     (rows, cols); omitted if the run declared no shape
        started_at       float      Unix time
        ended_at         float      Unix time; omitted while the run is running
        status           str        running | completed | aborted | failed
        traceback        str        omitted unless the run failed
        writer_host      str
        writer_pid       int
        checkpoints      str        JSON object: checkpoint key -> value
        events           str        JSON list of {seq, t, event, detail}: the run's history
        exported_by      str        xbarlab version that wrote this file
    /crosspoints/W{row}B{col}       one group per crosspoint with points; attributes row, col
        timeseries                  compound dataset, one entry per point, in recording order:
            seq          int64      the point's sequence number in the whole run
            t            float64    seconds (bench clock, or Unix time)
            operation    enum u1    read=0, pulse=1, set=2, reset=3, form=4
            voltage      float64    volts
            current      float64    amperes
            pulse_width  float64    seconds
            compliance   bool
            missing      uint8      bit 0 voltage, bit 1 current, bit 2 pulse_width: the value
                                    was not measured (stored as NaN). A NaN whose bit is clear
                                    is a NaN the instrument reported.
    /snapshots/{seq}-{phase}        each instrument snapshot of the run (start and end of each
                                    session); attributes phase, t
        {instrument}                attributes identity, address, model (or error), and one per
                                    setting with its value; ``units``: JSON object setting ->
                                    unit; a multi-channel SMU has one subgroup per channel
    /maps/{name}                    one group per map name
        data             float64[k, rows, cols]   the k maps of that name, in recording order
        t                float64[k]
        seq              int64[k]   sequence numbers among all the run's maps

CSV export writes three files into a directory:

- ``run-{id}-points.csv``: ``seq,row,col,operation,voltage,current,pulse_width,compliance,t``;
  an empty field is a value not measured, ``nan``/``inf`` are as reported, compliance is 0/1.
- ``run-{id}-maps.csv``: long format ``seq,name,t,row,col,value``, one line per map entry.
- ``run-{id}-run.json``: the metadata above (with ``null`` for absent values).

Floats are written with Python's shortest round-trip representation, so reading either format
back gives the stored values exactly (NaN payload bits aside, in CSV). ``check_hdf5`` validates
a file against this layout before anyone analyses it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import h5py
import numpy as np

import xbarlab
from xbarlab.store import OPERATIONS, STATUSES, Point, Run, RunInfo, RunStore

FORMAT_VERSION = 1

MISSING_VOLTAGE, MISSING_CURRENT, MISSING_PULSE_WIDTH = 1, 2, 4
"""Bits of the HDF5 ``missing`` field."""

OPERATION_ENUM = h5py.enum_dtype(
    {name: code for code, name in enumerate(OPERATIONS)}, basetype=np.uint8
)
TIMESERIES_DTYPE = np.dtype(
    [
        ("seq", np.int64),
        ("t", np.float64),
        ("operation", OPERATION_ENUM),
        ("voltage", np.float64),
        ("current", np.float64),
        ("pulse_width", np.float64),
        ("compliance", np.bool_),
        ("missing", np.uint8),
    ]
)
POINT_COLUMNS = ("seq", "row", "col", "operation", "voltage", "current", "pulse_width",
                 "compliance", "t")
MAP_COLUMNS = ("seq", "name", "t", "row", "col", "value")


REQUIRED_ATTRIBUTES = {
    "format_version": int,
    "run_id": int,
    "protocol": str,
    "params": str,
    "bench_text": str,
    "instruments": str,
    "software_version": str,
    "started_at": float,
    "status": str,
    "writer_host": str,
    "writer_pid": int,
    "checkpoints": str,
    "events": str,
    "exported_by": str,
}
OPTIONAL_ATTRIBUTES = {"seed": int, "ended_at": float, "traceback": str, "parent_id": int}


class HDF5FormatError(ValueError):
    """An HDF5 file does not follow the xbarlab run layout; the message says where."""


def crosspoint_name(row: int, col: int) -> str:
    """HDF5 group name of crosspoint (row, col): word line ``row``, bit line ``col``."""
    return f"W{row}B{col}"


def export_hdf5(
    store: RunStore, run_id: int, path: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write run ``run_id`` to an HDF5 file at ``path`` (layout in the module docstring)."""
    path = Path(path)
    _refuse_existing(path, overwrite)
    run = store.open_run(run_id)
    info = run.info
    with h5py.File(path, "w") as file:
        _write_metadata(file.attrs, info, run)
        _write_crosspoints(file.create_group("crosspoints"), run.points())
        _write_snapshots(file.create_group("snapshots"), run)
        maps = file.create_group("maps")
        for name in sorted({record.name for record in run.maps()}):
            records = run.maps(name)
            group = maps.create_group(name)
            group.create_dataset("data", data=np.stack([record.data for record in records]))
            group.create_dataset("t", data=np.array([record.t for record in records], np.float64))
            group.create_dataset("seq", data=np.array([record.seq for record in records], np.int64))
    return path


def export_csv(
    store: RunStore, run_id: int, directory: str | os.PathLike, overwrite: bool = False
) -> list[Path]:
    """Write run ``run_id`` as points CSV, maps CSV and metadata JSON into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    run = store.open_run(run_id)
    info = run.info
    paths = [directory / f"run-{info.run_id}-{part}" for part in ("points.csv", "maps.csv",
                                                                  "run.json")]
    for path in paths:
        _refuse_existing(path, overwrite)
    points_path, maps_path, meta_path = paths
    with points_path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(POINT_COLUMNS)
        for point in run.points():
            writer.writerow(
                [point.seq, point.row, point.col, point.operation, _text(point.voltage),
                 _text(point.current), _text(point.pulse_width), int(point.compliance),
                 _text(point.t)]
            )
    with maps_path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(MAP_COLUMNS)
        for record in run.maps():
            for (row, col), value in np.ndenumerate(record.data):
                writer.writerow([record.seq, record.name, _text(record.t), row, col,
                                 _text(float(value))])
    metadata = {"format_version": FORMAT_VERSION, "exported_by": xbarlab.__version__,
                **_metadata(info, run)}
    meta_path.write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    return paths


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"export path {str(path)!r} exists; pass overwrite=True to replace it"
        )


def _metadata(info: RunInfo, run: Run) -> dict:
    """Run metadata as one JSON-ready dict (None where a value is absent)."""
    fields = dataclasses.asdict(info)
    del fields["n_points"], fields["n_maps"]  # derived from the data, not metadata
    fields["shape"] = None if info.shape is None else list(info.shape)
    fields["checkpoints"] = run.checkpoints()
    fields["events"] = [dataclasses.asdict(event) for event in run.events()]
    fields["snapshots"] = [dataclasses.asdict(shot) for shot in run.snapshots()]
    return fields


def _write_metadata(attrs: h5py.AttributeManager, info: RunInfo, run: Run) -> None:
    attrs["format_version"] = FORMAT_VERSION
    attrs["exported_by"] = xbarlab.__version__
    for key, value in _metadata(info, run).items():
        if value is None:
            continue
        if key == "snapshots":
            continue  # structured under /snapshots
        if key in ("params", "instruments", "checkpoints", "events"):
            value = json.dumps(value, sort_keys=True)
        attrs[key] = value


def _write_snapshots(group: h5py.Group, run: Run) -> None:
    """Each snapshot as a group of instrument groups whose attributes are the settings."""
    for shot in run.snapshots():
        taken = group.create_group(f"{shot.seq}-{shot.phase}")
        taken.attrs["phase"] = shot.phase
        taken.attrs["t"] = shot.t
        for name, instrument in shot.instruments.items():
            node = taken.create_group(name)
            for key in ("identity", "address", "model", "error"):
                if key in instrument:
                    node.attrs[key] = instrument[key]
            settings = dict(instrument.get("settings", {}))
            for channel, channel_settings in settings.pop("channels", {}).items():
                _write_settings(node.create_group(channel), channel_settings)
            _write_settings(node, settings)


def _write_settings(node: h5py.Group, settings: dict) -> None:
    """Settings as attributes (lists and mixed values as JSON text), their units in ``units``."""
    units = {}
    for name, entry in settings.items():
        units[name] = entry.get("unit", "")
        value = entry.get("value", entry.get("error"))
        if value is None:
            value = "none"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value)
        node.attrs[name] = value
    node.attrs["units"] = json.dumps(units, sort_keys=True)


def _write_crosspoints(group: h5py.Group, points: list[Point]) -> None:
    """One ``timeseries`` dataset per crosspoint, each in recording order."""
    by_cell: dict[tuple[int, int], list[Point]] = {}
    for point in points:
        by_cell.setdefault((point.row, point.col), []).append(point)
    codes = {name: code for code, name in enumerate(OPERATIONS)}
    for (row, col), cell_points in sorted(by_cell.items()):
        series = np.array(
            [
                (p.seq, p.t, codes[p.operation], _nan_if_none(p.voltage), _nan_if_none(p.current),
                 _nan_if_none(p.pulse_width), p.compliance, _missing_bits(p))
                for p in cell_points
            ],
            dtype=TIMESERIES_DTYPE,
        )
        cell = group.create_group(crosspoint_name(row, col))
        cell.attrs["row"] = row
        cell.attrs["col"] = col
        cell.create_dataset("timeseries", data=series)


def _missing_bits(point: Point) -> int:
    return (
        (MISSING_VOLTAGE if point.voltage is None else 0)
        | (MISSING_CURRENT if point.current is None else 0)
        | (MISSING_PULSE_WIDTH if point.pulse_width is None else 0)
    )


def _nan_if_none(value: float | None) -> float:
    return np.nan if value is None else value


def _text(value: float | None) -> str:
    """CSV text of a float: empty for not measured, else the shortest exact representation."""
    return "" if value is None else repr(float(value))


def check_hdf5(path: str | os.PathLike) -> None:
    """Raise :class:`HDF5FormatError` naming the first place ``path`` breaks the layout."""
    with h5py.File(path, "r") as file:
        _check_root(file)
        shape = tuple(int(n) for n in file.attrs["shape"]) if "shape" in file.attrs else None
        for name, cell in file["crosspoints"].items():
            _check_crosspoint(name, cell, shape)
        for name, group in file["maps"].items():
            _check_map_group(name, group, shape)


def _check_root(file: h5py.File) -> None:
    version = _attribute(file, "format_version")
    if version != FORMAT_VERSION:
        raise HDF5FormatError(
            f"format_version = {version!r}; allowed: {FORMAT_VERSION} (this xbarlab's format)"
        )
    present_optional = {k: kind for k, kind in OPTIONAL_ATTRIBUTES.items() if k in file.attrs}
    for key, kind in {**REQUIRED_ATTRIBUTES, **present_optional}.items():
        value = _attribute(file, key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise HDF5FormatError(
                f"root attribute {key} = {value!r}; allowed: a value of type {kind.__name__}"
            )
    if file.attrs["status"] not in STATUSES:
        raise HDF5FormatError(
            f"root attribute status = {file.attrs['status']!r}; allowed: {', '.join(STATUSES)}"
        )
    for group in ("crosspoints", "maps"):
        if not isinstance(file.get(group), h5py.Group):
            raise HDF5FormatError(f"group /{group} is missing; every run file has one")


def _check_crosspoint(name: str, cell: h5py.Group, shape: tuple[int, int] | None) -> None:
    row, col = _attribute(cell, "row"), _attribute(cell, "col")
    if row is None or col is None or name != crosspoint_name(int(row), int(col)):
        raise HDF5FormatError(
            f"/crosspoints/{name} has row = {row!r}, col = {col!r}; allowed: a group named "
            "W{row}B{col} with matching row and col attributes"
        )
    if shape is not None and not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise HDF5FormatError(f"/crosspoints/{name} lies outside the run's shape {shape}")
    series = cell.get("timeseries")
    if not isinstance(series, h5py.Dataset) or series.dtype != TIMESERIES_DTYPE:
        raise HDF5FormatError(
            f"/crosspoints/{name}/timeseries is missing or has dtype "
            f"{getattr(series, 'dtype', None)}; allowed: {TIMESERIES_DTYPE}"
        )
    if h5py.check_enum_dtype(series.dtype["operation"]) != h5py.check_enum_dtype(OPERATION_ENUM):
        raise HDF5FormatError(
            f"/crosspoints/{name}/timeseries operation codes differ; allowed: "
            f"{h5py.check_enum_dtype(OPERATION_ENUM)}"
        )


def _attribute(node: h5py.Group, key: str):
    """An attribute as a plain Python value (numpy scalars unwrapped), ``None`` if absent."""
    value = node.attrs.get(key)
    return value.item() if isinstance(value, np.generic) else value


def _check_map_group(name: str, group: h5py.Group, shape: tuple[int, int] | None) -> None:
    data, t, seq = (group.get(part) for part in ("data", "t", "seq"))
    if not all(isinstance(part, h5py.Dataset) for part in (data, t, seq)):
        raise HDF5FormatError(f"/maps/{name} lacks data, t or seq; each map group has all three")
    if data.ndim != 3 or data.dtype != np.float64:
        raise HDF5FormatError(
            f"/maps/{name}/data has shape {data.shape} and dtype {data.dtype}; "
            "allowed: float64 of shape (count, rows, cols)"
        )
    if shape is not None and data.shape[1:] != shape:
        raise HDF5FormatError(
            f"/maps/{name}/data maps are {data.shape[1:]}; allowed: the run's shape {shape}"
        )
    if t.shape != (data.shape[0],) or seq.shape != (data.shape[0],):
        raise HDF5FormatError(
            f"/maps/{name}: t {t.shape} and seq {seq.shape} must both have shape "
            f"({data.shape[0]},), one entry per map"
        )
