"""Item 1b: the read-disturb guard. A read above `limits.max_read_voltage` (by default half the
chip preset's lowest switching threshold) is refused before anything is sent, by the bench and
by every protocol's declared read voltage, and a dry run reports it."""

from __future__ import annotations

import numpy as np
import pytest
from reliability import small_text, write_bench
from virtualbenches import world_of

import xbarlab
from xbarlab.bench import open_bench
from xbarlab.benchfile import load_bench
from xbarlab.dryrun import RecordingBench
from xbarlab.params import ParameterError
from xbarlab.safety import LimitError


def test_a_read_above_the_limit_is_refused_and_the_array_is_untouched(tmp_path):
    path = write_bench(tmp_path, small_text("default"))
    with open_bench(path) as bench:
        truth = world_of(path).conductance().copy()
        before = bench.io.total
        for read in (lambda: bench.read(0, 0, 2.0), lambda: bench.read(1, 1, -0.5),
                     lambda: bench.read_repeated(0, 1, 0.23, count=3)):
            with pytest.raises(LimitError, match=r"limits.max_read_voltage = 0.225 V"):
                read()
        assert bench.io.total == before
        bench.read(0, 0, 0.2)  # below the limit: allowed
    np.testing.assert_array_equal(world_of(path).conductance(), truth)


def test_a_board_mvm_above_the_read_limit_is_refused():
    spec = load_bench("board")
    recording = RecordingBench(spec, record_violations=False)
    with recording.bench as bench, pytest.raises(LimitError, match="max_read_voltage"):
        bench.mvm(np.full(bench.rows, 1.0))


@pytest.mark.parametrize("protocol", ["read-map", "write-verify", "retention"])
def test_every_protocols_read_voltage_is_bounded_by_it(protocol, tmp_path):
    for dry_run in (False, True):
        with pytest.raises(ParameterError, match=r"v_read = 2.*limits.max_read_voltage"):
            xbarlab.run_protocol(protocol, "default", store=tmp_path, dry_run=dry_run,
                                 progress=False, v_read=2.0)


def test_a_dry_run_reports_a_read_above_the_limit():
    recording = RecordingBench(load_bench("default"))
    with recording.bench as bench:
        bench.read(0, 0, 3.0)
    report = recording.report()
    assert [v.limit for v in report.violations] == ["limits.max_read_voltage"]
    assert "max_read_voltage" in report.format()
