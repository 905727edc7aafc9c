"""Recording points and maps: exact round trips, NaN apart from "not measured", strict input."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xbarlab.store import OPERATIONS, RunStateError

finite = st.floats(allow_nan=False, allow_infinity=False)
reading = st.none() | st.floats(allow_nan=True, allow_infinity=True)
width = st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False)
# Deterministic examples; the store fixture is shared by the examples of one test, which is
# fine because every example starts its own run.
FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
point_kwargs = st.fixed_dictionaries(
    {
        "row": st.integers(0, 63),
        "col": st.integers(0, 63),
        "operation": st.sampled_from(OPERATIONS),
        "voltage": reading,
        "current": reading,
        "pulse_width": width,
        "compliance": st.booleans(),
        "t": finite,
    }
)


def same_float(stored, given):
    """Equal as stored: None stays None, NaN stays NaN, every other float bit for bit."""
    if given is None or stored is None:
        return stored is given
    if math.isnan(given):
        return math.isnan(stored)
    return stored == given and math.copysign(1.0, stored) == math.copysign(1.0, given)


@FUZZ
@given(points=st.lists(point_kwargs, min_size=1, max_size=20))
def test_points_round_trip_exactly(store, points):
    run = store.start_run(protocol="fuzz")
    seqs = [run.record_point(**kwargs) for kwargs in points]
    assert seqs == list(range(len(points)))
    stored = store.open_run(run.run_id).points()
    assert len(stored) == len(points)
    for point, kwargs in zip(stored, points, strict=True):
        assert (point.row, point.col, point.operation, point.compliance) == (
            kwargs["row"], kwargs["col"], kwargs["operation"], kwargs["compliance"]
        )
        for field in ("voltage", "current", "pulse_width", "t"):
            assert same_float(getattr(point, field), kwargs[field]), field


def test_tiny_negative_and_nan_readings_are_kept_apart_from_missing(store):
    run = store.start_run(protocol="p")
    run.record_point(0, 0, "read", voltage=-0.2, current=-1e-12)
    run.record_point(0, 0, "read", voltage=0.2, current=float("nan"))
    run.record_point(0, 0, "pulse", voltage=float("nan"), current=None, pulse_width=1e-7)
    run.record_point(0, 0, "read", voltage=-0.0, current=float("-inf"))
    p = run.points()
    assert (p[0].voltage, p[0].current) == (-0.2, -1e-12)
    assert p[1].voltage == 0.2 and math.isnan(p[1].current)
    assert math.isnan(p[2].voltage) and p[2].current is None and p[2].pulse_width == 1e-7
    assert math.copysign(1.0, p[3].voltage) == -1.0 and p[3].current == float("-inf")


def test_time_defaults_to_wall_clock(store):
    import time

    run = store.start_run(protocol="p")
    before = time.time()
    run.record_point(0, 0, "read", 0.2, 1e-6)
    assert before <= run.points()[0].t <= time.time()


def test_points_can_be_filtered(store):
    run = store.start_run(protocol="p")
    run.record_point(0, 0, "read", 0.2, 1e-6)
    run.record_point(0, 1, "set", 1.5, 1e-4, pulse_width=1e-6, compliance=True)
    run.record_point(1, 1, "read", 0.2, 2e-6)
    assert [p.seq for p in run.points(col=1)] == [1, 2]
    assert [p.seq for p in run.points(row=1, col=1, operation="read")] == [2]
    assert run.points(operation="set")[0].compliance is True


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"row": -1}, ValueError, r"row = -1 is out of range; allowed: 0 <= row < 4"),
        ({"row": 4}, ValueError, r"row = 4 is out of range; allowed: 0 <= row < 4"),
        ({"col": 6}, ValueError, r"col = 6 is out of range; allowed: 0 <= col < 6"),
        ({"row": 1.0}, TypeError, "row must be an integer"),
        ({"row": True}, TypeError, "row must be an integer"),
        ({"operation": "write"}, ValueError, "operation = 'write' is not known; allowed: read"),
        ({"voltage": "0.2"}, TypeError, "voltage must be a real number"),
        ({"current": 1j}, TypeError, "current must be a real number"),
        ({"pulse_width": -1e-9}, ValueError, "pulse_width = -1e-09 is out of range"),
        ({"pulse_width": float("nan")}, ValueError, "pulse_width = nan is not allowed"),
        ({"compliance": 1}, TypeError, "compliance must be True or False"),
        ({"t": float("inf")}, ValueError, "t = inf is not allowed; allowed: a finite number"),
    ],
)
def test_bad_points_are_refused_and_nothing_is_stored(store, kwargs, error, message):
    run = store.start_run(protocol="p", shape=(4, 6))
    good = {"row": 0, "col": 0, "operation": "read", "voltage": 0.2, "current": 1e-6}
    with pytest.raises(error, match=message):
        run.record_point(**{**good, **kwargs})
    assert run.points() == []
    assert run.record_point(**good) == 0  # the sequence did not skip a number


def test_numpy_scalars_are_accepted(store):
    run = store.start_run(protocol="p", shape=(4, 4))
    run.record_point(np.int64(3), np.int32(2), "read", np.float32(0.25), np.float64(1e-6),
                     compliance=np.bool_(True))
    (point,) = run.points()
    assert (point.row, point.col, point.voltage, point.current, point.compliance) == (
        3, 2, 0.25, 1e-6, True
    )


@FUZZ
@given(
    data=st.integers(1, 5).flatmap(
        lambda m: st.integers(1, 5).flatmap(
            lambda n: st.lists(
                st.floats(allow_nan=True, allow_infinity=True), min_size=m * n, max_size=m * n
            ).map(lambda values: np.array(values).reshape(m, n))
        )
    )
)
def test_maps_round_trip_bit_for_bit(store, data):
    run = store.start_run(protocol="p")
    run.record_map("conductance", data, t=2.5)
    (record,) = store.open_run(run.run_id).maps()
    assert record.name == "conductance" and record.t == 2.5
    assert record.data.dtype == np.float64 and record.data.shape == data.shape
    assert record.data.tobytes() == data.astype(np.float64).tobytes()


def test_maps_accumulate_and_latest_is_returned(store):
    run = store.start_run(protocol="p", shape=(2, 3))
    run.record_map("G", np.zeros((2, 3)))
    run.record_map("R", np.full((2, 3), 1e4))
    run.record_map("G", np.ones((2, 3), dtype=np.int8))
    assert [m.name for m in run.maps()] == ["G", "R", "G"]
    assert [m.seq for m in run.maps("G")] == [0, 2]
    np.testing.assert_array_equal(run.latest_map("G"), np.ones((2, 3)))
    with pytest.raises(KeyError, match=r"map name = 'I' is not in run 1; allowed: \['G', 'R'\]"):
        run.latest_map("I")


@pytest.mark.parametrize(
    ("name", "data", "error", "message"),
    [
        ("G", np.zeros((3, 2)), ValueError, r"\(3, 2\); allowed: the run's array shape \(2, 3\)"),
        ("G", np.zeros(6), ValueError, r"shape \(6,\); allowed: a non-empty 2-D"),
        ("G", np.zeros((2, 3, 1)), ValueError, "allowed: a non-empty 2-D"),
        ("G", np.array([["a"] * 3] * 2), TypeError, "must hold real numbers"),
        ("G", np.zeros((2, 3), dtype=complex), TypeError, "must hold real numbers"),
        ("G map", np.zeros((2, 3)), ValueError, "map name = 'G map' is not allowed"),
        ("", np.zeros((2, 3)), ValueError, "map name = '' is not allowed"),
    ],
)
def test_bad_maps_are_refused(store, name, data, error, message):
    run = store.start_run(protocol="p", shape=(2, 3))
    with pytest.raises(error, match=message):
        run.record_map(name, data)
    assert run.maps() == []


def test_map_without_declared_shape_only_needs_two_dimensions(store):
    run = store.start_run(protocol="p")
    run.record_map("G", np.zeros((7, 1)))
    assert run.latest_map("G").shape == (7, 1)


def test_read_only_run_refuses_to_record(store):
    run = store.start_run(protocol="p")
    reader = store.open_run(run.run_id)
    with pytest.raises(RunStateError, match=r"read-only; use RunStore.resume\(1\)"):
        reader.record_point(0, 0, "read", 0.2, 1e-6)
    with pytest.raises(RunStateError, match="read-only"):
        reader.record_map("G", np.zeros((1, 1)))
    with pytest.raises(RunStateError, match="read-only"):
        reader.finish()


def test_record_points_commits_a_batch_in_order(store):
    run = store.start_run(protocol="p", shape=(2, 4))
    run.record_point(0, 0, "pulse", 1.0, None, pulse_width=1e-6, t=0.0)
    batch = [{"row": 1, "col": c, "operation": "read", "voltage": 0.2, "current": c * 1e-6,
              "t": 1.0} for c in range(4)]
    assert run.record_points(batch) == range(1, 5)
    assert [(p.seq, p.col, p.current) for p in run.points(row=1)] == [
        (1, 0, 0.0), (2, 1, 1e-6), (3, 2, 2e-6), (4, 3, 3e-6)
    ]
    assert run.record_points([]) == range(5, 5)


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ({"col": 4}, ValueError, r"points\[2\]: col = 4 is out of range"),
        ({"operation": "write"}, ValueError, r"points\[2\]: operation = 'write'"),
        ({"currnet": 1e-6}, TypeError, r"points\[2\]: .*unexpected keyword argument 'currnet'"),
    ],
)
def test_record_points_refuses_the_whole_batch_naming_the_bad_point(store, bad, error, message):
    run = store.start_run(protocol="p", shape=(2, 4))
    batch = [{"row": 0, "col": c, "operation": "read", "current": 1e-6} for c in range(4)]
    batch[2] = {**batch[2], **bad}
    with pytest.raises(error, match=message):
        run.record_points(batch)
    assert run.points() == []
    assert run.record_point(0, 0, "read", 0.2, 1e-6) == 0


@FUZZ
@given(points=st.lists(point_kwargs, min_size=1, max_size=20), every=st.integers(1, 3))
def test_point_chunks_of_a_file_and_of_memory_are_the_points(store, points, every):
    """The columns `point_chunks` reads (through ADBC from a file, through sqlite3 in memory)
    are the points `points()` reads one by one: NaN where a value is None or NaN, inf kept."""
    from xbarlab.store import RunStore

    with RunStore.in_memory() as memory:
        columns = []
        for runs in (store, memory):
            run = runs.start_run(protocol="fuzz")
            run.record_points(points)
            chunks = list(run.point_chunks(size=4, every=every))
            columns.append({key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]})
        expected = run.points()[::every]
    for got in columns:
        assert got["seq"].tolist() == [p.seq for p in expected]
        assert got["operation"].tolist() == [OPERATIONS.index(p.operation) for p in expected]
        assert got["row"].tolist() == [p.row for p in expected]
        for field in ("voltage", "current", "pulse_width", "t"):
            want = np.array([math.nan if getattr(p, field) is None else getattr(p, field)
                             for p in expected])
            np.testing.assert_array_equal(got[field], want, err_msg=field)


column_point = st.fixed_dictionaries(
    {
        "row": st.integers(0, 63),
        "col": st.integers(0, 63),
        "voltage": st.floats(allow_nan=True, allow_infinity=True),
        "current": st.floats(allow_nan=True, allow_infinity=True),
        "compliance": st.booleans(),
        "t": finite,
    }
)


@FUZZ
@given(points=st.lists(column_point, min_size=1, max_size=20))
def test_points_as_columns_store_what_points_one_by_one_store(store, points):
    """`record_point_columns` (a board row's readings as arrays) keeps every value as
    `record_point` of each does, NaN apart from "not measured" included."""
    one_by_one = store.start_run(protocol="fuzz")
    for kwargs in points:
        one_by_one.record_point(operation="read", **kwargs)
    as_columns = store.start_run(protocol="fuzz")
    columns = {key: np.array([p[key] for p in points]) for key in points[0]}
    seqs = as_columns.record_point_columns(operation="read", **columns)
    assert list(seqs) == list(range(len(points)))
    expected = store.open_run(one_by_one.run_id).points()
    stored = store.open_run(as_columns.run_id).points()
    assert len(stored) == len(expected) == len(points)
    for got, want in zip(stored, expected, strict=True):
        assert (got.seq, got.row, got.col, got.operation, got.compliance, got.pulse_width) == (
            want.seq, want.row, want.col, want.operation, want.compliance, want.pulse_width)
        for field in ("voltage", "current", "t"):
            assert same_float(getattr(got, field), getattr(want, field)), field


def test_points_as_columns_refuse_a_bad_point_and_record_none(store):
    run = store.start_run(protocol="fuzz", shape=(4, 4))
    good = {"col": np.array([0, 1]), "voltage": np.array([0.2, 0.2]),
            "current": np.array([1e-6, 2e-6]), "compliance": np.array([False, True]),
            "t": np.array([1.0, 2.0])}
    with pytest.raises(ValueError, match=r"points\[1\]: row = 4 is out of range"):
        run.record_point_columns(np.array([0, 4]), operation="read", **good)
    with pytest.raises(ValueError, match=r"points\[0\]: t = nan"):
        run.record_point_columns(np.array([0, 1]), operation="read",
                                 **{**good, "t": np.array([math.nan, 1.0])})
    with pytest.raises(TypeError, match="compliance must be True or False"):
        run.record_point_columns(np.array([0, 1]), operation="read",
                                 **{**good, "compliance": np.array([0, 1])})
    with pytest.raises(ValueError, match="operation = 'readd'"):
        run.record_point_columns(np.array([0, 1]), operation="readd", **good)
    assert run.n_points == 0 and store.open_run(run.run_id).points() == []
