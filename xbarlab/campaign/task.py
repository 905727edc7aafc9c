"""One campaign task, run where it is sent (a Dask worker, or the client for a real bench).

The task's bench text goes to a file of its own (a new file is a new virtual chip, seeded by
its ``[sim]``), the protocol runs through the engine into a store in memory, and the whole run
comes back as a `RunRecord` for the client to write: workers never touch the run store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from xbarlab.campaign.spec import Task
from xbarlab.engine import RunFailed, run_protocol
from xbarlab.store import RunStore
from xbarlab.store.transfer import RunRecord


def run_task(task: Task) -> RunRecord:
    """Run `task` and return every row of its run (completed, or failed with its traceback).

    A task stopped by a signal re-raises (its run is then aborted and not returned), and so does
    an error before the run starts (the bench cannot be opened)."""
    store = RunStore.in_memory()
    with tempfile.TemporaryDirectory(prefix="xbarlab-task-") as folder:
        path = Path(folder) / f"{task.bench_name}.toml"
        path.write_text(task.bench_text, encoding="utf-8")
        try:
            result = run_protocol(task.protocol, str(path), store=store, progress=False,
                                  **task.params)
        except RunFailed as failed:
            result = failed.result
    record = store.open_run(result.run_id).record()
    store.close()
    return record
