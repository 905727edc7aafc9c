"""Adam (Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015, Algorithm 1).

One optimiser for software and chip-in-the-loop training: it moves the full-precision latent
weights (and the digital neuron corrections); what reaches the crossbar is decided afterwards
from the levels the latent weights quantize to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Adam:
    """Adam over a fixed list of parameter arrays, updated in place by `step`."""

    def __init__(self, parameters: Sequence[np.ndarray], learning_rate: float = 0.003,
                 beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate = {learning_rate!r}: allowed > 0")
        self.parameters = list(parameters)
        self.learning_rate, self.beta1, self.beta2, self.epsilon = (
            learning_rate, beta1, beta2, epsilon)
        self._m = [np.zeros_like(p) for p in self.parameters]
        self._v = [np.zeros_like(p) for p in self.parameters]
        self._t = 0

    def step(self, gradients: Sequence[np.ndarray]) -> None:
        """One update of every parameter with its gradient (same order as the parameters)."""
        self._t += 1
        correction1 = 1.0 - self.beta1 ** self._t
        correction2 = 1.0 - self.beta2 ** self._t
        for p, g, m, v in zip(self.parameters, gradients, self._m, self._v, strict=True):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= self.learning_rate * (m / correction1) / (np.sqrt(v / correction2)
                                                           + self.epsilon)

    def state(self) -> dict:
        """Moments and step count as plain lists (JSON), for `load_state`."""
        return {"m": [m.tolist() for m in self._m], "v": [v.tolist() for v in self._v],
                "t": self._t}

    def load_state(self, state: dict) -> None:
        """Continue from a `state` of an optimiser over parameters of the same shapes."""
        for name in ("m", "v"):
            arrays = [np.asarray(a, float) for a in state[name]]
            if [a.shape for a in arrays] != [p.shape for p in self.parameters]:
                raise ValueError(f"optimiser state {name!r} does not fit the parameters")
            setattr(self, f"_{name}", arrays)
        self._t = int(state["t"])
