"""Export one run from the run store to HDF5 or CSV, with units, descriptions and the time origin
in the files themselves.

HDF5 layout (``format_version`` 2): columns, not a group per cell, so a run of millions of points
is a handful of chunked, compressed datasets, written a chunk at a time in bounded memory::

    /                       attributes: the run's metadata (`ROOT_ATTRIBUTES`: run_id, protocol,
                            params (JSON), bench_text, instruments, software_version, seed,
                            shape, started_at (Unix time, s) and started_at_iso (ISO 8601 UTC),
                            ended_at, status, traceback, writer_host, writer_pid, parent_id,
                            checkpoints and events (JSON), exported_by), and ``layout``: this
                            description of the file, in the file
    /points/<column>        one 1-D dataset per column, one entry per point in recording order
                            (entry k is point seq k): seq, row, col, operation, voltage (V),
                            current (A), pulse_width (s), compliance, missing, t (seconds since
                            the run's start, stated in its ``units``: "seconds since <ISO 8601>").
                            Each dataset has ``units``, ``long_name`` and ``description``;
                            ``seq`` is the dimension scale of the others (netCDF-4 style), so
                            xarray reads the group as one Dataset. ``operation`` codes and
                            ``missing`` bits are named in CF ``flag_values``/``flag_masks``
                            and ``flag_meanings``: a value whose missing bit is set was not
                            measured (it reads NaN); a NaN whose bit is clear was reported.
    /cells/row, col, first, count   the cells that have points, by (row, col); cell k's points are
                            /cells/points[first[k]:first[k] + count[k]] (their seqs, in order)
    /maps/<name>            the latest map of that name, 2-D (rows, cols), attributes units, t
                            (seconds since the start), seq, count (maps of that name)
    /map_series/<name>      every map of that name: data (count, rows, cols), t, seq
    /parameters             one attribute per protocol parameter, ``units`` (JSON) beside them
    /snapshots/<seq>-<phase>/<instrument>   each instrument snapshot of the run (start and end
                            of each session): identity, address, model or error, one attribute
                            per setting and ``units`` (JSON); a channel per subgroup

`cell_points` reads one cell's time series (ArC-style per-cell access) through /cells.
``check_hdf5`` validates a file against this layout before anyone analyses it.

CSV export writes three files into a directory: ``run-{id}-points.csv`` (a ``#`` comment
header with the run, its start in ISO 8601 and what empty fields mean, then columns with their
units: ``current (A)``, ``t (s)`` since the start), ``run-{id}-maps.csv`` (long format, one line
per map entry, with its unit) and ``run-{id}-run.json`` (the metadata). Floats are written with
Python's shortest round-trip representation, so reading either format back gives the stored
values exactly (NaN payload bits aside, in CSV), times as start + t.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import h5py
import numpy as np

import xbarlab
from xbarlab.store import OPERATIONS, STATUSES, Run, RunInfo, RunStore
from xbarlab.store.run import MISSING_BITS

FORMAT_VERSION = 2
CHUNK = 1 << 16
"""Points per HDF5 chunk and per block read from the store while exporting."""

POINT_COLUMNS: dict[str, tuple[Any, str, str, str]] = {
    # name: (dtype, units, long name, description)
    "seq": (np.int64, "1", "sequence number", "the point's number in the run, from 0, in "
            "recording order"),
    "row": (np.int32, "1", "row", "word line of the crosspoint, from 0"),
    "col": (np.int32, "1", "column", "bit line of the crosspoint, from 0"),
    "operation": (np.uint8, "1", "operation", "what the point is: a read, or a pulse of a kind "
                  "(codes in flag_values and flag_meanings)"),
    "voltage": (np.float64, "V", "voltage", "read voltage, or pulse amplitude, applied to the "
                "selected row"),
    "current": (np.float64, "A", "current", "current sensed through the selected cell's column"),
    "pulse_width": (np.float64, "s", "pulse width", "duration of a pulse; not measured for "
                    "reads"),
    "compliance": (np.uint8, "1", "in compliance", "1 when the source was at its current "
                   "limit: the current is the limit, not a property of the cell"),
    "missing": (np.uint8, "1", "not measured", "bit field: a set bit means the value was not "
                "measured and reads NaN; a NaN whose bit is clear is one the instrument "
                "reported"),
    "t": (np.float64, "s", "time", "seconds since the run's start (the start is in units and "
          "in the root attribute started_at_iso), on the host clock"),
}
"""Every point column: its HDF5 type, unit, long name and description (HDF5 and CSV)."""

ROOT_ATTRIBUTES = {
    "format_version": int, "run_id": int, "protocol": str, "params": str, "bench_text": str,
    "instruments": str, "software_version": str, "started_at": float, "started_at_iso": str,
    "status": str, "writer_host": str, "writer_pid": int, "checkpoints": str, "events": str,
    "exported_by": str, "layout": str,
}
OPTIONAL_ATTRIBUTES = {"seed": int, "ended_at": float, "ended_at_iso": str, "traceback": str,
                       "parent_id": int}
MAP_COLUMNS = ("seq", "name", "t (s)", "row", "col", "value", "unit")


class HDF5FormatError(ValueError):
    """An HDF5 file does not follow the xbarlab run layout; the message says where."""


def iso_utc(t: float) -> str:
    """Unix time `t` as ISO 8601 in UTC with microseconds (``2025-01-31T12:00:00.123456Z``)."""
    moment = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def since_start(t: np.ndarray | float, start: float) -> Any:
    """Seconds since `start`. Exact for times within a factor 2 of the start (every host time of
    a run: Sterbenz's lemma), so ``start + since_start(t, start) == t`` reads them back."""
    return np.subtract(t, start)


# ------------------------------------------------------------------------ HDF5


def export_hdf5(
    store: RunStore, run_id: int, path: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write run ``run_id`` to an HDF5 file at ``path`` (layout in the module docstring), a
    chunk of points at a time."""
    path = Path(path)
    _refuse_existing(path, overwrite)
    run = store.open_run(run_id)
    info = run.info
    with h5py.File(path, "w") as file:
        _write_metadata(file.attrs, info, run)
        cells = _write_points(file.create_group("points"), run, info)
        _write_cells(file.create_group("cells"), cells)
        del cells
        _write_maps(file.create_group("maps"), file.create_group("map_series"), run, info)
        _write_parameters(file.create_group("parameters"), info)
        _write_snapshots(file.create_group("snapshots"), run)
    return path


def _write_points(group: h5py.Group, run: Run, info: RunInfo) -> np.ndarray:
    """Every point, as columns, chunk by chunk; returns every point's cell as one number,
    row x 2^32 + column (the index is built from it)."""
    group.attrs["description"] = "every point of the run, one entry per point in recording order"
    datasets = {}
    for name, (dtype, unit, long_name, description) in POINT_COLUMNS.items():
        dataset = group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype,
                                       chunks=(CHUNK,), compression="gzip",
                                       compression_opts=1, shuffle=True)
        dataset.attrs["units"] = unit
        dataset.attrs["long_name"] = long_name
        dataset.attrs["description"] = description
        datasets[name] = dataset
    datasets["t"].attrs["units"] = f"seconds since {iso_utc(info.started_at)}"
    datasets["operation"].attrs["flag_values"] = np.arange(len(OPERATIONS), dtype=np.uint8)
    datasets["operation"].attrs["flag_meanings"] = " ".join(OPERATIONS)
    datasets["missing"].attrs["flag_masks"] = np.array(list(MISSING_BITS.values()), np.uint8)
    datasets["missing"].attrs["flag_meanings"] = " ".join(
        f"{name}_not_measured" for name in MISSING_BITS)
    cells, count = [], 0
    for chunk in run.point_chunks(CHUNK):
        size = len(chunk["seq"])
        chunk["t"] = since_start(chunk["t"], info.started_at)
        for name, dataset in datasets.items():
            dataset.resize((count + size,))
            dataset[count:] = chunk[name]
        cells.append(chunk["row"].astype(np.int64) << 32 | chunk["col"])
        count += size
    datasets["seq"].make_scale("point")
    for name, dataset in datasets.items():
        if name != "seq":
            dataset.dims[0].attach_scale(datasets["seq"])
    group.attrs["count"] = count
    return np.concatenate(cells) if cells else np.zeros(0, np.int64)


def _write_cells(group: h5py.Group, cells: np.ndarray) -> None:
    """The per-cell index: each cell's points as a run of seqs in /cells/points."""
    group.attrs["description"] = ("index of the points by cell: cell k's points are "
                                  "points[first[k]:first[k] + count[k]], seqs in order")
    order = np.argsort(cells, kind="stable")  # each cell's points stay in recording order
    cells = cells[order]
    starts = np.flatnonzero(np.diff(cells, prepend=-1)) if cells.size else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, cells.size])
    for name, data, description in (
            ("row", (cells[starts] >> 32).astype(np.int32), "row of each cell that has points"),
            ("col", (cells[starts] & 0xFFFFFFFF).astype(np.int32),
             "column of each cell that has points"),
            ("first", starts.astype(np.int64), "index in points of the cell's first point"),
            ("count", counts.astype(np.int64), "how many points the cell has")):
        dataset = group.create_dataset(name, data=data)
        dataset.attrs["units"] = "1"
        dataset.attrs["description"] = description
    compressed = {"chunks": (min(CHUNK, order.size),), "compression": "gzip",
                  "compression_opts": 1, "shuffle": True} if order.size else {}
    dataset = group.create_dataset("points", data=order, **compressed)
    dataset.attrs["units"] = "1"
    dataset.attrs["description"] = "seqs of the points, grouped by cell, in recording order"


