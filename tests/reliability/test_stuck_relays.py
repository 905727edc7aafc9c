"""Item 4: a stuck-open relay on a read map. The cells behind it read as open circuits; the
bench then checks the relays of their route, and the cells are stored as unreachable (no
current) and counted in the metrics, never as 0 A / 0 S. Healthy cells are unaffected."""

from __future__ import annotations

import numpy as np
from reliability import fault, small_text, world_of, write_bench

import xbarlab
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
