"""Acceptance of ``write-verify`` on the embedded ``analog`` bench (issue 6, protocol 4).

Plays the registered protocol exactly as ``xbarlab run write-verify --bench analog`` does, on the
32 x 32 array board bench of the ``analog`` preset (cited noise, nonlinearity and relaxation
untouched), comparing the algorithms on the same seeded cells and targets. Then, like a test,
it looks inside the virtual bench for the truth: the hidden defect map (were the stuck cells all
found, and only they?), the true conductances at the end (after relaxation): the fraction of
cells truly within the tolerance beside the protocol's own success rate, and the energy every
source delivered during each algorithm's programming pulses (the World's physics) beside the
protocol's (what the array board measured).

``ispva`` is the project's ISPVA-style algorithm, not Milo et al. 2021's regime: a two-sided
window around the target with a guard band and confirming reads, RESET ramps and step halving
on overshoot, on a passive array (Milo stop one-sided at the target, on 1T1R cells); its
success rate is printed beside its pulses.

Usage::

    python benchmarks/bench_write_verify.py [--algorithms adaptive,ispva] [--rows 32 --cols 32]
        [--tolerance 0.01] [--relax-rounds 0] [--settle 0]
        [--confirm-reads 0] [--store DIR]

Prints the protocol's metrics as JSON and a summary per algorithm.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import pyvisa
from physics_clock import PhysicsClock
from xbarlab.protocols.disturb import describe_disturb
from xbarlab.protocols.programming import hold
from xbarlab.sim_instruments.truth import DeliveredEnergy

from xbarlab.bench import open_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore


class TruthAtHandover(Progress):
    """A silent progress that keeps the World's true conductances as each algorithm hands the
    bench to the next (before the next one sends anything: `start` precedes every phase), so
    the truth check sees every algorithm's own cells. The handover comes after the previous
    algorithm's final re-read, itself many relaxation times after its last pulse."""

    def __init__(self, world, energy: DeliveredEnergy):
        super().__init__(show=False)
        self.world, self.current, self.truth, self.energy = world, None, {}, energy

    def start(self, total: int, description: str) -> None:
        self.energy.phase(description.split(" (")[0])
        name = description.split(":")[0].split("/")[0].removeprefix("final-")
        if self.current is not None and name != self.current:
            self.truth[self.current] = self.world.conductance().copy()
        self.current = name
        super().start(total, description)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="analog")
    parser.add_argument("--algorithms", default="adaptive,ispva")
    parser.add_argument("--rows", type=int, default=0, help="0: every row")
    parser.add_argument("--cols", type=int, default=0, help="0: every column")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="any other write-verify parameter (repeatable), e.g. "
                             "relax_rounds=0, settle=0, guard=2")
    parser.add_argument("--truth-wait", type=float, default=1.0,
                        help="further wait (s, on the instruments' clock) before the last "
                             "algorithm's truth check")
    parser.add_argument("--store", default=None, help="run store (default: a temporary one)")
    args = parser.parse_args()
    params = {"algorithm": args.algorithms, "rows": args.rows, "cols": args.cols,
              "tolerance": args.tolerance}
    for item in args.set:
        name, _, value = item.partition("=")
        params[name] = json.loads(value)
    with tempfile.TemporaryDirectory() as scratch, RunStore(args.store or scratch) as store:
        started = time.perf_counter()
        with open_bench(args.bench) as bench:
            world = pyvisa.ResourceManager(f"{args.bench}@xbarsim").visalib.world
            defects = world.array.defect_map().copy()
            run = store.start_run("write-verify", params, bench.spec.text,
                                  shape=(bench.rows, bench.cols))
            delivered = DeliveredEnergy(world)
            truth_keeper = TruthAtHandover(world, delivered)
            with run, truth_keeper as progress, delivered.count(bench), \
                    PhysicsClock() as clock:
                metrics = get_protocol("write-verify")(bench, run, progress, **params)
            seconds = time.perf_counter() - started
            instrument_clock = world.clock
            hold(bench, args.truth_wait)  # a further wait: the truth after relaxation
            truth = dict(truth_keeper.truth)
            truth[truth_keeper.current] = world.conductance().copy()
            targets = run.latest_map("targets")
    print(json.dumps(metrics, default=float))
    rows, cols = args.rows or bench.rows, args.cols or bench.cols
    hidden = {(int(r), int(c)) for r, c in np.argwhere(defects[:rows, :cols] != 0)}
    per_algorithm = metrics.get("algorithms", {metrics["algorithm"]: metrics})
    print(f"\n{metrics['cells']} cells, {len(hidden)} defective in the hidden map; "
          f"{seconds:.0f} s wall clock, {instrument_clock:.0f} s on the instruments' clock")
    print(f"protocol: {clock.report()}")
    print(describe_disturb(metrics))
    for name, m in per_algorithm.items():
        found = {tuple(cell) for cell in m["stuck_cells"]}
        if name == "ispva":
            print(f"{name:>12}  (ISPVA-style: two-sided window, guard band, step halving, "
                  "passive array; not Milo 2021's one-sided regime)")
        print(f"{name:>12}: success_rate {m['success_rate']:.4f}  mean_pulses "
              f"{m['mean_pulses']:.2f}  p95_pulses {m['p95_pulses']:.1f}  energy_j "
              f"{m['energy_j']:.3e}  max_rel_error_success {m['max_rel_error_success']:.4f}")
        print(f"{'':>12}  stuck found {len(found)}: {len(found & hidden)} of {len(hidden)} "
              f"defects, {len(found - hidden)} healthy cells flagged; re-programmed per "
              f"re-check round {m['reprogrammed']}; failed {len(m['failed_cells'])}")
        print(f"{'':>12}  final re-read within tolerance {m['reread_within_tolerance']:.3f} "
              f"of successful cells, median |error| {m['reread_rel_error_p50']:.3%}")
        # truth: the successful cells' true conductance (World), at least 10 relaxation times
        # after the algorithm's last pulse
        failed = {(r, c) for r, c, _ in m["failed_cells"]}
        success = np.zeros((rows, cols), bool)
        for r, c in np.ndindex(rows, cols):
            success[r, c] = (r, c) not in found and (r, c) not in failed
        error = (truth[name][:rows, :cols] - targets[:rows, :cols]) / targets[:rows, :cols]
        print(f"{'':>12}  truth: successful cells' true conductance within tolerance "
              f"{np.mean(np.abs(error[success]) <= args.tolerance):.3f}; error median "
              f"{np.median(error[success]):+.3%}, |error| p95 "
              f"{np.percentile(np.abs(error[success]), 95):.3%}, max "
              f"{np.abs(error[success]).max():.3%}")
        truly_healthy = np.ones((rows, cols), bool)
        for r, c in hidden:
            truly_healthy[r, c] = False
        print(f"{'':>12}  truth: healthy cells (hidden map) truly within tolerance "
              f"{np.mean(np.abs(error[truly_healthy]) <= args.tolerance):.3f} (protocol's "
              f"success_rate {m['success_rate']:.3f})")
        spent = sum(joules for phase, joules in delivered.by_phase.items()
                    if phase.split(":")[0].split("/")[0] == name
                    and not phase.endswith("preparing"))
        print(f"{'':>12}  energy: protocol {m['energy_j']:.4g} J "
              f"({'measured' if m.get('energy_measured') else 'ESTIMATED'}), World's "
              f"sources during the programming pulses {spent:.4g} J")


if __name__ == "__main__":
    main()
