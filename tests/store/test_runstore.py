"""RunStore: where the data directory is, how runs start, and how they are listed and found."""

import os

import pytest

import xbarlab
from xbarlab.store import RunNotFoundError, RunStore, StoreSchemaError, resolve_data_dir
from xbarlab.store.runstore import DB_FILENAME, DEFAULT_DATA_DIR

BENCH = '[instruments.smu1]\ndriver = "keithley2400"\naddress = "GPIB0::24::INSTR"\n'


def test_data_dir_argument_beats_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XBARLAB_DATA", str(tmp_path / "from-env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XBARLAB_DATA", str(tmp_path / "from-env"))
    store = RunStore()
    assert store.db_path == tmp_path / "from-env" / DB_FILENAME
    assert store.db_path.exists()
    store.close()


def test_data_dir_default_is_under_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("XBARLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir() == tmp_path / DEFAULT_DATA_DIR


def test_data_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    with pytest.raises(NotADirectoryError, match="data_dir"):
        RunStore(path)


def test_start_run_stores_all_metadata(store):
    run = store.start_run(
        protocol="read-map",
        params={"v_read": 0.2, "mask": [[0, 1]], "name": "chip A"},
        bench_text=BENCH,
        instruments={"smu1": "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234,C30"},
        seed=7,
        shape=(4, 8),
    )
    info = store.run_info(run.run_id)
    assert info.protocol == "read-map"
    assert info.params == {"v_read": 0.2, "mask": [[0, 1]], "name": "chip A"}
    assert info.bench_text == BENCH
    assert info.instruments == {"smu1": "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234,C30"}
    assert info.software_version == xbarlab.__version__
    assert info.seed == 7
    assert info.shape == (4, 8)
    assert info.status == "running"
    assert info.ended_at is None and info.traceback is None
    assert info.writer_pid == os.getpid()
    assert (info.n_points, info.n_maps) == (0, 0)


def test_numpy_values_in_params_become_plain_json(store):
    import numpy as np

    run = store.start_run(protocol="p", params={"g": np.float64(1e-6), "v": np.arange(3)})
    assert run.info.params == {"g": 1e-6, "v": [0, 1, 2]}


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"protocol": ""}, ValueError, "protocol"),
        ({"protocol": "read map"}, ValueError, "protocol"),
        ({"protocol": "p", "params": {"x": float("nan")}}, ValueError, "params"),
        ({"protocol": "p", "params": {"x": object()}}, ValueError, "params"),
        ({"protocol": "p", "params": [1, 2]}, TypeError, "params"),
        ({"protocol": "p", "instruments": "smu"}, TypeError, "instruments"),
        ({"protocol": "p", "bench_text": None}, TypeError, "bench_text"),
        ({"protocol": "p", "seed": -1}, ValueError, "seed"),
        ({"protocol": "p", "seed": 1.5}, TypeError, "seed"),
        ({"protocol": "p", "shape": (0, 4)}, ValueError, r"shape\[0\]"),
        ({"protocol": "p", "shape": (4,)}, ValueError, "shape"),
    ],
)
def test_bad_run_metadata_is_refused_naming_the_field(store, kwargs, error, field):
    with pytest.raises(error, match=field):
        store.start_run(**kwargs)
    assert store.runs() == []


def test_runs_are_listed_newest_first_and_filtered_by_status(store):
    first = store.start_run(protocol="forming")
    second = store.start_run(protocol="read-map")
    first.finish("completed")
    assert [info.run_id for info in store.runs()] == [second.run_id, first.run_id]
    assert [info.run_id for info in store.runs(status="completed")] == [first.run_id]
    assert [info.run_id for info in store.runs(status="running")] == [second.run_id]
    with pytest.raises(ValueError, match="status = 'done'.*allowed: running, completed"):
        store.runs(status="done")


def test_unknown_run_id_names_the_ids_that_exist(store):
    with pytest.raises(RunNotFoundError, match="run_id = 1 .*no runs yet"):
        store.open_run(1)
    store.start_run(protocol="a")
    store.start_run(protocol="b")
    for lookup in (store.open_run, store.run_info, store.resume):
        with pytest.raises(RunNotFoundError, match=r"run_id = 9 .*2 stored runs, ids 1\.\.2"):
            lookup(9)
    with pytest.raises(TypeError, match="run_id must be an integer"):
        store.open_run("1")


def test_runs_survive_reopening_the_store(tmp_path):
    with RunStore(tmp_path) as store:
        run = store.start_run(protocol="read-map", seed=3)
        run.record_point(row=0, col=1, operation="read", voltage=0.2, current=1e-6, t=0.5)
        run.finish()
    with RunStore(tmp_path) as store:
        (info,) = store.runs()
        assert (info.status, info.seed, info.n_points) == ("completed", 3, 1)
        assert store.open_run(info.run_id).points()[0].current == 1e-6


def test_store_from_a_newer_schema_is_refused(tmp_path):
    import sqlite3

    RunStore(tmp_path).close()
    connection = sqlite3.connect(tmp_path / DB_FILENAME)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(StoreSchemaError, match="schema version 99"):
        RunStore(tmp_path)


def test_store_uses_write_ahead_log(store):
    mode = store._connection.execute("PRAGMA journal_mode").fetchone()[0]
    sync = store._connection.execute("PRAGMA synchronous").fetchone()[0]
    assert (mode, sync) == ("wal", 1)  # 1 = NORMAL


def test_a_run_knows_the_data_dir_its_files_go_to(tmp_path):
    with RunStore(tmp_path / "data") as runs:
        run = runs.start_run("read-map", {}, "bench text")
        assert run.data_dir == (tmp_path / "data").resolve()
        run.finish()
        assert runs.open_run(run.run_id).data_dir == (tmp_path / "data").resolve()
