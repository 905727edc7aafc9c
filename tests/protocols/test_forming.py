"""forming: pristine cells formed under compliance with read-back feedback, formed cells skipped,
stuck cells reported, resume, dry run and parameter errors (small pristine benches)."""

from __future__ import annotations

import pytest
from dryruns import dry_report

from xbarlab.store import RunStore


def test_pristine_cells_form_and_stop_at_the_first_pulse_that_brings_them_down(
        bench_file, run_named, tmp_path):
    outcome = run_named("forming", bench_file(rows=3, cols=3, pristine=True, defects=False),
                        tmp_path / "store", compliance=1e-3, v_start=1.8)
    metrics = outcome.metrics
    assert metrics["formed"] == 9 and metrics["failed"] == 0 and metrics["forming_yield"] == 1
    assert outcome.world.array.formed().all()
    assert (outcome.before < 1e-7).all()  # they started pristine (~100 Mohm)
    assert 2.0 <= metrics["v_form_median"] <= 2.5  # binary preset: v_form = 2 V
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(outcome.run_id)
        forms = run.points(operation="form")
        reads = run.points(operation="read")
        resets = run.points(operation="reset")
        results = [v for k, v in run.checkpoints().items() if k.startswith("forming")]
        final = run.latest_map("r_final")
    # the survey's read, a read before the first pulse, after every pulse and after the
    # closing RESET of each cell
    assert len(resets) == 9 and len(reads) == len(forms) + 3 * 9
    assert (final < 1e5).all()
    # the closing RESET takes each cell an order of magnitude up, toward its HRS
    assert all(result["r_after_reset"] > 10 * result["r_final"] for result in results)
    assert all(p.voltage <= 2.5 and p.pulse_width >= 1e-3 for p in forms)
    assert (tmp_path / "store" / f"run-{outcome.run_id}-forming.png").stat().st_size > 0


def test_formed_cells_are_skipped_and_stuck_cells_reported(bench_file, run_named, tmp_path):
    formed = run_named("forming", bench_file(rows=3, cols=3, name="formed"), tmp_path / "a")
    assert formed.metrics["already_formed"] == 9 and formed.metrics["pulses"] == 0
    outcome = run_named("forming", bench_file(rows=4, cols=4, pristine=True, seed=7),
                        tmp_path / "b", cells="0-1,*", v_start=1.9)
    defects = outcome.world.array.defect_map()[:2]
    assert (defects != 0).any()  # the seed has stuck cells
    # a stuck cell reads like a formed one (stuck-on at the LRS, stuck-off at the HRS, far
    # below a pristine cell), so it is skipped, never pulsed
    assert outcome.metrics["already_formed"] == int((defects != 0).sum())
    assert outcome.metrics["formed"] == int((defects == 0).sum())
    assert outcome.world.array.formed()[:2][defects == 0].all()


def test_an_interrupted_forming_run_resumes_with_the_unfinished_cells(
        bench_file, run_named, stop_after, tmp_path):
    path = bench_file(rows=2, cols=2, pristine=True, defects=False)
    with pytest.raises(KeyboardInterrupt):
        # the survey reads the 4 cells (4 steps), then 2 cells are formed
        run_named("forming", path, tmp_path / "store", progress=stop_after(4 + 2))
    with RunStore(tmp_path / "store") as store:
        (info,) = store.runs()
        first = len(store.open_run(info.run_id).points(operation="form"))
    resumed = run_named("forming", path, tmp_path / "store", resume=info.run_id)
    assert resumed.metrics["cells"] == 4 and resumed.metrics["formed"] == 4
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(info.run_id)
        done_first = {(p.row, p.col) for p in run.points(operation="form")[:first]}
        later = {(p.row, p.col) for p in run.points(operation="form")[first:]}
    assert len(done_first) == 2 and not done_first & later


@pytest.mark.parametrize("setting, message", [
    ({"v_stop": 6.0}, r"v_stop = 6.0 V: allowed a number > 0 V and <= limits.max_voltage \(5 V\)"),
    ({"width_stop": 2.0}, r"width_stop = 2.0 s: allowed .* <= limits.max_pulse_width \(1 s\)"),
    ({"drop": 1.0}, "drop = 1.0: allowed a number > 0 and < 1"),
    ({"scheme": "ground"}, "scheme = 'ground': allowed one of float, v/2, v/3"),
])
def test_parameters_out_of_range_are_refused_with_the_allowed_range(
        bench_file, run_named, tmp_path, setting, message):
    with pytest.raises(ValueError, match=message):
        run_named("forming", bench_file(rows=2, cols=2), tmp_path / "store", **setting)


def test_dry_run_plays_the_whole_ramp_under_the_compliance(bench_file):
    report = dry_report("forming", str(bench_file(rows=2, cols=2)), cells="0,0",
                        compliance=4e-5, v_stop=3.0)
    summary = report.summary()
    assert not report.violations
    assert summary["pulses"] == 16 * 3  # nothing measured: every amplitude x width is played
    assert summary["max_abs_current"] <= 4e-5 and summary["max_abs_voltage"] <= 3.0



def test_on_a_board_the_survey_reads_a_whole_row_per_measurement(tmp_path):
    from boards import write_board

    from xbarlab import run_protocol

    result = run_protocol("forming", write_board(tmp_path, 4, seed=7), store=tmp_path / "s",
                          progress=False)
    trips = result.metrics["round_trips"]
    assert trips["read_row"]["calls"] == 4  # one measurement per row, nothing else
    assert set(trips) == {"read_row"} and result.metrics["already_formed"] == 16


def test_a_pristine_board_forms_every_healthy_cell(run_named, tmp_path):
    from boards import write_board

    outcome = run_named("forming", write_board(tmp_path, 3, seed=7, pristine=True),
                        tmp_path / "store", v_start=1.9)
    healthy = outcome.world.array.defect_map() == 0
    assert outcome.metrics["formed"] == int(healthy.sum()) > 0
    assert outcome.world.array.formed()[healthy].all()
    assert outcome.metrics["already_formed"] == int((~healthy).sum())
