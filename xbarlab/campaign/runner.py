"""Run a campaign on Dask: tasks on workers, results written by the client alone, resumable.

`run_campaign` makes the campaign a run of the store (protocol ``campaign``, its file as the
parameter) and each task a child run of it. Tasks on virtual benches go to a
`dask.distributed` cluster: a `LocalCluster` of single-threaded worker processes on this
machine by default, or an existing scheduler (``tcp://host:port``). Each task runs through the
engine into a store in memory on its worker and returns its whole run (`RunRecord`); the client
writes it, in one transaction with the task's key, as the result arrives. A worker that dies
mid-task loses nothing: the scheduler gives the task to another worker, and only a finished
result is ever written, once. Tasks on real benches run on the client, one at a time per
bench, under a cluster-wide lock named after the bench's instruments, so no two tasks (of this
campaign or another client's) ever drive the same physical bench at once.

A resumed campaign skips every task whose completed run is already in the store; failed tasks
run again. At the end the client writes the results table (CSV and HDF5, one row per task,
the latest run of each) and a plot per metric and swept value next to the store.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbarlab.campaign.results import (
    MOST_PLOTTED_METRICS,
    flat_metrics,
    metric_figure,
    numeric_metrics,
    result_columns,
    seed_statistics,
    write_csv,
    write_hdf5,
)
from xbarlab.campaign.spec import Campaign, Task
from xbarlab.campaign.task import run_task
from xbarlab.engine import bench_difference, json_ready
from xbarlab.figures import save
from xbarlab.params import ParameterError
from xbarlab.safety import signals_held

CAMPAIGN_PROTOCOL = "campaign"
TASK_CHECKPOINT = "campaign.task"
"""The checkpoint of a task's run that names its task (written with the run, atomically)."""
SINGLE_THREADED = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Environment of local worker processes: one thread each (numba's solver threads and the BLAS
included), so N workers use N cores and do not fight over them."""
AXES_CHECKPOINT = "campaign.axes"
"""The checkpoint of a task's run that holds its value of each swept axis."""


@dataclass
class CampaignResult:
    """What a campaign gave: its run id, status, counts and the files it wrote."""

    run_id: int
    status: str
    tasks: int
    completed: int
    failed: int
    skipped: int
    seconds: float
    files: list[str] = field(default_factory=list)
    statistics: list[dict[str, Any]] = field(default_factory=list)
    """Per combination of swept values, each reported metric over the seeds
    (`xbarlab.campaign.results.seed_statistics`)."""

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "metrics": {
            "tasks": self.tasks, "completed": self.completed, "failed": self.failed,
            "skipped": self.skipped, "seconds": self.seconds, "files": self.files,
            "statistics": self.statistics}}


def run_campaign(campaign: Campaign, store: Any = None, *, scheduler: str | None = None,
                 workers: int | None = None, resume: int | None = None,
                 progress: bool | Any = True) -> CampaignResult:
    """Run every task of `campaign` not yet completed (see the module docstring) into `store`
    (a directory or a `RunStore`; default as for `run_protocol`). `scheduler`: the address of an
    existing Dask scheduler; else a LocalCluster of `workers` single-threaded processes (default:
    one per core). `resume`: the campaign run to continue (its stored file must equal this one).
    """
    from xbarlab.store import RunStore

    owned = not isinstance(store, RunStore)
    runs = RunStore(store) if owned else store
    try:
        if resume is not None:
            _check_resume(runs, resume, campaign)
            if runs.run_info(resume).status == "completed":  # every task already done
                return CampaignResult(resume, "completed", len(campaign.tasks), 0, 0,
                                      len(campaign.tasks), 0.0)
            run = runs.resume(resume)
        else:
            run = runs.start_run(CAMPAIGN_PROTOCOL, {"name": campaign.name,
                                                      "file": campaign.text,
                                                      "origin": campaign.origin,
                                                      "tasks": len(campaign.tasks),
                                                      "axes": list(campaign.axes)})
        with run:
            return _run(campaign, runs, run, scheduler, workers, progress)
    finally:
        if owned:
            runs.close()


