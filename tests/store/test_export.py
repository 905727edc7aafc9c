"""Export round trips: HDF5 and CSV read back with plain h5py/csv/json equal the store exactly."""

import csv
import datetime
import json
import math

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xbarlab.export import (
    FORMAT_VERSION,
    HDF5FormatError,
    cell_points,
    check_hdf5,
    export_csv,
    export_hdf5,
)
from xbarlab.store import OPERATIONS, RunNotFoundError

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
reading = st.none() | st.floats(allow_nan=True, allow_infinity=True)
point_kwargs = st.fixed_dictionaries(
    {
        "row": st.integers(0, 3),
        "col": st.integers(0, 2),
        "operation": st.sampled_from(OPERATIONS),
        "voltage": reading,
        "current": reading,
        "pulse_width": st.none() | st.floats(min_value=0, allow_infinity=False),
        "compliance": st.booleans(),
        "t": st.floats(min_value=-1e3, max_value=1e7),  # seconds from the run's start
    }
)
map_data = st.lists(
    st.floats(allow_nan=True, allow_infinity=True), min_size=12, max_size=12
).map(lambda values: np.array(values).reshape(4, 3))


def same(a, b):
    """Exact equality of stored values, with NaN equal to NaN and the sign of zero compared."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def make_run(store, points, maps, shape=(4, 3)):
    run = store.start_run(
        protocol="read-map",
        params={"v_read": 0.2, "cells": [[0, 1]]},
        bench_text='[chip]\nrows = 4\ncols = 3\n',
        instruments={"smu1": "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C30"},
        seed=11,
        shape=shape,
    )
    start = run.info.started_at
    for kwargs in points:
        run.record_point(**{**kwargs, "t": start + kwargs.get("t", 0.0)})
    for index, data in enumerate(maps):
        name, unit = ("conductance", "S") if index % 2 == 0 else ("resistance", "ohm")
        run.record_map(name, data, t=start + index, unit=unit)
    run.checkpoint("cursor", [len(points)])
    return run


def read_hdf5_points(path):
    """The points back from the columns with plain h5py (None restored from the missing bits,
    times from the start stated in the file)."""
    with h5py.File(path, "r") as file:
        assert file.attrs["format_version"] == FORMAT_VERSION
        columns = {name: file["points"][name][()] for name in file["points"]}
        start = float(file.attrs["started_at"])
        assert file["points/t"].attrs["units"] == (
            f"seconds since {file.attrs['started_at_iso']}")
        names = file["points/operation"].attrs["flag_meanings"].split()
        masks = dict(zip(file["points/missing"].attrs["flag_meanings"].split(),
                         file["points/missing"].attrs["flag_masks"], strict=True))
    assert list(columns["seq"]) == list(range(len(columns["seq"])))
    points = []
    for k in range(len(columns["seq"])):
        missing = int(columns["missing"][k])

        def value(name, k=k, missing=missing):
            return None if missing & masks[f"{name}_not_measured"] else float(columns[name][k])

        points.append({"seq": int(columns["seq"][k]), "row": int(columns["row"][k]),
                       "col": int(columns["col"][k]),
                       "operation": names[int(columns["operation"][k])],
                       "voltage": value("voltage"), "current": value("current"),
                       "pulse_width": value("pulse_width"),
                       "compliance": bool(columns["compliance"][k]),
                       "t": start + float(columns["t"][k])})
    return points


def assert_points_equal(read_back, stored):
    assert len(read_back) == len(stored)
    for got, want in zip(read_back, stored, strict=True):
        for field in ("seq", "row", "col", "operation", "compliance"):
            assert got[field] == getattr(want, field), field
        for field in ("voltage", "current", "pulse_width", "t"):
            assert same(got[field], getattr(want, field)), (field, got[field], want)


@FUZZ
@given(points=st.lists(point_kwargs, max_size=25), maps=st.lists(map_data, max_size=3))
def test_hdf5_round_trip_equals_the_store(store, tmp_path_factory, points, maps):
    run = make_run(store, points, maps)
    path = export_hdf5(store, run.run_id, tmp_path_factory.mktemp("h5") / "run.h5")
    check_hdf5(path)
    assert_points_equal(read_hdf5_points(path), run.points())
    start = run.info.started_at
    with h5py.File(path, "r") as file:
        for name, unit in (("conductance", "S"), ("resistance", "ohm")):
            records = run.maps(name)
            if not records:
                assert name not in file["maps"]
                continue
            series = file["map_series"][name]
            assert series["data"][()].tobytes() == np.stack([r.data for r in records]).tobytes()
            assert [start + t for t in series["t"][()]] == [r.t for r in records]
            assert list(series["seq"][()]) == [r.seq for r in records]
            assert file["maps"][name][()].tobytes() == records[-1].data.tobytes()
            assert file["maps"][name].attrs["units"] == unit
        for row, col in {(p.row, p.col) for p in run.points()} | {(3, 2)}:
            want = run.points(row=row, col=col)
            got = cell_points(file, row, col)
            assert list(got["seq"]) == [p.seq for p in want]
            assert all(same(a, b) for a, b in zip(got["current"], [
                np.nan if p.current is None else p.current for p in want], strict=True))


def test_hdf5_metadata_attributes_equal_the_store(store, tmp_path):
    run = make_run(store, [], [])
    run.fail("Traceback: SMU 2 timed out")
    info = run.info
    path = export_hdf5(store, run.run_id, tmp_path / "run.h5")
    with h5py.File(path, "r") as file:
        attrs = dict(file.attrs)
    assert attrs["format_version"] == FORMAT_VERSION
    assert json.loads(attrs["params"]) == info.params
    assert json.loads(attrs["instruments"]) == info.instruments
    assert json.loads(attrs["checkpoints"]) == {"cursor": [0]}
    assert [e["event"] for e in json.loads(attrs["events"])] == ["started", "failed"]
    assert tuple(attrs["shape"]) == info.shape
    for key in ("run_id", "protocol", "bench_text", "software_version", "seed", "started_at",
                "ended_at", "status", "traceback", "writer_host", "writer_pid"):
        assert attrs[key] == getattr(info, key), key


def test_hdf5_of_a_running_run_without_shape_omits_absent_attributes(store, tmp_path):
    run = store.start_run(protocol="p")
    run.record_point(0, 0, "read", 0.2, 1e-6, t=0.0)
    with h5py.File(export_hdf5(store, run.run_id, tmp_path / "run.h5"), "r") as file:
        for absent in ("shape", "seed", "ended_at", "traceback"):
            assert absent not in file.attrs
        assert file.attrs["status"] == "running"
        assert len(file["maps"]) == 0
        assert file["points/current"].shape == (1,)
        assert file["points/current"].attrs["units"] == "A"


@FUZZ
@given(points=st.lists(point_kwargs, max_size=25), maps=st.lists(map_data, max_size=3))
def test_csv_round_trip_equals_the_store(store, tmp_path_factory, points, maps):
    run = make_run(store, points, maps)
    points_path, maps_path, meta_path = export_csv(
        store, run.run_id, tmp_path_factory.mktemp("csv")
    )

    def number(text):
        return None if text == "" else float(text)

    start = run.info.started_at
    with points_path.open(newline="") as stream:
        header = stream.readline()
        moment = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)
        assert f"started {moment:%Y-%m-%dT%H:%M:%S}" in header
        read_back = [
            {
                "seq": int(row["seq"]),
                "row": int(row["row"]),
                "col": int(row["col"]),
                "operation": row["operation"],
                "voltage": number(row["voltage (V)"]),
                "current": number(row["current (A)"]),
                "pulse_width": number(row["pulse_width (s)"]),
                "compliance": {"0": False, "1": True}[row["compliance"]],
                "t": start + number(row["t (s)"]),
            }
            for row in csv.DictReader(line for line in stream if not line.startswith("#"))
        ]
    assert_points_equal(read_back, run.points())

    with maps_path.open(newline="") as stream:
        rows = list(csv.DictReader(line for line in stream if not line.startswith("#")))
    for record in run.maps():
        entries = [row for row in rows if int(row["seq"]) == record.seq]
        assert {row["name"] for row in entries} == {record.name}
        assert {row["unit"] for row in entries} == {record.unit}
        assert {start + float(row["t (s)"]) for row in entries} == {record.t}
        rebuilt = np.full(record.data.shape, -1.0)
        for row in entries:
            rebuilt[int(row["row"]), int(row["col"])] = float(row["value"])
        # NaN payload bits have no text form; every other value, and the sign of zero, is exact.
        assert all(same(a, b) for a, b in zip(rebuilt.flat, record.data.flat, strict=True))
    assert len(rows) == sum(record.data.size for record in run.maps())

    metadata = json.loads(meta_path.read_text())
    info = run.info
    assert metadata["format_version"] == FORMAT_VERSION
    for key in ("run_id", "protocol", "params", "bench_text", "instruments", "seed",
                "started_at", "status", "traceback"):
        assert metadata[key] == getattr(info, key), key
    assert metadata["shape"] == list(info.shape)
    assert metadata["checkpoints"] == run.checkpoints()


def test_export_refuses_to_overwrite_unless_asked(store, tmp_path):
    run = make_run(store, [], [])
    path = tmp_path / "run.h5"
    path.write_bytes(b"someone's data")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_hdf5(store, run.run_id, path)
    assert path.read_bytes() == b"someone's data"
    export_hdf5(store, run.run_id, path, overwrite=True)
    export_csv(store, run.run_id, tmp_path / "csv")
    with pytest.raises(FileExistsError, match="run-1-points.csv"):
        export_csv(store, run.run_id, tmp_path / "csv")


def test_export_of_unknown_run_names_the_run_id(store, tmp_path):
    with pytest.raises(RunNotFoundError, match="run_id = 5"):
        export_hdf5(store, 5, tmp_path / "run.h5")
    with pytest.raises(RunNotFoundError, match="run_id = 5"):
        export_csv(store, 5, tmp_path)
    assert not (tmp_path / "run.h5").exists()


def exported_file(store, tmp_path):
    run = make_run(store, [{"row": 1, "col": 2, "operation": "read", "current": 1e-6}],
                   [np.zeros((4, 3))])
    return export_hdf5(store, run.run_id, tmp_path / "run.h5")


def test_exported_file_passes_the_format_check(store, tmp_path):
    check_hdf5(exported_file(store, tmp_path))


def _set_version(file):
    file.attrs["format_version"] = 1


def _set_status(file):
    file.attrs["status"] = "paused"


def _drop_protocol(file):
    del file.attrs["protocol"]


def _seed_as_text(file):
    file.attrs["seed"] = "11"


def _drop_maps(file):
    del file["maps"]


def _row_outside_shape(file):
    file["points/row"][0] = 9


def _current_as_float32(file):
    del file["points/current"]
    file["points/current"] = np.zeros(1, np.float32)


def _current_without_units(file):
    del file["points/current"].attrs["units"]


def _short_column(file):
    del file["points/voltage"]
    file["points/voltage"] = np.zeros(2)
    file["points/voltage"].attrs["units"] = "V"


def _index_missing_a_point(file):
    file["cells/count"][0] = 0


def _map_as_float32(file):
    del file["maps/conductance"]
    file["maps/conductance"] = np.zeros((4, 3), np.float32)


def _map_wrong_shape(file):
    del file["maps/conductance"]
    file["maps/conductance"] = np.zeros((3, 4))


def _map_without_times(file):
    del file["map_series/conductance/t"]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_set_version, "format_version = 1; allowed: 2"),
        (_set_status, "status = 'paused'; allowed: running"),
        (_drop_protocol, "protocol = None; allowed: a value of type str"),
        (_seed_as_text, "seed = '11'; allowed: a value of type int"),
        (_drop_maps, "group /maps is missing"),
        (_row_outside_shape, r"/points/row has values 9..9; allowed: 0..3"),
        (_current_as_float32, "/points/current is missing or has dtype float32"),
        (_current_without_units, "/points/current has units = None; allowed: 'A'"),
        (_short_column, r"/points columns have lengths \[1, 2\]"),
        (_index_missing_a_point, "/cells/count adds up to 0; allowed: 1"),
        (_map_as_float32, "dtype float32; allowed: float64"),
        (_map_wrong_shape, r"/maps/conductance is \(3, 4\); allowed: the run's shape \(4, 3\)"),
        (_map_without_times, "/map_series/conductance lacks data, t or seq"),
    ],
)
def test_format_check_names_what_is_wrong(store, tmp_path, tamper, message):
    path = exported_file(store, tmp_path)
    with h5py.File(path, "r+") as file:
        tamper(file)
    with pytest.raises(HDF5FormatError, match=message):
        check_hdf5(path)


def test_xarray_reads_the_points_with_units_and_times(store, tmp_path):
    xarray = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    run = make_run(store, [{"row": 1, "col": 2, "operation": "read", "voltage": 0.2,
                            "current": 1e-6, "t": 1.5}], [np.zeros((4, 3))])
    path = export_hdf5(store, run.run_id, tmp_path / "run.h5")
    with xarray.open_dataset(path, group="points", engine="h5netcdf") as points:
        assert points.sizes["seq"] == 1 and float(points["current"][0]) == 1e-6
        assert points["current"].attrs["units"] == "A"
        start = np.datetime64(round(run.info.started_at * 1e6), "us")
        assert abs(points["t"].values[0] - start - np.timedelta64(1500, "ms")) \
            < np.timedelta64(2, "us")
