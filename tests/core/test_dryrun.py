"""Dry run: numbers of a hand-computed protocol, and every limit it would break, listed."""

from __future__ import annotations

import numpy as np
import pytest
from corehelpers import small_board_spec

from xbarlab.dryrun import RecordingBench
from xbarlab.engine import run_protocol
from xbarlab.registry import register_protocol


def board_protocol(bench):
    bench.read(0, 0, 0.2)
    bench.read(1, 1, 0.2)
    bench.pulse(2, 3, 2.0, 1e-3, scheme="v/2", count=3, period=2e-3)
    bench.mvm([0.05, 0.1, 0.15, 0.2])  # within the 0.225 V read limit


def test_board_protocol_numbers_match_the_hand_computation():
    recording = RecordingBench(small_board_spec())
    with recording.bench as bench:
        board_protocol(bench)
    report = recording.report()
    # board commands at 1 ms each: 4 at start (VLIM, ILIM, ILIM?, IDLE), 2 reads (+1 ms TINT
    # each), V/2 bias (1), the pulse train (3 x 2 ms period) and its delivered energy (1), mvm
    # lines (1) and measure (+1 ms TINT), idle at the end (1) and its read-back (idle mode, line
    # levels)
    assert report.instrument_calls == 4 + 2 + 3 + 2 + 1 + 2
    assert report.duration == pytest.approx(4e-3 + 2 * 2e-3 + (1e-3 + 7e-3 + 1e-3) + 3e-3
                                             + 3e-3)
    assert report.operation_count == 4 and report.pulses == 1
    # 2 V on the selected row over 0 V, 1 mA compliance, 1 ms, 3 times
    assert report.energy == pytest.approx(2.0 * 1e-3 * 1e-3 * 3)
    # binary preset LRS 100 uS: the selected cell at 2 V, six half-selected cells at 1 V
    assert report.energy_estimate == pytest.approx((4.0 + 6 * 1.0) * 100e-6 * 1e-3 * 3)
    expected_v = np.array([[0.2, 0.05, 0.05, 1.0],
                           [0.1, 0.2, 0.1, 1.0],
                           [1.0, 1.0, 1.0, 2.0],
                           [0.2, 0.2, 0.2, 1.0]])
    np.testing.assert_allclose(report.max_voltage, expected_v, rtol=1e-12)
    np.testing.assert_allclose(report.max_current, np.full((4, 4), 1e-3))
    assert report.violations == []
    assert "no limit would be broken" in report.format()


@register_protocol("one-read")
def one_read(bench, run, progress):
    """One read of cell (3, 4)."""
    bench.read(3, 4, 0.2)


def test_matrix_bench_float_read_duration_from_the_cost_model():
    report = run_protocol(one_read, "default", dry_run=True, progress=False).dry_run
    # start: 4 outputs off (4 x 2 ms), open all and forbid the unused crosspoints (2 x 5 ms);
    # read: one close (5 ms), two sources, their current limits read back and two
    # outputs on (6 x 2 ms), two measurements, the sense and the driver's compliance (2 x (2 ms
    # + 1 PLC at 50 Hz)); end: four shutdowns (4 x 2 ms), open all (5 ms), four output queries
    # (4 x 2 ms), closed-set query (5 ms)
    assert report.duration == pytest.approx(18e-3 + (5e-3 + 12e-3 + 44e-3) + 26e-3)
    assert report.max_voltage[3, 4] == pytest.approx(0.2)
    assert report.max_voltage.sum() == pytest.approx(0.2)  # every other line floats
    assert report.energy == 0.0


def test_every_violation_is_listed_and_the_protocol_runs_on():
    seen = []

    @register_protocol("reckless")
    def reckless(bench, run, progress):
        """Pulses above the bench's limits."""
        bench.pulse(0, 0, 6.0, 1e-3)
        bench.pulse(1, 1, 1.0, 2.0)
        seen.append("finished")

    report = run_protocol(reckless, "default", dry_run=True, progress=False).dry_run
    assert seen == ["finished"]
    text = "\n".join(report.summary()["violations"])
    assert "pulse voltage on row:0 = 6 V exceeds limits.max_voltage = 5 V" in text
    assert "pulse width on row:1 = 2 s exceeds limits.max_pulse_width = 1 s" in text
    assert report.pulses == 2
    assert report.max_voltage[0, 0] == pytest.approx(6.0)
    assert "distinct limit violation(s)" in report.format()


def test_a_dry_run_leaves_no_store_and_no_plot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XBARLAB_DATA", str(tmp_path / "store"))
    result = run_protocol("read-map", "classic", dry_run=True, progress=False, cells="0-1,*")
    assert result.run_id is None and result.status == "dry-run"
    assert result.dry_run.operation_count == 32
    assert result.metrics["plot"] is None
    assert len(result.run.points()) == 32  # the in-memory run the protocol played
    assert list(tmp_path.iterdir()) == []
