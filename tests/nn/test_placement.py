"""Tiles on one array: the 64-54-10 layout, validation, JSON, and any network that fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.nn.placement import Placement, PlacementError, Tile, place_layers


def test_a_64_54_10_network_fits_a_128_array_in_two_tiles_with_eight_spare_rows():
    placement = place_layers((64, 54, 10), 128, 128)
    first, second = placement.tiles
    assert first.rows == tuple(range(65)) and second.rows == tuple(range(65, 120))
    assert first.plus_cols == tuple(range(0, 108, 2))
    assert first.minus_cols == tuple(range(1, 108, 2))
    assert second.plus_cols == tuple(range(108, 128, 2))
    assert placement.spare_rows == tuple(range(120, 128)) and placement.spare_cols == ()
    placement.check_network((64, 54, 10))
    placement.check_array(128, 128)


def test_a_placement_round_trips_through_json_and_refuses_another_array_or_network():
    placement = place_layers((8, 6, 3), 20, 20)
    text = placement.to_json()
    assert Placement.from_json(text) == placement
    assert json.loads(text)["array"] == [20, 20]
    with pytest.raises(PlacementError, match="placement is for a 20 x 20 array; this array is "
                                             "32 x 32"):
        placement.check_array(32, 32)
    with pytest.raises(PlacementError, match=r"do not fit a network of sizes \(8, 5, 3\)"):
        placement.check_network((8, 5, 3))


@pytest.mark.parametrize("sizes, rows, cols, message", [
    ((64, 54, 10), 64, 128, "layer 0 needs a tile of 65 rows .inputs . bias. x 108 columns"),
    ((64, 54, 10), 100, 120, "layer 1 .55 x 20 cells. does not fit on the 100 x 120 array"),
    ((4,), 8, 8, "allowed two or more layer sizes"),
])
def test_a_network_that_does_not_fit_is_refused_with_its_tile_sizes(sizes, rows, cols,
                                                                      message):
    with pytest.raises(PlacementError, match=message):
        place_layers(sizes, rows, cols)


@pytest.mark.parametrize("data, message", [
    ({"array": [4, 4], "tiles": [{"rows": [0, 4], "plus_cols": [0], "minus_cols": [1]}]},
     "tile 0 rows: line 4 is outside the array; allowed 0..3"),
    ({"array": [4, 4], "tiles": [{"rows": [0, 0], "plus_cols": [0], "minus_cols": [1]}]},
     "tile 0 rows: line 0 is used twice"),
    ({"array": [4, 4], "tiles": [{"rows": [0], "plus_cols": [0], "minus_cols": [0]}]},
     "tile 0 columns: line 0 is used twice"),
    ({"array": [4, 4], "tiles": [{"rows": [0], "plus_cols": [0, 2], "minus_cols": [1]}]},
     "one plus and one minus column per neuron"),
    ({"array": [4, 4], "tiles": [{"rows": [0, 1], "plus_cols": [0], "minus_cols": [1]},
                                 {"rows": [1, 2], "plus_cols": [1], "minus_cols": [2]}]},
     "tiles 0 and 1 share cell .1, 1."),
    ({"array": [4.0, 4], "tiles": [{"rows": [0], "plus_cols": [0], "minus_cols": [1]}]},
     "array_rows = 4.0: allowed an integer"),
    ({"array": [4, 4], "tiles": [{"rows": [0], "plus_cols": [0]}]},
     "tile 0 must be an object with keys"),
    ({"array": [4, 4]}, "keys 'array' and 'tiles'"),
])
def test_an_inconsistent_placement_is_refused_naming_what_is_wrong(data, message):
    with pytest.raises(PlacementError, match=message):
        Placement.from_dict(data)


def test_tiles_may_share_rows_or_columns_but_not_cells():
    shared_rows = Placement(4, 4, (Tile((0, 1), (0,), (1,)), Tile((0, 1), (2,), (3,))))
    shared_cols = Placement(4, 4, (Tile((0, 1), (0,), (1,)), Tile((2, 3), (0,), (1,))))
    assert shared_rows.spare_rows == (2, 3) and shared_cols.spare_cols == (2, 3)
    with pytest.raises(PlacementError, match="placement is not valid JSON"):
        Placement.from_json("{")


@settings(max_examples=80, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=2, max_size=5),
       rows=st.integers(2, 80), cols=st.integers(2, 80))
def test_any_network_is_placed_on_disjoint_cells_of_the_right_shape_or_refused(sizes, rows,
                                                                                cols):
    try:
        placement = place_layers(sizes, rows, cols)
    except PlacementError as error:
        # refused only when a layer alone is too big, or when the tiles fit neither side by
        # side (sharing rows) nor stacked (sharing columns)
        needed = [(a + 1, 2 * b) for a, b in zip(sizes[:-1], sizes[1:], strict=False)]
        if "needs a tile" in str(error):
            assert any(r > rows or c > cols for r, c in needed)
        else:
            assert "does not fit" in str(error)
            heights, widths = [r for r, _ in needed], [c for _, c in needed]
            assert not (sum(widths) <= cols and max(heights) <= rows)
            assert not (sum(heights) <= rows and max(widths) <= cols)
        return
    count = np.zeros((rows, cols), int)
    for tile, a, b in zip(placement.tiles, sizes[:-1], sizes[1:], strict=True):
        assert tile.inputs == a + 1 and tile.neurons == b
        count[np.ix_(tile.rows, tile.cols)] += 1
    assert count.max() == 1  # no cell used twice
    assert count.sum() == sum((a + 1) * 2 * b for a, b in zip(sizes[:-1], sizes[1:],
                                                              strict=False))
    assert set(placement.spare_rows) == set(np.flatnonzero(count.sum(axis=1) == 0))
    assert set(placement.spare_cols) == set(np.flatnonzero(count.sum(axis=0) == 0))
    assert Placement.from_json(placement.to_json()) == placement
