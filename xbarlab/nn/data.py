"""Data sets for the crossbar networks, and the one map from an input to a row voltage.

The built-in set is the 8x8 handwritten digits that scikit-learn ships with the package
(`sklearn.datasets.load_digits`: 1797 images, 10 classes, pixel values 0..16; nothing is
downloaded), the same size as the down-sampled 8x8 MNIST of Li et al., Nat. Commun. 9, 2385
(2018) (reference/techniques.md §2.1, §9). It is split once, stratified by class and seeded, so
every run of the same seed trains and tests on the same images.

Inputs are scaled to [0, 1] and become read voltages on the crossbar rows through
`row_voltages` (``x * v_read``): the only place where that mapping is defined, so software
training, inference through a bench and the physics model agree on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DIGITS_MAX_VALUE = 16.0
"""Largest pixel value of scikit-learn's 8x8 digits (4-bit grey levels 0..16)."""


@dataclass(frozen=True)
class Split:
    """A train/test split: inputs in [0, 1] (samples, features) and integer class labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def features(self) -> int:
        return self.x_train.shape[1]

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def stratified_split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> Split:
    """Split (x, y) so that every class keeps its share in both parts (seeded).

    Each class contributes round(test_fraction x its count) samples to the test part, chosen by
    a permutation drawn from ``numpy.random.default_rng(seed)``; order within each part follows
    the original order of the samples.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction = {test_fraction!r}: allowed 0 < fraction < 1")
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"x must be (samples, features) and y (samples,); got {x.shape} and "
                         f"{y.shape}")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        count = round(test_fraction * len(members))
        if count == 0 or count == len(members):
            raise ValueError(f"class {label} has {len(members)} samples: too few for a test "
                             f"fraction of {test_fraction} (each part needs at least one)")
        test[rng.permutation(members)[:count]] = True
    return Split(x[~test], y[~test], x[test], y[test])


def load_digits_split(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 8x8 digits, scaled to [0, 1], split by `stratified_split`."""
    from sklearn.datasets import load_digits  # deferred: scikit-learn imports in ~1 s

    digits = load_digits()
    x = digits.data.astype(float) / DIGITS_MAX_VALUE
    return stratified_split(x, digits.target.astype(np.int64), test_fraction, seed)


def pooled(split: Split, factor: int) -> Split:
    """`split` with its square images averaged over `factor` x `factor` blocks (2: the 8x8
    digits as 4x4 images, 16 inputs instead of 64), so that a network fits a small array.
    Averages of values in [0, 1] stay in [0, 1]; factor 1 returns `split` itself."""
    side = math.isqrt(split.features)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1 or (
            side * side != split.features or side % factor):
        raise ValueError(f"pooling factor = {factor!r}: allowed an integer >= 1 dividing the "
                         f"image side ({side} for {split.features} features of square images)")
    if factor == 1:
        return split
    out = side // factor

    def pool(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), out, factor, out, factor).mean(axis=(2, 4)).reshape(len(x), -1)

    return Split(pool(split.x_train), split.y_train, pool(split.x_test), split.y_test)


def with_bias(x: np.ndarray) -> np.ndarray:
    """Inputs with a constant 1 appended to every sample: the bias row of every layer."""
    x = np.asarray(x, float)
    return np.concatenate([x, np.ones((*x.shape[:-1], 1))], axis=-1)


def row_voltages(x: np.ndarray, v_read: float) -> np.ndarray:
    """Row voltages (V) for inputs ``x`` in [0, 1]: ``x * v_read``.

    Linear, so a column current is ``v_read * (x @ G)`` and decoding divides by ``v_read``
    (`xbarlab.nn.mapping.decode_products`); an input of 0 leaves its row at 0 V, the bias input
    of 1 puts its row at ``v_read``. Inputs outside [0, 1] are refused, not clipped: they would
    take the rows above the read voltage the levels were measured at.
    """
    if not (math.isfinite(v_read) and v_read > 0):
        raise ValueError(f"v_read = {v_read!r} V: allowed a finite voltage > 0 V")
    x = np.asarray(x, float)
    if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
        raise ValueError(f"inputs must lie in [0, 1]; got values in [{np.nanmin(x):.4g}, "
                         f"{np.nanmax(x):.4g}]")
    return x * v_read
