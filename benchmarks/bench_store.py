"""Run-store write speed: points per second with one commit per point, against a plain list.

The store must keep up with 10^4 points/s while committing every point (WAL journal,
synchronous=NORMAL: durable against a process crash, not against a power cut). The baseline
appends the same points to an in-memory list in the same process, the cost of keeping nothing
safe. Usage: ``python benchmarks/bench_store.py [--points N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from xbarlab.store import RunStore


def make_points(count: int) -> list[dict]:
    """Points as a read map would record them: 64 x 64 cells, a current per read."""
    return [
        {
            "row": index % 64,
            "col": (index // 64) % 64,
            "operation": "read",
            "voltage": 0.2,
            "current": 1e-6 + index * 1e-12,
            "pulse_width": None,
            "compliance": False,
            "t": index * 1e-3,
        }
        for index in range(count)
    ]


def points_per_second(record, points: list[dict]) -> float:
    start = time.perf_counter()
    for point in points:
        record(**point)
    return len(points) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20000, help="points per measurement")
    count = parser.parse_args().points
    points = make_points(count)

    baseline: list[dict] = []
    list_rate = points_per_second(lambda **point: baseline.append(point), points)

    with tempfile.TemporaryDirectory() as data_dir, RunStore(data_dir) as store:
        run = store.start_run(protocol="bench", shape=(64, 64))
        store_rate = points_per_second(run.record_point, points)
        run.finish()
        assert store.run_info(run.run_id).n_points == count
        batched = store.start_run(protocol="bench", shape=(64, 64))
        start = time.perf_counter()
        for first in range(0, count, 64):
            batched.record_points(points[first:first + 64])
        batch_rate = count / (time.perf_counter() - start)
        batched.finish()
        start = time.perf_counter()
        read_back = run.points()
        read_rate = len(read_back) / (time.perf_counter() - start)

    print(f"points: {count}")
    print(f"in-memory list append        : {list_rate:12,.0f} points/s")
    print(f"store, one commit per point  : {store_rate:12,.0f} points/s "
          f"({1e6 / store_rate:.1f} us/point, {list_rate / store_rate:.0f}x the list)")
    print(f"store, batches of 64 points  : {batch_rate:12,.0f} points/s")
    print(f"store, read back             : {read_rate:12,.0f} points/s")
    verdict = "meets" if store_rate >= 1e4 else "MISSES"
    print(f"target 10,000 points/s with per-point commit: {verdict}")


if __name__ == "__main__":
    main()
