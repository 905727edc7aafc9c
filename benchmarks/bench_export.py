"""Export of a long run: a generated run of 3 M points to HDF5, its time, peak memory and file
size, against reading the same points out of the store (the floor any export pays).

The run is what a long read map with a precision target stores: 32 x 32 cells, reads at 0.2 V
with noisy currents, and one SET pulse (no current, a pulse width) every 64 points. Targets
(issue 18): under 10 s and 300 MB, and a file at most twice the raw point data (the points'
values at the file's column types, uncompressed). The store reads through ADBC's SQLite driver
(`xbarlab.store.arrowread`); the same query through sqlite3's rows of Python objects is timed
beside it. Each measurement runs in a fresh process, so
its peak memory is its own; CPU seconds are given beside wall seconds, which a loaded machine
stretches. Usage: ``python benchmarks/bench_export.py [--points N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xbarlab.export import POINT_COLUMNS
from xbarlab.store import RunStore

BATCH = 50_000


def generate(store_dir: Path, count: int) -> int:
    """A run of `count` points in the store at `store_dir`; its id."""
    rng = np.random.default_rng(0)
    with RunStore(store_dir) as store:
        run = store.start_run("read-map", {"v_read": 0.2}, shape=(32, 32))
        start = run.info.started_at
        for first in range(0, count, BATCH):
            index = np.arange(first, min(first + BATCH, count))
            current = rng.normal(2e-6, 2e-8, index.size)
            run.record_points(
                {"row": int(k % 1024) // 32, "col": int(k % 32),
                 **({"operation": "set", "voltage": 1.3, "pulse_width": 1e-6} if k % 64 == 63
                    else {"operation": "read", "voltage": 0.2, "current": float(i)}),
                 "t": start + k * 1e-3}
                for k, i in zip(index.tolist(), current.tolist(), strict=True))
        run.record_map("conductance", rng.uniform(1e-6, 1e-4, (32, 32)), unit="S")
        run.finish()
        return run.run_id


MEASURE = """
import json, resource, sys, time
from xbarlab.store import RunStore
from xbarlab.export import export_hdf5
store, run_id, out, what = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with RunStore(store) as opened:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    if what == "export":
        export_hdf5(opened, run_id, out)
    elif what == "show":  # xbarlab show RUN: the summary a screen holds
        import contextlib, io
        from xbarlab.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            main(["show", str(run_id), "--store", store])
    elif what == "read":
        count = sum(len(chunk["seq"]) for chunk in opened.open_run(run_id).point_chunks())
    else:  # the same query through sqlite3's rows of Python objects (a store in memory's way)
        import itertools, numpy
        from xbarlab.store.run import _CHUNK_QUERY
        cursor = opened._connection.execute(
            _CHUNK_QUERY.format(run_id="?", start="?", every="?"), (run_id, 0, 1))
        while rows := cursor.fetchmany(1 << 16):
            numpy.fromiter(itertools.chain.from_iterable(rows), numpy.float64)
    seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime - cpu,
                  "peak_mb": usage.ru_maxrss / 1024}))
"""


def measure(store_dir: Path, run_id: int, out: Path, what: str) -> dict:
    reply = subprocess.run([sys.executable, "-c", MEASURE, str(store_dir), str(run_id),
                            str(out), what], capture_output=True, text=True)
    if reply.returncode:
        raise SystemExit(f"{what} failed:\n{reply.stderr}")
    return json.loads(reply.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=3_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        run_id = generate(folder / "store", args.points)
        print(f"generated {args.points} points in {time.perf_counter() - started:.1f} s")
        tuples = measure(folder / "store", run_id, folder / "unused.h5", "sqlite3")
        read = measure(folder / "store", run_id, folder / "unused.h5", "read")
        export = measure(folder / "store", run_id, folder / "run.h5", "export")
        show = measure(folder / "store", run_id, folder / "unused.h5", "show")
        size = (folder / "run.h5").stat().st_size
        raw = args.points * sum(np.dtype(kind).itemsize for kind, *_ in POINT_COLUMNS.values())
        print(f"the points' query through sqlite3 rows: {tuples['seconds']:.2f} s "
              f"({tuples['cpu']:.2f} s CPU), peak {tuples['peak_mb']:.0f} MB")
        print(f"read the points from the store (baseline): {read['seconds']:.2f} s "
              f"({read['cpu']:.2f} s CPU; {read['cpu'] / tuples['cpu']:.2f} x the sqlite3 rows' "
              f"CPU), peak {read['peak_mb']:.0f} MB")
        ratio = export["seconds"] / read["seconds"]
        print(f"export to HDF5: {export['seconds']:.2f} s ({export['cpu']:.2f} s CPU; "
              f"{ratio:.2f} x the read), peak {export['peak_mb']:.0f} MB")
        print(f"xbarlab show (the summary): {show['seconds']:.2f} s ({show['cpu']:.2f} s CPU), "
              f"peak {show['peak_mb']:.0f} MB")
        print(f"file {size / 1e6:.1f} MB = {size / raw:.2f} x the raw point data "
              f"({raw / 1e6:.1f} MB at the file's column types)")
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
