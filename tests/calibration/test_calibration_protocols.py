"""``calibrate-parasitics`` and ``mvm-error`` through the engine on virtual benches: recovery of
hidden per-line paths, the record and its use by later runs, resume and dry run."""

from __future__ import annotations

import numpy as np
import pytest
from figurechecks import check_labels
from xbarlab.sim_instruments.world import line_paths

import xbarlab
from xbarlab.bench import open_bench
from xbarlab.benchfile import load_bench
from xbarlab.calibration.record import attach_calibration
from xbarlab.engine import RunInterrupted, run_stage
from xbarlab.figures import run_figures
from xbarlab.physics import solve_crossbar
from xbarlab.progress import Progress
from xbarlab.store import RunStore

HIDDEN = dict(seed=21, r_path_row=110.0, r_path_col=70.0, r_path_spread=0.2, r_wire_row=3.0,
              r_wire_col=2.0)


def hidden_paths(path):
    """The virtual bench's hidden per-line paths (its World draws them from its seed)."""
    spec = load_bench(path)
    return line_paths(spec.sim, spec.chip.rows, spec.chip.cols)


def assert_recovered(metrics, rows_truth, cols_truth, wires, median=0.05, per_line=0.10):
    for name, truth in (("r_source", rows_truth), ("r_sense", cols_truth)):
        found = np.array(metrics[name]["per_line"])
        assert abs(np.median(found) / np.median(truth) - 1) < median, name
        assert np.max(np.abs(found / truth - 1)) < per_line, name
        low, high = metrics[name]["ci95"]
        assert low <= metrics[name]["value"] <= high
    for name, truth in zip(("r_wire_row", "r_wire_col"), wires, strict=True):
        assert abs(metrics[name]["value"] / truth - 1) < median, name


def test_board_calibration_recovers_hidden_paths_and_later_runs_use_it(board_file, tmp_path):
    path = board_file(8, 8, **HIDDEN)
    store = tmp_path / "store"
    result = xbarlab.run_protocol("calibrate-parasitics", path, store=store, progress=False)
    metrics = result.metrics
    assert metrics["fitted"] and metrics["chip"] == "board-8x8"
    assert_recovered(metrics, *hidden_paths(path), (3.0, 2.0))
    with RunStore(store) as runs:
        stored = runs.latest_calibration("board-8x8")
        assert stored.calibration_id == metrics["calibration_id"]
        assert stored.run_id == result.run_id
        assert stored.record["measurement"]["patterns"] == 1
    later = xbarlab.run_protocol("read-map", path, store=store, progress=False)
    assert later.run.checkpoints()["calibration"]["id"] == metrics["calibration_id"]
    products = xbarlab.run_protocol("mvm-error", path, store=store, progress=False, inputs=4,
                                    fit_inputs=4)
    for run in (result.run, products.run):  # their maps, labelled with units, no empty panel
        figures = run_figures(run)
        assert figures and all(check_labels(figure) == [] for _, figure in figures)


@pytest.mark.parametrize("scheme, noise", [("ground", 0.005), ("v/2", 0.012)])
def test_corrected_read_maps_are_what_the_cells_are(board_file, world, tmp_path, scheme,
                                                    noise):
    """After a calibration, on the same open bench (the chip keeps its last pattern): the
    corrected map is within read noise of the true cells (1 % a reading, four readings a
    cell; under V/2 the half-selected cells' noise adds), the raw one is biased."""
    path = board_file(8, 8, **HIDDEN)
    with RunStore(tmp_path) as store, open_bench(str(path)) as bench:
        parent = store.start_run("test-pipeline", {}, bench.spec.text, shape=(8, 8))
        quiet = Progress(show=False)
        with parent:
            run_stage("calibration", "calibrate-parasitics", bench, parent, quiet)
            truth = world(path).conductance().copy()
            maps = {correct: run_stage(f"map-{correct}", "read-map", bench, parent, quiet,
                                       scheme=scheme, reads=4, correct=correct)
                    for correct in (True, False)}
            corrected, raw = (store.open_run(maps[c].run_id).latest_map("conductance")
                              for c in (True, False))
    strong = truth > 1e-5
    error = np.abs(corrected / truth - 1)[strong]
    assert np.median(error) < noise
    assert np.median(error) < np.median(np.abs(raw / truth - 1)[strong]) / 3


@pytest.mark.parametrize("read_noise", [True, False])
def test_matrix_calibration_from_the_instruments_alone(small_matrix_file, tmp_path, read_noise):
    """A real bench's view: nothing here looks inside the simulator; the expected values are
    the bench file's own (uniform paths: no spread). Without read noise the repeated
    readings of an entry agree exactly (the meters round them to one value): the fit weighs
    them by the readings' resolution, not infinitely."""
    path = small_matrix_file(8, r_path_row=60.0, r_path_col=90.0, r_path_spread=0.0,
                             r_wire_row=4.0, r_wire_col=4.0, read_noise=read_noise)
    result = xbarlab.run_protocol("calibrate-parasitics", path, store=tmp_path, progress=False,
                                  repeats=3, partners=4)
    assert_recovered(result.metrics, np.full(8, 60.0), np.full(8, 90.0), (4.0, 4.0))
    assert result.metrics["excitations"] > 2 * 8  # four lines sensed at a time, in groups


