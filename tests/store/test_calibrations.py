"""Calibration records in the run store: kept per chip with the run that measured them, newest
first, retired but never changed; a store of schema 2 gains the table in place."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from xbarlab.store import CalibrationNotFoundError, RunStore
from xbarlab.store.runstore import DB_FILENAME


def calibrate(store, chip, value):
    with store.start_run("calibrate-parasitics", shape=(2, 3)) as run:
        return run.record_calibration(chip, {"r": value}, np.full((2, 3), value))


def test_records_are_kept_per_chip_newest_first_and_retired(store):
    first = calibrate(store, "die1", 1.0)
    other = calibrate(store, "die2", 2.0)
    second = calibrate(store, "die1", 3.0)
    assert [r.calibration_id for r in store.calibrations("die1")] == [second, first]
    latest = store.latest_calibration("die1")
    assert latest.record == {"r": 3.0} and latest.conductance.tolist() == [[3.0] * 3] * 2
    assert latest.run_id == store.calibration(second).run_id != store.calibration(first).run_id
    retired = store.retire_calibration(second)
    assert retired.retired_at is not None and retired.record == {"r": 3.0}
    assert store.latest_calibration("die1").calibration_id == first
    assert [r.calibration_id for r in store.calibrations("die1", retired=True)] == [second,
                                                                                   first]
    assert store.latest_calibration("die2").calibration_id == other
    assert store.latest_calibration("die3") is None
    assert [r.calibration_id for r in store.open_run(retired.run_id).calibrations()] == [second]


def test_unknown_record_names_the_stored_ones(store):
    calibrate(store, "die1", 1.0)
    with pytest.raises(CalibrationNotFoundError, match=r"calibration_id = 9 .*\[1\]"):
        store.calibration(9)


def test_a_finished_run_records_no_calibration(store):
    with store.start_run("calibrate-parasitics") as run:
        pass
    with pytest.raises(Exception, match="record a calibration"):
        run.record_calibration("die1", {}, np.ones((1, 1)))


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_store_is_migrated_in_place(tmp_path, version):
    """Schema 2 (no map units, no calibrations) and 3 (map units) both reach 4 in place."""
    with RunStore(tmp_path) as store, store.start_run("read-map") as run:
        run.record_point(0, 0, "read", current=1e-6)
        run.record_map("conductance", np.full((1, 1), 2e-6), unit="S")
    connection = sqlite3.connect(tmp_path / DB_FILENAME)  # back to what that version wrote
    connection.execute("DROP TABLE calibrations")
    if version == 2:
        connection.execute("ALTER TABLE maps DROP COLUMN unit")
    connection.execute(f"PRAGMA user_version = {version}")
    connection.commit()
    connection.close()
    with RunStore(tmp_path) as store:
        assert store.open_run(1).points()[0].current == 1e-6
        assert store.open_run(1).maps("conductance")[0].data[0, 0] == 2e-6
        assert store.open_run(1).maps("conductance")[0].unit == ("" if version == 2 else "S")
        assert store.calibrations() == []
        calibrate(store, "die1", 1.0)
        assert store.latest_calibration("die1") is not None
    connection = sqlite3.connect(tmp_path / DB_FILENAME)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 4
    connection.close()
