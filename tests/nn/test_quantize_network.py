"""Quantizers, the MLP's backward pass and software training."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.nn.network import QuantizedMLP
from xbarlab.nn.quantize import Quantizer
from xbarlab.nn.training import TrainingConfig, train_software


def test_binary_levels_are_signs_and_the_gradient_passes_only_inside_unit_range():
    w = np.array([[-0.5, 0.0, 0.25], [1.0, -1.0, 0.1]])
    levels, scale = Quantizer("binary").quantize(w)
    assert np.array_equal(levels, [[-1, 1, 1], [1, -1, 1]])
    assert scale == pytest.approx(np.mean([0.5, 0, 0.25, 1, 1, 0.1]))
    ste = Quantizer("binary").straight_through(np.array([-1.2, -1.0, 0.3, 1.0001]))
    assert np.array_equal(ste, [0, 1, 1, 0])


def test_ternary_threshold_is_0_7_mean_magnitude_and_the_scale_the_mean_kept_magnitude():
    w = np.array([0.9, -0.1, 0.3, -0.6, 0.05, 0.0])
    delta = 0.7 * np.abs(w).sum() / 6  # 0.2275
    levels, scale = Quantizer("ternary").quantize(w)
    assert Quantizer("ternary").boundary(w) == pytest.approx(delta)
    assert np.array_equal(levels, [1, 0, 1, -1, 0, 0])
    assert scale == pytest.approx((0.9 + 0.3 + 0.6) / 3)


def test_an_unknown_quantizer_is_named_with_the_allowed_ones():
    with pytest.raises(ValueError, match="quantizer = 'octal': allowed binary, ternary, float"):
        Quantizer("octal")


def test_backward_pass_matches_finite_differences_of_the_loss():
    rng = np.random.default_rng(2)
    net = QuantizedMLP.initialised((5, 4, 3), Quantizer("float"), seed=1)
    net.gains = [rng.uniform(0.5, 1.5, n) for n in (4, 3)]
    net.offsets = [rng.normal(0, 0.3, n) for n in (4, 3)]
    x, y = rng.uniform(0, 1, (7, 5)), rng.integers(0, 3, 7)

    def loss(model):
        logits = model.forward(x)[-1].pre
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -np.mean(log_p[np.arange(7), y])

    grads = net.gradients(net.forward(x), y)
    assert grads.loss == pytest.approx(loss(net), rel=1e-12)
    for kind in ("weights", "gains", "offsets"):
        for k in range(2):
            array = getattr(net, kind)[k]
            numeric = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                old = array[index]
                array[index] = old + 1e-6
                up = loss(net)
                array[index] = old - 1e-6
                down = loss(net)
                array[index] = old
                numeric[index] = (up - down) / 2e-6
            assert np.allclose(getattr(grads, kind)[k], numeric, rtol=1e-5, atol=1e-9), kind


def test_errors_are_the_summed_magnitudes_of_the_output_gradients():
    net = QuantizedMLP.initialised((3, 2), Quantizer("binary"), seed=0)
    x, y = np.array([[0.2, 0.5, 1.0], [1.0, 0.0, 0.3]]), np.array([0, 1])
    passes = net.forward(x)
    p = np.exp(passes[-1].pre)
    p /= p.sum(axis=1, keepdims=True)
    p[[0, 1], y] -= 1
    assert np.allclose(net.gradients(passes, y).errors[0], np.abs(p / 2).sum(axis=0))


@pytest.mark.parametrize("name, floor", [("float", 0.9), ("binary", 0.8), ("ternary", 0.85)])
def test_a_few_epochs_of_software_training_learn_the_digits(digits, name, floor):
    config = TrainingConfig(epochs=5, learning_rate=0.02, seed=0)
    net = train_software((64, 24, 10), Quantizer(name), digits.x_train, digits.y_train, config)
    assert net.accuracy(digits.x_test, digits.y_test) > floor  # chance is 0.1
    again = train_software((64, 24, 10), Quantizer(name), digits.x_train, digits.y_train,
                           config)
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, again.weights, strict=True))
    if name != "float":
        assert max(np.abs(w).max() for w in net.weights) <= 1.0
