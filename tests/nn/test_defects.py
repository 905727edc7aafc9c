"""Defect codes, the weights defective pairs hold, and moving tiles off defective lines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.nn.defects import (
    STUCK_OFF,
    STUCK_ON,
    UNRESPONSIVE,
    avoid_defects,
    defect_codes,
    effective_levels,
)
from xbarlab.nn.placement import Placement, Tile, place_layers


def test_boolean_maps_mean_unresponsive_and_unknown_codes_are_refused():
    codes = defect_codes(np.array([[True, False]]))
    assert codes.tolist() == [[UNRESPONSIVE, 0]]
    with pytest.raises(ValueError, match=r"defect map cell \(0, 1\) = 7: allowed codes"):
        defect_codes(np.array([[0, 7]]))
    with pytest.raises(ValueError, match=r"defect map of shape \(2,\): allowed \(4, 4\)"):
        defect_codes(np.zeros(2, int), (4, 4))
    with pytest.raises(ValueError, match="dtype float64: allowed bool or integer codes"):
        defect_codes(np.zeros((2, 2)))


def test_a_pair_with_stuck_cells_holds_the_weight_its_two_conductances_give():
    levels = np.array([1.0, 1.0, -1.0, -1.0, 0.0, 0.0, 1.0])
    plus = np.array([0, STUCK_OFF, STUCK_ON, 0, STUCK_ON, 0, UNRESPONSIVE])
    minus = np.array([0, 0, 0, STUCK_OFF, 0, STUCK_ON, 0])
    # (plus on) - (minus on), a stuck-on cell always on, stuck-off always off
    assert effective_levels(levels, plus, minus).tolist() == [1, 0, 0, 0, 1, -1, 1]


def test_the_most_defective_row_and_column_move_onto_spare_lines():
    placement = Placement(6, 6, (Tile((0, 1, 2), (0, 2), (1, 3)),))
    defects = np.zeros((6, 6), int)
    defects[1, [0, 1, 2]] = STUCK_OFF  # row 1: three defects in the tile
    defects[[0, 2], 3] = STUCK_ON  # column 3: two more (the row move will leave these)
    defects[4, 5] = STUCK_OFF  # a spare row and spare column with one defect each
    moved, report = avoid_defects(placement, defects)
    assert report.defects_before == 5 and report.defects_after == 0
    tile = moved.tiles[0]
    assert 1 not in tile.rows and 3 not in tile.cols
    assert [(m.kind, m.source, m.defects_before, m.defects_after) for m in report.moves] == [
        ("row", 1, 3, 0), ("col", 3, 2, 0)]
    assert report.to_dict()["defects_after"] == 0


def test_what_cannot_be_avoided_is_reported_cell_by_cell():
    placement = place_layers((3, 2), 4, 4)  # 4 rows x 4 cols: no spare line
    defects = np.zeros((4, 4), int)
    defects[2, 1] = STUCK_ON
    moved, report = avoid_defects(placement, defects)
    assert moved == placement and report.moves == ()
    assert report.unavoidable == ((0, 2, 1, STUCK_ON),)


def single_moves_that_help(tile: Tile, bad: np.ndarray) -> list[tuple[str, int, int]]:
    """Every (kind, line, free line) swap that would leave fewer defective cells in the tile."""
    helpful = []
    base = int(bad[np.ix_(tile.rows, tile.cols)].sum())
    for kind, lines, count in (("row", tile.rows, bad.shape[0]), ("col", tile.cols,
                                                                  bad.shape[1])):
        for line in lines:
            for free in set(range(count)) - set(lines):
                swapped = [free if x == line else x for x in lines]
                rows, cols = (swapped, tile.cols) if kind == "row" else (tile.rows, swapped)
                if bad[np.ix_(rows, cols)].sum() < base:
                    helpful.append((kind, line, free))
    return helpful


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**20), p=st.floats(0.0, 0.5), size=st.integers(3, 6))
def test_moves_never_add_defects_and_end_where_no_single_move_helps(seed, p, size):
    rng = np.random.default_rng(seed)
    placement = place_layers((1, 1), size, size)  # a 2 x 2 tile on a small array
    codes = (rng.random((size, size)) < p) * rng.integers(1, 4, (size, size))
    moved, report = avoid_defects(placement, codes)
    tile = moved.tiles[0]
    assert tile.inputs == 2 and tile.neurons == 1
    in_use = int((codes[np.ix_(tile.rows, tile.cols)] != 0).sum())
    assert in_use == report.defects_after <= report.defects_before
    assert report.defects_before == int((codes[:2, :2] != 0).sum())
    assert sorted(c[1:3] for c in report.unavoidable) == sorted(
        (r, c) for r in tile.rows for c in tile.cols if codes[r, c])
    assert single_moves_that_help(tile, codes != 0) == []


def test_on_a_defective_128_array_the_64_54_10_tiles_leave_fewer_defects_in_use():
    rng = np.random.default_rng(11)
    placement = place_layers((64, 54, 10), 128, 128)
    codes = np.where(rng.random((128, 128)) < 0.1, STUCK_OFF, 0)
    codes[5, :] = STUCK_ON  # a whole bad row inside tile 0
    moved, report = avoid_defects(placement, codes)
    assert 5 not in moved.tiles[0].rows
    assert report.defects_after < report.defects_before - 108
    Placement.from_json(moved.to_json()).check_network((64, 54, 10))