def cell_points(file: h5py.File, row: int, col: int) -> dict[str, np.ndarray]:
    """The time series of cell (`row`, `col`) of an exported run: each point column
    (`POINT_COLUMNS`) of that cell's points, in recording order (empty when it has none).
    ArC-style per-cell access, over the columnar layout through its /cells index."""
    cells = file["cells"]
    match = np.flatnonzero((cells["row"][()] == row) & (cells["col"][()] == col))
    if not match.size:
        seqs = np.zeros(0, np.int64)
    else:
        first, count = int(cells["first"][match[0]]), int(cells["count"][match[0]])
        seqs = cells["points"][first:first + count]
    points = file["points"]
    return {name: points[name][seqs] if seqs.size else np.zeros(0, points[name].dtype)
            for name in POINT_COLUMNS}


def _write_maps(latest: h5py.Group, series: h5py.Group, run: Run, info: RunInfo) -> None:
    latest.attrs["description"] = "the latest map of each name, 2-D (rows, cols)"
    series.attrs["description"] = "every map of each name: data (count, rows, cols), t, seq"
    for name in run.map_names():
        records = run.maps(name)
        last = records[-1]
        dataset = latest.create_dataset(name, data=last.data)
        dataset.attrs["units"] = last.unit
        dataset.attrs["t"] = since_start(last.t, info.started_at)
        dataset.attrs["seq"] = last.seq
        dataset.attrs["count"] = len(records)
        group = series.create_group(name)
        data = group.create_dataset("data", data=np.stack([record.data for record in records]))
        data.attrs["units"] = last.unit
        times = group.create_dataset("t", data=since_start(
            np.array([record.t for record in records], np.float64), info.started_at))
        times.attrs["units"] = f"seconds since {iso_utc(info.started_at)}"
        group.create_dataset("seq", data=np.array([record.seq for record in records], np.int64))


