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
