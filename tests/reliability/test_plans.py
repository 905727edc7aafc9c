"""Items 7 and 10: planned operations are bounded before anything opens (the figure in the
message), a staircase's levels a cell are bounded before they are built, and a pulse width no
source of the bench can pulse is refused with the widths it can and what to set."""

from __future__ import annotations

import time

import pytest

import xbarlab
from xbarlab.benchfile import load_bench
from xbarlab.params import ParameterError
from xbarlab.registry import get_protocol


@pytest.mark.parametrize("protocol, params, pattern", [
    ("iv-sweep", {"step": 1e-4, "cycles": 1000}, r"levels a cell; allowed at most 1e\+06"),
    ("iv-sweep", {"step": 1e-3, "cells": "all", "cycles": 40},
     r"plans 2\.459e\+08 operations \(1024 cells x 40 cycles x 6004 levels\)"),
    ("write-verify", {"max_pulses": 10000, "reads": 100, "width": 1e-4},
     r"1 algorithm\(s\) x 1024 cells x 10000 pulses x 101 operations"),
    ("endurance", {"cells": "all", "cycles": 10**6}, r"1024 cells x 1000000 cycles"),
    ("forming", {"v_step": 1e-5}, r"amplitudes"),
])
def test_a_plan_above_the_bound_is_refused_with_its_figure(tmp_path, protocol, params, pattern):
    for dry_run in (False, True):
        started = time.perf_counter()
        with pytest.raises(ParameterError, match=pattern):
            xbarlab.run_protocol(protocol, "default", store=tmp_path, dry_run=dry_run,
                                 progress=False, **params)
        assert time.perf_counter() - started < 5
    assert not (tmp_path / "runs.sqlite3").exists()


def test_write_verify_defaults_on_the_default_bench_say_what_to_set(tmp_path):
    with pytest.raises(ParameterError, match=r"width = 1e-06: no source of bench 'default' "
                       r"pulses 1e-06 s \(smu\.a, smu\.b, smu2\.a, smu2\.b: 0\.0001 to 1000 s\); "
                       r"set width=0\.0001"):
        xbarlab.run_protocol("write-verify", "default", store=tmp_path, progress=False)
    resolved = get_protocol("write-verify").resolve({"width": 1e-4}, load_bench("default"))
    assert resolved["width"] == 1e-4  # what the message said to set is accepted


def test_the_dry_run_reports_the_count_and_the_time():
    result = xbarlab.run_protocol("read-map", "default", dry_run=True, progress=False,
                                  cells="0-1,*")
    text = result.dry_run.format()
    assert result.dry_run.operations["read"]["calls"] == 64
    assert "64" in text and result.dry_run.duration > 0