def _write_parameters(group: h5py.Group, info: RunInfo) -> None:
    """Each parameter as an attribute, with the unit its protocol declares."""
    from xbarlab.registry import available_protocols

    declared = getattr(available_protocols().get(info.protocol), "parameters", {})
    _write_settings(group, {name: {"value": value,
                                   "unit": declared[name].param.unit if name in declared else ""}
                            for name, value in info.params.items()})


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
    fields["started_at_iso"] = iso_utc(info.started_at)
    fields["ended_at_iso"] = None if info.ended_at is None else iso_utc(info.ended_at)
    fields["checkpoints"] = run.checkpoints()
    fields["events"] = [dataclasses.asdict(event) for event in run.events()]
    fields["snapshots"] = [dataclasses.asdict(shot) for shot in run.snapshots()]
    return fields


def _write_metadata(attrs: h5py.AttributeManager, info: RunInfo, run: Run) -> None:
    attrs["format_version"] = FORMAT_VERSION
    attrs["exported_by"] = xbarlab.__version__
    attrs["layout"] = __doc__
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
    group.attrs["description"] = ("every instrument's identity and settings at the start and "
                                  "end of each session of the run")
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


# ------------------------------------------------------------------------ CSV


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
        write_points_csv(run, info, stream)
    with maps_path.open("w", newline="") as stream:
        stream.write(f"# xbarlab run {info.run_id} ({info.protocol}) maps; t: seconds since "
                     f"the run's start, {iso_utc(info.started_at)}\n")
        writer = csv.writer(stream)
        writer.writerow(MAP_COLUMNS)
        for record in run.maps():
            t = _text(since_start(record.t, info.started_at))
            for (row, col), value in np.ndenumerate(record.data):
                writer.writerow([record.seq, record.name, t, row, col, _text(float(value)),
                                 record.unit])
    metadata = {"format_version": FORMAT_VERSION, "exported_by": xbarlab.__version__,
                **_metadata(info, run)}
    meta_path.write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    return paths


