"""Acceptance of ``write-verify`` on the embedded ``analog`` bench (issue 6, protocol 4).

Plays the registered protocol exactly as ``xbarlab run write-verify --bench analog`` does, on the
32 x 32 array board bench of the ``analog`` preset (cited noise, nonlinearity and relaxation
untouched), comparing the algorithms on the same seeded cells and targets. Then, like a test,
it looks inside the virtual bench for the truth: the hidden defect map (were the stuck cells all
found, and only they?) and the true conductances at the end (after relaxation).

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

from xbarlab.bench import open_bench
from xbarlab.bench.protocols import get_protocol
from xbarlab.progress import Progress
from xbarlab.store import RunStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="analog")
    parser.add_argument("--algorithms", default="adaptive,ispva")
    parser.add_argument("--rows", type=int, default=0, help="0: every row")
    parser.add_argument("--cols", type=int, default=0, help="0: every column")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--relax-rounds", type=int, default=0)
    parser.add_argument("--settle", type=float, default=0.0,
                        help="hold between a pulse and its verify (s): verify relaxed cells")
    parser.add_argument("--confirm-reads", type=int, default=0,
                        help="readings that confirm a cell inside the tolerance (0: as reads)")
    parser.add_argument("--store", default=None, help="run store (default: a temporary one)")
    args = parser.parse_args()
    params = {"algorithm": args.algorithms, "rows": args.rows, "cols": args.cols,
              "tolerance": args.tolerance, "relax_rounds": args.relax_rounds,
              "settle": args.settle, "confirm_reads": args.confirm_reads}
    with tempfile.TemporaryDirectory() as scratch, RunStore(args.store or scratch) as store:
        started = time.perf_counter()
        with open_bench(args.bench) as bench:
            world = pyvisa.ResourceManager(f"{args.bench}@xbarsim").visalib.world
            defects = world.array.defect_map().copy()
            run = store.start_run("write-verify", params, bench.spec.text,
                                  shape=(bench.rows, bench.cols))
            with run, Progress(show=False) as progress:
                metrics = get_protocol("write-verify")(bench, run, progress, **params)
            truth = world.conductance().copy()
            targets = run.latest_map("targets")
        seconds = time.perf_counter() - started
    print(json.dumps(metrics, default=float))
    rows, cols = bench.rows if not args.rows else args.rows, bench.cols if not args.cols \
        else args.cols
    hidden = {(int(r), int(c)) for r, c in np.argwhere(defects[:rows, :cols] != 0)}
    per_algorithm = metrics.get("algorithms", {metrics["algorithm"]: metrics})
    print(f"\n{metrics['cells']} cells, {len(hidden)} defective in the hidden map; "
          f"{seconds:.0f} s wall clock")
    for name, m in per_algorithm.items():
        found = {tuple(cell) for cell in m["stuck_cells"]}
        print(f"{name:>12}: success_rate {m['success_rate']:.4f}  mean_pulses "
              f"{m['mean_pulses']:.2f}  p95_pulses {m['p95_pulses']:.1f}  energy_j "
              f"{m['energy_j']:.3e}  max_rel_error_success {m['max_rel_error_success']:.4f}")
        print(f"{'':>12}  stuck found {len(found)}: {len(found & hidden)} of {len(hidden)} "
              f"defects, {len(found - hidden)} healthy cells flagged; final re-read within "
              f"tolerance {m['reread_within_tolerance']:.3f}, median |error| "
              f"{m['reread_rel_error_p50']:.3%}")
    healthy = (defects[:rows, :cols] == 0)
    error = np.abs(truth[:rows, :cols] - targets[:rows, :cols]) / targets[:rows, :cols]
    within = np.mean(error[healthy] <= args.tolerance)
    print(f"true conductance at the end (last algorithm, after relaxation): median |error| "
          f"{np.median(error[healthy]):.3%}, within tolerance {within:.3f}")


if __name__ == "__main__":
    main()
