"""Items 4 and 14: relays stuck open or closed on a read map. The cells behind a relay stuck
open read as open circuits; the bench then checks the relays of their route, and the cells are
stored as unreachable (no current) and counted in the metrics, never as 0 A / 0 S. A relay
stuck closed is found by the read map's check before it reads (or by a read in compliance),
and every cell whose read it disturbs is stored unreachable. Healthy cells are unaffected."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reliability import fault, small_text, write_bench
from virtualbenches import world_of

import xbarlab
from xbarlab.bench import open_bench
from xbarlab.store import RunStore


def test_read_map_reports_the_cells_behind_a_stuck_relay_unreachable(tmp_path):
    # default bench: matrix output 37 is col:0; the sensing SMU of a ground read is smu.a (A)
    text = small_text("default") + fault("matrix", "stuck_relay", input="A", output=37)
    path = write_bench(tmp_path, text)
    result = xbarlab.run_protocol("read-map", path, store=tmp_path / "store", progress=False)
    assert result.metrics["cells_unreachable"] == 4
    (route,) = result.metrics["unreachable_routes"]
    assert "matrix input for smu.a to col:0 (output 37)" in route and "stuck open" in route
    conductance = result.run.latest_map("conductance")
    assert np.isnan(conductance[:, 0]).all()
    truth = world_of(path).conductance()
    error = np.abs(conductance[:, 1:] - truth[:, 1:]) / truth[:, 1:]
    assert error.max() < 0.05
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(result.run_id)
        reads = run.points(operation="read")
        assert not any(p.col == 0 for p in reads)
        assert all(p.current != 0.0 for p in reads)
        assert {(p.row, p.col) for p in run.points(operation="unreachable")} == {
            (r, 0) for r in range(4)}


def test_without_a_fault_no_route_is_checked(tmp_path):
    path = write_bench(tmp_path, small_text("default"))
    result = xbarlab.run_protocol("read-map", path, store=tmp_path / "store", progress=False)
    assert result.metrics["cells_unreachable"] == 0
    assert result.metrics["read_operations"] == 16


# default bench: rows on outputs 1-32, columns on 37-68; a ground read drives the row from
# smu.b (B), senses the column on smu.a (A) and grounds every other line (H)
ALL = {(r, c) for r in range(4) for c in range(4)}


@pytest.mark.parametrize(("relay", "line", "lost"), [
    (("B", 1), "smu.b stuck closed to row:0", {(r, c) for r, c in ALL if r != 0}),
    (("B", 38), "smu.b stuck closed to col:1", ALL),
    (("A", 2), "smu.a stuck closed to row:1", ALL),
    (("A", 38), "smu.a stuck closed to col:1", {(r, c) for r, c in ALL if c != 1}),
    (("H", 38), "(ground) stuck closed to col:1", {(r, 1) for r in range(4)}),
])
def test_a_relay_stuck_closed_is_found_by_the_read_map_and_its_cells_reported(
        tmp_path, relay, line, lost):
    """A line tied to a second input reads plausibly wrong (a whole column 1.5x or 0.5x): the
    read map checks the relays for one stuck closed before it reads, and every cell whose
    read it disturbs is stored unreachable, naming the relay; the others read true."""
    text = small_text("default") + fault("matrix", "stuck_closed", input=relay[0],
                                         output=relay[1])
    path = write_bench(tmp_path, text)
    result = xbarlab.run_protocol("read-map", path, store=tmp_path / "store", progress=False)
    (route,) = result.metrics["unreachable_routes"]
    assert line in route and f"(output {relay[1]})" in route
    conductance = result.run.latest_map("conductance")
    assert {tuple(cell) for cell in np.argwhere(np.isnan(conductance))} == lost
    truth = world_of(path).conductance()
    kept = ~np.isnan(conductance)
    assert np.all(np.abs(conductance[kept] - truth[kept]) < 0.05 * truth[kept])


def test_a_read_in_compliance_checks_the_relays_for_one_stuck_closed(tmp_path):
    """Outside a read map: smu.b's relay to row 0 stuck closed shorts it to ground when it
    drives another row; the read at its limit triggers the check and is reported."""
    text = small_text("default") + fault("matrix", "stuck_closed", input="B", output=1)
    with open_bench(str(write_bench(tmp_path, text))) as bench:
        assert bench.read(0, 2, 0.2, "ground").unreachable == ""
        reading = bench.read(2, 2, 0.2, "ground")
        assert "smu.b stuck closed to row:0" in reading.unreachable
        assert math.isnan(reading.current)
