"""A run's life: context manager endings, explicit endings, history, checkpoints and resume."""

import os

import pytest

from xbarlab.store import RunStateError


class ProtocolError(Exception):
    pass


def test_normal_exit_completes_the_run(store):
    with store.start_run(protocol="p") as run:
        run.record_point(0, 0, "read", 0.2, 1e-6)
    info = run.info
    assert info.status == "completed"
    assert info.ended_at >= info.started_at
    assert [event.event for event in run.events()] == ["started", "completed"]


def test_exception_fails_the_run_with_its_traceback(store):
    with pytest.raises(ProtocolError), store.start_run(protocol="p") as run:
        run.record_point(0, 0, "read", 0.2, 1e-6)
        raise ProtocolError("SMU 2 did not answer")
    info = run.info
    assert info.status == "failed"
    assert "ProtocolError: SMU 2 did not answer" in info.traceback
    assert "test_lifecycle.py" in info.traceback  # a real traceback, with the frame
    assert info.n_points == 1  # nothing measured is lost
    assert run.events()[-1].detail == info.traceback


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupt_aborts_the_run(store, interrupt):
    with pytest.raises(interrupt), store.start_run(protocol="p") as run:
        raise interrupt()
    assert run.info.status == "aborted"
    assert run.info.traceback is None
    assert run.events()[-1].detail == interrupt.__name__


def test_status_set_inside_the_block_is_kept(store):
    with store.start_run(protocol="p") as run:
        run.abort("operator pressed stop")
    assert run.info.status == "aborted"
    assert run.events()[-1].detail == "operator pressed stop"


def test_fail_accepts_text_or_exception(store):
    first = store.start_run(protocol="p")
    first.fail("Traceback: boom")
    assert first.info.traceback == "Traceback: boom"
    second = store.start_run(protocol="p")
    try:
        raise ValueError("bad reply")
    except ValueError as error:
        second.fail(error)
    assert "ValueError: bad reply" in second.info.traceback


def test_finished_run_refuses_more_writes_and_a_second_ending(store):
    run = store.start_run(protocol="p")
    run.finish()
    with pytest.raises(RunStateError, match="status is 'completed'; allowed: 'running'"):
        run.record_point(0, 0, "read", 0.2, 1e-6)
    with pytest.raises(RunStateError, match="status is 'completed'"):
        run.checkpoint("k", 1)
    with pytest.raises(RunStateError, match="cannot mark it aborted"):
        run.abort()


def test_finish_refuses_a_status_that_is_not_final(store):
    run = store.start_run(protocol="p")
    with pytest.raises(ValueError, match="status = 'running' is not a final status; allowed"):
        run.finish("running")
    assert run.status == "running"


def test_done_cells_per_operation(store):
    run = store.start_run(protocol="form", shape=(3, 3))
    run.record_point(0, 0, "form", 3.0, 1e-4, pulse_width=1e-3)
    run.record_point(0, 0, "read", 0.2, 2e-6)
    run.record_point(2, 1, "read", 0.2, 3e-6)
    assert run.done_cells() == {(0, 0), (2, 1)}
    assert run.done_cells(operation="form") == {(0, 0)}
    assert run.done_cells(operation="reset") == set()
    with pytest.raises(ValueError, match="operation = 'forming' is not known"):
        run.done_cells(operation="forming")


def test_checkpoints_replace_by_key_and_hold_json(store):
    run = store.start_run(protocol="train")
    run.checkpoint("epoch", 1)
    run.checkpoint("epoch", 2)
    run.checkpoint("pending", {"cells": [[1, 2]], "lr": 0.01})
    assert run.checkpoints() == {"epoch": 2, "pending": {"cells": [[1, 2]], "lr": 0.01}}
    with pytest.raises(ValueError, match="checkpoint value cannot be stored"):
        run.checkpoint("x", float("inf"))
    with pytest.raises(ValueError, match="checkpoint key = '' is not allowed"):
        run.checkpoint("", 1)


def test_aborted_run_resumes_where_it_stopped(store):
    cells = [(r, c) for r in range(3) for c in range(3)]
    run = store.start_run(protocol="read-map", shape=(3, 3))
    with pytest.raises(KeyboardInterrupt), run:
        for row, col in cells[:4]:
            run.record_point(row, col, "read", 0.2, 1e-6 * (row + col))
        run.checkpoint("cursor", 4)
        raise KeyboardInterrupt
    resumed = store.resume(run.run_id)
    assert resumed.run_id == run.run_id and resumed.status == "running"
    assert resumed.info.ended_at is None
    done = resumed.done_cells(operation="read")
    assert resumed.checkpoints() == {"cursor": 4}
    with resumed:
        for row, col in cells:
            if (row, col) not in done:
                resumed.record_point(row, col, "read", 0.2, 1e-6 * (row + col))
    points = store.open_run(run.run_id).points()
    assert [(p.row, p.col) for p in points] == cells  # each cell once, in order
    assert [p.seq for p in points] == list(range(9))
    assert [e.event for e in resumed.events()] == ["started", "aborted", "resumed", "completed"]
    assert resumed.events()[2].detail == "previous status aborted"


def test_failed_run_resume_keeps_the_old_traceback_in_history(store):
    run = store.start_run(protocol="p")
    run.fail("Traceback: relay 1A03 did not close")
    resumed = store.resume(run.run_id)
    assert resumed.info.traceback is None
    assert "relay 1A03 did not close" in resumed.events()[-1].detail


def test_completed_run_cannot_be_resumed(store):
    run = store.start_run(protocol="p")
    run.finish()
    with pytest.raises(RunStateError, match="'completed' and cannot be resumed; allowed: running"):
        store.resume(run.run_id)


def test_running_run_of_a_live_process_is_not_resumed_without_force(store):
    run = store.start_run(protocol="p")  # this test process is its live writer
    with pytest.raises(RunStateError, match=f"still being written by pid {os.getpid()}"):
        store.resume(run.run_id)
    assert store.resume(run.run_id, force=True).status == "running"


def test_running_run_from_another_host_needs_force(store):
    run = store.start_run(protocol="p")
    store._connection.execute("UPDATE runs SET writer_host = 'elsewhere' WHERE run_id = ?",
                              (run.run_id,))
    with pytest.raises(RunStateError, match="host 'elsewhere'.*force=True"):
        store.resume(run.run_id)
