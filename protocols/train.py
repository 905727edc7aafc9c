"""The ``train`` protocol: a binary or ternary network on the chip, ex situ and with the chip in
the loop, through the bench only (issue 13; reference/techniques.md §1, §2, §6).

What it runs (the mathematics is `xbarlab.nn`; the cells are switched by
`xbarlab.protocols.binary_cells.CellSwitcher`):

1. **Software**: a 64-``hidden``-10 network (``pool`` 2: 16 inputs, the 8x8 digits averaged to
   4x4) trained in numpy on scikit-learn's digits (the fixed, seeded split of
   `xbarlab.nn.data.load_digits_split`: 1438 training, 359 test images), quantization-aware,
   ``quantizer`` binary or ternary, seeded by ``seed``; its test accuracy is
   ``accuracy_software``.
2. **Characterise** (a cheap defect map): 16 cells of the first tile switched off, then on, give
   the two levels and the threshold between them; every cell of the chip is read (one reading
   per row on a board); every cell that reads on is switched off, and those that stay on are
   stuck-on. Map ``defects`` (0 healthy, 1 stuck-on, 2 stuck-off, 3 unresponsive; NaN never
   examined) and map ``conductance-initial``.
3. **Place and program**: the layers as tiles (`xbarlab.nn.placement.place_layers`), the lines
   with the most defects moved onto free lines (`xbarlab.nn.defects.avoid_defects`; cells never
   examined count as defective there), then every cell of the tiles brought to its level: on
   for +-1, off otherwise (SET pulses with a verify; a cell that stays off is stuck-off). The
   SET pulses of programming are also the characterisation's stuck-off test, so after each
   programming round the placement is remapped with what they found (``remap_rounds`` rounds
   in all; 0: the first placement, no defect-aware mapping) and the cells that changed are
   programmed. The placement is stored as JSON (checkpoint ``placement``, metric
   ``placement``) and as map ``placement`` (tile k's cells hold k + 1). The levels of a weight
   of 1 and of 0 are the medians of the programmed cells' readings
   (`xbarlab.nn.mapping.measured_levels`).
4. **Ex situ**: the test accuracy measured on the chip (`xbarlab.nn.inference.BenchForward`:
   a matrix-vector product per image and layer on a board, the tiles read cell by cell on a
   switch-matrix bench), ``accuracy_ex_situ``.
5. **Chip in the loop** (``mode`` chip-in-the-loop; ``ex-situ`` stops after step 4 with
   ``accuracy_chip_in_loop`` None; `xbarlab.nn.chip_loop.ChipTrainer` over
   `xbarlab.nn.bench_chip.BenchChip`): ``loop_epochs`` epochs over ``loop_samples`` training
   images (0: all), forward passes measured, gradients in software, a cell pulsed only where
   its weight's change is significant (``threshold``), ``gate_fraction`` of each layer's
   neurons retrained per epoch (partial gating), ``synapse_aware`` / ``neuron_aware`` fractions
   of each layer's neurons in An 2022's groups (from the measured defect map). The trainer's
   state is checkpointed after every epoch. Then the test accuracy on the chip,
   ``accuracy_chip_in_loop``.
6. **Compare** (``compare``): the chip brought back to its ex-situ levels, then the same
   training reprogramming every changed weight (threshold 0, no gating, no groups), for
   ``comparison``: its pulses and accuracy against those of step 5.

Costs (`xbarlab.protocols.accounting`): every pulse and reading is a point of the run; per
phase, the pulses, their energy (from the readings around each pulse), readings, cells that
did not switch, and the seconds spent in bench calls (``bench_s``: instrument I/O and, on a
virtual bench, its simulation), in the run store (``store_s``) and in all (``wall_s``; the
rest is computation). ``pulses``, ``energy_j`` and ``bench_time_s`` are the run's totals.

Resume: the software net, the characterisation, the programmed placement and levels, the
ex-situ accuracy and the trainer's state after each epoch are checkpoints. A resumed run
first brings the chip back to the levels of its last checkpoint (phase ``restore``: the tiles
read, the cells that differ switched), then continues from the last completed epoch.

Nothing measured (a dry run: every reading NaN): the cells are pulsed as planned, no level is
known, so the run ends after programming with its accuracies None.

Correction: when the chip has a measured parasitic calibration (issue 12; the engine attaches
the newest one to the bench), every reading and matrix-vector product the bench reports is
corrected (`xbarlab.bench` ``corrects``), so programming, inference and training all use
corrected values; metric ``calibration`` names the record (None: raw readings).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from typing import Annotated, Any

import numpy as np
from xbarlab.protocols.accounting import Ledger, Timed
from xbarlab.protocols.binary_cells import PROBE_CELLS, CellSwitcher, SwitchSettings
from xbarlab.protocols.parameters import (
    Compliance,
    PulseScheme,
    ReadScheme,
    ResetVoltage,
    SetVoltage,
    VRead,
    Width,
)
from xbarlab.protocols.train_figures import train_figures

from xbarlab.nn.bench_chip import BenchChip
from xbarlab.nn.chip_loop import ChipLoopConfig, ChipTrainer, DefectAwareness
from xbarlab.nn.data import Split, load_digits_split, pooled
from xbarlab.nn.defects import HEALTHY, UNRESPONSIVE, avoid_defects
from xbarlab.nn.inference import BenchForward
from xbarlab.nn.mapping import ON, UNUSED, ConductanceLevels, cell_targets, measured_levels
from xbarlab.nn.network import QuantizedMLP
from xbarlab.nn.placement import Placement, PlacementError, place_layers
from xbarlab.nn.quantize import Quantizer
from xbarlab.nn.training import TrainingConfig, train_software
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import refuse, register_protocol

DIGITS_SIDE, DIGITS_CLASSES = 8, 10
DIGITS_TRAIN, DIGITS_TEST = 1438, 359
"""Images of the fixed split (`load_digits_split()`; tests check these counts)."""
BENCH_CALLS = ("mvm", "read", "read_map", "read_row", "read_repeated", "iter_read_batches",
               "pulse")
"""Bench calls whose time is bench time."""
STORE_CALLS = ("record_point", "record_points", "record_map", "checkpoint")
"""Run calls whose time is store time."""
LOOP_PHASES = ("loop", "baseline")


def _network_fits(values, spec) -> None:
    """Cross-check: the pooling divides the image side, the network fits the chip and the
    strongest SET pulse is within the bench's limits."""
    pool, hidden = values["pool"], values["hidden"]
    if DIGITS_SIDE % pool:
        refuse(f"pool = {pool}: allowed 1, 2, 4 or 8 (a divisor of the digits' "
               f"{DIGITS_SIDE}-pixel side)")
    sizes = _sizes(pool, hidden)
    try:
        place_layers(sizes, spec.chip.rows, spec.chip.cols)
    except PlacementError as error:
        refuse(f"hidden = {hidden}: a {'-'.join(map(str, sizes))} network does not fit the "
               f"chip's {spec.chip.rows} x {spec.chip.cols} cells ({error}); allowed: fewer "
               "hidden neurons or a larger pool")
    for name, volts in (("v_set", values["v_set"]), ("v_reset", values["v_reset"])):
        strongest = abs(volts) + values["retries"] * values["v_step"]
        if strongest > spec.limits.max_voltage:
            refuse(f"retries = {values['retries']}: the last pulse would be |{name}| + retries "
                   f"x v_step = {strongest:g} V; allowed: at most limits.max_voltage "
                   f"({spec.limits.max_voltage:g} V)")


