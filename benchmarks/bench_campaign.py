"""Campaign scale-out: one 16-task campaign on a LocalCluster of 1, then 2 single-threaded
workers, in one process; prints wall times and the speed-up (target: >= 1.7x with 2 workers).

    python benchmarks/bench_campaign.py [--tasks 16] [--reads 40]

Each task is a read-map of a 16 x 16 block of the embedded `board` bench, `reads` buffered
readings a cell, on its own seeded virtual chip (the campaign's seeds). The same campaign file
runs twice into two fresh stores; the cluster start-up is inside the timing (it is part of what a
user waits for). The machine load is printed: the figure means something on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from xbarlab.campaign import parse_campaign, run_campaign

TEMPLATE = """
[campaign]
name = "scale-out"
protocol = "read-map"
bench = "board"
seeds = {tasks}

[parameters]
cells = "0-15,0-15"
reads = {reads}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--reads", type=int, default=40)
    args = parser.parse_args()
    campaign = parse_campaign(TEMPLATE.format(tasks=args.tasks, reads=args.reads))
    times = {}
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 2):
            started = time.perf_counter()
            result = run_campaign(campaign, Path(scratch) / f"store-{workers}", workers=workers,
                                  progress=False)
            times[workers] = time.perf_counter() - started
            assert result.completed == args.tasks, result
            print(f"{workers} worker(s): {args.tasks} tasks in {times[workers]:.1f} s "
                  f"(load {os.getloadavg()[0]:.1f})")
    ratio = times[1] / times[2]
    print(f"speed-up with 2 workers: {ratio:.2f}x (target >= 1.7x: "
          f"{'met' if ratio >= 1.7 else 'NOT met'})")


if __name__ == "__main__":
    main()
