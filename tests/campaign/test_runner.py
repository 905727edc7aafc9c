"""Campaigns on a local Dask cluster: results written once by the client, resumable, real
benches on the client one task at a time; and a run moved between stores exactly."""

from __future__ import annotations

import csv
import math
import os

import h5py
import pytest

from xbarlab.benchfile import load_bench
from xbarlab.campaign import parse_campaign, run_campaign
from xbarlab.campaign.runner import TASK_CHECKPOINT, completed_tasks
from xbarlab.engine import run_protocol
from xbarlab.store import RunStore

SMALL = """
[campaign]
name = "small"
protocol = "read-map"
bench = "board"
seeds = 2

[parameters]
cells = "0-3,0-3"

[grid]
scheme = ["ground", "v/3"]
"""


def test_a_run_moves_between_stores_exactly(tmp_path):
    result = run_protocol("read-map", "classic", store=tmp_path / "a", progress=False,
                          cells="0,0-3")
    with RunStore(tmp_path / "a") as source, RunStore(tmp_path / "b") as target:
        run = source.open_run(result.run_id)
        parent = target.start_run("campaign", {})
        copied = target.open_run(target.import_run(run.record(), parent=parent.run_id,
                                                   checkpoints={"campaign.task": "x"}))
        assert copied.points() == run.points()
        assert [(m.name, m.t, m.data.tobytes()) for m in copied.maps()] == \
               [(m.name, m.t, m.data.tobytes()) for m in run.maps()]
        assert copied.snapshots() == run.snapshots() and copied.events() == run.events()
        assert copied.checkpoints() == {**run.checkpoints(), "campaign.task": "x"}
        assert copied.info.params == run.info.params and copied.info.parent_id == parent.run_id
        assert [child.run_id for child in target.children(parent.run_id)] == [copied.run_id]


def test_a_measured_nan_and_a_missing_value_stay_apart_through_a_move(tmp_path):
    with RunStore.in_memory() as source, RunStore(tmp_path) as target:
        with source.start_run("read-map", {}) as run:
            run.record_point(0, 0, "read", voltage=0.2, current=math.nan)
            run.record_point(0, 1, "pulse", voltage=1.0, current=None, pulse_width=1e-6)
        copied = target.open_run(target.import_run(run.record()))
        first, second = copied.points()
        assert math.isnan(first.current) and second.current is None


def test_an_import_that_fails_leaves_no_run(tmp_path):
    with RunStore.in_memory() as source, RunStore(tmp_path) as target:
        with source.start_run("read-map", {}) as run:
            run.record_point(0, 0, "read", voltage=0.2, current=1e-6)
        record = run.record()
        record.rows["points"].append(record.rows["points"][0])  # a duplicate key
        with pytest.raises(Exception, match="UNIQUE"):
            target.import_run(record)
        assert target.runs() == []


def test_a_local_campaign_writes_each_task_once_and_a_resume_skips_them(tmp_path):
    campaign = parse_campaign(SMALL, str(tmp_path / "small.toml"))
    store = tmp_path / "store"
    result = run_campaign(campaign, store, workers=2, progress=False)
    assert (result.completed, result.failed, result.skipped) == (4, 0, 0)
    with RunStore(store) as runs:
        children = runs.children(result.run_id)
        keys = [runs.open_run(c.run_id).checkpoints()[TASK_CHECKPOINT] for c in children]
        assert sorted(keys) == sorted(task.key for task in campaign.tasks)
        assert {c.protocol for c in children} == {"read-map"}
        assert {c.seed for c in children} == {0, 1}  # each task's own virtual chip
        assert runs.run_info(result.run_id).status == "completed"
    table = (store / f"campaign-{result.run_id}-results.csv").read_text().splitlines()
    assert table[0].startswith("task,run_id,status,scheme,seed,")
    assert len(table) == 5
    with h5py.File(store / f"campaign-{result.run_id}-results.h5") as file:
        assert sorted(file["results/scheme"].asstr()[:]) == ["ground", "ground", "v/3", "v/3"]
        assert file.attrs["campaign"] == "small"
    assert any(path.endswith("-vs-scheme.png") for path in result.files)
    # the summary: per scheme, each plotted metric over the two seeds, as the table has it
    rows = list(csv.DictReader(table))
    by_scheme = {entry["scheme"]: entry for entry in result.statistics}
    assert sorted(by_scheme) == ["ground", "v/3"]
    assert {entry["tasks"] for entry in by_scheme.values()} == {2}
    metric = next(key for key, value in by_scheme["v/3"].items() if isinstance(value, dict))
    values = [float(row[metric]) for row in rows if row["scheme"] == "v/3"]
    assert by_scheme["v/3"][metric] == {"mean": pytest.approx(sum(values) / 2),
                                        "std": pytest.approx(abs(values[0] - values[1]) / 2),
                                        "n": 2}
    assert result.summary()["metrics"]["statistics"] == result.statistics

    again = run_campaign(campaign, store, resume=result.run_id, progress=False)
    assert (again.completed, again.skipped) == (0, 4)
    with RunStore(store) as runs:
        assert len(runs.children(result.run_id)) == 4
        assert len(completed_tasks(runs, result.run_id)) == 4


def test_tasks_on_a_real_bench_run_on_the_client_one_at_a_time(tmp_path):
    text = load_bench("classic").text
    (tmp_path / "real.toml").write_text(text[:text.index("\n[sim]")])  # no [sim]: real
    campaign = parse_campaign('[campaign]\nprotocol = "read-map"\nbench = "real.toml"\n'
                              '[grid]\ncells = ["0,0", "0,1", "1,0"]\n',
                              str(tmp_path / "real-campaign.toml"))
    assert not any(task.virtual for task in campaign.tasks)
    result = run_campaign(campaign, tmp_path / "store", workers=1, progress=False)
    assert result.completed == 3
    with RunStore(tmp_path / "store") as runs:
        children = runs.children(result.run_id)
    assert {child.writer_pid for child in children} == {os.getpid()}
    spans = sorted((child.started_at, child.ended_at) for child in children)
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False))
