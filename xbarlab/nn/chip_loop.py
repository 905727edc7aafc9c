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
built on `xbarlab.nn.inference.BenchForward` and write-verify programming,
`xbarlab.nn.bench_chip.BenchChip`) and tests run it on the physics model. `ChipTrainer` runs
one epoch at a time and its `state` (JSON-able) resumes an interrupted run from its last
completed epoch; `train_on_chip` runs them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from xbarlab.nn.defects import HEALTHY, defect_codes, effective_levels, tile_codes
from xbarlab.nn.network import QuantizedMLP
from xbarlab.nn.optim import Adam
from xbarlab.nn.placement import Placement
from xbarlab.nn.training import TrainingConfig, batches
from xbarlab.nn.updates import (
    NEURON_AWARE,
    NORMAL,
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
class ChipLoopConfig(TrainingConfig):
    """Hyper-parameters of chip-in-the-loop training (module docstring): those of software
    training, fewer epochs at a smaller step (it starts from a trained net), and when to
    write."""

    epochs: int = 5
    learning_rate: float = 0.001
    threshold: float = 0.0
    """Latent-weight margin a new level needs before its cells are written (0: every change)."""
    gate_fraction: float = 1.0
    """Fraction of each layer's neurons retrained each epoch (1: all)."""

    def __post_init__(self) -> None:
        super().__post_init__()
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

    @classmethod
    def unaware(cls, shapes: Sequence[tuple[int, int]]) -> DefectAwareness:
        """No defect information: every neuron `NORMAL`, every cell taken as healthy."""
        return cls(tuple(np.full(n, NORMAL, np.int8) for _, n in shapes),
                   tuple(np.full(shape, HEALTHY, np.int8) for shape in shapes),
                   tuple(np.full(shape, HEALTHY, np.int8) for shape in shapes))

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


class ChipTrainer:
    """Chip-in-the-loop training one epoch at a time (module docstring).

    `net` is copied; it must already be programmed on `chip` as `programmed` (default: its own
    levels). `state` / `load_state` carry everything the next epoch depends on (latent
    weights, neuron corrections, levels on the chip, optimiser moments, the batch order's
    random state, the gated neurons, the epoch records) as JSON-able data, so a run can be
    checkpointed after each epoch and resumed on the same chip.
    """

    def __init__(self, chip: Chip, net: QuantizedMLP, x: np.ndarray, y: np.ndarray,
                 config: ChipLoopConfig = ChipLoopConfig(),
                 programmed: Sequence[np.ndarray] | None = None,
                 awareness: DefectAwareness | None = None):
        if not net.quantizer.quantized:
            raise ValueError("chip-in-the-loop training needs a binary or ternary network; "
                             f"got {net.quantizer.name!r}")
        self.chip, self.x, self.y, self.config = chip, np.asarray(x), np.asarray(y), config
        self.net = net.copy()
        shapes = [w.shape for w in self.net.weights]
        self.levels = [p[0] for p in self.net.quantized()] if programmed is None else [
            np.array(p, float) for p in programmed]
        if [p.shape for p in self.levels] != shapes:
            raise ValueError(f"programmed levels of shapes {[p.shape for p in self.levels]} "
                             f"do not fit the network's {shapes}")
        self.awareness = awareness or DefectAwareness.unaware(shapes)
        self._writable_plus = [c == HEALTHY for c in self.awareness.plus_codes]
        self._writable_minus = [c == HEALTHY for c in self.awareness.minus_codes]
        self._frozen = [~p & ~m for p, m in zip(self._writable_plus, self._writable_minus,
                                                strict=True)]
        self._neuron_aware = [(g == NEURON_AWARE).astype(float) for g in self.awareness.groups]
        self.optimiser = Adam(self.net.weights + self.net.gains + self.net.offsets,
                              config.learning_rate)
        self.rng = np.random.default_rng(config.seed)
        self.gated: list[np.ndarray] | None = None
        self.records: list[EpochRecord] = []

    def believed(self) -> list[np.ndarray]:
        """The levels the chip is believed to hold (defects of synapse-aware neurons in)."""
        return [effective_levels(lv, p, m) for lv, p, m in
                zip(self.levels, self.awareness.plus_codes, self.awareness.minus_codes,
                    strict=True)]

    def _gate(self, score: list[np.ndarray]) -> list[np.ndarray]:
        return [gated_columns(s, self.config.gate_fraction) for s in score]

    def run_epoch(self) -> EpochRecord:
        """One epoch over (x, y); its record is appended to `records` and returned."""
        net, chip = self.net, self.chip
        if self.gated is None:
            self.gated = [np.ones(n, bool) for n in net.sizes[1:]]
            if self.config.gate_fraction < 1.0:
                self.gated = self._gate(_responsibility(chip, net, self.believed(), self.x,
                                                        self.y, self.config.batch_size))
        energy_before = chip.energy
        score = [np.zeros(n) for n in net.sizes[1:]]
        loss = correct = writes = pulses = 0
        for batch in batches(len(self.x), self.config.batch_size, self.rng):
            passes = net.forward(self.x[batch], chip.forward, self.believed())
            grads = net.gradients(passes, self.y[batch])
            loss += grads.loss * len(batch)
            correct += int(np.sum(passes[-1].outputs.argmax(axis=1) == self.y[batch]))
            for s, e in zip(score, grads.errors, strict=True):
                s += e
            self.optimiser.step(
                [g * gate[None, :] * ~f for g, gate, f in
                 zip(grads.weights, self.gated, self._frozen, strict=True)]
                + [g * a for g, a in zip(grads.gains, self._neuron_aware, strict=True)]
                + [g * a for g, a in zip(grads.offsets, self._neuron_aware, strict=True)])
            for k in range(net.layers):
                done, used = self._write_changes(k)
                writes, pulses = writes + done, pulses + used
        if self.config.gate_fraction < 1.0:
            self.gated = self._gate(score)
        record = EpochRecord(len(self.records), loss / len(self.x), correct / len(self.x),
                             writes, pulses, chip.energy - energy_before)
        self.records.append(record)
        return record

    def _write_changes(self, k: int) -> tuple[int, int]:
        """Program layer k's significant level changes in its gated neurons; (writes, pulses)."""
        w = self.net.weights[k]
        w[...] = self.net.quantizer.keep_in_range(w)
        new = significant_levels(self.net.quantizer, w, self.levels[k], self.config.threshold)
        new = np.where(self.gated[k][None, :], new, self.levels[k])
        plan = plan_writes(k, self.levels[k], new, self._writable_plus[k],
                           self._writable_minus[k])
        used = self.chip.apply(plan) if len(plan) else 0
        self.levels[k] = new
        return len(plan), used

    def result(self) -> ChipLoopResult:
        return ChipLoopResult(self.net.copy(), [lv.copy() for lv in self.levels],
                              tuple(self.records))

    def state(self) -> dict:
        """Everything the next epoch depends on, as JSON-able data (class docstring)."""
        net = self.net
        return {
            "weights": [w.tolist() for w in net.weights],
            "gains": [g.tolist() for g in net.gains],
            "offsets": [o.tolist() for o in net.offsets],
            "levels": [lv.tolist() for lv in self.levels],
            "optimiser": self.optimiser.state(),
            "rng": self.rng.bit_generator.state,
            "gated": None if self.gated is None else [g.tolist() for g in self.gated],
            "records": [dataclasses.asdict(r) for r in self.records],
        }

    def load_state(self, state: dict) -> None:
        """Continue from `state` (of a trainer of the same network shape and settings)."""
        for name in ("weights", "gains", "offsets", "levels"):
            target = self.levels if name == "levels" else getattr(self.net, name)
            arrays = [np.asarray(a, float) for a in state[name]]
            if [a.shape for a in arrays] != [t.shape for t in target]:
                raise ValueError(f"saved {name} do not fit this network")
            for t, a in zip(target, arrays, strict=True):
                t[...] = a
        self.optimiser.load_state(state["optimiser"])
        self.rng.bit_generator.state = state["rng"]
        self.gated = None if state["gated"] is None else [np.asarray(g, bool)
                                                          for g in state["gated"]]
        self.records = [EpochRecord(**r) for r in state["records"]]


def train_on_chip(chip: Chip, net: QuantizedMLP, x: np.ndarray, y: np.ndarray,
                  config: ChipLoopConfig = ChipLoopConfig(),
                  programmed: Sequence[np.ndarray] | None = None,
                  awareness: DefectAwareness | None = None) -> ChipLoopResult:
    """`config.epochs` epochs of `ChipTrainer` (same arguments); `net` is not changed."""
    trainer = ChipTrainer(chip, net, x, y, config, programmed, awareness)
    for _ in range(config.epochs):
        trainer.run_epoch()
    return trainer.result()
