"""The World directly: batched sweeps, several sources on one line, shorts, quiet time."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import embedded_text, set_key
from xbarlab.sim_instruments import ShortCircuit, World

from xbarlab.benchfile import parse_bench


def make_world(**keys) -> World:
    text = set_key(embedded_text("default"), "read_noise", "false")
    for key, value in keys.items():
        text = set_key(text, key, value)
    return World(parse_bench(text))


def count_solves(world, monkeypatch) -> list[int]:
    calls = [0]
    solve = world.array.solve

    def counted(*args, **kwargs):
        calls[0] += 1
        return solve(*args, **kwargs)

    monkeypatch.setattr(world.array, "solve", counted)
    return calls


def test_quiet_sweep_is_one_solve_and_matches_point_by_point(monkeypatch):
    world = make_world()
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.a", output=True, level=0.0, limit_i=0.1)
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    levels = list(np.linspace(-0.5, 0.5, 41))
    calls = count_solves(world, monkeypatch)
    swept = world.sweep("smu.a", levels, 0.01)
    assert calls[0] == 1
    assert world.clock == pytest.approx(41 * 0.01)
    for level, (v, i, limited) in zip(levels, swept, strict=True):
        world.set_terminal("smu.a", level=level)
        v1, i1, limited1 = world.measure("smu.a")
        assert (v, limited) == (v1, limited1)
        assert i == pytest.approx(i1, rel=1e-9, abs=1e-18)


def test_sweep_points_over_the_limit_get_the_compliance_solve():
    world = make_world()
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.a", output=True, level=0.0, limit_i=2e-7)
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    swept = world.sweep("smu.a", [0.01, 0.8], 0.01)
    assert not swept[0][2]
    v, i, limited = swept[1]
    assert limited and i == pytest.approx(2e-7, rel=1e-9) and 0 < v < 0.8


def test_sweep_that_can_switch_cells_runs_point_by_point():
    world = make_world()
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.a", output=True, level=0.0, limit_i=0.1)
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    g0 = world.conductance().copy()
    world.sweep("smu.a", [0.5, 2.5, 0.5], 1e-5)
    assert not np.array_equal(world.conductance(), g0)
    assert world.energy > 0


def test_line_on_a_source_and_ground_at_once():
    """SMU -> r_path -> row <- r_path <- ground, nothing else connected: I = V / (2 r_path)."""
    world = make_world()
    world.close("matrix", [("A", 5), ("H", 5)])  # row 4 on smu.a and on ground
    world.set_terminal("smu.a", output=True, level=0.3, limit_i=0.1)
    v, i, limited = world.measure("smu.a")
    assert (v, limited) == (0.3, False)
    assert i == pytest.approx(0.3 / (2 * 2.0), rel=1e-12)


def test_ideal_source_in_parallel_is_a_short():
    world = make_world(r_path_row="0.0")
    world.close("matrix", [("A", 5), ("H", 5)])
    world.set_terminal("smu.a", output=True, level=0.3)
    with pytest.raises(ShortCircuit, match="0 ohm"):
        world.measure("smu.a")


def test_time_at_read_voltage_leaves_the_array_alone():
    world = make_world()
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.a", output=True, level=0.2)
    world.set_terminal("smu.b", output=True, level=0.0)
    g0 = world.conductance().copy()
    _, i_a, _ = world.measure("smu.a")
    world.advance(100.0)
    assert world.clock == 100.0
    np.testing.assert_array_equal(world.conductance(), g0)
    assert world.energy == pytest.approx(100.0 * 0.2 * i_a, rel=1e-12)  # smu.b sits at 0 V


def test_noisy_readings_of_a_sweep_are_independent():
    world = make_world(read_noise="true")
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.a", output=True, level=0.0, limit_i=0.1)
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    currents = [i for _, i, _ in world.sweep("smu.a", [0.2] * 5, 0.01)]
    assert len(set(currents)) == 5
