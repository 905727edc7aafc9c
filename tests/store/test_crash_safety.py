"""Crash safety and concurrency with real processes: SIGKILL mid-run, a reader during writes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from xbarlab.store import RunStore

sys.path.insert(0, str(Path(__file__).parent))
from crash_writer import expected  # noqa: E402

WRITER = Path(__file__).with_name("crash_writer.py")


def start_writer(data_dir: Path, n_points: int, pause_at: int = -1) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(n_points), str(pause_at)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    header = process.stdout.readline()
    assert header.startswith("run "), header
    return process, int(header.split()[1])


def assert_points_are_the_written_ones(points, count):
    assert [p.seq for p in points] == list(range(count))
    for point in points:
        want = expected(point.seq)
        got = {field: getattr(point, field) for field in want}
        assert got == want


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_mid_run_loses_no_committed_point_and_the_run_resumes(tmp_path):
    process, run_id = start_writer(tmp_path, n_points=0)
    last_committed = -1
    while last_committed < 300:
        last_committed = int(process.stdout.readline())
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    # Announcements still in the pipe were printed after their commits, before the kill.
    for line in process.stdout:
        last_committed = int(line)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL

    with RunStore(tmp_path) as store:
        info = store.run_info(run_id)
        assert info.status == "running"  # nobody could mark it: the process died
        stored = store.open_run(run_id).points()
        # Every point announced as committed is there; at most the one in flight more.
        assert last_committed + 1 <= len(stored) <= last_committed + 2
        assert_points_are_the_written_ones(stored, len(stored))

        resumed = store.resume(run_id)  # the writer pid is dead: no force needed
        assert resumed.status == "running"
        assert resumed.record_point(**expected(len(stored))) == len(stored)
        resumed.finish()
        assert_points_are_the_written_ones(store.open_run(run_id).points(), len(stored) + 1)


def test_reader_sees_consistent_growing_data_while_a_writer_commits(tmp_path):
    n_points, pause_at = 1500, 500
    process, run_id = start_writer(tmp_path, n_points=n_points, pause_at=pause_at)
    while int(process.stdout.readline()) < pause_at - 1:
        pass
    with RunStore(tmp_path) as reader:
        run = reader.open_run(run_id)
        # The writer holds the run open, mid-stream: the reader sees exactly what was committed.
        assert_points_are_the_written_ones(run.points(), pause_at)
        assert run.status == "running"
        process.stdin.write("go\n")
        process.stdin.close()
        counts = []
        while process.poll() is None:
            points = run.points()
            assert [p.seq for p in points] == list(range(len(points)))  # no torn writes
            counts.append(len(points))
        process.wait(timeout=30)
        process.stdout.close()
        assert process.returncode == 0
        assert counts == sorted(counts)
        assert reader.run_info(run_id).status == "completed"
        assert_points_are_the_written_ones(run.points(), n_points)


def test_two_writer_processes_share_one_store(tmp_path):
    n_points = 800
    writers = [start_writer(tmp_path, n_points=n_points) for _ in range(2)]
    for process, _ in writers:
        process.stdout.read()  # drain, so neither writer blocks on a full pipe
        process.wait(timeout=60)
        process.stdout.close()
        assert process.returncode == 0
    with RunStore(tmp_path) as store:
        assert sorted(info.run_id for info in store.runs()) == sorted(r for _, r in writers)
        for _, run_id in writers:
            assert store.run_info(run_id).status == "completed"
            assert_points_are_the_written_ones(store.open_run(run_id).points(), n_points)
