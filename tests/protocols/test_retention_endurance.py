"""retention (instrument-timed holds advance the virtual clock; readings track the relaxing
truth) and endurance (windows, stuck cells closing at once), with resume, dry runs and errors."""

from __future__ import annotations

import numpy as np
import pytest
from dryruns import dry_report
from xbarlab.protocols.endurance import closed_at
from xbarlab.protocols.retention import retention_maps

from xbarlab.store import RunStore


def test_retention_reads_follow_the_relaxing_truth_on_the_instruments_clock(
        bench_file, run_named, tmp_path):
    path = bench_file(rows=2, cols=2, preset="analog", defects=False, read_noise=False)
    # a partial SET (1.15 V, 100 µs: about 30 of the analog preset's 97 levels) leaves the
    # cells inside their range, where relaxation moves them either way
    outcome = run_named("retention", path, tmp_path / "store", cells="0-1,0", t_first=0.01,
                        t_last=100.0, points=5, v_set=1.15, width=1e-4)
    world = outcome.world
    assert world.clock >= 100.0  # the holds advanced the virtual clock by the schedule
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(outcome.run_id)
        maps = run.maps("conductance")
        programmed = run.points(operation="set")
        times, _ = retention_maps(run)
    assert times == pytest.approx(np.geomspace(0.01, 100.0, 5).tolist())
    assert {m.unit for m in maps} == {"S"}
    assert len(programmed) == 2
    last = maps[-1].data[:, 0]
    np.testing.assert_allclose(last, world.conductance()[:, 0], rtol=0.01)
    truth_drift = world.conductance()[:, 0] / maps[0].data[:, 0] - 1
    assert outcome.metrics["max_abs_drift"] == pytest.approx(np.abs(truth_drift).max(), abs=0.01)
    assert outcome.metrics["max_abs_drift"] > 0.005  # the analog preset relaxes (Wan 2022)
    assert (tmp_path / "store" / f"run-{outcome.run_id}-retention.png").stat().st_size > 0


def test_retention_resumes_at_the_next_time_point_without_programming_again(
        bench_file, run_named, stop_after, tmp_path):
    path = bench_file(rows=2, cols=2)
    params = {"cells": "0,0-1", "t_first": 0.01, "t_last": 10.0, "points": 4}
    with pytest.raises(KeyboardInterrupt):
        run_named("retention", path, tmp_path / "store", progress=stop_after(2 + 2 * 2),
                  **params)
    with RunStore(tmp_path / "store") as store:
        (info,) = store.runs()
    resumed = run_named("retention", path, tmp_path / "store", resume=info.run_id, **params)
    assert resumed.metrics["time_points"] == 4
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(info.run_id)
        assert len(run.points(operation="set")) == 2
        assert len(run.maps("conductance")) == 4


def test_endurance_keeps_healthy_windows_open_and_closes_stuck_cells_at_once(
        bench_file, run_named, tmp_path):
    outcome = run_named("endurance", bench_file(rows=4, cols=4, seed=7), tmp_path / "store",
                        cells="0,1-3", cycles=6)
    defects = outcome.world.array.defect_map()[0, 1:]
    assert (defects == 0).any() and (defects != 0).any()  # the seed has both kinds
    metrics = outcome.metrics
    assert metrics["cells_closed"] == int((defects != 0).sum())
    assert metrics["survived_all_cycles"] == int((defects == 0).sum())
    assert metrics["endurance_median_cycles"] == 0
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(outcome.run_id)
        checkpoints = run.checkpoints()
        points = run.points()
    for col, defect in zip(range(1, 4), defects, strict=True):
        cell = checkpoints[f"endurance 0,{col}"]
        assert len(cell["g_on"]) == (6 if defect == 0 else 3)  # patience 3
        windows = np.array(cell["g_on"]) / np.array(cell["g_off"])
        assert (windows > 10).all() if defect == 0 else (windows < 2).all()
    assert len(points) == 4 * metrics["cycles_run"]  # set, read, reset, read per cycle


def test_window_closure_needs_patience_consecutive_closed_cycles():
    on = [1e-4, 1e-4, 1.5e-6, 1e-4, 1.5e-6, 1.5e-6, None, 1.5e-6]
    off = [1e-6] * 8
    assert closed_at(on, off, min_window=2.0, patience=2) == 4
    assert closed_at(on, off, min_window=2.0, patience=3) is None  # no reading breaks a streak


def test_endurance_resumes_each_cell_at_its_next_cycle(
        bench_file, run_named, stop_after, tmp_path):
    path = bench_file(rows=2, cols=2, defects=False)
    with pytest.raises(KeyboardInterrupt):
        run_named("endurance", path, tmp_path / "store", progress=stop_after(3), cycles=5)
    with RunStore(tmp_path / "store") as store:
        (info,) = store.runs()
    resumed = run_named("endurance", path, tmp_path / "store", resume=info.run_id, cycles=5)
    assert resumed.metrics["cycles_run"] == 5
    with RunStore(tmp_path / "store") as store:
        assert len(store.open_run(info.run_id).points(operation="set")) == 5


@pytest.mark.parametrize("name, setting, message", [
    ("retention", {"program": "form"}, "program = 'form': allowed one of set, reset, none"),
    ("retention", {"t_first": 1e-4}, r"t_first = 0.0001 s: allowed >= 2 x hold_width \(0.002 s\)"),
    ("retention", {"points": 200}, "points = 200: the first interval"),
    ("endurance", {"v_reset": 0.5}, r"v_reset = 0.5 V: allowed a"
        r" number >= -limits.max_voltage \(-5 V\) and < 0 V"),
    ("endurance", {"min_window": 1.0}, "min_window = 1.0: allowed a number > 1"),
])
def test_parameters_out_of_range_are_refused_with_the_allowed_range(
        bench_file, run_named, tmp_path, name, setting, message):
    with pytest.raises(ValueError, match=message):
        run_named(name, bench_file(rows=2, cols=2), tmp_path / "store", cells="0,0", **setting)


@pytest.mark.parametrize("name, params, pulses", [("retention", {}, 1 + 11),
                                                   ("endurance", {"cycles": 40}, 2 * 40)])
def test_dry_runs_play_the_worst_case_within_the_limits(bench_file, name, params, pulses):
    report = dry_report(name, str(bench_file(rows=2, cols=2)), cells="0,0", **params)
    assert not report.violations and report.complete
    assert report.summary()["pulses"] == pulses  # program + one hold per time; every cycle


def test_the_plan_of_a_long_endurance_run_counts_every_cycle_and_plays_its_first(bench_file):
    report = dry_report("endurance", str(bench_file(rows=2, cols=2)), cells="0-1,0",
                        cycles=10**5)
    assert not report.complete and not report.violations
    assert (report.plan.pulses, report.plan.readings) == (2 * 2 * 10**5, 2 * 2 * 10**5)
    assert report.plan.phases[0].seconds == pytest.approx(2 * 2 * 10**5 * 1e-3)  # the widths
