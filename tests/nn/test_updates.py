"""Pulse decisions: significant level changes, cell writes, gating and defect groups."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.nn.quantize import Quantizer
from xbarlab.nn.updates import (
    NEURON_AWARE,
    NORMAL,
    SYNAPSE_AWARE,
    column_groups,
    defect_map_bits,
    gated_columns,
    plan_writes,
    significant_levels,
)


def test_a_binary_level_flips_only_when_the_latent_weight_is_past_the_margin():
    latent = np.array([-0.04, -0.06, 0.04, 0.3])
    programmed = np.array([1.0, 1.0, -1.0, 1.0])
    new = significant_levels(Quantizer("binary"), latent, programmed, threshold=0.05)
    assert new.tolist() == [1, -1, -1, 1]
    assert significant_levels(Quantizer("binary"), latent, programmed, 0.0).tolist() == [
        -1, -1, 1, 1]


def test_a_ternary_level_changes_only_well_inside_its_new_interval():
    latent = np.array([0.5, -0.5, 0.2, 0.31, 0.0, 0.0])
    programmed = np.array([0.0, 0.0, 0.0, 0.0, 1.0, -1.0])
    assert Quantizer("ternary").boundary(latent) == pytest.approx(0.7 * 1.51 / 6)  # 0.1762
    new = significant_levels(Quantizer("ternary"), latent, programmed, threshold=0.1)
    # +-0.5 and 0.31 lie more than 0.1 beyond Delta: +-1; 0.2 lies within 0.1 of Delta: it
    # keeps its 0; the zeros lie more than 0.1 inside +-Delta: the programmed +-1 become 0
    assert new.tolist() == [1, -1, 0, 1, 0, 0]


def count_cell_changes(old: np.ndarray, new: np.ndarray) -> int:
    """Cells whose state differs: plus on iff level > 0, minus on iff level < 0."""
    return int(np.sum((old > 0) != (new > 0)) + np.sum((old < 0) != (new < 0)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**20), ternary=st.booleans())
def test_writes_take_every_pair_from_the_old_to_the_new_levels(seed, ternary):
    rng = np.random.default_rng(seed)
    values = [-1.0, 0.0, 1.0] if ternary else [-1.0, 1.0]
    old, new = rng.choice(values, (5, 4)), rng.choice(values, (5, 4))
    writes = plan_writes(2, old, new)
    assert writes.layer == 2 and len(writes) == count_cell_changes(old, new)
    plus_on, minus_on = old > 0, old < 0
    for row, neuron, side, on in zip(writes.rows, writes.neurons, writes.sides, writes.set_on,
                                     strict=True):
        state = plus_on if side > 0 else minus_on
        assert state[row, neuron] != on
        state[row, neuron] = on
    assert np.array_equal(plus_on, new > 0) and np.array_equal(minus_on, new < 0)


def test_cells_that_cannot_be_written_are_left_out():
    old, new = np.array([[1.0, -1.0]]), np.array([[-1.0, 1.0]])
    writable = np.array([[False, True]])
    writes = plan_writes(0, old, new, writable_plus=writable)
    cells = zip(writes.neurons.tolist(), writes.sides.tolist(), writes.set_on.tolist(),
                strict=True)
    assert sorted(cells) == [(0, -1, True), (1, -1, False), (1, 1, True)]


def test_gating_keeps_the_most_responsible_neurons():
    chosen = gated_columns(np.array([0.1, 3.0, 0.5, 2.0, 0.0]), 0.4)
    assert chosen.tolist() == [False, True, False, True, False]
    assert gated_columns(np.array([1.0, 2.0]), 0.01).tolist() == [False, True]
    with pytest.raises(ValueError, match="gate fraction = 0: allowed 0 < fraction <= 1"):
        gated_columns(np.ones(3), 0)


def test_neurons_are_grouped_by_their_defects_and_the_map_size_follows():
    groups = column_groups(np.array([3, 9, 0, 5, 1]), severe=1, moderate=2)
    assert groups.tolist() == [NEURON_AWARE, SYNAPSE_AWARE, NORMAL, NEURON_AWARE, NORMAL]
    assert defect_map_bits(groups, rows=10) == 2 * 2 * 10 + 16 * 2
    with pytest.raises(ValueError, match="moderate = -1: allowed an integer >= 0"):
        column_groups(np.ones(3), 1, -1)
