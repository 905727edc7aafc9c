"""Acceptance run of ``program-efficient`` (issue 6): C-F against F-F on the ``binary`` preset.

Issue 6 asks C-F to use at least 40 % less pulse energy than F-F with the same LRS error
distribution (re-read p95 within 10 % of F-F's). The run plays the registered protocol on a
virtual array board exactly as ``xbarlab run program-efficient`` would, with a fresh run store,
and prints the metrics as JSON and the acceptance checks.

The saving depends on F-F's baseline, so both configurations run, each on a fresh copy of the
same chip: ``per-cell`` (the paper's per-cell incremental program-verify, the protocol's
default) and ``shared`` (``shared_amplitudes=true``: one amplitude memory for the chip, as
write-verify programs). Beside the protocol's energy (what the array board measured it
delivered during the pulses) the benchmark prints the truth: the energy the World's physics
says every source delivered during each scheme's programming pulses.

By default the bench is the embedded ``board`` bench shrunk to a ``--size`` x ``--size`` board
and chip (same instrument, wiring rule, preset, parasitics and limits; only smaller, so the
circuit solve behind every pulse is cheap); ``--bench board`` runs on the shipped 128 x 128
bench instead, ``--bench default`` on the default matrix bench. Pulses are the preset's 100 ns
reference width where the bench's sources can pulse it (else the protocol's default width, and
the benchmark says so), with V/2 half-select protection (``--set`` adds or overrides protocol
parameters, e.g. ``--set rows=16``). Each configuration ends with its wall-clock and CPU time
and the share of both spent in the physics kernels (`physics_clock.PhysicsClock`).

Usage: ``python benchmarks/bench_program_efficient.py [--size 32] [--seed 128]
[--configs per-cell,shared] [--bench NAME_OR_PATH] [--set key=value ...] [--store DIR]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyvisa
from physics_clock import PhysicsClock
from xbarlab.protocols.disturb import describe_disturb
from xbarlab.sim_instruments.truth import DeliveredEnergy

from xbarlab.bench import open_bench
from xbarlab.bench.opening import check_pulse_width
from xbarlab.benches import board_of_size
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

BOARD_DEFAULTS = {"width": 1e-7}
"""The binary preset's reference pulse width, asked of benches whose sources can pulse it (the
array board can; a 2636B's shortest pulse is 100 µs, so ``--bench default`` keeps the
protocol's own default width)."""


CONFIGS = {"per-cell": {"shared_amplitudes": False}, "shared": {"shared_amplitudes": True}}
"""F-F's two baselines: amplitudes learned per cell, or shared across the chip."""


def small_board(directory: Path, size: int, seed: int, name: str = "") -> Path:
    """The embedded board bench shrunk to a size x size board and chip, seeded."""
    path = directory / f"board-{size}x{size}-seed{seed}{name}.toml"
    path.write_text(board_of_size(size, size, seed=seed))
    return path


def bench_defaults(spec) -> dict:
    """`BOARD_DEFAULTS` where the bench's sources can pulse them; else nothing (the protocol's
    defaults), saying why."""
    try:
        check_pulse_width(BOARD_DEFAULTS["width"], spec)
    except ValueError as cannot:
        print(f"width {BOARD_DEFAULTS['width']:g} s not asked: {cannot}; the protocol's "
              "default width instead")
        return {}
    return dict(BOARD_DEFAULTS)


def run_config(bench_path: str, params: dict, store: Path
               ) -> tuple[dict, DeliveredEnergy, float, PhysicsClock]:
    """One program-efficient run on a fresh opening of `bench_path`: its metrics, the World's
    delivered energy per phase, the wall-clock seconds and the time in the physics."""
    protocol = get_protocol("program-efficient")
    with open_bench(bench_path) as bench, RunStore(store) as runs:
        origin = bench.spec.origin.removeprefix("embedded:")
        truth = DeliveredEnergy(pyvisa.ResourceManager(f"{origin}@xbarsim").visalib.world)
        params = {**bench_defaults(bench.spec), "rows": bench.rows, "cols": bench.cols,
                  **params}
        run = runs.start_run("program-efficient", params, bench.spec.text,
                             shape=(bench.rows, bench.cols))
        started = time.perf_counter()
        with run, truth.count(bench), PhysicsClock() as clock:
            metrics = protocol(bench, run, truth.progress(), **params)
        return metrics, truth, time.perf_counter() - started, clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="rows = cols of the shrunk board")
    parser.add_argument("--seed", type=int, default=128, help="seed of the virtual chip")
    parser.add_argument("--configs", default="per-cell,shared",
                        help=f"F-F baselines to run, of {', '.join(CONFIGS)}")
    parser.add_argument("--bench", default=None, help="a bench name or file instead")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--store", default=None,
                        help="run store directory to keep (runs and PNGs); default: a scratch one")
    args = parser.parse_args()
    extra = get_protocol("program-efficient").parse_settings(args.set)
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.configs.split(","):
            bench_path = args.bench or str(small_board(Path(scratch), args.size, args.seed,
                                                       f"-{name}"))
            params = {**CONFIGS[name], **extra}
            metrics, truth, seconds, clock = run_config(bench_path, params,
                                                        Path(args.store or scratch) / "store")
            print_config(name, args.bench or f"board {args.size}x{args.size}", params,
                         metrics, truth, seconds)
            print(f"[{name}] protocol: {clock.report()}\n")


def print_config(name: str, bench: str, params: dict, metrics: dict, truth: DeliveredEnergy,
                 seconds: float) -> None:
    """The metrics as JSON, then the acceptance checks and the truth beside them."""
    ff, cf = metrics["ff"], metrics["cf"]
    print(json.dumps({"config": name, "bench": bench, "params": params, "metrics": metrics,
                      "wall_s": seconds}, indent=1, default=str))
    ff_true, cf_true = truth.by_phase["ff: programming"], truth.by_phase["cf: programming"]
    measured = ff["energy_measured"] and cf["energy_measured"]
    print(f"\n[{name}] {metrics['cells']} cells, {metrics['lrs_cells']} LRS targets, "
          f"{metrics['cells_compared']} compared (no phase found them stuck)")
    print(f"[{name}] energy ({'measured by the board' if measured else 'ESTIMATED'}): F-F "
          f"{ff['energy_j']:.4g} J / {ff['pulses']} pulses, C-F {cf['energy_j']:.4g} J / "
          f"{cf['pulses']} pulses, saving {metrics['energy_saving']:.1%} (>= 40 %: "
          f"{metrics['energy_saving'] >= 0.4})")
    print(f"[{name}] truth (World, every source during the programming pulses): F-F "
          f"{ff_true:.4g} J, C-F {cf_true:.4g} J, saving {1 - cf_true / ff_true:.1%}")
    ratio = metrics["lrs_p95_ratio"]
    print(f"[{name}] LRS re-read p95: F-F {ff['lrs_rel_error_p95']:.4f}, C-F "
          f"{cf['lrs_rel_error_p95']:.4f}, ratio {ratio:.3f} (within 10 %: "
          f"{abs(ratio - 1) <= 0.1})")
    update = metrics["update"]
    print(f"[{name}] thresholded update: {update['cells_skipped']} of {metrics['cells']} cells "
          f"skipped, energy saving {update['energy_saving']:.1%}")
    print(f"[{name}] {describe_disturb(metrics)}\n")


if __name__ == "__main__":
    main()
