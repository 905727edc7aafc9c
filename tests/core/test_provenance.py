"""Provenance: instrument I/O in Python logging (--log FILE), and a run loaded for a notebook
(points as a DataFrame with units, maps as arrays) equal to what the store holds."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from xbarlab.drivers.errors import InstrumentError

import xbarlab
from xbarlab.bench import open_bench
from xbarlab.cli import main


def test_log_file_has_every_write_and_read_of_each_instrument(tmp_path):
    log = tmp_path / "io.log"
    assert main(["--log", str(log), "run", "read-map", "--bench", "classic", "-q",
                 "--set", "cells=0,0-1", "--store", str(tmp_path / "store")]) == 0
    lines = log.read_text().splitlines()
    pattern = re.compile(r"^\S+ \S+ DEBUG xbarlab\.instruments\.(\S+): (write|read) '")
    found = [pattern.match(line) for line in lines]
    assert all(found), [line for line, match in zip(lines, found, strict=True) if not match][:3]
    by_address = {match.group(1) for match in found}
    assert {"GPIB0::24::INSTR", "GPIB0::25::INSTR"} <= by_address  # each SMU its own logger
    reads = [line for line in lines if " read '" in line]
    assert any("KEITHLEY INSTRUMENTS INC.,MODEL 2400" in line for line in reads)
    for handler in list(logging.getLogger("xbarlab").handlers):
        logging.getLogger("xbarlab").removeHandler(handler)
        handler.close()


def test_an_instrument_error_is_logged_at_warning(caplog):
    with open_bench("classic") as bench:
        driver = bench._drivers["smu1"]  # the driver itself: the bench offers no raw commands
        with caplog.at_level(logging.WARNING, logger="xbarlab.instruments"), \
                pytest.raises(InstrumentError):
            driver.configure(":SOUR:VOLT:LEV 1e9")
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and warned[0].name == f"xbarlab.instruments.{driver.address}"
    assert ":SOUR:VOLT:LEV 1e9" in warned[0].getMessage()


def test_load_gives_the_points_with_units_and_the_maps(tmp_path):
    result = xbarlab.run_protocol("read-map", "classic", store=tmp_path, progress=False,
                                  cells="0-1,0-2", reads=2)
    data = xbarlab.load(result.run_id, tmp_path)
    stored = result.run.points()
    frame = data.points
    assert len(frame) == len(stored) == 12
    assert list(frame["current"]) == [p.current for p in stored]
    assert list(frame["operation"].astype(str)) == [p.operation for p in stored]
    start = data.info.started_at
    assert [start + t for t in frame["t"]] == [p.t for p in stored]
    assert frame["pulse_width"].isna().all() and (frame["missing"] == 4).all()
    assert frame.attrs["units"]["current"] == "A" and frame.attrs["units"]["t"] == "s"
    assert frame.attrs["start"].startswith(
        f"{np.datetime64(int(start), 's').astype(str)}")
    np.testing.assert_array_equal(data.maps["conductance"],
                                  result.run.latest_map("conductance"))
    assert data.map_units["conductance"] == "S" and data.metrics["cells"] == 6
    progress = result.run.checkpoints()["progress"]  # what xbarlab view shows of a live run
    assert progress["phase"] == 1 and progress["total"] == 12 and progress["done"] <= 12
    per_cell = frame.groupby(["row", "col"])["current"].mean() / 0.2
    assert per_cell[(1, 2)] == pytest.approx(data.maps["conductance"][1, 2], rel=1e-12)
