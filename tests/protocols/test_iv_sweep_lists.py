"""iv-sweep on the instruments' list sweeps: one lockstep sweep of two channels of one SMU per
branch where the bench has one (2636B smua+smub, B2902B channels 1+2), per-point reads where it
has not (2400 + 2450); the swept currents are the point-by-point currents; limits are checked
before anything is sent; the dry run counts the sweeps and their energy."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from dryruns import dry_report
from sessionlog import MessageLog
from xbarlab.protocols.iv_sweep import branches

from xbarlab.bench import BenchError, open_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.safety import LimitError
from xbarlab.store import RunStore

CYCLE = branches(1.5, -1.5, 0.05)  # 30, 29, 30, 29 points


def initiates_and_fetches(commands):
    """(trigger starts, buffer fetches) among the commands of one sweep, counting each command
    of a message of several (TSP statements joined by "; ", SCPI units by ";")."""
    commands = [unit.strip() for message in commands for unit in message.split(";")]
    starts = sum(c.endswith("trigger.initiate()") or c.startswith(":INIT") for c in commands)
    fetches = sum(c.startswith(("printbuffer(", ":FETC:ARR?")) for c in commands)
    return starts, fetches


def embedded_without_read_noise(tmp_path, name: str, copy: str) -> str:
    """The embedded bench `name` with read noise off, as bench file `copy` (a new name is a
    new World)."""
    text = importlib.resources.files("xbarlab.benches").joinpath(f"{name}.toml").read_text()
    assert "read_noise = true" in text
    path = tmp_path / f"{name}-{copy}.toml"
    path.write_text(text.replace("read_noise = true", "read_noise = false"))
    return str(path)


def test_each_branch_on_the_default_bench_is_one_start_and_one_fetch():
    with open_bench("default") as bench:
        log = MessageLog(bench._drivers["smu"])
        trips = []
        for branch in CYCLE:
            limit = 1e-3 if branch[0] > 0 else 2e-3
            log.messages.clear()
            readings = bench.sweep_cell(3, 5, branch, "v/2", limit)
            assert [r.voltage for r in readings] == branch
            # the follower's and the leader's initiate() start one lockstep sweep
            assert initiates_and_fetches(log.messages) == (2, 1)
            trips.append(bench.last_round_trips)
        short = bench.sweep_cell(3, 5, CYCLE[3][:3], "v/2", 2e-3)  # same limit as the last
        assert len(short) == 3 and bench.last_round_trips == trips[3]  # whatever the length
    assert max(trips) < 100  # 30 points: setup, one start, one fetch (reads: ~500)
    assert bench.round_trips()["sweep_cell"]["calls"] == 5


def test_iv_sweep_on_the_default_bench_sweeps_each_branch_in_one_go(tmp_path):
    protocol = get_protocol("iv-sweep")
    with RunStore(tmp_path / "store") as store, open_bench("default") as bench:
        log = MessageLog(bench._drivers["smu"])
        run = store.start_run("iv-sweep", {}, bench.spec.text, shape=(bench.rows, bench.cols))
        with run:
            metrics = protocol(bench, run, Progress(show=False), cells="2,3")
        points = run.points()
    assert metrics["paired_sweeps"] is True
    assert metrics["round_trips_per_branch"] < 100  # per-point reads: about 500
    assert initiates_and_fetches(log.messages) == (2 * len(CYCLE), len(CYCLE))
    assert metrics["switching_fraction"] == 1.0
    # a millisecond staircase switches between the 0.45 V kinetics floor and the 1.3 V that
    # switches the cell in 100 ns (the voltage-time dilemma)
    assert 0.45 < metrics["v_set_median"] < 1.3 and -1.5 <= metrics["v_reset_median"] < -0.45
    assert [p.operation for p in points].count("set") == len(CYCLE[0]) + len(CYCLE[1])
    assert [p.operation for p in points].count("reset") == len(CYCLE[2]) + len(CYCLE[3])


@pytest.mark.parametrize("bench_name, cell", [("default", (4, 7)), ("keysight", (2, 9))])
def test_swept_currents_are_the_point_by_point_currents(tmp_path, bench_name, cell):
    """A whole cycle (the cell SETs and RESETs on the way) as cell sweeps and as reads, on two
    fresh copies of one bench with read noise off."""
    row, col = cell
    with open_bench(embedded_without_read_noise(tmp_path, bench_name, "swept")) as bench:
        swept = [r for b in CYCLE for r in
                 bench.sweep_cell(row, col, b, "v/2", 1e-3 if b[0] > 0 else 2e-3)]
        assert set(bench.round_trips()) == {"sweep_cell"}
    with open_bench(embedded_without_read_noise(tmp_path, bench_name, "read")) as bench:
        read = [bench.sweep_point(row, col, v, "v/2", 1e-3 if b[0] > 0 else 2e-3)
                for b in CYCLE for v in b]
    swept_i = np.array([r.current for r in swept])
    read_i = np.array([r.current for r in read])
    assert swept_i.max() / swept_i[0] > 20  # the cell switched during the sweep
    assert read_i.max() / read_i[0] > 20
    # below the 0.45 V kinetics floor no cell moves and the two agree exactly; above it the
    # cells move during every point, and a point read alone spends other times there (its
    # commands, the source's settling), so the currents differ where the cell is switching
    volts = np.array([v for b in CYCLE for v in b])
    quiet = np.abs(volts) < 0.45
    first = np.argmax(~quiet)  # up to the first point above the floor
    np.testing.assert_allclose(swept_i[:first], read_i[:first], rtol=1e-9, atol=0)
    np.testing.assert_allclose(swept_i, read_i, rtol=0.5, atol=0)
    assert [r.compliance for r in swept] == [r.compliance for r in read]


def test_the_classic_bench_falls_back_to_reads_and_still_switches(bench_file, run_named,
                                                                   tmp_path):
    with open_bench("classic") as bench, pytest.raises(BenchError, match="no instrument that "
                                                                         "sweeps two"):
        bench.sweep_cell(1, 1, [0.1, 0.2], "v/2")
    assert bench.round_trips() == {}  # refused before anything was sent
    outcome = run_named("iv-sweep", "classic", tmp_path / "store", cells="1,1", step=0.1)
    assert outcome.metrics["paired_sweeps"] is False
    assert outcome.metrics["round_trips_per_branch"] > 100  # several round trips a point
    assert outcome.metrics["switching_fraction"] == 1.0
    assert 0.45 < outcome.metrics["v_set_median"] < 1.3


def test_v3_needs_more_than_two_lines_and_falls_back(bench_file, run_named, tmp_path):
    path = bench_file(rows=4, cols=4, defects=False)
    with open_bench(str(path)) as bench, pytest.raises(BenchError, match="scheme 'v/3'"):
        bench.sweep_cell(1, 1, [0.1, 0.2], "v/3")
    outcome = run_named("iv-sweep", path, tmp_path / "store", cells="1,1", scheme="v/3",
                        step=0.1)
    assert outcome.metrics["paired_sweeps"] is False
    assert outcome.metrics["switching_fraction"] == 1.0


@pytest.mark.parametrize("scheme, levels, refused", [
    ("v/2", [1.0, 6.0, 1.0], "sweep level across cell (1, 2) = 6 V exceeds limits.max_voltage"),
    ("float", [1.0, -5.5], "sweep level across cell (1, 2) = -5.5 V exceeds"),
])
def test_a_level_over_the_bench_limit_is_refused_before_any_command(bench_file, scheme, levels,
                                                                     refused):
    with open_bench(str(bench_file(rows=4, cols=4))) as bench:
        before = bench.io.total
        with pytest.raises(LimitError, match=refused.replace("(", r"\(").replace(")", r"\)")):
            bench.sweep_cell(1, 2, levels, scheme)
        assert bench.io.total == before
        with pytest.raises(ValueError, match=r"levels\[1\] must be finite, got nan"):
            bench.sweep_cell(1, 2, [0.1, float("nan")], scheme)
        with pytest.raises(ValueError, match="levels is empty"):
            bench.sweep_cell(1, 2, [], scheme)
        assert bench.io.total == before


def test_a_long_branch_takes_a_few_lists(bench_file):
    """The 2600B takes 100 levels a TSP list: 150 levels are two chunks of lockstep sweeps
    into one reading buffer, fetched by one printbuffer."""
    levels = list(np.round(np.linspace(0.01, 0.3, 150), 9))
    with open_bench(str(bench_file(rows=4, cols=4))) as bench:
        log = MessageLog(bench._drivers["smu"])
        readings = bench.sweep_cell(0, 0, levels, "ground")
    assert len(readings) == 150 and initiates_and_fetches(log.messages) == (4, 1)
    assert all(r.current > 0 for r in readings)


def test_dry_run_counts_the_sweeps_and_their_energy(bench_file):
    report = dry_report("iv-sweep", str(bench_file(rows=4, cols=4)), cells="0,0")
    assert not report.violations
    assert report.operations["sweep_cell"]["calls"] == len(CYCLE)
    assert report.max_voltage[0, 0] == pytest.approx(1.5)
    # every point at most |V| x 1 mA for one integration (20 ms): the bound of the staircase
    bound = sum(abs(v) for b in CYCLE for v in b) * 1e-3 * 0.02
    assert report.energy == pytest.approx(bound)
    assert 0 < report.energy_estimate <= report.energy
    classic = dry_report("iv-sweep", "classic", cells="0,0", step=0.5)
    assert set(classic.operations) == {"read"}  # a 2400 and a 2450: no paired channels
