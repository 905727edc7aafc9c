"""Software training of a `QuantizedMLP` in numpy: quantization-aware, seeded, mini-batch Adam.

Every batch is forwarded through the quantized levels, the cross-entropy gradient passes
straight through to the latent weights (`xbarlab.nn.quantize`), Adam moves them and they are
kept in [-1, 1] (quantized nets). With the same seed the result is the same to the bit.
The defaults (sigmoid hidden layer, 3e-3, 60 epochs of 32) train a 64-54-10 net on the 8x8
digits; the accuracies they reach are printed by benchmarks/bench_nn_chip_model.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from xbarlab.nn.network import QuantizedMLP
from xbarlab.nn.optim import Adam
from xbarlab.nn.quantize import Quantizer


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of software training."""

    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 0.003
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: allowed an integer >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate = {self.learning_rate!r}: allowed > 0")


def batches(count: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Indices of one epoch: a permutation of range(count) cut into batches."""
    order = rng.permutation(count)
    for start in range(0, count, batch_size):
        yield order[start:start + batch_size]


def train_software(sizes: tuple[int, ...], quantizer: Quantizer, x: np.ndarray, y: np.ndarray,
                   config: TrainingConfig = TrainingConfig()) -> QuantizedMLP:
    """A net of `sizes` trained on (x, y) with `quantizer` weights (module docstring)."""
    init_seed, order_seed = np.random.SeedSequence(config.seed).spawn(2)
    net = QuantizedMLP.initialised(sizes, quantizer, init_seed)
    rng = np.random.default_rng(order_seed)
    optimiser = Adam(net.weights, config.learning_rate)
    for _ in range(config.epochs):
        for batch in batches(len(x), config.batch_size, rng):
            passes = net.forward(x[batch])
            optimiser.step(net.gradients(passes, y[batch]).weights)
            for w in net.weights:
                w[...] = quantizer.keep_in_range(w)
    return net
