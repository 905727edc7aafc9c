"""Quantized networks and chip-in-the-loop training on the physics model (issue 13, xbarlab.nn).

What it measures (figures printed, and one JSON line at the end):

1. Software test accuracy of a 64-54-10 MLP on scikit-learn's 8x8 digits (seeded stratified
   split, 1438 / 359), float, binary and ternary weights (anchor: Li et al., Nat. Commun. 9,
   2385 (2018): ~94 % ideal on 8x8 digits).
2. For stuck-defect rates 0, 5, 10 and 20 % (stuck-on : stuck-off as the binary preset's
   1.75 : 9.04): the binary net on a 128 x 128 `CrossbarArray` (binary preset: 10 kOhm / 1 MOhm,
   10 % device spread, 1 % read noise, relaxation), wire 1 Ohm per segment and 2 Ohm at every
   line end (the embedded ``board`` bench's parasitics), placed block-diagonally, programmed
   from an erased array by one SET pulse (+1.6 V, 100 ns, V/2 scheme) per on cell, levels
   g_on / g_off measured from a ground-scheme read map of the tiles, then
   * ex situ: test accuracy measured on the chip (one matrix-vector product per input vector
     and layer, every parasitic in it); also with defect-aware placement (`avoid_defects`,
     the array's defect map standing in for a measured one);
   * chip in the loop (`train_on_chip`, every significant-or-not change reprogrammed, one
     pulse per changed cell): test accuracy on the chip, pulses, energy.
3. At 10 %: thresholded updates, thresholded + partially gated updates and the group-based
   synapse/neuron-aware split, each from the same programmed chip, against reprogramming
   every changed weight: pulses saved and accuracy lost.

The chip is `xbarlab.nn.bench_chip.BenchChip` over tests/nn/model_bench.py (`ModelBench`, the
physics model answering as a bench: the same class the tests use). A benchmark may look inside
the physics (the defect map for remapping); the library never does. Each accuracy is one
measured pass over the 359 test images (1 image = 0.28 points; read noise differs per pass).

Run: ``python benchmarks/bench_nn_chip_model.py`` (about 15 minutes on two idle cores; the
physics solve of every vector dominates) or with ``--rates 10 --epochs 3`` for a quick look.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "nn"))
from model_bench import ModelBench  # noqa: E402 (the tests' model bench, one implementation)

from xbarlab.nn.bench_chip import BenchChip  # noqa: E402
from xbarlab.nn.chip_loop import ChipLoopConfig, DefectAwareness, train_on_chip  # noqa: E402
from xbarlab.nn.data import load_digits_split  # noqa: E402
from xbarlab.nn.defects import avoid_defects  # noqa: E402
from xbarlab.nn.inference import BenchForward  # noqa: E402
from xbarlab.nn.mapping import (  # noqa: E402
    UNUSED,
    ConductanceLevels,
    cell_targets,
    measured_levels,
)
from xbarlab.nn.placement import place_layers  # noqa: E402
from xbarlab.nn.quantize import Quantizer  # noqa: E402
from xbarlab.nn.training import train_software  # noqa: E402
from xbarlab.nn.updates import plan_writes  # noqa: E402
from xbarlab.physics import BINARY, CrossbarArray, with_stuck_fraction  # noqa: E402

SIZES = (64, 54, 10)
SIZE = 128
V_READ = 0.2
R_WIRE, R_PATH = 1.0, 2.0
V_PULSE = 1.6
"""SET/RESET amplitude (V), 100 ns: above the preset's 1.3 V reference so that the line drops
of a 128 x 128 array (V/2 scheme, many cells on) do not leave cells half switched; the
half-selected cells see at most 0.8 V, below the 0.9 V thresholds."""
READ_TIME = 1e-3
"""Seconds each measurement lets pass on the array (programmed cells relax meanwhile)."""
NOMINAL = ConductanceLevels(BINARY.g_max, BINARY.g_min)
"""Only to program (SET/RESET decisions do not use the levels); decoding uses measured ones."""


def programmed_chip(net, rate: float, seed: int, remap: bool):
    """(chip, bench, placement, measured levels, programming pulses) for `net` on a fresh
    array."""
    array = CrossbarArray(SIZE, SIZE, with_stuck_fraction(BINARY, rate), seed=seed,
                          r_wire_row=R_WIRE, r_wire_col=R_WIRE)
    bench = ModelBench(array, r_path=R_PATH, read_time=READ_TIME)
    placement = place_layers(SIZES, SIZE, SIZE)
    if remap:
        placement, _ = avoid_defects(placement, array.defect_map())
    levels = [q[0] for q in net.quantized()]
    programmer = BenchChip(BenchForward(bench, placement, NOMINAL, V_READ),
                           bench.one_pulse_programmer(V_PULSE))
    for k, layer in enumerate(levels):
        programmer.apply(plan_writes(k, np.zeros_like(layer), layer))
    targets = cell_targets(placement, levels)
    measured = measured_levels(bench.read_map(V_READ, "ground", targets != UNUSED) / V_READ,
                               targets)
    chip = BenchChip(BenchForward(bench, placement, measured, V_READ),
                     bench.one_pulse_programmer(V_PULSE))
    return chip, bench, placement, measured, programmer.pulses


def chip_loop(net, split, chip, config, awareness=None) -> dict:
    start = time.perf_counter()
    result = train_on_chip(chip, net, split.x_train, split.y_train, config, awareness=awareness)
    accuracy = result.net.accuracy(split.x_test, split.y_test, chip.forward)
    return {"accuracy": accuracy, "pulses": result.pulses, "energy_j": result.energy,
            "pulses_per_epoch": [e.pulses for e in result.epochs],
            "seconds": time.perf_counter() - start}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0,5,10,20", help="stuck-defect rates in percent")
    parser.add_argument("--epochs", type=int, default=5, help="chip-in-the-loop epochs")
    parser.add_argument("--seed", type=int, default=1, help="array seed")
    parser.add_argument("--threshold", type=float, default=0.01,
                        help="significance threshold of the efficient runs (latent units)")
    parser.add_argument("--gate", type=float, default=0.75,
                        help="fraction of neurons retrained per epoch in the gated run")
    args = parser.parse_args()
    rates = [float(r) / 100 for r in args.rates.split(",")]
    begin = time.perf_counter()
    print(f"load before: {load()}, {os.cpu_count()} cores")

    split = load_digits_split()
    software = {}
    nets = {}
    for name in ("float", "binary", "ternary"):
        nets[name] = train_software(SIZES, Quantizer(name), split.x_train, split.y_train)
        software[name] = nets[name].accuracy(split.x_test, split.y_test)
        print(f"software {name:8s} test accuracy {100 * software[name]:6.2f} %")
    net = nets["binary"]
    baseline = ChipLoopConfig(epochs=args.epochs)
    summary: dict = {"accuracy_software": software, "accuracy_vs_defects": {}}
    benches = []
    at_10 = None
    for rate in rates:
        chip, bench, placement, levels, programming = programmed_chip(net, rate, args.seed,
                                                                      False)
        ex_situ = net.accuracy(split.x_test, split.y_test, chip.forward)
        remapped_chip, remapped_bench, *_ = programmed_chip(net, rate, args.seed, True)
        ex_situ_remapped = net.accuracy(split.x_test, split.y_test, remapped_chip.forward)
        benches += [bench, remapped_bench]
        snapshot = bench.array.snapshot()
        loop = chip_loop(net, split, chip, baseline)
        summary["accuracy_vs_defects"][f"{100 * rate:g}"] = {
            "ex_situ": ex_situ, "ex_situ_remapped": ex_situ_remapped,
            "chip_in_loop": loop["accuracy"], "pulses": loop["pulses"],
            "energy_j": loop["energy_j"], "programming_pulses": programming,
            "measured_levels_s": [levels.g_on, levels.g_off],
        }
        print(f"defects {100 * rate:4.0f} %: ex situ {100 * ex_situ:6.2f} % (remapped "
              f"{100 * ex_situ_remapped:6.2f} %), chip in the loop {100 * loop['accuracy']:6.2f}"
              f" %, {loop['pulses']} pulses {loop['pulses_per_epoch']}, "
              f"{loop['energy_j'] * 1e9:.2f} nJ ({loop['seconds']:.0f} s)")
        if abs(rate - 0.10) < 1e-9:
            at_10 = (snapshot, bench, placement, levels, loop)

    if at_10 is not None:
        snapshot_10, bench_10, placement_10, levels_10, every = at_10
        variants = {
            "thresholded": (dataclasses.replace(baseline, threshold=args.threshold), None),
            "thresholded_gated": (dataclasses.replace(baseline, threshold=args.threshold,
                                                      gate_fraction=args.gate), None),
            "group_based": (baseline, DefectAwareness.from_map(
                placement_10, bench_10.array.defect_map(), severe=(10, 2),
                moderate=(20, 4))),
        }
        summary["updates_at_10"] = {"every_change": every}
        print(f"at 10 %: every change {100 * every['accuracy']:.2f} %, {every['pulses']} pulses")
        for name, (config, awareness) in variants.items():
            bench_10.array.restore(snapshot_10)
            chip = BenchChip(BenchForward(bench_10, placement_10, levels_10, V_READ),
                             bench_10.one_pulse_programmer(V_PULSE))
            run = chip_loop(net, split, chip, config, awareness)
            run["saving"] = 1.0 - run["pulses"] / every["pulses"]
            run["loss_points"] = 100 * (every["accuracy"] - run["accuracy"])
            if awareness is not None:
                run["defect_map_bits"] = awareness.bits()
            summary["updates_at_10"][name] = run
            print(f"  {name:18s} {100 * run['accuracy']:6.2f} %, {run['pulses']:5d} pulses "
                  f"{run['pulses_per_epoch']} (saving {100 * run['saving']:5.1f} %, loss "
                  f"{run['loss_points']:+.2f} points)")

    total = time.perf_counter() - begin
    physics = sum(b.physics_seconds for b in benches)
    summary["seconds"] = {"total": total, "physics": physics}
    print(f"time {total:.0f} s, of which physics model {physics:.0f} s; load after: {load()}")
    checks = []
    by_rate = summary["accuracy_vs_defects"]
    if "0" in by_rate and len(by_rate) > 1:
        worst = by_rate[max(by_rate, key=float)]
        checks.append(("ex situ lower with the most defects than with none",
                       worst["ex_situ"] < by_rate["0"]["ex_situ"]))
    if "10" in by_rate:
        checks.append(("chip in the loop at 10 % >= software - 2 points",
                       by_rate["10"]["chip_in_loop"] >= software["binary"] - 0.02))
        for name in ("thresholded", "thresholded_gated"):
            run = summary["updates_at_10"][name]
            checks.append((f"{name}: >= 50 % fewer pulses at <= 0.5 point loss",
                           run["saving"] >= 0.5 and run["loss_points"] <= 0.5))
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
