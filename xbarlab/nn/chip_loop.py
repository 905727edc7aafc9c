"""Chip-in-the-loop training: forward passes measured on the chip, gradients in software.

Algorithm (reference/techniques.md §2.3 B4, with B1-B3 and B5, and §6.2 E3): the network is
programmed (ex situ), then for every batch

1. the chip measures each layer's products (`Chip.forward`; every defect, parasitic and
   device spread of the chip is in them) and the neurons are computed in software;
2. the cross-entropy gradient is back-propagated in software through the levels believed to
   be on the chip (`xbarlab.nn.network.QuantizedMLP.gradients`): the programmed levels, or,
   for synapse-aware neurons, the levels their cells really hold given the defect map
   (`xbarlab.nn.defects.effective_levels`);
3. Adam moves the latent weights of the gated neurons (partial gating, B5) and the digital
   gain and offset of the neuron-aware ones (B2);
4. the levels are re-derived from the latent weights, changed only where the change is
   significant (`xbarlab.nn.updates.significant_levels`), and the cells whose state changes
   become pulse decisions (`xbarlab.nn.updates.plan_writes`), sent to `Chip.apply`; stuck
   cells of synapse-aware neurons are never written, and a weight whose both cells are stuck
   is frozen (B1).

Gating: each epoch retrains the `gate_fraction` of each layer's neurons with the largest
summed |d loss / d pre| over the previous epoch (before the first epoch: over one measured
pass of the training set, forward only).

Everything here acts through the `Chip` interface, so a protocol runs it on a bench (a chip
built on `xbarlab.nn.inference.BenchForward` and write-verify programming) and tests run it on
the physics model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from xbarlab.nn.defects import HEALTHY, defect_codes, effective_levels, tile_codes
from xbarlab.nn.network import QuantizedMLP
from xbarlab.nn.optim import Adam
from xbarlab.nn.placement import Placement
from xbarlab.nn.training import batches
from xbarlab.nn.updates import (
    NEURON_AWARE,
    SYNAPSE_AWARE,
    CellWrites,
    column_groups,
    defect_map_bits,
    gated_columns,
    plan_writes,
    significant_levels,
)


class Chip(Protocol):
    """What chip-in-the-loop training needs from a chip holding a placed network."""

    def forward(self, layer: int, inputs: np.ndarray) -> np.ndarray:
        """Measured products (samples, neurons) of `layer` for inputs (samples, n_in + 1) in
        [0, 1], the bias column included: ideally ``inputs @ levels``."""
        ...

    def apply(self, writes: CellWrites) -> int:
        """Program the cells of `writes` (SET to g_on or RESET to g_off); return the pulses
        this took."""
        ...

    @property
    def energy(self) -> float:
        """Energy spent on programming so far (J)."""
        ...


@dataclass(frozen=True)
class ChipLoopConfig:
    """Hyper-parameters of chip-in-the-loop training (module docstring)."""

    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 0.001
    threshold: float = 0.0
    """Latent-weight margin a new level needs before its cells are written (0: every change)."""
    gate_fraction: float = 1.0
    """Fraction of each layer's neurons retrained each epoch (1: all)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: allowed an integer >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate = {self.learning_rate!r}: allowed > 0")
        if not self.threshold >= 0:
            raise ValueError(f"threshold = {self.threshold!r}: allowed >= 0")
        if not 0.0 < self.gate_fraction <= 1.0:
            raise ValueError(f"gate_fraction = {self.gate_fraction!r}: allowed 0 < f <= 1")


@dataclass(frozen=True)
class DefectAwareness:
    """Per layer: the group of each neuron (`xbarlab.nn.updates`) and the defect codes of the
    plus and minus cells, known only for synapse-aware neurons (healthy elsewhere)."""

    groups: tuple[np.ndarray, ...]
    plus_codes: tuple[np.ndarray, ...]
    minus_codes: tuple[np.ndarray, ...]

    @classmethod
    def from_map(cls, placement: Placement, defect_map: np.ndarray, severe: Sequence[int],
                 moderate: Sequence[int]) -> DefectAwareness:
        """Split each layer's neurons by the defects of their two columns (An 2022): the
        `severe[k]` worst of layer k synapse-aware, the next `moderate[k]` neuron-aware."""
        codes = defect_codes(defect_map, (placement.array_rows, placement.array_cols))
        if len(severe) != len(placement.tiles) or len(moderate) != len(placement.tiles):
            raise ValueError(f"severe and moderate need one count per layer "
                             f"({len(placement.tiles)})")
        groups, plus_codes, minus_codes = [], [], []
        for tile, s, m in zip(placement.tiles, severe, moderate, strict=True):
            plus, minus = tile_codes(tile, codes)
            counts = (plus != HEALTHY).sum(axis=0) + (minus != HEALTHY).sum(axis=0)
            group = column_groups(counts, s, m)
            known = (group == SYNAPSE_AWARE)[None, :]
            groups.append(group)
            plus_codes.append(np.where(known, plus, HEALTHY).astype(np.int8))
            minus_codes.append(np.where(known, minus, HEALTHY).astype(np.int8))
        return cls(tuple(groups), tuple(plus_codes), tuple(minus_codes))

    def bits(self) -> int:
        """Size of the defect information kept (`xbarlab.nn.updates.defect_map_bits`)."""
        return sum(defect_map_bits(g, len(p)) for g, p in zip(self.groups, self.plus_codes,
                                                              strict=True))


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of chip-in-the-loop training, measured on the training batches."""

    epoch: int
    loss: float
    train_accuracy: float
    writes: int
    """Cells whose programming was requested."""
    pulses: int
    """Pulses the chip reported for them."""
    energy: float
    """Programming energy of the epoch (J)."""


@dataclass(frozen=True)
class ChipLoopResult:
    """The trained network, the levels now programmed, and what the training cost."""

    net: QuantizedMLP
    programmed: list[np.ndarray]
    epochs: tuple[EpochRecord, ...]

    @property
    def pulses(self) -> int:
        return sum(e.pulses for e in self.epochs)

    @property
    def writes(self) -> int:
        return sum(e.writes for e in self.epochs)

    @property
    def energy(self) -> float:
        return sum(e.energy for e in self.epochs)


def _responsibility(chip: Chip, net: QuantizedMLP, levels: list[np.ndarray], x: np.ndarray,
                    y: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Summed |d loss / d pre| per neuron over one measured pass of (x, y), no update."""
    total = [np.zeros(n) for n in net.sizes[1:]]
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        passes = net.forward(x[part], chip.forward, levels)
        for t, e in zip(total, net.gradients(passes, y[part]).errors, strict=True):
            t += e
    return total


