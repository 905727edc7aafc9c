"""A virtual bench's state file keeps its chip: a World that continues a kept chip is the World
that never stopped, the time between the two sessions passed on its clock."""

from __future__ import annotations

import json

import numpy as np
import pytest
from xbarlab.sim_instruments import World
from xbarlab.sim_instruments.chipstate import resume_state, save_state

from xbarlab.benchfile import BenchFileError, load_bench


def programmed_world() -> World:
    """The analog bench's World with its cells moved away from the fresh chip: a state per
    cell, then pulses that switch some and leave relaxation pending and random draws taken."""
    world = World(load_bench("analog"))
    world.array.set_state(np.random.default_rng(1).uniform(0.1, 0.9, (32, 32)))
    v_row, v_col = np.full(32, np.nan), np.full(32, np.nan)
    v_row[:4], v_col[:3] = 1.6, 0.0
    world.array.apply(v_row, v_col, 1e-4)
    world.changed()
    world.advance(0.05)
    return world


def test_a_kept_chip_continues_as_if_it_had_never_stopped(tmp_path):
    path = tmp_path / "chip.json"
    running = programmed_world()
    save_state(running, path)
    resumed = World(load_bench("analog"))
    assert resume_state(resumed, path)
    gap = resumed.clock - running.clock
    assert 0.0 <= gap < 60.0  # the seconds since it was saved, on the host clock
    running.advance(gap)
    before, after = running.array.snapshot(), resumed.array.snapshot()
    for name in ("w", "formed", "form_progress", "relax_pending"):
        assert np.array_equal(getattr(before, name), getattr(after, name)), name
    assert after.elapsed_time == pytest.approx(before.elapsed_time, rel=1e-12)
    v_row, v_col = np.full(32, 0.2), np.zeros(32)  # a noisy read draws the same numbers
    assert np.array_equal(running.array.solve(v_row, v_col).i_col,
                          resumed.array.solve(v_row, v_col).i_col)
    fresh = World(load_bench("analog")).array.conductance()
    assert not np.allclose(resumed.array.conductance(), fresh, rtol=0.05)


def test_nothing_kept_is_a_fresh_chip(tmp_path):
    world = World(load_bench("analog"))
    assert not resume_state(world, tmp_path / "absent.json")
    legacy = tmp_path / "instruments-only.json"
    legacy.write_text(json.dumps(world.state()))  # a state file of an older xbarlab
    assert not resume_state(world, legacy)
    assert world.clock == 0.0


def test_a_kept_chip_of_another_seed_is_refused(tmp_path):
    path = tmp_path / "chip.json"
    save_state(programmed_world(), path)
    other = load_bench("analog").text.replace("seed = 4032", "seed = 7")
    bench = tmp_path / "other.toml"
    bench.write_text(other)
    with pytest.raises(BenchFileError, match=r"another chip .*seed 4032 \(now 7\).*bench reset"):
        resume_state(World(load_bench(str(bench))), path)
