"""Read noise without a re-solve: a reading is the operating point plus every cell's current
fluctuation carried to the terminal by the unit responses.

The reference is the array's own full re-solve of each noisy reading (``CrossbarArray.solve``
with a read-noise draw per vector: every cell's conductance times its lognormal factor, the
whole network solved again). A copy of the array taken before the World reads draws the same
factors, so the two agree reading by reading, up to the second-order coupling of the noise
through the wires; over 10^4 readings their means and standard deviations agree to well
within 1 %.
"""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import embedded_text, set_key, small_board_text
from xbarlab.sim_instruments import World

from xbarlab.benchfile import parse_bench

READINGS = 10_000
CHUNK = 2_500  # reference solves per batch (memory)


def full_resolves(array, op, count: int) -> np.ndarray:
    """(count, m + n) line-end inflows of `count` noisy readings, each a full re-solve."""
    inflows = []
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        rows = np.tile(op.rows[0], (size, 1))
        cols = np.tile(op.cols[0], (size, 1))
        sol = array.solve(rows, cols, r_source=op.rows[1], r_sense=op.cols[1], read_noise=True,
                          noise_per_vector=True)
        inflows.append(np.concatenate([sol.i_row, -sol.i_col], axis=1))
    return np.concatenate(inflows)


def assert_same_distribution(fast: np.ndarray, slow: np.ndarray) -> None:
    spread = slow.std()
    assert spread > 1e-3 * abs(slow.mean())  # there is noise to compare
    assert abs(fast.mean() - slow.mean()) <= 0.01 * spread
    assert fast.std() == pytest.approx(spread, rel=0.01)
    assert np.abs(fast - slow).max() <= 0.01 * spread  # reading by reading


def test_board_column_readings_match_full_resolves():
    """An 8 x 8 board: row 2 at 0.2 V, every other line at 0 V; column 5 sensed."""
    world = World(parse_bench(small_board_text(8, 8)))
    levels = {ch: 0.0 for ch in range(1, 17)}
    levels[3] = 0.2
    world.set_board_lines("board", levels, 1e-3)
    op = world.operating_point()
    reference = world.array.copy()  # the same read stream: the same noise draws
    fast = world.read(["board.14"], READINGS).current[:, 0]
    slow = full_resolves(reference, op, READINGS)[:, 8 + 5]
    assert_same_distribution(fast, slow)


def test_matrix_bench_readings_match_full_resolves():
    """The 16 x 16 classic bench through its relays: one row on the 2400, one column sensed
    by the 2450, every other line grounded (the ground read of a cell)."""
    text = set_key(embedded_text("classic"), "read_noise", "true")
    world = World(parse_bench(text))
    row, col = 4, 9
    grounded = [("H", k) for k in range(1, 17) if k != row + 1]
    grounded += [("H", 17 + k) for k in range(16) if k != col]
    world.close("matrix", [("A", row + 1), ("B", 17 + col), *grounded])
    world.set_terminal("smu1.1", output=True, level=0.2, limit_i=1e-3)
    world.set_terminal("smu2.1", output=True, level=0.0, limit_i=1e-3)
    op = world.operating_point()
    reference = world.array.copy()
    fast = world.read(["smu2.1"], READINGS).current[:, 0]
    slow = full_resolves(reference, op, READINGS)[:, 16 + col]
    assert_same_distribution(fast, slow)


def test_board_readings_of_every_line_are_full_resolves():
    """Fewer readings than terminals (a board's matrix-vector product reads every line once,
    and while cells relax no two readings share a circuit): each reading is the network
    solved again at its noisy conductances, the same as the array's own re-solve."""
    world = World(parse_bench(small_board_text(8, 8)))
    levels = {ch: (0.2 if ch in (1, 3, 4, 8) else 0.0) for ch in range(1, 17)}
    world.set_board_lines("board", levels, 1e-3)
    op = world.operating_point()
    keys = [f"board.{ch}" for ch in range(1, 17)]
    reference = world.array.copy()
    fast = world.read(keys, 12).current
    slow = full_resolves(reference, op, 12)
    spread = slow.std(axis=0)
    assert (spread > 1e-3 * np.abs(slow.mean(axis=0)))[[0, 2, 3, 7]].all()
    assert np.abs(fast - slow).max() <= 1e-6 * np.abs(slow).max()
    again = world.read(keys, 12).current  # the same circuit again: from its unit responses
    assert np.abs(again.mean(axis=0) - fast.mean(axis=0)).max() <= 4 * spread.max()