def train_on_chip(chip: Chip, net: QuantizedMLP, x: np.ndarray, y: np.ndarray,
                  config: ChipLoopConfig = ChipLoopConfig(),
                  programmed: Sequence[np.ndarray] | None = None,
                  awareness: DefectAwareness | None = None) -> ChipLoopResult:
    """Train `net` (already programmed on `chip` as `programmed`, default its own levels)
    with the chip in the loop on (x, y) (module docstring). `net` is not changed."""
    if not net.quantizer.quantized:
        raise ValueError("chip-in-the-loop training needs a binary or ternary network; "
                         f"got {net.quantizer.name!r}")
    net = net.copy()
    levels = [p[0] for p in net.quantized()] if programmed is None else [
        np.array(p, float) for p in programmed]
    if [p.shape for p in levels] != [w.shape for w in net.weights]:
        raise ValueError(f"programmed levels of shapes {[p.shape for p in levels]} do not fit "
                         f"the network's {[w.shape for w in net.weights]}")
    if awareness is None:
        awareness = DefectAwareness(
            tuple(np.zeros(n, np.int8) for n in net.sizes[1:]),
            *(tuple(np.zeros(w.shape, np.int8) for w in net.weights) for _ in range(2)))
    writable_plus = [c == HEALTHY for c in awareness.plus_codes]
    writable_minus = [c == HEALTHY for c in awareness.minus_codes]
    frozen = [~p & ~m for p, m in zip(writable_plus, writable_minus, strict=True)]
    neuron_aware = [(g == NEURON_AWARE).astype(float) for g in awareness.groups]

    def believed() -> list[np.ndarray]:
        return [effective_levels(lv, p, m) for lv, p, m in
                zip(levels, awareness.plus_codes, awareness.minus_codes, strict=True)]

    rng = np.random.default_rng(config.seed)
    optimiser = Adam(net.weights + net.gains + net.offsets, config.learning_rate)
    gated = [np.ones(n, bool) for n in net.sizes[1:]]
    if config.gate_fraction < 1.0:
        score = _responsibility(chip, net, believed(), x, y, config.batch_size)
        gated = [gated_columns(s, config.gate_fraction) for s in score]
    records = []
    for epoch in range(config.epochs):
        energy_before = chip.energy
        score = [np.zeros(n) for n in net.sizes[1:]]
        loss = correct = writes = pulses = 0
        for batch in batches(len(x), config.batch_size, rng):
            passes = net.forward(x[batch], chip.forward, believed())
            grads = net.gradients(passes, y[batch])
            loss += grads.loss * len(batch)
            correct += int(np.sum(passes[-1].outputs.argmax(axis=1) == y[batch]))
            for s, e in zip(score, grads.errors, strict=True):
                s += e
            weight_grads = [g * gate[None, :] * ~f for g, gate, f in
                            zip(grads.weights, gated, frozen, strict=True)]
            optimiser.step(weight_grads + [g * a for g, a in zip(grads.gains, neuron_aware,
                                                                 strict=True)]
                           + [g * a for g, a in zip(grads.offsets, neuron_aware, strict=True)])
            for k, w in enumerate(net.weights):
                w[...] = net.quantizer.keep_in_range(w)
                new = significant_levels(net.quantizer, w, levels[k], config.threshold)
                new = np.where(gated[k][None, :], new, levels[k])
                plan = plan_writes(k, levels[k], new, writable_plus[k], writable_minus[k])
                if len(plan):
                    writes += len(plan)
                    pulses += chip.apply(plan)
                levels[k] = new
        if config.gate_fraction < 1.0:
            gated = [gated_columns(s, config.gate_fraction) for s in score]
        records.append(EpochRecord(epoch, loss / len(x), correct / len(x), writes, pulses,
                                   chip.energy - energy_before))
    return ChipLoopResult(net, levels, tuple(records))
