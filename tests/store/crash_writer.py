"""Writer process for the crash and concurrency tests.

Usage: ``python crash_writer.py DATA_DIR N_POINTS [PAUSE_AT]`` (N_POINTS = 0: write until
killed; with PAUSE_AT, wait for a line on stdin before recording point PAUSE_AT).
Starts one run, records points whose values follow from their sequence number (``expected``),
and prints each sequence number to stdout only after its commit returned, so the parent knows
exactly which points the store promised to keep.
"""

import sys

from xbarlab.store import RunStore

ROWS, COLS = 8, 8


def expected(seq: int) -> dict:
    """The point the writer records as number ``seq``."""
    return {
        "row": seq % ROWS,
        "col": (seq // ROWS) % COLS,
        "operation": "read" if seq % 3 else "pulse",
        "voltage": 0.2 if seq % 3 else -1.5,
        "current": (-1) ** seq * (seq + 1) * 1e-12,
        "pulse_width": None if seq % 3 else 1e-6,
        "compliance": seq % 7 == 0,
        "t": seq * 1e-3,
    }


def main(data_dir: str, n_points: int, pause_at: int) -> None:
    store = RunStore(data_dir)
    run = store.start_run(protocol="crash-test", seed=1, shape=(ROWS, COLS))
    print(f"run {run.run_id}", flush=True)
    seq = 0
    while n_points == 0 or seq < n_points:
        if seq == pause_at:
            sys.stdin.readline()
        assert run.record_point(**expected(seq)) == seq
        print(seq, flush=True)
        seq += 1
    run.finish()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else -1)