def _check_resume(runs, run_id: int, campaign: Campaign) -> None:
    info = runs.run_info(run_id)
    if info.protocol != CAMPAIGN_PROTOCOL:
        raise ParameterError(f"resume = {run_id}: run {run_id} is a {info.protocol!r} run, not "
                             "a campaign")
    difference = bench_difference(info.params.get("file", ""), campaign.text)
    if difference:
        raise ParameterError(f"resume = {run_id}: the campaign file differs from the one it "
                             f"started with ({difference}); allowed: the same file")


def _run(campaign: Campaign, runs, run, scheduler, workers, progress) -> CampaignResult:
    started = time.perf_counter()
    done = completed_tasks(runs, run.run_id)
    todo = [task for task in campaign.tasks if task.key not in done]
    virtual = [task for task in todo if task.virtual]
    real = [task for task in todo if not task.virtual]
    counts = {"completed": 0, "failed": 0}
    shown = _progress(progress)
    shown.start(len(campaign.tasks), f"campaign {campaign.name}: {len(done)} done before")
    shown.advance(len(done))

    def keep(task: Task, record) -> None:
        with signals_held():
            runs.import_run(record, parent=run.run_id,
                            checkpoints={TASK_CHECKPOINT: task.key, AXES_CHECKPOINT: task.axes})
        counts["completed" if record.status == "completed" else "failed"] += 1
        shown.advance()
        shown.describe(f"campaign {campaign.name}: {counts['completed']} completed, "
                       f"{counts['failed']} failed")

    with shown:
        if virtual or real:
            _execute(virtual, real, keep, lambda task, error: _keep_error(
                runs, run.run_id, task, error, keep), scheduler, workers)
    rows = campaign_rows(runs, run.run_id)
    files = write_results(campaign, runs, run, rows)
    missing = len(campaign.tasks) - len(completed_tasks(runs, run.run_id))
    statistics = seed_statistics(rows, reported_metrics(rows, campaign.axes, campaign.metrics),
                                 campaign.axes)
    result = CampaignResult(run.run_id, "failed" if missing else "completed",
                            len(campaign.tasks), counts["completed"], counts["failed"],
                            len(done), time.perf_counter() - started, files, statistics)
    run.checkpoint("metrics", json_ready(result.summary()["metrics"]))
    if missing:  # resumable: a resume runs the failed tasks again
        run.finish("failed", f"{missing} of {len(campaign.tasks)} tasks did not complete")
    return result


def completed_tasks(runs, campaign_run: int) -> dict[str, int]:
    """Task key to the id of its completed run, for the children of `campaign_run`."""
    done = {}
    for child in runs.children(campaign_run):
        if child.status == "completed":
            key = runs.open_run(child.run_id).checkpoints().get(TASK_CHECKPOINT)
            if key is not None:
                done[key] = child.run_id
    return done


