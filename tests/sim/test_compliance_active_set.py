"""The compliance active set on benches where many line drivers share one current limit.

Regressions: a V/3 DC bias at ILIM 10 uA on the 32x32 analog bench, and the 128x128 board
with every row at V/2 and every column still at 0 V (the state between the two DC bias
commands of a V/2 pulse after a ground read), both need more limited drivers than the old
fixed budget of 50 rounds allowed ("compliance active set did not settle"). The settled point
must be the physical one: every driver at its level within its limit, or at its limit with
its voltage sagged toward the load.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simhelpers import small_board_text

BOARD = "board"


def drive(world, rows: int, cols: int, row_levels, col_levels, limits) -> None:
    """Every board line at its level (None = floating) with its own current limit."""
    world.set_board_lines(BOARD, {ch: "F" for ch in range(1, rows + cols + 1)}, 1e-3)
    levels = list(row_levels) + list(col_levels)
    for ch, (level, limit) in enumerate(zip(levels, limits, strict=True), start=1):
        if level is not None:
            world.set_board_lines(BOARD, {ch: float(level)}, float(limit))


def assert_physical(world, op) -> None:
    """KCL over the drivers, every limit kept, and compliance exactly where it must be."""
    currents = np.array(list(op.current.values()))
    # no ground: the drivers' currents cancel (to solver rounding, ~1e-20 A)
    assert abs(currents.sum()) <= 1e-9 * np.abs(currents).sum() + 1e-15
    for key, current in op.current.items():
        state = world.terminal(key)
        volts = op.voltage[key]
        assert abs(current) <= state.limit_i * (1 + 1e-6), key
        if key in op.compliance:  # at the limit, the voltage sagged toward the load
            assert abs(current) == pytest.approx(state.limit_i, rel=1e-6), key
            assert np.sign(current) * (volts - state.level) <= 1e-9, key
        else:
            assert volts == state.level, key


def test_v3_bias_at_10ua_on_the_analog_bench(open_bench):
    _, lib = open_bench("analog", read_noise="false")
    world, v = lib.world, 3.0
    rows, cols = world.rows, world.cols
    row_levels = [v if r == 5 else v / 3 for r in range(rows)]
    col_levels = [0.0 if c == 7 else 2 * v / 3 for c in range(cols)]
    drive(world, rows, cols, row_levels, col_levels, [1e-5] * (rows + cols))
    op = world.operating_point()
    assert len(op.compliance) > 50  # more than the old budget
    assert_physical(world, op)


def test_board_rows_at_half_v_columns_at_zero(open_bench):
    _, lib = open_bench("board", read_noise="false")
    world = lib.world
    rows, cols = world.rows, world.cols
    levels = ([-0.65] * rows, [0.0] * cols)
    drive(world, rows, cols, *levels, [1.0] * (rows + cols))  # no driver limited
    free = np.abs(list(world.operating_point().current.values()))
    assert not world.operating_point().compliance
    limit = float(np.quantile(free, 0.6))  # ~100 drivers over the limit
    drive(world, rows, cols, *levels, [limit] * (rows + cols))
    op = world.operating_point()
    assert len(op.compliance) > 50
    assert_physical(world, op)


def test_limited_drivers_on_floating_lines_cannot_all_be_at_their_limits(open_bench):
    """Rows floating, two columns pushing at 1 V, two sinking at 0 V, one at 0.5 V, all at
    100 nA: four drivers at their limits cancel, so the 0.5 V driver holds its level with no
    current (it is not reported at a limit it does not reach)."""
    _, lib = open_bench(text=small_board_text(6, 6), read_noise="false")
    world = lib.world
    drive(world, 6, 6, [None] * 6, [None, 0.0, 0.0, 1.0, 1.0, 0.5], [1e-7] * 12)
    op = world.operating_point()
    assert op.compliance == {"board.8", "board.9", "board.10", "board.11"}
    assert op.voltage["board.12"] == 0.5 and abs(op.current["board.12"]) < 1e-15
    assert_physical(world, op)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_active_set_settles_on_the_physical_point(open_bench, data):
    _, lib = open_bench(text=small_board_text(6, 6), read_noise="false")
    world = lib.world
    rows, cols = world.rows, world.cols
    lo, hi = world.array.bounds()
    seed = data.draw(st.integers(0, 2**32 - 1), label="cells")
    world.array.set_conductance(lo + (hi - lo) * np.random.default_rng(seed).random(lo.shape))
    world.changed()
    level = st.one_of(st.none(), st.floats(-2.0, 2.0, allow_nan=False))
    levels = data.draw(st.lists(level, min_size=rows + cols, max_size=rows + cols))
    shared = data.draw(st.booleans(), label="one limit for all")
    limit = st.sampled_from([1e-7, 1e-6, 1e-5, 1e-4, 1e-3])
    if shared:
        limits = [data.draw(limit)] * (rows + cols)
    else:
        limits = data.draw(st.lists(limit, min_size=rows + cols, max_size=rows + cols))
    drive(world, rows, cols, levels[:rows], levels[rows:], limits)
    op = world.operating_point()
    assert_physical(world, op)
