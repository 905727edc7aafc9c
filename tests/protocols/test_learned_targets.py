"""Targets learned from the chip, not from the simulator's presets (issue 17, item 10): with
their target parameters left at 0, write-verify (g_low, g_high) and program-efficient (g_hrs,
g_lrs) drive a few cells to their bounds and derive the targets from what they measured. The
learned values are checked against the virtual chip's hidden truth (each probed cell's own
device bounds, `CrossbarArray.bounds`), through the protocols' own rules; the measured bounds
lie within about 1 % of the true ones (read noise, the read's IR drop, the last 2 % of a soft
bound), so 3 % is the tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from analogbench import analog_block
from boards import write_board
from dryruns import dry_report
from xbarlab.protocols.program_efficient import HRS_MARGIN, LRS_FRACTION
from xbarlab.protocols.write_verify import HIGH_MARGIN, LOW_MARGIN


def _true_bounds(world, rows, cols):
    """Each healthy cell's true (HRS, LRS) bounds in the rows x cols corner."""
    low, high = world.array.bounds()
    healthy = world.array.defect_map()[:rows, :cols] == 0
    return low[:rows, :cols][healthy], high[:rows, :cols][healthy]


def test_write_verify_learns_its_target_range_from_the_probed_cells(tmp_path, run_named):
    path = analog_block(tmp_path, 4, 4, 7, "learned-range")
    out = run_named("write-verify", path, tmp_path / "store", rows=2, cols=4, probe=8,
                    settle=0.0, guard=0.0, first_pass=0.0, relax_rounds=0, reread_reads=16,
                    max_pulses=40)
    m = out.metrics
    low, high = _true_bounds(out.world, 2, 4)
    assert m["target_range"] == "learned" and m["probe_pulses"] > 0
    assert m["g_low"] == pytest.approx(LOW_MARGIN * low.max(), rel=0.03)
    assert m["g_high"] == pytest.approx(HIGH_MARGIN * high.min(), rel=0.03)


def test_program_efficient_learns_its_targets_from_the_probed_cells(tmp_path, run_named):
    path = write_board(tmp_path, 4, 3)
    out = run_named("program-efficient", path, tmp_path / "store", rows=2, cols=2, probe=4,
                    width=1e-7, max_pulses=20, relax_wait=0.0)
    m = out.metrics
    low, high = _true_bounds(out.world, 2, 2)
    assert m["targets"] == "learned"
    assert m["g_hrs"] == pytest.approx(HRS_MARGIN * low.max(), rel=0.03)
    assert m["g_lrs"] == pytest.approx(LRS_FRACTION * np.median(high), rel=0.03)


def test_given_targets_are_used_as_given(tmp_path, run_named):
    path = analog_block(tmp_path, 3, 3, 8, "given-range")
    out = run_named("write-verify", path, tmp_path / "store", rows=1, cols=2, settle=0.0,
                    guard=0.0, first_pass=0.0, relax_rounds=0, reread_reads=16,
                    g_low=5e-6, g_high=20e-6)
    assert (out.metrics["g_low"], out.metrics["g_high"]) == (5e-6, 20e-6)
    assert out.metrics["target_range"] == "given" and out.metrics["probe_pulses"] == 0


def test_a_dry_run_cannot_learn_targets_and_says_which_to_give(tmp_path):
    """A dry run measures nothing: its play stops where the targets would be learned, after
    the characterisation's pulses, and the report says so and what to give instead."""
    report = dry_report("write-verify", str(analog_block(tmp_path, 3, 3, 9, "dry")), rows=1,
                        cols=2)
    assert not report.complete and report.pulses > 0
    assert "measured no conductance" in report.stopped and "give the targets" in report.stopped
    assert "played up to where it needs a measured value" in report.format()
    given = dry_report("write-verify", str(analog_block(tmp_path, 3, 3, 9, "given")), rows=1,
                       cols=2, g_low=5e-6, g_high=30e-6, relax_rounds=0, max_pulses=4)
    assert given.stopped == "" and given.complete
