"""A multilayer perceptron whose layers are crossbar tiles: quantized weights, software neurons.

Layer k takes inputs a (values in [0, 1], the row voltages over ``v_read``) with a constant 1
appended (the bias row) and computes

    products = [a, 1] @ levels_k                       (the crossbar: column currents, decoded)
    pre      = gain_k * scale_k * products + offset_k  (digital, per neuron, after the read-out)
    a_next   = sigmoid(pre)      (hidden layers; keeps the next layer's inputs in [0, 1])
    logits   = pre               (last layer; softmax cross-entropy)

``levels_k`` are the quantized latent weights (`xbarlab.nn.quantize`), ``scale_k`` the
quantizer's digital scale. ``gain_k`` (1) and ``offset_k`` (0) are per-neuron digital
corrections that software training leaves alone and neuron-aware chip-in-the-loop training
retrains (reference/techniques.md §2.3 B2). The weight matrix of layer k has shape
(n_in + 1, n_out), the bias row last.

`forward` takes the products from a callable when they are measured (a chip: the crossbar
computes them with every non-ideality), or computes them in software; `gradients`
back-propagates in software through the levels the caller names (those it believes the chip
holds), so one routine serves software training and chip-in-the-loop training
(reference/techniques.md §2.3 B4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xbarlab.nn.data import with_bias
from xbarlab.nn.quantize import Quantizer

ProductFunction = Callable[[int, np.ndarray], np.ndarray]
"""(layer, inputs with the bias column) -> products (samples, neurons) of that layer."""


@dataclass(frozen=True)
class LayerPass:
    """One layer of one forward pass (arrays over the samples of the batch)."""

    inputs: np.ndarray
    """Inputs with the bias column, (samples, n_in + 1)."""
    products: np.ndarray
    """inputs @ levels, computed or measured, (samples, n_out)."""
    levels: np.ndarray
    """Levels the backward pass uses as this layer's weights, (n_in + 1, n_out)."""
    scale: float
    pre: np.ndarray
    """gain * scale * products + offset, (samples, n_out)."""
    outputs: np.ndarray
    """sigmoid(pre) for a hidden layer, pre (the logits) for the last."""


@dataclass(frozen=True)
class Gradients:
    """Gradients of the mean cross-entropy of a batch, per layer."""

    weights: list[np.ndarray]
    """With respect to the latent weights (straight-through estimator)."""
    gains: list[np.ndarray]
    offsets: list[np.ndarray]
    errors: list[np.ndarray]
    """Per neuron: sum over the batch of |d loss / d pre| (how much each neuron's output is
    responsible for the error: the partial-gating score of `xbarlab.nn.updates`)."""
    loss: float


def sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # = 1 / (1 + exp(-u)), without overflow