def csv_header(name: str) -> str:
    """A point column's CSV header: its name and unit (``current (A)``; counts and codes bare)."""
    unit = POINT_COLUMNS[name][1]
    return name if unit == "1" else f"{name} ({unit})"


CSV_COLUMNS = ("seq", "row", "col", "operation", "voltage", "current", "pulse_width",
               "compliance", "t")


def write_points_csv(run: Run, info: RunInfo, stream: TextIO) -> None:
    """The run's points as CSV on `stream`, a chunk at a time: a ``#`` header (run, start,
    conventions), then one line per point."""
    stream.write(
        f"# xbarlab run {info.run_id} ({info.protocol}), started {iso_utc(info.started_at)}"
        f" (Unix time {info.started_at!r}); t: seconds since that start\n"
        "# empty field: not measured; nan: reported as not a number; compliance: 1 when the "
        "source was at its current limit\n")
    writer = csv.writer(stream)
    writer.writerow([csv_header(name) for name in CSV_COLUMNS])
    for rows in point_rows(run, info):
        writer.writerows(rows)


def point_rows(run: Run, info: RunInfo) -> Iterator[list[list[Any]]]:
    """The run's points as CSV rows (`CSV_COLUMNS`), a chunk of rows at a time."""
    for chunk in run.point_chunks(CHUNK):
        t = since_start(chunk["t"], info.started_at)
        missing = chunk["missing"]
        texts = {}
        for name in ("voltage", "current", "pulse_width"):
            bit = MISSING_BITS[name]
            texts[name] = ["" if flags & bit else repr(value)
                           for flags, value in zip(missing.tolist(), chunk[name].tolist(),
                                                   strict=True)]
        operations = [OPERATIONS[code] for code in chunk["operation"].tolist()]
        yield [list(values) for values in zip(
            chunk["seq"].tolist(), chunk["row"].tolist(), chunk["col"].tolist(), operations,
            texts["voltage"], texts["current"], texts["pulse_width"],
            chunk["compliance"].tolist(), map(repr, t.tolist()), strict=True)]


def _text(value: float | None) -> str:
    """CSV text of a float: empty for not measured, else the shortest exact representation."""
    return "" if value is None else repr(float(value))


# ------------------------------------------------------------------------ format check


def check_hdf5(path: str | os.PathLike) -> None:
    """Raise :class:`HDF5FormatError` naming the first place ``path`` breaks the layout."""
    with h5py.File(path, "r") as file:
        _check_root(file)
        shape = tuple(int(n) for n in file.attrs["shape"]) if "shape" in file.attrs else None
        count = _check_points(file["points"], shape)
        _check_cells(file["cells"], count)
        for name, dataset in file["maps"].items():
            _check_map(name, dataset, file["map_series"].get(name), shape)


