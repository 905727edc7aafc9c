"""The README's first command, timed: ``xbarlab run pipeline`` on the embedded `board` bench,
in a fresh store, as a separate process (numba's cache and the imports are part of what a user
waits for). Prints the pipeline's own table (pulses, energy, bench and wall time per stage), the
whole command's wall time against the 5-minute target, and chip-in-the-loop accuracy against
the software accuracy (target: at most 2 points below).

    python benchmarks/bench_pipeline.py [--set NAME=VALUE ...]

The machine load is printed beside the times: they mean something on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

TARGET_S = 300.0
ACCURACY_MARGIN = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a pipeline parameter (repeatable)")
    args = parser.parse_args()
    settings = [part for setting in args.set for part in ("--set", setting)]
    with tempfile.TemporaryDirectory() as store:
        started, cpu_before = time.perf_counter(), _children_cpu()
        done = subprocess.run(
            [sys.executable, "-m", "xbarlab", "run", "pipeline", "--json", "--store", store,
             *settings], capture_output=True, text=True, check=False)
        wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode != 0:
        sys.exit(f"xbarlab run pipeline failed ({done.returncode}):\n{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    print("\n".join(lines[:-1]))
    metrics = json.loads(lines[-1])["metrics"]
    print(f"\nxbarlab run pipeline: {wall:.1f} s wall (target < {TARGET_S:.0f} s: "
          f"{'met' if wall < TARGET_S else 'NOT met'}; load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores), {cpu:.1f} s of CPU (what the wall time is on an idle "
          "machine, give or take its use of the second core)")
    software, loop = metrics["accuracy_software"], metrics["accuracy_chip_in_loop"]
    if software is not None and loop is not None:
        gap = software - loop
        print(f"chip in the loop {100 * loop:.1f} % vs software {100 * software:.1f} %: "
              f"{100 * gap:+.1f} points below (target <= {100 * ACCURACY_MARGIN:.0f}: "
              f"{'met' if gap <= ACCURACY_MARGIN else 'NOT met'})")


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
