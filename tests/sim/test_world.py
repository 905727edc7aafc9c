"""The World directly: batched sweeps, several sources on one line, shorts, quiet time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simhelpers import count_solves, embedded_text, set_key
from xbarlab.sim_instruments import ShortCircuit, World
from xbarlab.sim_instruments import circuit as circuit_module

from xbarlab.benchfile import parse_bench


def make_world(**keys) -> World:
    text = set_key(embedded_text("default"), "read_noise", "false")
    for key, value in keys.items():
        text = set_key(text, key, value)
    return World(parse_bench(text))


QUIET_WORLD = make_world()  # one World reused (reset per example) keeps hypothesis fast


def test_quiet_sweep_is_one_solve_and_matches_point_by_point(monkeypatch):
    """Every point of a quiet sweep is the swept terminal's unit response times its level:
    one solve of one vector for the whole sweep, equal to each point solved alone."""
    world = make_world()
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.a", output=True, level=0.0, limit_i=0.1)
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    levels = list(np.linspace(-0.5, 0.5, 41))
    calls = count_solves(monkeypatch)
    swept = world.sweep("smu.a", levels, 0.01)
    assert calls == [1]
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
    # the sources deliver at least what the selected cell alone takes at each point (the
    # rest goes to its row's and column's other cells and the wires)
    moved = np.abs(world.conductance() - g0)
    selected = np.unravel_index(np.argmax(moved), moved.shape)
    g_lowest = np.minimum(g0, world.conductance())[selected]
    least = sum(v * v * g_lowest * 1e-5 for v in (0.5, 2.5, 0.5)) * 0.5
    assert world.energy > least


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
    assert world.array.elapsed_time == 100.0  # told before anyone looks
    np.testing.assert_array_equal(world.conductance(), g0)
    assert world.energy == pytest.approx(100.0 * 0.2 * i_a, rel=1e-12)  # smu.b sits at 0 V


def test_noisy_readings_of_a_sweep_are_independent():
    world = make_world(read_noise="true")
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.a", output=True, level=0.0, limit_i=0.1)
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    currents = [i for _, i, _ in world.sweep("smu.a", [0.2] * 5, 0.01)]
    assert len(set(currents)) == 5


# bench voltages: 0 or at least 1 uV in size (the solver has trouble near 1e-155 V, reported)
volts = st.one_of(st.just(0.0), st.floats(1e-6, 0.8), st.floats(-0.8, -1e-6))
relays = st.lists(
    st.tuples(st.sampled_from("AB"), st.integers(1, 68).filter(lambda k: not 32 < k < 37)),
    min_size=1,
    max_size=6,
    unique=True,
)


@settings(max_examples=40, deadline=None)
@given(
    closed=relays,
    levels=st.tuples(volts, volts),
    limits=st.tuples(st.sampled_from([1e-7, 1e-6, 1e-4]), st.sampled_from([1e-7, 1e-6, 1e-4])),
)
def test_any_wiring_obeys_kirchhoff_and_the_limits(closed, levels, limits):
    """With no ground tied, the two SMU currents cancel; nobody exceeds its limit, and a source
    in compliance carries exactly its limit."""
    world = QUIET_WORLD
    world.reset()
    world.close("matrix", closed)
    for key, level, limit in zip(("smu.a", "smu.b"), levels, limits, strict=True):
        world.set_terminal(key, output=True, level=level, limit_i=limit)
    (_, i_a, c_a), (_, i_b, c_b) = world.measure("smu.a"), world.measure("smu.b")
    assert abs(i_a + i_b) <= 1e-9 * max(abs(i_a), abs(i_b)) + 1e-15  # 1 fA floor: CG tolerance
    for i, limit, limited in ((i_a, limits[0], c_a), (i_b, limits[1], c_b)):
        assert abs(i) <= limit * (1 + 1e-9)
        if limited:
            assert abs(i) == pytest.approx(limit, rel=1e-12)
    assert not (c_a and c_b) or abs(limits[0] - limits[1]) < 1e-20


@settings(max_examples=40, deadline=None)
@given(
    closed=st.lists(
        st.tuples(st.sampled_from("ABH"), st.integers(1, 68).filter(lambda k: not 32 < k < 37)),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    v_level=volts,
    i_level=st.floats(-1e-4, 1e-4),
    limit_i=st.sampled_from([1e-7, 1e-5, 1e-2]),
    limit_v=st.sampled_from([0.1, 0.8]),
)
def test_voltage_and_current_sources_respect_their_limits(
    closed, v_level, i_level, limit_i, limit_v
):
    """smu.a sources volts, smu.b sources amps, ground may be tied anywhere: each stays within
    its limit, and a source out of compliance delivers exactly what it was set to. (A current
    source can be driven past its voltage limit by the other source; it then delivers its set
    current and reports compliance.)"""
    world = QUIET_WORLD
    world.reset()
    world.close("matrix", closed)
    world.set_terminal("smu.a", output=True, func="V", level=v_level, limit_i=limit_i)
    world.set_terminal("smu.b", output=True, func="I", level=i_level, limit_v=limit_v)
    v_a, i_a, c_a = world.measure("smu.a")
    v_b, i_b, c_b = world.measure("smu.b")
    assert abs(i_a) <= limit_i * (1 + 1e-9)
    if not c_a:
        assert v_a == v_level
    if not c_b:
        assert i_b == pytest.approx(i_level, rel=1e-9, abs=1e-15)
        assert abs(v_b) <= limit_v * (1 + 1e-9)
    elif abs(v_b) > limit_v * (1 + 1e-9):
        # driven past its limit by smu.a: it still delivers its set current, no more
        assert i_b == pytest.approx(i_level, rel=1e-9, abs=1e-15)
    else:
        assert abs(v_b) == pytest.approx(limit_v, rel=1e-12)
        assert abs(i_b) <= abs(i_level) * (1 + 1e-9)


def test_noisy_sweep_is_one_call_giving_what_point_by_point_readings_give(monkeypatch):
    swept, stepped = make_world(read_noise="true"), make_world(read_noise="true")
    levels = list(np.linspace(-0.5, 0.5, 21))
    for world in (swept, stepped):
        world.close("matrix", [("A", 3), ("B", 40)])
        world.set_terminal("smu.a", output=True, level=0.0, limit_i=0.1)
        world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    calls = count_solves(monkeypatch)
    points = swept.sweep("smu.a", levels, 0.01)
    assert calls == [1]
    for level, (v, i, limited) in zip(levels, points, strict=True):
        stepped.set_terminal("smu.a", level=level)
        stepped.advance(0.01)
        v1, i1, limited1 = stepped.measure("smu.a")  # one read-noise draw, in the same order
        assert (v, limited) == (v1, limited1)
        assert i == pytest.approx(i1, rel=1e-9, abs=1e-18)
    assert swept.clock == pytest.approx(stepped.clock, rel=1e-12)
    # the sweep's energy comes from its (noisy) readings, the steps' from the true currents
    assert swept.energy == pytest.approx(stepped.energy, rel=0.05)


def test_the_skip_bound_never_hides_a_limit():
    """Whenever a pulse step is judged unable to reach a limit, the re-solved bench agrees."""
    rng = np.random.default_rng(11)
    judged = 0
    for _ in range(30):
        world = make_world()
        world.array.set_state(rng.random((32, 32)))
        closes = [("A", int(k)) for k in rng.choice(32, 2, replace=False) + 1]
        closes += [("B", int(k)) for k in rng.choice(32, 2, replace=False) + 37]
        world.close("matrix", closes)
        world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
        world.set_terminal("smu.a", output=True, level=rng.uniform(1.0, 2.0), limit_i=0.1)
        start = world.operating_point()
        limit = abs(start.current["smu.a"]) * rng.uniform(1.0, 1.6)
        world.set_terminal("smu.a", limit_i=limit)
        op, g_before = world.operating_point(), world.conductance().copy()
        if op.compliance:
            continue
        world._array.apply(op.rows[0], op.cols[0], rng.uniform(1e-9, 1e-7),
                           r_source=op.rows[1], r_sense=op.cols[1])
        world.changed()
        if world._far_from_limits(op, g_before):
            judged += 1
            after = world.operating_point()
            assert not after.compliance
            assert abs(after.current["smu.a"]) < limit
    assert judged >= 5  # the bound does get used


def relaxing_world(read_noise: str = "false") -> World:
    """A World whose cell (2, 3) was just SET: it relaxes while it is read."""
    world = make_world(read_noise=read_noise)
    world.close("matrix", [("A", 3), ("B", 40)])
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    world.set_terminal("smu.a", output=True, level=1.5, limit_i=0.1)
    world.advance(1e-5)
    world.set_terminal("smu.a", level=0.2)
    return world


@pytest.mark.parametrize("read_noise", ["false", "true"])
def test_readings_while_cells_relax_are_one_solve_equal_to_one_by_one(monkeypatch, read_noise):
    """Readings of a relaxing bench: each at the conductances of its moment, all from one
    batched solve, as readings taken one at a time give them (the same noise draws)."""
    batched, stepped = relaxing_world(read_noise), relaxing_world(read_noise)
    assert batched._relaxing
    calls = count_solves(monkeypatch)
    together = batched.read(["smu.a", "smu.b"], 8, 0.02)
    per_state = 1 + (2 if read_noise == "true" else 0)  # + both terminals' responses
    # one call: the bench now, and one solve per relaxing cell; the readings follow exactly
    assert calls == [per_state + 1]
    alone = [stepped.read(["smu.a", "smu.b"], 1, 0.02) for _ in range(8)]
    # one reading alone is the network re-solved at its noisy conductances; the batch carries
    # the same draws through the unit responses: equal to first order in the noise
    sigma = batched.array.params.read_noise if read_noise == "true" else 0.0
    np.testing.assert_allclose(together.current, [r.current[0] for r in alone],
                               rtol=max(1e-9, sigma**2))
    assert len(set(together.current[:, 0])) == 8  # the cell moved between readings
    np.testing.assert_array_equal(batched.conductance(), stepped.conductance())
    assert batched.clock == stepped.clock
    assert batched.energy == pytest.approx(stepped.energy, rel=1e-9)
    assert batched.measure("smu.a")[1] == pytest.approx(stepped.measure("smu.a")[1], rel=1e-9)


def test_compensated_drift_equals_every_state_solved(monkeypatch):
    """States that differ in a few cells, from the first one's solution (compensation
    theorem), equal the same states each solved."""
    world = make_world()
    world.close("matrix", [("A", 3), ("B", 40), ("H", 7), ("H", 50)])
    world.set_terminal("smu.a", output=True, level=0.2, limit_i=0.1)
    world.set_terminal("smu.b", output=True, level=0.0, limit_i=0.1)
    circuit = world._circuit()
    rng = np.random.default_rng(5)
    states = np.repeat(circuit.g[None], 6, axis=0)
    for cell in [(2, 3), (6, 3), (2, 13)]:  # two on the read path, one on a grounded line
        states[1:, cell[0], cell[1]] *= 1 + rng.uniform(-0.3, 0.3, 5)
    compensated = world._solver.solve_drifting(circuit, states, ["smu.a"])
    monkeypatch.setattr(circuit_module, "MAX_COMPENSATED_CELLS", 0)
    solved = world._solver.solve_drifting(circuit, states, ["smu.a"])
    scale = np.abs(solved[0]).max()
    np.testing.assert_allclose(compensated[0], solved[0], rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(compensated[1], solved[1], rtol=0, atol=1e-9 * 0.2)


@pytest.mark.parametrize("fraction", [0.0, 0.2])
def test_a_stuck_fraction_sets_the_share_of_stuck_cells_in_the_presets_ratio(fraction):
    """sim.stuck_fraction: stuck cells at that share of the 128 x 128 array (binomial, 4
    standard deviations), stuck-on among them in the binary preset's 1.75 : 9.04."""
    text = set_key(embedded_text("board"), "defects", f"true\nstuck_fraction = {fraction}")
    defects = World(parse_bench(text)).array.defect_map()
    stuck = np.mean(defects != 0)
    assert abs(stuck - fraction) <= 4 * np.sqrt(fraction * (1 - fraction) / defects.size)
    if fraction:
        on = np.sum(defects == 1) / np.sum(defects != 0)
        share = 1.75 / (1.75 + 9.04)
        assert abs(on - share) <= 4 * np.sqrt(share * (1 - share) / np.sum(defects != 0))