def softmax(u: np.ndarray) -> np.ndarray:
    e = np.exp(u - u.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class QuantizedMLP:
    """An MLP of `sizes` (inputs, hidden..., classes), `quantizer` weights (module docstring)."""

    def __init__(self, sizes: Sequence[int], quantizer: Quantizer, weights: Sequence[np.ndarray],
                 gains: Sequence[np.ndarray] | None = None,
                 offsets: Sequence[np.ndarray] | None = None):
        self.sizes = tuple(int(s) for s in sizes)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"sizes = {sizes!r}: allowed two or more layer sizes >= 1")
        self.quantizer = quantizer
        shapes = [(a + 1, b) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=False)]
        self.weights = [np.array(w, float) for w in weights]
        if [w.shape for w in self.weights] != shapes:
            raise ValueError(f"weights of shapes {[w.shape for w in self.weights]} do not fit "
                             f"sizes {self.sizes}: allowed {shapes} (bias row last)")
        self.gains = [np.array(g, float) for g in gains] if gains is not None else [
            np.ones(b) for _, b in shapes]
        self.offsets = [np.array(o, float) for o in offsets] if offsets is not None else [
            np.zeros(b) for _, b in shapes]

    @classmethod
    def initialised(cls, sizes: Sequence[int], quantizer: Quantizer,
                    seed: int | np.random.SeedSequence) -> QuantizedMLP:
        """Latent weights uniform in +-sqrt(3 / fan_in) (unit-variance products), seeded."""
        rng = np.random.default_rng(seed)
        weights = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=False):
            bound = np.sqrt(3.0 / (a + 1))
            weights.append(quantizer.keep_in_range(rng.uniform(-bound, bound, (a + 1, b))))
        return cls(sizes, quantizer, weights)

    @property
    def layers(self) -> int:
        return len(self.weights)

    def copy(self) -> QuantizedMLP:
        return QuantizedMLP(self.sizes, self.quantizer, self.weights, self.gains, self.offsets)

    def quantized(self) -> list[tuple[np.ndarray, float]]:
        """(levels, scale) of every layer: what the crossbar holds and the digital scale."""
        return [self.quantizer.quantize(w) for w in self.weights]

    def forward(self, x: np.ndarray, products: ProductFunction | None = None,
                levels: Sequence[np.ndarray] | None = None) -> list[LayerPass]:
        """Forward pass of inputs `x` (samples, sizes[0]) in [0, 1], layer by layer.

        `products(layer, inputs)` supplies measured products (a chip); without it they are
        computed as ``inputs @ levels``. `levels` (default: the quantized latent weights) are
        the weights the products are computed with and the backward pass uses.
        """
        quantized = self.quantized()
        levels = [q[0] for q in quantized] if levels is None else list(levels)
        passes = []
        a = np.asarray(x, float)
        for k in range(self.layers):
            inputs = with_bias(a)
            z = inputs @ levels[k] if products is None else np.asarray(products(k, inputs))
            if z.shape != (len(inputs), self.sizes[k + 1]):
                raise ValueError(f"layer {k} products have shape {z.shape}: allowed "
                                 f"{(len(inputs), self.sizes[k + 1])}")
            scale = quantized[k][1]
            pre = self.gains[k] * scale * z + self.offsets[k]
            a = pre if k == self.layers - 1 else sigmoid(pre)
            passes.append(LayerPass(inputs, z, levels[k], scale, pre, a))
        return passes

    def predict(self, x: np.ndarray, products: ProductFunction | None = None) -> np.ndarray:
        """Class of each sample (argmax of the logits)."""
        return self.forward(x, products)[-1].outputs.argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray,
                 products: ProductFunction | None = None) -> float:
        """Fraction of samples classified as labelled."""
        return float(np.mean(self.predict(x, products) == np.asarray(y)))

    def gradients(self, passes: Sequence[LayerPass], y: np.ndarray) -> Gradients:
        """Back-propagate the mean cross-entropy of labels `y` through `passes`."""
        y = np.asarray(y)
        logits = passes[-1].pre
        p = softmax(logits)
        count = len(y)
        loss = float(-np.mean(np.log(np.maximum(p[np.arange(count), y], 1e-300))))
        p[np.arange(count), y] -= 1.0
        d_pre = p / count
        weights, gains, offsets, errors = [], [], [], []
        for k in reversed(range(self.layers)):
            layer = passes[k]
            errors.append(np.abs(d_pre).sum(axis=0))
            offsets.append(d_pre.sum(axis=0))
            gains.append((d_pre * layer.scale * layer.products).sum(axis=0))
            d_products = d_pre * self.gains[k] * layer.scale
            weights.append((layer.inputs.T @ d_products)
                           * self.quantizer.straight_through(self.weights[k]))
            if k:
                d_a = d_products @ layer.levels[:-1].T
                a = passes[k - 1].outputs
                d_pre = d_a * a * (1.0 - a)
        return Gradients(weights[::-1], gains[::-1], offsets[::-1], errors[::-1], loss)
