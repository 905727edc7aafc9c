"""``program-efficient``: C-F against F-F on the same cells, the thresholded update, the energy
account, stuck cells, resume, dry run, parameter errors and the PNG.

The benches are a small array board (binary preset, 100 ns pulses, V/2 half-select protection),
each test its own World; tests look inside it for the truth (defect map, conductances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pyvisa
from boards import write_board
from dryruns import dry_report
from xbarlab.protocols.program_efficient import (
    UPDATE_PHASES,
    binary_targets,
    significant,
    updated_targets,
)
from xbarlab.sim_instruments.truth import DeliveredEnergy

from xbarlab.bench import open_bench
from xbarlab.physics.device import HEALTHY
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

BOARD = {"width": 1e-7, "g_lrs": 50e-6, "g_hrs": 1.5e-6}
"""Targets given (learning them is test_learned_targets.py's)."""


@dataclass
class Outcome:
    metrics: dict
    run_id: int
    store: Path
    world: object
    delivered: dict
    """The World's delivered pulse energy (J) per phase (``ff: programming`` ...)."""


def play(bench_path: Path, store_dir: Path, progress: Progress | None = None,
         resume: int | None = None, **params) -> Outcome:
    """Run program-efficient as ``xbarlab run`` does (a new run, or `resume` one)."""
    protocol = get_protocol("program-efficient")
    with RunStore(store_dir) as store, open_bench(str(bench_path)) as bench:
        world = pyvisa.ResourceManager(f"{bench_path}@xbarsim").visalib.world
        truth = DeliveredEnergy(world)
        run = (store.resume(resume) if resume is not None else
               store.start_run("program-efficient", params, bench.spec.text,
                               shape=(bench.rows, bench.cols)))
        with run, truth.count(bench):
            metrics = protocol(bench, run, progress or truth.progress(), **params)
    return Outcome(dict(metrics), run.run_id, store_dir, world, truth.by_phase)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """One full run on a whole 6 x 6 board, shared by the tests that only read its results."""
    directory = tmp_path_factory.mktemp("program-efficient")
    return play(write_board(directory, 6, 5), directory / "store", rows=6, cols=6, **BOARD)


def test_targets_updates_and_threshold_are_exact_and_seeded():
    targets = binary_targets((6, 8), 0.25, 50e-6, 2e-6, np.random.default_rng(1))
    assert (targets == 50e-6).sum() == 12 and (targets == 2e-6).sum() == 36
    again = binary_targets((6, 8), 0.25, 50e-6, 2e-6, np.random.default_rng(1))
    assert np.array_equal(targets, again)
    new = updated_targets(targets, 50e-6, 2e-6, 0.125, 0.15, np.random.default_rng(2))
    flipped = (new == 50e-6) & (targets == 2e-6) | (new == 2e-6) & (targets == 50e-6)
    assert flipped.sum() == 6
    nudged = np.abs(new - targets)[~flipped] / targets[~flipped]
    assert nudged.max() <= 0.15
    moved = significant(targets, new, 0.1, 50e-6)
    assert moved[flipped].all()  # a flip always moves by more than 10 % of the LRS
    assert not moved[(targets == 2e-6) & ~flipped].any()  # nudging an HRS cell is never worth it
    assert np.array_equal(moved, np.abs(new - targets) > 5e-6)


def test_coarse_hrs_saves_energy_and_pulses_with_the_same_lrs_programming(outcome):
    m = outcome.metrics
    ff, cf = m["ff"], m["cf"]
    # the energy is what every source delivered during the pulses (the World's physics)
    truth = {scheme: outcome.delivered[f"{scheme}: programming"] for scheme in ("ff", "cf")}
    for scheme in ("ff", "cf"):
        assert m[scheme]["energy_measured"]
        assert m[scheme]["energy_j"] == pytest.approx(truth[scheme], rel=0.02)
    assert cf["hrs_pulses"] < ff["hrs_pulses"] and cf["hrs_energy_j"] < ff["hrs_energy_j"]
    # the acceptance claim (C-F at least 40 % below F-F), on the true energy
    assert m["energy_saving"] == pytest.approx(1 - truth["cf"] / truth["ff"], abs=0.01)
    assert m["energy_saving"] >= 0.4
    # LRS cells are programmed alike (fine, tight) in both schemes
    for scheme in (ff, cf):
        assert scheme["lrs_verify_error_p95"] <= 0.02 * 1.0001
        assert scheme["success_rate"] >= 0.9
        assert scheme["lrs_energy_j"] + scheme["hrs_energy_j"] == pytest.approx(
            scheme["energy_j"])
    assert m["cells"] == 36 and m["lrs_cells"] == 18


def test_every_pulse_is_a_point_and_the_energy_is_the_sum_of_the_cells(outcome):
    with RunStore(outcome.store) as store:
        run = store.open_run(outcome.run_id)
        checkpoints = run.checkpoints()
        pulses = [p for p in run.points() if p.operation in ("set", "reset")]
        maps = {record.name for record in run.maps()}
    m = outcome.metrics
    per_cell = {phase: [v for k, v in checkpoints.items() if k.startswith(phase + "/")
                        and isinstance(v, dict)] for phase in ("ff", "cf", *UPDATE_PHASES)}
    for scheme in ("ff", "cf"):
        assert len(per_cell[scheme]) == 36
        assert sum(c["energy_j"] for c in per_cell[scheme]) == pytest.approx(
            m[scheme]["energy_j"])
        assert sum(c["pulses"] for c in per_cell[scheme]) == m[scheme]["pulses"]
    preparation = 2 * 36  # one full-strength pulse per cell before each scheme, not charged
    programmed = sum(m[s]["pulses"] for s in ("ff", "cf")) + m["update"]["pulses_all"]
    assert len(pulses) == preparation + programmed
    assert all(p.pulse_width == 1e-7 for p in pulses)
    assert {"ff", "cf", *UPDATE_PHASES} <= maps


def test_rereads_measure_the_array_and_stuck_cells_are_true_defects(outcome):
    world = outcome.world
    with RunStore(outcome.store) as store:
        last = store.open_run(outcome.run_id).latest_map(UPDATE_PHASES[-1])
    truth = world.conductance()
    healthy = world.array.defect_map() == HEALTHY
    error = np.abs(last - truth) / truth
    assert np.nanmax(error[healthy]) < 0.1  # read noise and line resistance, nothing else
    with RunStore(outcome.store) as store:
        checkpoints = store.open_run(outcome.run_id).checkpoints()
    flagged = {tuple(map(int, key.split("/")[1].split(","))) for key, value in checkpoints.items()
               if isinstance(value, dict) and value.get("stuck")}
    for row, col in flagged:
        assert not healthy[row, col], f"cell ({row}, {col}) is healthy but was called stuck"


def test_thresholded_update_skips_small_moves_and_saves_their_energy(outcome):
    update = outcome.metrics["update"]
    assert update["cells_programmed"] + update["cells_skipped"] == 36
    assert update["cells_skipped"] > update["cells_programmed"] > 0
    assert update["energy_j_all"] > update["energy_j_thresholded"] > 0
    assert update["energy_saving"] == pytest.approx(
        1 - update["energy_j_thresholded"] / update["energy_j_all"])
    assert update["max_skipped_target_move"] <= 0.15
    assert update["pulses_all"] > update["pulses_thresholded"]
    for key in ("lrs_rel_error_p95_thresholded", "lrs_rel_error_p95_all"):
        assert 0 < update[key] < 1  # both re-read and reported (relaxation dominates both)


def test_the_png_is_written_beside_the_store(outcome):
    path = outcome.metrics["plot"]
    assert path.endswith(f"run-{outcome.run_id}-program-efficient.png")
    with open(path, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def test_an_interrupted_run_resumes_without_redoing_finished_cells(tmp_path, stop_after):
    path = write_board(tmp_path, 4, 3)
    store = tmp_path / "store"
    params = {"rows": 3, "cols": 3, "shared_amplitudes": True, **BOARD}
    with pytest.raises(KeyboardInterrupt):
        play(path, store, progress=stop_after(9 + 5), **params)  # 9 preparations, 5 cells
    with RunStore(store) as runs:
        run = runs.open_run(1)
        assert run.status == "aborted"
        before = {k: v for k, v in run.checkpoints().items() if k.startswith("ff/")}
    assert before.pop("ff/prepared") is True
    assert len(before) == 5
    resumed = play(path, store, resume=1, **params)
    with RunStore(store) as runs:
        after = runs.open_run(1).checkpoints()
    for key, value in before.items():
        assert after[key] == value  # finished cells were not programmed again
    assert len([k for k in after if k.startswith("ff/") and "," in k]) == 9
    m = resumed.metrics
    assert m["cells"] == 9
    assert m["ff"]["pulses"] == sum(after[f"ff/{r},{c}"]["pulses"] for r in range(3)
                                    for c in range(3))
    assert math.isfinite(m["energy_saving"])


def test_dry_run_plays_the_protocol_within_the_bench_limits(tmp_path):
    report = dry_report("program-efficient", str(write_board(tmp_path, 4, 1)), rows=1, cols=2,
                        max_pulses=3, relax_wait=0.0, **BOARD)
    summary = report.summary()
    assert not summary["violations"]
    assert summary["pulses"] > 0 and summary["max_abs_voltage"] == pytest.approx(1.3)


@pytest.mark.parametrize(("params", "message"), [
    ({"rows": 7}, r"rows = 7: allowed 0 \(to the last row\) or"
        r" an integer >= 1 and <= chip.rows \(6\)"),
    ({"row0": 2, "rows": 5}, r"rows = 5: allowed 0 \(to the last line\) or up to 4"),
    ({"col0": 6}, r"col0 = 6: allowed an integer >= 0 and < chip.cols \(6\)"),
    ({"coarse_step": 0.001}, r"coarse_step = 0.001 V: allowed a"
        r" number >= fine_step \(0.01 V\) and <= 1 V"),
    ({"g_lrs": 2e-6, "g_hrs": 1.5e-6}, r"g_lrs = 2e-06 S: allowed 0 \(learned from the probed "
        r"cells' LRS bounds\) or a number >= 2\*g_hrs \(3e-06 S\) and <= 1 S"),
    ({"current_limit": 0.5},
     r"current_limit = 0.5 A: allowed .* <= limits.max_compliance \(0.01 A\)"),
    ({"relax_wait": 20.0}, r"relax_wait = 20.0 s: allowed a number >= 0 s and <= 10 s"),
])
def test_bad_parameters_are_refused_before_any_pulse(tmp_path, params, message):
    with pytest.raises(ValueError, match=message):
        play(write_board(tmp_path, 6, 1), tmp_path / "store", **{**BOARD, **params})
    with RunStore(tmp_path / "store") as runs:
        assert runs.open_run(1).points() == []
