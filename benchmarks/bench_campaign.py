"""Campaign scale-out: 16-task campaigns on a LocalCluster of 1, then 2 single-threaded
workers, in one process; prints wall times and the speed-up (target: >= 1.7x with 2 workers).

    python benchmarks/bench_campaign.py [--tasks 16] [--only study|short]

Two campaigns, each on the embedded `board` bench, one seeded virtual chip a task:
- study: `mvm-error` (the matrix-vector product error of a chip against its measured map, on
  100 held-out inputs), a task of a few seconds, as the studies campaigns are for (a `train`
  task takes about a minute, a `write-verify` tens of seconds). The target applies to it.
- short: a `read-map` of a 16 x 16 block, 40 readings a cell, a task of about half a second:
  the cluster's fixed cost (its start, each worker's first import and numba initialisation,
  the results table and plots) is paid once in both runs, so short tasks show how large it is.

Each campaign runs twice into fresh stores; the cluster's start is inside the timing (it is
part of what a user waits for). The machine load is printed: the figure means something on a
quiet machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from xbarlab.campaign import parse_campaign, run_campaign

CAMPAIGNS = {
    "study": """
[campaign]
name = "mvm-error-study"
protocol = "mvm-error"
bench = "board"
seeds = {tasks}
""",
    "short": """
[campaign]
name = "short-read-maps"
protocol = "read-map"
bench = "board"
seeds = {tasks}

[parameters]
cells = "0-15,0-15"
reads = 40
""",
}
TARGET = 1.7


def speed_up(name: str, tasks: int, scratch: Path) -> float:
    """Run campaign `name` of `tasks` tasks on 1 and on 2 workers; print and return the ratio."""
    campaign = parse_campaign(CAMPAIGNS[name].format(tasks=tasks))
    times = {}
    for workers in (1, 2):
        started = time.perf_counter()
        result = run_campaign(campaign, scratch / f"{name}-{workers}", workers=workers,
                              progress=False)
        times[workers] = time.perf_counter() - started
        if result.completed != tasks:
            raise SystemExit(f"{name}: {result.completed} of {tasks} tasks completed")
        print(f"{name}: {workers} worker(s), {tasks} tasks in {times[workers]:.1f} s "
              f"(load {os.getloadavg()[0]:.1f})")
    return times[1] / times[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--only", choices=sorted(CAMPAIGNS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for name in [args.only] if args.only else list(CAMPAIGNS):
            ratio = speed_up(name, args.tasks, Path(scratch))
            verdict = (f"target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'}"
                       if name == "study" else "fixed cost shown, no target")
            print(f"{name}: speed-up with 2 workers {ratio:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
