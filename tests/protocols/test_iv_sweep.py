"""iv-sweep: hysteresis loops under half-select protection, SET/RESET extraction, the
half-selected current correction, stored points, resume, dry run and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
from dryruns import dry_report
from virtualbenches import reading_sigma
from xbarlab.protocols.iv_sweep import extract, staircase

from xbarlab.store import RunStore


def test_one_cell_loop_switches_and_only_its_half_selected_neighbours_drift(
        bench_file, run_named, tmp_path):
    path = bench_file(rows=4, cols=4, defects=False)
    outcome = run_named("iv-sweep", path, tmp_path / "store", cells="1,2")
    before, after = outcome.before, outcome.world.conductance()
    metrics = outcome.metrics
    assert metrics["switching_fraction"] == 1.0
    # a staircase dwells ms per step: it switches above the 0.45 V kinetics floor and below
    # the 1.3 V that switches the cell in a 100 ns pulse (the voltage-time dilemma)
    assert 0.45 < metrics["v_set_median"] < 1.3
    assert -1.5 <= metrics["v_reset_median"] < -0.45
    assert metrics["on_off_ratio_median"] > 20
    assert after[1, 2] < 5e-6  # the cycle ends with a RESET
    # cells on neither selected line see 0 V and stay; the half-selected ones of row 1 and
    # column 2 see up to 0.75 V for milliseconds a step and drift (the voltage-time dilemma)
    apart = np.ones_like(before, bool)
    apart[1, :] = apart[:, 2] = False
    assert np.array_equal(after[apart], before[apart])
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(outcome.run_id)
        points = run.points()
        (result,) = [v for k, v in run.checkpoints().items() if k.startswith("iv-sweep")]
    assert len(points) == 2 + len(staircase(1.5, -1.5, 0.05))
    assert {p.operation for p in points} == {"read", "set", "reset"}
    column_others = before[:, 2].sum() - before[1, 2]
    assert result["half_selected_s"] == pytest.approx(column_others, rel=0.1)
    assert (tmp_path / "store" / f"run-{outcome.run_id}-iv-sweep.png").stat().st_size > 0


def test_extraction_finds_the_jumps_of_an_ideal_binary_loop():
    volts = np.array(staircase(1.0, -1.0, 0.1))
    g = np.empty_like(volts)
    state = 1e-6
    for k, v in enumerate(volts):
        state = 1e-4 if v >= 0.7 else 1e-6 if v <= -0.6 else state
        g[k] = state
    loop = extract(volts, g * volts, min_ratio=2.0)
    assert loop["v_set"] == pytest.approx(0.7) and loop["v_reset"] == pytest.approx(-0.6)
    assert loop["on_off_ratio"] == pytest.approx(100)
    flat = extract(volts, 1e-6 * volts, min_ratio=2.0)
    assert flat["v_set"] is None and flat["v_reset"] is None


def test_an_interrupted_sweep_resumes_at_the_unfinished_cell(
        bench_file, run_named, stop_after, tmp_path):
    path = bench_file(rows=4, cols=4)
    levels = len(staircase(1.0, -1.0, 0.1))
    with pytest.raises(KeyboardInterrupt):
        run_named("iv-sweep", path, tmp_path / "store", progress=stop_after(levels + 10),
                  cells="0,0-1", v_set_max=1.0, v_reset_max=-1.0, step=0.1)
    with RunStore(tmp_path / "store") as store:
        (info,) = store.runs()
        assert list(store.open_run(info.run_id).checkpoints()) == ["iv-sweep 0,0"]
    resumed = run_named("iv-sweep", path, tmp_path / "store", resume=info.run_id,
                        cells="0,0-1", v_set_max=1.0, v_reset_max=-1.0, step=0.1)
    assert resumed.metrics["loops"] == 2
    with RunStore(tmp_path / "store") as store:
        cell_1 = store.open_run(info.run_id).points(row=0, col=1)
    assert len(cell_1) > levels + 2  # the interrupted attempt's points are kept too


@pytest.mark.parametrize("setting, message", [
    ({"v_set_max": 6.0}, r"v_set_max = 6.0 V: allowed a number"
        r" > 0 V and <= limits.max_voltage \(5 V\)"),
    ({"step": 0.0}, "step = 0.0 V: allowed a number >= 0.0001 V"),
    ({"scheme": "v/4"}, "scheme = 'v/4': allowed one of float, ground, v/2, v/3"),
])
def test_parameters_out_of_range_are_refused_with_the_allowed_range(
        bench_file, run_named, tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        run_named("iv-sweep", bench_file(rows=4, cols=4), tmp_path / "store", **setting)


def test_dry_run_stays_within_the_limits(bench_file):
    report = dry_report("iv-sweep", str(bench_file(rows=4, cols=4)), cells="0,0")
    assert not report.violations


def test_set_compliance_clamps_the_current_and_caps_the_cell_reset_has_its_own_limit(
        bench_file, run_named, tmp_path):
    outcome = run_named("iv-sweep", bench_file(rows=4, cols=4, defects=False),
                        tmp_path / "store", cells="1,1", step=0.1, compliance=5e-5)
    with RunStore(tmp_path / "store") as store:
        sets = store.open_run(outcome.run_id).points(operation="set")
    meter = 5 * reading_sigma("2636B", 5e-5)  # a reading's own error at the limit
    assert max(p.current for p in sets) <= 5e-5 + meter
    clamped = [p for p in sets if p.compliance]
    assert clamped and all(p.current == pytest.approx(5e-5, abs=meter) for p in clamped)
    assert outcome.metrics["switching_fraction"] == 1.0  # RESET under reset_compliance
    limited = run_named("iv-sweep", bench_file(rows=4, cols=4, defects=False, name="b"),
                        tmp_path / "store", cells="1,1", step=0.1, compliance=5e-5,
                        v_reset_max=-1.0, reset_compliance=5e-5)
    with RunStore(tmp_path / "store") as store:
        resets = store.open_run(limited.run_id).points(operation="reset")
    assert max(abs(p.current) for p in resets) <= 5e-5 + meter  # RESET's own limit
