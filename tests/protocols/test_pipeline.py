"""pipeline: every stage a child run on one bench, resumed at the stage it stopped in, one table
of the stages (CLI, --json), and a report whose every figure loads in a real browser. Run on a
small board with a small network (the stages' own tests check their physics)."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest
from boards import write_board
from browser import CHROMIUM, MISSING, dump_dom
from figurechecks import check_labels

from xbarlab.cli import main
from xbarlab.engine import RunInterrupted, run_protocol
from xbarlab.figures import run_figures
from xbarlab.progress import Progress
from xbarlab.store import RunStore

SMALL = {"hidden": 4, "pool": 2, "loop_epochs": 1, "loop_samples": 40, "test_samples": 60,
         "calibrate": True}
STAGES = ["forming", "map before", "calibration", "train", "map after"]
PULSE_OPERATIONS = ("pulse", "set", "reset", "form")


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory):
    """A pipeline on a 24 x 24 board stopped inside its train stage, then resumed: the store,
    the pipeline's run id, the children that existed when it stopped and the resumed result."""
    directory = tmp_path_factory.mktemp("pipeline")
    bench = write_board(directory, 24, seed=3)
    store = directory / "store"
    with pytest.raises(RunInterrupted):
        run_protocol("pipeline", bench, store=store, progress=_StopInStage("train", 4),
                     **SMALL)
    with RunStore(store) as runs:
        (first,) = [info for info in runs.runs() if info.protocol == "pipeline"]
        before = [(c.run_id, c.protocol, c.status) for c in runs.children(first.run_id)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # resumed as a user would: the command line
        status = main(["run", "pipeline", "--bench", str(bench), "--store", str(store),
                       "--resume", str(first.run_id), "--json", "--quiet"])
    assert status == 0
    return store, first.run_id, before, printed.getvalue().splitlines()


class _StopInStage(Progress):
    """Interrupts the run (Ctrl-C) `steps` steps into the first phase that names `stage`."""

    def __init__(self, stage: str, steps: int):
        super().__init__(show=False)
        self.stage, self.left = stage, steps

    def advance(self, steps: int = 1) -> None:
        super().advance(steps)
        if f"({self.stage})" in self.description:
            self.left -= steps
            if self.left <= 0:
                raise KeyboardInterrupt


def test_an_interrupted_pipeline_resumes_in_the_stage_it_stopped_in(interrupted_then_resumed):
    store, run_id, before, printed = interrupted_then_resumed
    assert [protocol for _, protocol, _ in before] == [
        "forming", "read-map", "calibrate-parasitics", "train"]
    assert [status for *_, status in before[:3]] == ["completed"] * 3
    assert before[3][2] == "aborted"
    summary = json.loads(printed[-1])
    assert summary["status"] == "completed" and summary["run_id"] == run_id
    with RunStore(store) as runs:
        children = runs.children(run_id)
        labels = [runs.open_run(c.run_id).checkpoints()["pipeline.stage"] for c in children]
    # finished stages kept, not run again; the train stage's own run continued, not restarted
    assert labels == STAGES
    assert [c.run_id for c in children[:4]] == [run_id for run_id, *_ in before]
    assert all(c.status == "completed" for c in children)


def test_the_table_counts_what_each_stage_stored(interrupted_then_resumed):
    store, _, _, printed = interrupted_then_resumed
    metrics = json.loads(printed[-1])["metrics"]
    rows = metrics["stages"]
    assert [row["stage"] for row in rows] == STAGES
    with RunStore(store) as runs:
        for row in rows:
            counts = runs.open_run(row["run_id"]).operation_counts()
            stored = sum(counts.get(operation, 0) for operation in PULSE_OPERATIONS)
            assert (row["pulses"] or 0) == stored, row
            assert 0 <= row["bench_s"] <= row["wall_s"]
        trained = runs.open_run(rows[3]["run_id"]).checkpoints()["metrics"]
    assert metrics["pulses"] == sum(row["pulses"] or 0 for row in rows)
    for metric in ("accuracy_software", "accuracy_ex_situ", "accuracy_chip_in_loop"):
        assert metrics[metric] == trained[metric]
        assert 0.1 < metrics[metric] <= 1  # better than chance on 10 digits


def test_the_command_prints_the_table_then_the_json(interrupted_then_resumed):
    *_, printed = interrupted_then_resumed
    assert printed[0].split()[:2] == ["stage", "run"]
    assert [line.split()[0] for line in printed[2:2 + len(STAGES)]] == [
        "forming", "map", "calibration", "train", "map"]
    assert re.search(r"accuracy on the test set: software \d+\.\d %, ex situ \d+\.\d %, "
                     r"chip in the loop \d+\.\d %", "\n".join(printed))
    assert printed[-1].startswith("{")  # the JSON, last


def test_the_report_shows_every_stage_and_every_figure_loads(interrupted_then_resumed, tmp_path,
                                                            capsys):
    store, run_id, _, _ = interrupted_then_resumed
    capsys.readouterr()
    assert main(["report", str(run_id), "--store", str(store)]) == 0
    path = store / f"report-{run_id}.html"
    text = path.read_text()
    for caption in ("map before: ", "map after: ", "train: ", "calibration: ",
                    "pulses and energy per stage"):
        assert caption in text, caption
    if CHROMIUM is None:
        pytest.skip(MISSING)
    body = re.search(r"<body[^>]*>", dump_dom(path.as_uri(), tmp_path / "profile")).group(0)
    figures = int(re.search(r'data-figures="(\d+)"', body).group(1))
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', body).group(1))
    assert figures >= 8 and loaded == figures


def test_a_stage_that_cannot_run_on_the_bench_is_refused_before_anything_opens(tmp_path):
    from xbarlab.params import ParameterError

    # the matrix bench's SMUs cannot pulse train's 100 ns: refused before forming ever runs
    with pytest.raises(ParameterError, match=r"stage 'train' \(train\): width = 1e-07"):
        run_protocol("pipeline", "default", store=tmp_path, progress=False)
    assert not (tmp_path / "runs.sqlite3").exists()


def test_every_stage_figure_and_the_pipeline_figure_have_units_and_no_empty_panel(
        interrupted_then_resumed):
    """train's, calibrate-parasitics' (its maps), forming's, read-map's and the pipeline's own
    figures, drawn from the stored runs."""
    store, run_id, *_ = interrupted_then_resumed
    with RunStore(store) as runs:
        drawn = set()
        for info in [runs.run_info(run_id), *runs.children(run_id)]:
            figures = run_figures(runs.open_run(info.run_id))
            assert figures, info.protocol
            for caption, figure in figures:
                assert check_labels(figure) == [], (info.protocol, caption, check_labels(figure))
            drawn.add(info.protocol)
    assert drawn == {"pipeline", "forming", "read-map", "calibrate-parasitics", "train"}
