"""Progress counts and ETA, on an injected clock."""

from __future__ import annotations

import io
import math

import pytest

from xbarlab.progress import Progress


def test_eta_is_the_mean_time_per_step_times_the_steps_left():
    now = [100.0]
    progress = Progress(show=False, clock=lambda: now[0])
    progress.start(10, "read map")
    assert math.isnan(progress.eta())
    now[0] += 4.0
    progress.advance(2)
    assert progress.eta() == pytest.approx(16.0)  # 2 s per step, 8 steps left
    now[0] += 16.0
    progress.advance(8)
    assert progress.eta() == 0.0 and progress.done == progress.total == 10


def test_rendered_bar_shows_description_and_counts():
    stream = io.StringIO()
    with Progress(show=True, stream=stream) as progress:
        progress.start(3, "pulses")
        progress.advance(3)
    assert "pulses" in stream.getvalue() and "3/3" in stream.getvalue()


def test_total_must_be_a_count():
    with pytest.raises(ValueError, match="total = -1"):
        Progress(show=False).start(-1, "x")


def test_phases_give_phase_k_of_n_and_an_overall_eta():
    now = [0.0]
    progress = Progress(show=False, clock=lambda: now[0])
    progress.plan(4)
    progress.start(10, "first")
    now[0] += 10.0
    progress.advance(10)
    progress.start(5, "second")
    now[0] += 5.0
    progress.advance(5)  # 2 of 4 phases in 15 s
    assert (progress.phase, progress.phases) == (2, 4)
    assert progress.overall_eta() == pytest.approx(15.0)
    assert progress._label().startswith("phase 2 of 4: second (all phases: ~15 s left)")


def test_without_a_terminal_each_phase_is_one_line():
    stream = io.StringIO()
    now = [0.0]
    with Progress(show=True, stream=stream, clock=lambda: now[0]) as progress:
        progress.plan(2)
        for name in ("programming", "re-reading"):
            progress.start(4, name)
            now[0] += 8.0
            progress.advance(4)
    lines = stream.getvalue().splitlines()
    assert lines == ["phase 1 of 2: programming (all phases: ~8 s left): 4/4 in 8 s",
                     "phase 2 of 2: re-reading (all phases: ~0 s left): 4/4 in 8 s"]


def test_a_phase_extended_stays_one_phase_and_added_phases_count():
    now = [0.0]
    progress = Progress(show=False, clock=lambda: now[0])
    progress.plan(2)
    progress.start(4, "re-reading")
    now[0] += 4.0
    progress.advance(4)
    progress.extend(4)  # further readings of undecided cells
    assert (progress.phase, progress.phases, progress.total) == (1, 2, 8)
    assert progress.eta() == pytest.approx(4.0)  # 4 s for 4 steps, 4 more to go
    progress.add_phases()
    progress.start(1, "programming again")
    assert progress._label().startswith("phase 2 of 3: programming again")
