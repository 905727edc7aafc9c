"""Export round trips: HDF5 and CSV read back with plain h5py/csv/json equal the store exactly."""

import csv
import json
import math

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xbarlab.export import FORMAT_VERSION, HDF5FormatError, check_hdf5, export_csv, export_hdf5
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
        "t": st.floats(allow_nan=False, allow_infinity=False),
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
    for kwargs in points:
        run.record_point(**kwargs)
    for index, data in enumerate(maps):
        run.record_map("conductance" if index % 2 == 0 else "resistance", data, t=float(index))
    run.checkpoint("cursor", [len(points)])
    return run


def read_hdf5_points(path):
    """Flatten the per-crosspoint time series back into points, ordered by seq (None restored)."""
    points = []
    with h5py.File(path, "r") as file:
        assert file.attrs["format_version"] == FORMAT_VERSION
        for group_name, group in file["crosspoints"].items():
            row, col = int(group.attrs["row"]), int(group.attrs["col"])
            assert group_name == f"W{row}B{col}"
            dataset = group["timeseries"]
            codes = h5py.check_enum_dtype(dataset.dtype["operation"])
            names = {code: name for name, code in codes.items()}
            series = dataset[()]
            assert list(series["seq"]) == sorted(series["seq"])
            for entry in series:
                missing = int(entry["missing"])
                points.append(
                    {
                        "seq": int(entry["seq"]),
                        "row": row,
                        "col": col,
                        "operation": names[int(entry["operation"])],
                        "voltage": None if missing & 1 else float(entry["voltage"]),
                        "current": None if missing & 2 else float(entry["current"]),
                        "pulse_width": None if missing & 4 else float(entry["pulse_width"]),
                        "compliance": bool(entry["compliance"]),
                        "t": float(entry["t"]),
                    }
                )
    return sorted(points, key=lambda point: point["seq"])


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
    with h5py.File(path, "r") as file:
        for name in ("conductance", "resistance"):
            records = run.maps(name)
            if not records:
                assert name not in file["maps"]
                continue
            group = file["maps"][name]
            assert group["data"][()].tobytes() == np.stack([r.data for r in records]).tobytes()
            assert list(group["t"][()]) == [r.t for r in records]
            assert list(group["seq"][()]) == [r.seq for r in records]


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
        assert file["crosspoints/W0B0/timeseries"].shape == (1,)


@FUZZ
@given(points=st.lists(point_kwargs, max_size=25), maps=st.lists(map_data, max_size=3))
def test_csv_round_trip_equals_the_store(store, tmp_path_factory, points, maps):
    run = make_run(store, points, maps)
    points_path, maps_path, meta_path = export_csv(
        store, run.run_id, tmp_path_factory.mktemp("csv")
    )

    def number(text):
        return None if text == "" else float(text)

    with points_path.open(newline="") as stream:
        read_back = [
            {
                "seq": int(row["seq"]),
                "row": int(row["row"]),
                "col": int(row["col"]),
                "operation": row["operation"],
                "voltage": number(row["voltage"]),
                "current": number(row["current"]),
                "pulse_width": number(row["pulse_width"]),
                "compliance": {"0": False, "1": True}[row["compliance"]],
                "t": number(row["t"]),
            }
            for row in csv.DictReader(stream)
        ]
    assert_points_equal(read_back, run.points())

    with maps_path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    for record in run.maps():
        entries = [row for row in rows if int(row["seq"]) == record.seq]
        assert {row["name"] for row in entries} == {record.name}
        assert {float(row["t"]) for row in entries} == {record.t}
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
    file.attrs["format_version"] = 2


def _set_status(file):
    file.attrs["status"] = "paused"


def _drop_protocol(file):
    del file.attrs["protocol"]


def _seed_as_text(file):
    file.attrs["seed"] = "11"


def _drop_maps(file):
    del file["maps"]


def _rename_cell(file):
    file.move("crosspoints/W1B2", "crosspoints/W2B1")


def _cell_outside_shape(file):
    file["crosspoints/W1B2"].attrs["row"] = 9
    file.move("crosspoints/W1B2", "crosspoints/W9B2")


def _plain_timeseries(file):
    del file["crosspoints/W1B2/timeseries"]
    file["crosspoints/W1B2/timeseries"] = np.zeros(3)


def _map_as_float32(file):
    del file["maps/conductance/data"]
    file["maps/conductance/data"] = np.zeros((1, 4, 3), np.float32)


def _map_wrong_shape(file):
    del file["maps/conductance/data"]
    file["maps/conductance/data"] = np.zeros((1, 3, 4))


def _map_without_times(file):
    del file["maps/conductance/t"]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_set_version, "format_version = 2; allowed: 1"),
        (_set_status, "status = 'paused'; allowed: running"),
        (_drop_protocol, "protocol = None; allowed: a value of type str"),
        (_seed_as_text, "seed = '11'; allowed: a value of type int"),
        (_drop_maps, "group /maps is missing"),
        (_rename_cell, "/crosspoints/W2B1 has row = 1, col = 2"),
        (_cell_outside_shape, r"W9B2 lies outside the run's shape \(4, 3\)"),
        (_plain_timeseries, "W1B2/timeseries is missing or has dtype float64"),
        (_map_as_float32, "dtype float32; allowed: float64"),
        (_map_wrong_shape, r"maps are \(3, 4\); allowed: the run's shape \(4, 3\)"),
        (_map_without_times, "/maps/conductance lacks data, t or seq"),
    ],
)
def test_format_check_names_what_is_wrong(store, tmp_path, tamper, message):
    path = exported_file(store, tmp_path)
    with h5py.File(path, "r+") as file:
        tamper(file)
    with pytest.raises(HDF5FormatError, match=message):
        check_hdf5(path)