def test_an_interrupted_calibration_resumes_where_it_stopped(board_file, tmp_path):
    path = board_file(6, 6, **HIDDEN)

    class StopAfter(Progress):
        def __init__(self, steps):
            super().__init__(show=False)
            self.left = steps

        def advance(self, steps=1):
            super().advance(steps)
            self.left -= steps
            if self.left <= 0:
                raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as stopped:
        xbarlab.run_protocol("calibrate-parasitics", path, store=tmp_path,
                             progress=StopAfter(36 + 5))  # pattern programmed, 5 excitations
    run_id = stopped.value.result.run_id
    assert stopped.value.result.status == "aborted"
    resumed = xbarlab.run_protocol("calibrate-parasitics", path, store=tmp_path,
                                   resume=run_id, progress=False)
    assert resumed.status == "completed" and resumed.metrics["fitted"]
    checkpoints = resumed.run.checkpoints()
    assert checkpoints["pattern0/rows programmed"] == 6
    assert sum(key.startswith("pattern0/x") for key in checkpoints) == 12


def test_dry_run_measures_nothing_and_stores_nothing(board_file):
    path = board_file(6, 6, **HIDDEN)
    result = xbarlab.run_protocol("calibrate-parasitics", path, dry_run=True, progress=False)
    assert result.metrics["fitted"] is False
    assert result.dry_run.summary()["operations"] > 36  # the pattern's pulses and excitations


def test_mvm_error_corrected_is_below_uncorrected(board_file, tmp_path):
    """Calibration and products on one open bench (stages of one parent run, as a pipeline
    runs them): the chip keeps the calibration's last pattern, and the stage after the
    calibration uses its record."""
    path = board_file(8, 8, **HIDDEN)
    with RunStore(tmp_path) as store, open_bench(str(path)) as bench:
        parent = store.start_run("test-pipeline", {}, bench.spec.text, shape=(8, 8))
        quiet = Progress(show=False)
        with parent:
            calibration = run_stage("calibration", "calibrate-parasitics", bench, parent, quiet)
            result = run_stage("mvm", "mvm-error", bench, parent, quiet, inputs=20,
                               fit_inputs=6)
            off = run_stage("mvm-raw", "mvm-error", bench, parent, quiet, inputs=20,
                            fit_inputs=6, correct=False)
            assert not bench.corrects  # that stage turned correction off ...
            attach_calibration(bench, store)  # ... the next stage starts with it on again
            product = bench.mvm(np.full(8, 0.1))
            assert bench.corrects and not np.allclose(product.currents, product.raw_currents,
                                                      rtol=1e-3, atol=0)
    m = result.metrics
    assert m["calibration_id"] == calibration.metrics["calibration_id"]
    assert m["mvm_error_corrected"] < m["mvm_error_uncorrected"] / 3
    assert m["mvm_error_linear"] < m["mvm_error_uncorrected"]
    assert off.metrics["mvm_error_corrected"] is None and off.metrics["calibration_id"] is None


def test_mvm_error_needs_a_board(small_matrix_file):
    from xbarlab.params import ParameterError

    with pytest.raises(ParameterError, match="no array board"):
        xbarlab.run_protocol("mvm-error", small_matrix_file(4), dry_run=True, progress=False)


def test_excitation_readings_are_points_of_the_run(board_file, world, tmp_path):
    """Every reading of a line crossing the driven one is a ``read`` point of the cell where
    they cross (V across it, A from row to column), and what it holds is what the hidden
    network carries: the exact solve of the true cells, paths and wires for that excitation."""
    path = board_file(8, 8, **HIDDEN)
    with RunStore(tmp_path) as store, open_bench(str(path)) as bench:
        parent = store.start_run("test-pipeline", {}, bench.spec.text, shape=(8, 8))
        with parent:
            calibration = run_stage("calibration", "calibrate-parasitics", bench, parent,
                                    Progress(show=False), repeats=4)
            hidden = world(path)
            truth, rows_path, cols_path = (hidden.conductance().copy(), hidden.path_row,
                                           hidden.path_col)
            points = store.open_run(calibration.run_id).point_arrays()
    assert set(points["operation"]) == {"read"}
    assert len(points["current"]) == 2 * 8 * 8 * 4  # each cell from its row and its column
    v_read = 0.2
    eye = np.eye(8) * v_read
    by_row = solve_crossbar(truth, eye, np.zeros((8, 8)), r_source=rows_path,
                            r_sense=cols_path, r_wire_row=3.0, r_wire_col=2.0)
    by_col = solve_crossbar(truth, np.zeros((8, 8)), eye, r_source=rows_path,
                            r_sense=cols_path, r_wire_row=3.0, r_wire_col=2.0)
    expected = {v_read: by_row.i_col, -v_read: by_col.i_row.T}  # [driver row or sensed row, col]
    for voltage, model in expected.items():
        chosen = np.isclose(points["voltage"], voltage)
        mean = np.zeros((8, 8))
        np.add.at(mean, (points["row"][chosen], points["col"][chosen]),
                  points["current"][chosen] / 4)
        strong = truth > 1e-5
        assert np.median(np.abs(mean / model - 1)[strong]) < 0.01
        assert np.max(np.abs(mean / model - 1)[strong]) < 0.03