def _check_root(file: h5py.File) -> None:
    version = _attribute(file, "format_version")
    if version != FORMAT_VERSION:
        raise HDF5FormatError(
            f"format_version = {version!r}; allowed: {FORMAT_VERSION} (this xbarlab's format)"
        )
    present_optional = {k: kind for k, kind in OPTIONAL_ATTRIBUTES.items() if k in file.attrs}
    for key, kind in {**ROOT_ATTRIBUTES, **present_optional}.items():
        value = _attribute(file, key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise HDF5FormatError(
                f"root attribute {key} = {value!r}; allowed: a value of type {kind.__name__}"
            )
    if file.attrs["status"] not in STATUSES:
        raise HDF5FormatError(
            f"root attribute status = {file.attrs['status']!r}; allowed: {', '.join(STATUSES)}"
        )
    for group in ("points", "cells", "maps", "map_series", "parameters", "snapshots"):
        if not isinstance(file.get(group), h5py.Group):
            raise HDF5FormatError(f"group /{group} is missing; every run file has one")


def _check_points(group: h5py.Group, shape: tuple[int, int] | None) -> int:
    """Every column present, 1-D, of its type and unit, all of one length; that length."""
    lengths = set()
    for name, (dtype, unit, _, _) in POINT_COLUMNS.items():
        dataset = group.get(name)
        if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1 \
                or dataset.dtype != np.dtype(dtype):
            raise HDF5FormatError(
                f"/points/{name} is missing or has dtype {getattr(dataset, 'dtype', None)}; "
                f"allowed: a 1-D dataset of {np.dtype(dtype)}")
        stated = _attribute(dataset, "units")
        if not isinstance(stated, str) or not (stated == unit or name == "t"
                                               and stated.startswith("seconds since ")):
            raise HDF5FormatError(f"/points/{name} has units = {stated!r}; allowed: {unit!r}"
                                  if name != "t" else f"/points/t has units = {stated!r}; "
                                  "allowed: 'seconds since <ISO 8601 start>'")
        lengths.add(dataset.shape[0])
    if len(lengths) != 1:
        raise HDF5FormatError(f"/points columns have lengths {sorted(lengths)}; allowed: one "
                              "length, one entry per point")
    count = lengths.pop()
    if shape is not None and count:
        for name, size in (("row", shape[0]), ("col", shape[1])):
            values = group[name]
            low, high = _extremes(values)
            if low < 0 or high >= size:
                raise HDF5FormatError(f"/points/{name} has values {low}..{high}; allowed: "
                                      f"0..{size - 1} (the run's shape {shape})")
    operations = _attribute(group["operation"], "flag_meanings")
    if operations != " ".join(OPERATIONS):
        raise HDF5FormatError(f"/points/operation flag_meanings = {operations!r}; allowed: "
                              f"{' '.join(OPERATIONS)!r}")
    return count


def _extremes(dataset: h5py.Dataset) -> tuple[int, int]:
    """Smallest and largest value of a 1-D dataset, read a chunk at a time."""
    low, high = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    for start in range(0, dataset.shape[0], CHUNK):
        block = dataset[start:start + CHUNK]
        low, high = min(low, int(block.min())), max(high, int(block.max()))
    return low, high


def _check_cells(group: h5py.Group, count: int) -> None:
    parts = {name: group.get(name) for name in ("row", "col", "first", "count", "points")}
    if not all(isinstance(part, h5py.Dataset) for part in parts.values()):
        raise HDF5FormatError("/cells lacks row, col, first, count or points; the index has all")
    if parts["points"].shape != (count,):
        raise HDF5FormatError(f"/cells/points has shape {parts['points'].shape}; allowed: "
                              f"({count},), one entry per point")
    if int(parts["count"][()].sum()) != count:
        raise HDF5FormatError(f"/cells/count adds up to {int(parts['count'][()].sum())}; "
                              f"allowed: {count}, every point in one cell")


def _check_map(name: str, latest: h5py.Dataset, series: h5py.Group | None,
               shape: tuple[int, int] | None) -> None:
    if not isinstance(latest, h5py.Dataset) or latest.ndim != 2 or latest.dtype != np.float64:
        raise HDF5FormatError(f"/maps/{name} has shape {getattr(latest, 'shape', None)} and "
                              f"dtype {getattr(latest, 'dtype', None)}; allowed: float64 of "
                              "shape (rows, cols)")
    if shape is not None and latest.shape != shape:
        raise HDF5FormatError(
            f"/maps/{name} is {latest.shape}; allowed: the run's shape {shape}")
    if "units" not in latest.attrs:
        raise HDF5FormatError(f"/maps/{name} has no units attribute; every map states its unit")
    parts = [series.get(part) for part in ("data", "t", "seq")] if series is not None else []
    if len(parts) != 3 or not all(isinstance(part, h5py.Dataset) for part in parts):
        raise HDF5FormatError(f"/map_series/{name} lacks data, t or seq; each map has all three")
    data, t, seq = parts
    if data.ndim != 3 or data.shape[1:] != latest.shape or t.shape != (data.shape[0],) \
            or seq.shape != (data.shape[0],):
        raise HDF5FormatError(
            f"/map_series/{name}: data {data.shape}, t {t.shape}, seq {seq.shape}; allowed: "
            f"(count, {latest.shape[0]}, {latest.shape[1]}), (count,), (count,)")


def _attribute(node: h5py.HLObject, key: str):
    """An attribute as a plain Python value (numpy scalars unwrapped), ``None`` if absent."""
    value = node.attrs.get(key)
    return value.item() if isinstance(value, np.generic) else value
