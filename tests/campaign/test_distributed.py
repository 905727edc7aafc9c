"""Campaigns across processes: a real Dask scheduler and two workers on localhost, one killed
mid-campaign; and a client interrupted and resumed. Every task's result lands exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xbarlab.campaign import load_campaign
from xbarlab.campaign.runner import TASK_CHECKPOINT
from xbarlab.store import RunStore

CAMPAIGN = """
[campaign]
name = "spread"
protocol = "read-map"
bench = "board"
seeds = 6

[parameters]
cells = "0-7,0-7"
reads = 10
"""


def completed_children(store: Path) -> list[tuple[int, str, str]]:
    """(run id, task key, status) of every task run of campaign run 1 stored so far."""
    if not (store / "runs.sqlite3").exists():
        return []
    with RunStore(store) as runs:
        if not runs.runs():
            return []
        return [(child.run_id, runs.open_run(child.run_id).checkpoints()[TASK_CHECKPOINT],
                 child.status) for child in runs.children(1)]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def every_task_once(store: Path, file: Path) -> None:
    expected = sorted(task.key for task in load_campaign(file).tasks)
    children = completed_children(store)
    assert sorted(key for _, key, _ in children) == expected  # each exactly once
    assert {status for _, _, status in children} == {"completed"}


@pytest.fixture
def campaign_file(tmp_path) -> Path:
    path = tmp_path / "spread.toml"
    path.write_text(CAMPAIGN)
    return path


def test_a_worker_killed_mid_campaign_loses_and_duplicates_nothing(tmp_path, campaign_file):
    scheduler_file = tmp_path / "scheduler.json"
    started = []

    def start(*arguments: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", *arguments],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        return process

    store = tmp_path / "store"
    try:
        start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
              "--no-dashboard", "--scheduler-file", str(scheduler_file))
        wait_for(scheduler_file.exists, 60, "the scheduler")
        time.sleep(0.5)  # the file is written once the scheduler listens
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [start("distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                         "--nthreads", "1", "--no-nanny", "--no-dashboard",
                         "--memory-limit", "0") for _ in range(2)]
        client = subprocess.Popen(
            [sys.executable, "-m", "xbarlab.cli", "campaign", str(campaign_file),
             "--scheduler", address, "--store", str(store), "--json", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(client)
        wait_for(lambda: len(completed_children(store)) >= 1, 120, "a first result")
        workers[0].send_signal(signal.SIGKILL)
        out, err = client.communicate(timeout=240)
        assert client.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["metrics"]["completed"] == 6 and summary["metrics"]["failed"] == 0
        every_task_once(store, campaign_file)
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_an_interrupted_client_resumes_with_nothing_lost_or_duplicated(tmp_path,
                                                                       campaign_file):
    store = tmp_path / "store"
    command = [sys.executable, "-m", "xbarlab.cli", "campaign", str(campaign_file),
               "--workers", "2", "--store", str(store), "--quiet"]
    client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        wait_for(lambda: len(completed_children(store)) >= 2, 180, "two results")
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 130, err
    kept = completed_children(store)
    assert len(kept) >= 2
    with RunStore(store) as runs:
        assert runs.run_info(1).status == "aborted"
    resumed = subprocess.run([*command, "--resume", "1", "--json"], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads(resumed.stdout.strip().splitlines()[-1])["metrics"]
    assert metrics["skipped"] == len(kept) and metrics["completed"] == 6 - len(kept)
    every_task_once(store, campaign_file)
    assert [child[0] for child in completed_children(store)][:len(kept)] == \
           [child[0] for child in kept]  # the results kept before are the same runs
