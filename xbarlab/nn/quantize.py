"""Weight quantizers for crossbar networks: binary, ternary and (reference) full precision.

* Binary (BNN: Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, "Binarized neural networks",
  arXiv:1602.02830 (2016)): level = sign(w) (+1 at w = 0), one scale per layer
  alpha = mean|w| (XNOR-Net: Rastegari et al., ECCV 2016) applied digitally after the column
  read-out.
* Ternary (TWN: Li, Zhang, Liu, "Ternary weight networks", arXiv:1605.04711 (2016)): threshold
  Delta = 0.7 mean|w|, level = sign(w) 1[|w| > Delta], scale alpha = mean(|w| : |w| > Delta)
  applied after the column read-out (reference/techniques.md §1.2).
* Float: the weight itself, scale 1 (the software reference the quantized nets are judged by).

Training keeps full-precision latent weights and passes the gradient of the quantized weight
straight through to them (straight-through estimator, Bengio, Leonard, Courville,
arXiv:1308.3432 (2013)), cancelled where |w| > 1 (the BNN form, 1[|w| <= 1]); latent weights of
quantized nets are kept in [-1, 1].

`Quantizer.boundary` and `Quantizer.level_of` expose the decision boundaries, so that a
chip-in-the-loop update can ask whether a latent weight sits clearly inside a new level
(`xbarlab.nn.updates.significant_levels`) rather than just across the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TERNARY_THRESHOLD_RATIO = 0.7
"""Delta / mean|w| of ternary weight networks (Li, Zhang, Liu 2016)."""
QUANTIZER_NAMES = ("binary", "ternary", "float")
"""Names a `Quantizer` accepts."""


@dataclass(frozen=True)
class Quantizer:
    """One weight quantizer (see the module docstring); `name` is binary, ternary or float."""

    name: str
    threshold_ratio: float = TERNARY_THRESHOLD_RATIO

    def __post_init__(self) -> None:
        if self.name not in QUANTIZER_NAMES:
            raise ValueError(f"quantizer = {self.name!r}: allowed {', '.join(QUANTIZER_NAMES)}")
        if not 0.0 < self.threshold_ratio < 2.0:
            raise ValueError(f"threshold_ratio = {self.threshold_ratio!r}: allowed 0 < r < 2")

    @property
    def quantized(self) -> bool:
        """True for binary and ternary: weights are levels -1, 0, +1 on the crossbar."""
        return self.name != "float"

    def boundary(self, w: np.ndarray) -> float:
        """Decision threshold of a layer's latent weights `w`: 0 (binary) or Delta (ternary)."""
        if self.name == "ternary":
            return self.threshold_ratio * float(np.mean(np.abs(w)))
        return 0.0

    def level_of(self, values: np.ndarray, boundary: float) -> np.ndarray:
        """Levels of `values` for the decision threshold `boundary` (float: the values)."""
        values = np.asarray(values, float)
        if self.name == "binary":
            return np.where(values >= 0.0, 1.0, -1.0)
        if self.name == "ternary":
            return np.where(values > boundary, 1.0, np.where(values < -boundary, -1.0, 0.0))
        return values

    def scale(self, w: np.ndarray, levels: np.ndarray) -> float:
        """Digital scale applied after the read-out: alpha of the module docstring."""
        if self.name == "float":
            return 1.0
        kept = np.abs(w)[levels != 0]
        return float(kept.mean()) if kept.size else 0.0

    def quantize(self, w: np.ndarray) -> tuple[np.ndarray, float]:
        """(levels, scale) of a layer's latent weights `w`."""
        levels = self.level_of(w, self.boundary(w))
        return levels, self.scale(w, levels)

    def straight_through(self, w: np.ndarray) -> np.ndarray:
        """Factor from the gradient of the levels to that of the latent weights."""
        if self.name == "float":
            return np.ones_like(w)
        return (np.abs(w) <= 1.0).astype(float)

    def keep_in_range(self, w: np.ndarray) -> np.ndarray:
        """Latent weights after an update: clipped to [-1, 1] for quantized nets."""
        return np.clip(w, -1.0, 1.0) if self.quantized else w