def _execute(virtual: list[Task], real: list[Task], keep, failed, scheduler, workers) -> None:
    """Virtual tasks on the cluster, real ones on this process (one bench at a time), each
    result kept as it arrives."""
    from distributed import as_completed

    client, cluster = _client(scheduler, workers, len(virtual))
    try:
        by_future = {client.submit(run_task, task, key=_task_key(task), pure=False): task
                     for task in virtual}
        arrivals = as_completed(by_future, with_results=False)

        def drain(block: bool) -> None:
            batch = arrivals.next_batch(block=block) if block or arrivals.has_ready() else []
            for future in batch:
                task = by_future[future]
                if future.status == "finished":
                    keep(task, future.result())
                else:
                    failed(task, future.exception())

        for task in real:
            with _bench_lock(task):
                try:
                    record = run_task(task)
                except Exception as error:
                    failed(task, error)
                else:
                    keep(task, record)
            drain(block=False)
        while not arrivals.is_empty():
            drain(block=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _client(scheduler: str | None, workers: int | None, tasks: int):
    """A Dask client of `scheduler`, or of a new LocalCluster (and that cluster)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    count = workers or min(os.cpu_count() or 1, max(1, tasks))
    cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR,
                           env=SINGLE_THREADED)
    return Client(cluster), cluster


def _task_key(task: Task) -> str:
    """A Dask key unique to this task's content (a resubmitted task gets the same key)."""
    digest = hashlib.sha1((task.protocol + task.bench_text + repr(sorted(task.params.items()))
                           ).encode()).hexdigest()[:16]
    return f"xbarlab-task-{digest}"


def _bench_lock(task: Task):
    """A cluster-wide lock (of the current client) named after the instruments of `task`'s
    (real) bench."""
    from distributed import Lock

    from xbarlab.benchfile import parse_bench

    spec = parse_bench(task.bench_text, task.bench_name)
    addresses = sorted(f"{i.backend}|{i.address}" for i in spec.instruments.values())
    name = "xbarlab-bench-" + hashlib.sha1("\n".join(addresses).encode()).hexdigest()[:16]
    return Lock(name)


def _keep_error(runs, parent: int, task: Task, error: BaseException, keep) -> None:
    """A task that raised before its run began (its bench could not be opened): a failed run
    holding the error, so the table shows it and a resume tries it again."""
    from xbarlab.store import RunStore

    scratch = RunStore.in_memory()
    failed = scratch.start_run(task.protocol, task.params, task.bench_text)
    failed.fail(error)
    keep(task, failed.record())
    scratch.close()


def _progress(progress: bool | Any):
    from xbarlab.progress import Progress

    return Progress(show=progress) if isinstance(progress, bool) else progress


def write_results(campaign: Campaign, runs, run, rows: list[dict[str, Any]]) -> list[str]:
    """The results table (`rows`, from `campaign_rows`) and plots of the campaign run `run`,
    next to the store (none for a store in memory); the paths written."""
    directory = runs.data_dir
    if directory is None or not rows:
        return []
    prefix = directory / f"campaign-{run.run_id}"
    columns = result_columns(rows, campaign.axes)
    paths = [write_csv(rows, columns, Path(f"{prefix}-results.csv")),
             write_hdf5(rows, columns, Path(f"{prefix}-results.h5"),
                        {"campaign": campaign.name, "run_id": run.run_id,
                         "file": campaign.text})]
    for metric, axis, figure in campaign_figures(rows, campaign.axes, campaign.metrics):
        paths.append(save(figure, Path(f"{prefix}-{metric.replace('/', '.')}-vs-{axis}.png")))
    return [str(path) for path in paths]


def campaign_rows(runs, campaign_run: int) -> list[dict[str, Any]]:
    """One row per task of `campaign_run`, from the store alone: its key, run id, status,
    swept values and single-valued metrics (the latest run of each task; a completed run
    wins over a failed one), in the order the tasks were stored."""
    latest: dict[str, Any] = {}
    for child in runs.children(campaign_run):
        checkpoints = runs.open_run(child.run_id).checkpoints()
        key = checkpoints.get(TASK_CHECKPOINT)
        if key is not None and (key not in latest or latest[key][0].status != "completed"):
            latest[key] = (child, checkpoints)
    return [{"task": key, "run_id": child.run_id, "status": child.status,
             **checkpoints.get(AXES_CHECKPOINT, {}),
             **flat_metrics(checkpoints.get("metrics") or {})}
            for key, (child, checkpoints) in latest.items()]


def campaign_figures(rows, axes, metrics=()):
    """(metric, axis, figure) for each plotted metric (`metrics`, or the first numeric ones
    that vary) against each swept value."""
    return [(metric, axis, metric_figure(rows, metric, axis, axes))
            for metric in reported_metrics(rows, axes, metrics) for axis in _plotted_axes(axes)]


def reported_metrics(rows, axes, metrics=()) -> list[str]:
    """The metrics a campaign plots and summarises: those its file names (`metrics`), else
    the first numeric ones that vary."""
    return list(metrics) or numeric_metrics(rows, result_columns(rows, axes),
                                            axes)[:MOST_PLOTTED_METRICS]


def _plotted_axes(axes: Iterable[str]) -> list[str]:
    """Every swept value but the seed (its spread is the error bar); the seed alone if it is
    the only one."""
    chosen = [axis for axis in axes if axis != "seed"]
    return chosen or [axis for axis in axes if axis == "seed"]
