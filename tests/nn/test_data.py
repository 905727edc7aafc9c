"""The digits split and the input-to-voltage map."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from xbarlab.nn.data import (
    Split,
    load_digits_split,
    pooled,
    row_voltages,
    stratified_split,
    with_bias,
)


@pytest.fixture(scope="module")
def split():
    return load_digits_split()


def test_digits_split_is_seeded_stratified_disjoint_and_scaled(split):
    digits = load_digits()
    assert split.x_train.shape == (1438, 64) and split.x_test.shape == (359, 64)
    assert split.features == 64 and split.classes == 10
    # every image lands in exactly one part, unchanged but for the 0..16 -> 0..1 scaling
    both = np.concatenate([split.x_train, split.x_test]) * 16
    assert sorted(map(bytes, both.astype(np.uint8))) == sorted(
        map(bytes, digits.data.astype(np.uint8)))
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    # each class keeps its share of the test part to within one image
    for label in range(10):
        share = np.sum(digits.target == label) * 0.2
        assert abs(np.sum(split.y_test == label) - share) <= 0.5 + 1e-9
    again = load_digits_split()
    assert np.array_equal(again.x_test, split.x_test) and np.array_equal(again.y_test,
                                                                         split.y_test)
    other = load_digits_split(seed=1)
    assert not np.array_equal(other.y_test, split.y_test)


def test_a_split_refuses_a_class_too_small_to_share_and_a_bad_fraction():
    x, y = np.zeros((5, 2)), np.array([0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="class 1 has 1 samples"):
        stratified_split(x, y, 0.5, 0)
    with pytest.raises(ValueError, match="test_fraction = 1.0"):
        stratified_split(x, y, 1.0, 0)


def test_inputs_become_row_voltages_linearly_and_out_of_range_inputs_are_refused():
    x = np.array([[0.0, 0.25, 1.0]])
    assert np.array_equal(row_voltages(x, 0.2), np.array([[0.0, 0.05, 0.2]]))
    assert np.array_equal(with_bias(x), np.array([[0.0, 0.25, 1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 1\]; got values in \[0, 1.5"):
        row_voltages(np.array([0.0, 1.5]), 0.2)
    with pytest.raises(ValueError, match="v_read = -0.1 V"):
        row_voltages(x, -0.1)


def test_pooling_averages_each_block_of_a_square_image_and_refuses_a_factor_that_does_not_divide():
    image = np.arange(16.0).reshape(1, 16) / 15  # a 4 x 4 image, rows 0..3
    split = Split(image, np.array([0]), image[::-1].copy(), np.array([1]))
    small = pooled(split, 2)
    # block (0, 0) holds pixels 0, 1, 4, 5; block (1, 1) holds 10, 11, 14, 15
    assert small.x_train == pytest.approx(np.array([[2.5, 4.5, 10.5, 12.5]]) / 15, rel=1e-12)
    assert small.features == 4 and np.array_equal(small.y_test, split.y_test)
    assert pooled(split, 1) is split
    with pytest.raises(ValueError, match="pooling factor = 3: allowed an integer >= 1 dividing "
                                         "the image side"):
        pooled(split, 3)