def _sizes(pool: int, hidden: int) -> tuple[int, int, int]:
    return ((DIGITS_SIDE // pool) ** 2, hidden, DIGITS_CLASSES)


# Parameters the pipeline passes on to its train stage, declared once.
WeightQuantizer = Annotated[str, Param("weight quantizer", choices=("binary", "ternary"))]
Hidden = Annotated[int, Param("hidden neurons", minimum=1, maximum="chip.cols")]
Pool = Annotated[int, Param("average the 8x8 digits over pool x pool blocks (2: 4x4 images, "
                            "16 inputs)", minimum=1, maximum=DIGITS_SIDE)]
LoopEpochs = Annotated[int, Param("chip-in-the-loop epochs", minimum=1, maximum=1000)]
LoopSamples = Annotated[int, Param("training images per chip-in-the-loop epoch (seeded choice)",
                                   zero="every training image", minimum=1,
                                   maximum=DIGITS_TRAIN)]
TestSamples = Annotated[int, Param("test images measured on the chip (the first ones)",
                                   zero="every test image", minimum=1, maximum=DIGITS_TEST)]


def train_plan(values, spec) -> Plan:
    """Every cell of the chip read, switched and verified (each switch up to 1 + retries
    pulses, a verify reading each) to characterise it, in each placement round and to
    restore it; each image
    a product per layer (one mvm on a board) for the ex-situ test, each epoch of the loop and
    its test (twice with compare, which also restores the chip once); each epoch may switch
    every cell."""
    v = values
    chip = spec.chip.rows * spec.chip.cols
    attempts = 1 + v["retries"]
    switch = chip * attempts
    tests = (v["test_samples"] or DIGITS_TEST) * 2
    loop = min(v["loop_samples"] or DIGITS_TRAIN, DIGITS_TRAIN) * 2
    epochs = 0 if v["mode"] == "ex-situ" else v["loop_epochs"]
    loops = 2 if v["compare"] and epochs else 1 if epochs else 0
    phases = [Phase("characterise", chip, switch + 2 * PROBE_CELLS * attempts,
                    chip + switch + 2 * PROBE_CELLS * attempts),
              Phase(f"program ({max(v['remap_rounds'], 1)} placement rounds)", chip,
                    max(v["remap_rounds"], 1) * switch,
                    max(v["remap_rounds"], 1) * (chip + switch)),
              Phase("ex-situ test", 0, 0, tests)]
    if loops:
        phases.append(Phase(f"chip in the loop ({loops} x {epochs} epochs)", chip,
                            loops * epochs * switch + (loops - 1) * switch,
                            loops * (epochs * (loop + switch) + tests)
                            + (loops - 1) * (chip + switch)))
    return Plan.of(replace(phase, seconds=phase.pulses * v["width"]) for phase in phases)


@register_protocol("train", checks=[_network_fits], figures=train_figures, plan=train_plan,
                   default_bench="board")
def train(
    bench, run, progress, *,
    quantizer: WeightQuantizer = "ternary",
    hidden: Hidden = 16,
    pool: Pool = 1,
    mode: Annotated[str, Param("ex-situ only, or ex situ then chip-in-the-loop training",
                               choices=("ex-situ", "chip-in-the-loop"))] = "chip-in-the-loop",
    seed: Annotated[int, Param("seed of software training and of the loop's batch order",
                               minimum=0, maximum=2**63 - 1)] = 0,
    train_epochs: Annotated[int, Param("software training epochs", minimum=1,
                                       maximum=10000)] = 60,
    loop_epochs: LoopEpochs = 2,
    loop_samples: LoopSamples = 300,
    test_samples: TestSamples = 0,
    learning_rate: Annotated[float, Param("chip-in-the-loop Adam step", above=0.0,
                                          maximum=1.0)] = 0.001,
    threshold: Annotated[float, Param("latent-weight margin a new level needs before its "
                                      "cells are pulsed", zero="every change", above=0.0,
                                      maximum=1.0)] = 0.003,
    gate_fraction: Annotated[float, Param("fraction of each layer's neurons retrained per "
                                          "epoch (partial gating)", above=0.0,
                                          maximum=1.0)] = 1.0,
    synapse_aware: Annotated[float, Param("fraction of each layer's neurons, those with the "
                                          "most defects, trained knowing their cells' defects",
                                          minimum=0.0, maximum=1.0)] = 0.0,
    neuron_aware: Annotated[float, Param("fraction of each layer's neurons, the next most "
                                         "defective, given a trained digital gain and offset",
                                         minimum=0.0, maximum=1.0)] = 0.0,
    remap_rounds: Annotated[int, Param("defect-aware placement rounds", zero="no remapping",
                                       minimum=1, maximum=10)] = 2,
    compare: Annotated[bool, Param("also train reprogramming every changed weight, from the "
                                   "same ex-situ chip, and compare")] = False,
    v_read: VRead = 0.2,
    read_scheme: ReadScheme = "ground",
    v_set: SetVoltage = 1.6,
    v_reset: ResetVoltage = -1.6,
    v_step: Annotated[float, Param("amplitude step of each retry", unit="V", minimum=0.0,
                                   maximum=1.0)] = 0.1,
    retries: Annotated[int, Param("further pulses for a cell that did not switch",
                                  minimum=0, maximum=10)] = 1,
    width: Width = 1e-7,
    pulse_scheme: PulseScheme = "v/2",
    current_limit: Compliance = 1e-2,
) -> dict:
    """Train a binary or ternary network in software, map and program it on the chip around
    its measured defects, measure it ex situ, train it with the chip in the loop; report
    accuracies, pulses, energy and bench time (see the module docstring)."""
    started = time.perf_counter()
    done = run.checkpoints()
    ledger = Ledger(done.get("ledger"))
    bench = Timed(bench, BENCH_CALLS, ledger, "bench_s")
    run = Timed(run, STORE_CALLS, ledger, "store_s")
    settings = SwitchSettings(v_set, v_reset, v_step, retries, width, pulse_scheme, v_read,
                              read_scheme, current_limit)
    cells = CellSwitcher(bench, run, ledger, settings)
    split = pooled(load_digits_split(), pool)
    x_test, y_test = _first(split.x_test, test_samples), _first(split.y_test, test_samples)
    if mode == "ex-situ":
        loop_epochs, compare = 0, False
    steps = 4 + loop_epochs * (2 if compare else 1) + (1 if compare else 0)
    progress.start(steps, "train: software")

    with ledger.phase_of("software"):
        net = _software(run, done, split, _sizes(pool, hidden), quantizer, train_epochs, seed)
    accuracy_software = net.accuracy(x_test, y_test)
    progress.advance()

    progress.describe("train: characterising the chip")
    first = place_layers(net.sizes, bench.rows, bench.cols)
    if "characterise" in done:
        cells.defects = run.latest_map("defects")
        cells.set_levels(*(math.nan if v is None else v for v in done["characterise"]["levels"]))
    else:
        with ledger.phase_of("characterise"):
            levels = cells.probe_levels(_on_cells(first, net))
            _characterise(cells, bench.map_cells())
        run.record_map("conductance-initial", cells.conductance, unit="S")
        run.record_map("defects", cells.defects)
        run.checkpoint("characterise", {"levels": [v if math.isfinite(v) else None
                                                   for v in levels]})
        run.checkpoint("ledger", ledger.state())
    progress.advance()

    progress.describe("train: placing and programming the network")
    levels_ex_situ = [q[0] for q in net.quantized()]
    if "placement" in done:
        placement = Placement.from_dict(done["placement"]["placement"])
        chip_levels = (ConductanceLevels(*done["placement"]["levels"])
                       if done["placement"]["levels"] else None)
        if chip_levels is not None:
            cells.set_levels(chip_levels.g_off, chip_levels.g_on)
        latest = done.get("baseline") or done.get("loop")
        restored = latest["state"]["levels"] if latest else levels_ex_situ
        with ledger.phase_of("restore"):
            cells.bring_to(_wanted(placement, [np.asarray(v) for v in restored]))
    else:
        with ledger.phase_of("program"):
            placement, rounds = _place_and_program(cells, first, levels_ex_situ, remap_rounds)
            chip_levels = _chip_levels(cells.conductance, cell_targets(placement,
                                                                       levels_ex_situ))
        if chip_levels is not None:
            cells.set_levels(chip_levels.g_off, chip_levels.g_on)
        run.record_map("defects", cells.defects)
        run.record_map("placement", _placement_map(placement))
        run.record_map("conductance-programmed", _in_tiles(placement, cells.conductance),
                       unit="S")
        run.checkpoint("placement", {"placement": placement.to_dict(), "rounds": rounds,
                                     "levels": chip_levels and [chip_levels.g_on,
                                                                chip_levels.g_off]})
        run.checkpoint("ledger", ledger.state())
    progress.advance()
    summary = {"accuracy_software": accuracy_software, "network": "-".join(map(str, net.sizes)),
               "quantizer": quantizer, "test_images": len(y_test), "started": started,
               "cells": cells, "placement": placement, "ledger": ledger,
               "calibration": bench.chip_model.calibration_id if bench.corrects else None}
    if chip_levels is None:  # nothing measured (a dry run): no product can be decoded
        run.record_map("defects", cells.defects)
        return _summary(**summary, levels=None, accuracy_ex_situ=None, efficient=None,
                        loop_images=0, inference=None)

    forward = _products(bench, placement, chip_levels, v_read, read_scheme, current_limit)
    progress.describe("train: ex-situ test accuracy on the chip")
    if "ex_situ" not in done:
        with ledger.phase_of("ex_situ"):
            run.checkpoint("ex_situ", net.accuracy(x_test, y_test, forward))
        run.checkpoint("ledger", ledger.state())
    accuracy_ex_situ = run.checkpoints()["ex_situ"]
    progress.advance()

    x_loop, y_loop = _loop_images(split, loop_samples, seed)
    efficient: dict[str, Any] = {"accuracy": None, "epochs": []}
    metrics: dict[str, Any] = {}
    if loop_epochs:
        config = ChipLoopConfig(epochs=loop_epochs, learning_rate=learning_rate, seed=seed,
                                threshold=threshold, gate_fraction=gate_fraction)
        awareness = _awareness(placement, cells.defects, synapse_aware, neuron_aware)
        chip = BenchChip(forward, cells.program)
        efficient = _chip_loop(ChipTrainer(chip, net, x_loop, y_loop, config, levels_ex_situ,
                                           awareness), "loop", run, ledger, progress, x_test,
                               y_test)
        if compare:
            baseline = _compare(cells, chip, net, placement, levels_ex_situ, x_loop, y_loop,
                                replace(config, threshold=0.0, gate_fraction=1.0), run,
                                ledger, progress, x_test, y_test)
            metrics["comparison"] = _comparison(ledger, efficient, baseline)
    run.record_map("defects", cells.defects)
    run.checkpoint("ledger", ledger.state())
    return _summary(**summary, levels=chip_levels, accuracy_ex_situ=accuracy_ex_situ,
                    efficient=efficient, loop_images=len(y_loop), inference=forward.mode,
                    **metrics)


def _summary(*, accuracy_software: float, accuracy_ex_situ: float | None,
             efficient: dict | None, network: str, quantizer: str,
             levels: ConductanceLevels | None, cells: CellSwitcher, placement: Placement,
             ledger: Ledger, started: float, test_images: int, loop_images: int,
             inference: str | None, calibration: int | None, **extra) -> dict:
    """The run's metrics (module docstring); accuracies None where not measured."""
    total = ledger.total()
    efficient = efficient or {"accuracy": None, "epochs": []}
    return {
        "accuracy_software": accuracy_software,
        "accuracy_ex_situ": accuracy_ex_situ,
        "accuracy_chip_in_loop": efficient["accuracy"],
        "pulses": total.pulses,
        "energy_j": total.energy_j,
        "energy_measured": cells.energy_measured,
        "bench_time_s": total.bench_s,
        **extra,
        "epochs": efficient["epochs"],
        "network": network,
        "quantizer": quantizer,
        "levels_s": levels and {"g_on": levels.g_on, "g_off": levels.g_off},
        "defects": _defect_counts(cells.defects, placement),
        "placement": placement.to_dict(),
        "phases": ledger.state(),
        "seconds": {"session": time.perf_counter() - started, "bench": total.bench_s,
                    "store": total.store_s, "compute": total.wall_s - total.bench_s
                    - total.store_s, "wall": total.wall_s},
        "test_images": test_images,
        "loop_images": loop_images,
        "inference": inference,
        "calibration": calibration,
    }


def _chip_levels(conductances: np.ndarray, targets: np.ndarray) -> ConductanceLevels | None:
    """g_on and g_off measured on the programmed cells, or None when they cannot be (no cell
    read on or off, or no window between them: nothing measured, as in a dry run)."""
    try:
        return measured_levels(conductances, targets)
    except ValueError:
        return None


def _first(values: np.ndarray, count: int) -> np.ndarray:
    return values[:count] if count else values


def _loop_images(split: Split, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` training images chosen at random (seeded; in their order), or all of them."""
    if not count or count >= len(split.y_train):
        return split.x_train, split.y_train
    chosen = np.sort(np.random.default_rng(seed).choice(len(split.y_train), count,
                                                        replace=False))
    return split.x_train[chosen], split.y_train[chosen]


def _software(run, done, split: Split, sizes, quantizer: str, epochs: int,
              seed: int) -> QuantizedMLP:
    """The network trained in software (kept as a checkpoint, so a resumed run maps the same
    weights)."""
    q = Quantizer(quantizer)
    if "software" in done:
        return QuantizedMLP(sizes, q, [np.asarray(w) for w in done["software"]["weights"]])
    net = train_software(sizes, q, split.x_train, split.y_train,
                         TrainingConfig(epochs=epochs, seed=seed))
    run.checkpoint("software", {"weights": [w.tolist() for w in net.weights]})
    return net


def _on_cells(placement: Placement, net: QuantizedMLP) -> list[tuple[int, int]]:
    """The cells of `placement` that hold g_on for the network's levels, in row order."""
    targets = cell_targets(placement, [q[0] for q in net.quantized()])
    return [(int(r), int(c)) for r, c in np.argwhere(targets == ON)]


def _characterise(cells: CellSwitcher, chip: list[tuple[int, int]]) -> None:
    """Read every cell of `chip`; switch off those that read on (the ones that stay on are
    stuck-on); cells read and not found defective are healthy as far as examined, cells that
    could not be read are unresponsive."""
    cells.read(chip)
    state = cells.is_on(chip)
    cells.switch([cell for cell, on in zip(chip, state, strict=True) if on], False)
    for cell, on in zip(chip, state, strict=True):
        if on is None:
            cells.defects[cell] = UNRESPONSIVE
    cells.mark_healthy(chip)


def _known_codes(defects: np.ndarray) -> np.ndarray:
    """Defect codes for `avoid_defects`: cells never examined count as unresponsive, so no line
    is moved onto cells nothing is known of."""
    return np.where(np.isnan(defects), UNRESPONSIVE, defects).astype(np.int8)


def _wanted(placement: Placement, levels, previous: Placement | None = None) -> dict:
    """Cell -> on (True) or off for the tiles of `placement` holding `levels`; the cells of
    `previous` that `placement` no longer uses are wanted off."""
    targets = cell_targets(placement, levels)
    wanted = {}
    if previous is not None:
        for tile in previous.tiles:
            for r in tile.rows:
                for c in tile.cols:
                    if targets[r, c] == UNUSED:
                        wanted[r, c] = False
    for r, c in np.argwhere(targets != UNUSED):
        wanted[int(r), int(c)] = bool(targets[r, c] == ON)
    return wanted


def _place_and_program(cells: CellSwitcher, first: Placement, levels, rounds: int
                       ) -> tuple[Placement, list[dict]]:
    """Place (defect-aware for `rounds` rounds) and program; each round's moves and defect
    counts. Programming a round finds the stuck-off cells among those switched on, which the
    next round's placement takes into account."""
    placement, history = first, []
    for k in range(max(rounds, 1)):
        before = placement
        if rounds:
            placement, report = avoid_defects(placement, _known_codes(cells.defects))
            history.append(report.to_dict())
            history[-1].pop("unavoidable")
        if k and placement == before:
            break
        wanted = _wanted(placement, levels, before if k else None)
        cells.bring_to(wanted, read_first=False)
        cells.mark_healthy(wanted)
    return placement, history


def _placement_map(placement: Placement) -> np.ndarray:
    """k + 1 on the cells of tile k, NaN elsewhere."""
    out = np.full((placement.array_rows, placement.array_cols), math.nan)
    for k, tile in enumerate(placement.tiles):
        out[np.ix_(tile.rows, tile.cols)] = k + 1
    return out


def _in_tiles(placement: Placement, values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(_placement_map(placement)), values, math.nan)


def _products(bench, placement: Placement, levels: ConductanceLevels, v_read: float,
              scheme: str, current_limit: float) -> BenchForward:
    """The forward pass measured on the chip (products corrected by the bench when it has a
    calibration of the chip attached; module docstring)."""
    return BenchForward(bench, placement, levels, v_read, scheme=scheme,
                        current_limit=current_limit)


def _awareness(placement: Placement, defects: np.ndarray, synapse: float,
               neuron: float) -> DefectAwareness | None:
    """An 2022's groups from the measured defect map (None when both fractions are 0)."""
    if not (synapse or neuron):
        return None
    neurons = [tile.neurons for tile in placement.tiles]
    severe = [round(synapse * n) for n in neurons]
    moderate = [min(round(neuron * n), n - s) for n, s in zip(neurons, severe, strict=True)]
    codes = np.where(np.isnan(defects), HEALTHY, defects).astype(np.int8)
    return DefectAwareness.from_map(placement, codes, severe, moderate)


def _chip_loop(trainer: ChipTrainer, phase: str, run, ledger: Ledger, progress, x_test,
               y_test) -> dict:
    """Epochs of `trainer` from its checkpoint ``<phase>`` (its state after each epoch),
    then the test accuracy on the chip (checkpoint ``<phase>/accuracy``)."""
    saved = run.checkpoints().get(phase)
    if saved is not None:
        trainer.load_state(saved["state"])
    progress.advance(len(trainer.records))
    while len(trainer.records) < trainer.config.epochs:
        progress.describe(f"train: {phase} epoch {len(trainer.records) + 1} of "
                          f"{trainer.config.epochs}")
        with ledger.phase_of(phase):
            trainer.run_epoch()
        run.checkpoint(phase, {"state": trainer.state()})
        run.checkpoint("ledger", ledger.state())
        progress.advance()
    key = f"{phase}/accuracy"
    if key not in run.checkpoints():
        progress.describe(f"train: {phase} test accuracy on the chip")
        with ledger.phase_of(f"{phase}-test"):
            run.checkpoint(key, trainer.net.accuracy(x_test, y_test, trainer.chip.forward))
        run.checkpoint("ledger", ledger.state())
    return {"accuracy": run.checkpoints()[key],
            "epochs": [asdict(record) for record in trainer.records]}


def _compare(cells, chip, net, placement, levels_ex_situ, x, y, config, run, ledger, progress,
             x_test, y_test) -> dict:
    """The chip back at its ex-situ levels (once), then chip-in-the-loop training that
    reprograms every changed weight."""
    if "baseline" not in run.checkpoints():
        progress.describe("train: the chip back to its ex-situ levels")
        with ledger.phase_of("restore-baseline"):
            cells.bring_to(_wanted(placement, levels_ex_situ))
        run.checkpoint("ledger", ledger.state())
    progress.advance()
    return _chip_loop(ChipTrainer(chip, net, x, y, config, levels_ex_situ), "baseline", run,
                      ledger, progress, x_test, y_test)


def _comparison(ledger: Ledger, efficient: dict, baseline: dict) -> dict:
    """Pulses and accuracy of the efficient updates against reprogramming every change."""
    pulses = {phase: ledger.total([phase]).pulses for phase in LOOP_PHASES}
    return {
        "pulses_efficient": pulses["loop"],
        "pulses_every_change": pulses["baseline"],
        "pulse_saving": 1.0 - pulses["loop"] / pulses["baseline"] if pulses["baseline"]
        else None,
        "energy_j_efficient": ledger.total(["loop"]).energy_j,
        "energy_j_every_change": ledger.total(["baseline"]).energy_j,
        "accuracy_efficient": efficient["accuracy"],
        "accuracy_every_change": baseline["accuracy"],
        "accuracy_loss_points": 100.0 * (baseline["accuracy"] - efficient["accuracy"]),
        "epochs_every_change": baseline["epochs"],
    }


def _defect_counts(defects: np.ndarray, placement: Placement) -> dict:
    """Cells of each defect kind found on the chip and inside the tiles."""
    names = ("healthy", "stuck_on", "stuck_off", "unresponsive")
    inside = np.isfinite(_placement_map(placement))
    counts = {"examined": int(np.isfinite(defects).sum())}
    for code, name in enumerate(names):
        counts[name] = int(np.sum(defects == code))
        counts[f"{name}_in_tiles"] = int(np.sum((defects == code) & inside))
    return counts
