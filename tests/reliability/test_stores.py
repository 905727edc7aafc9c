"""Items 6 and 11: a run whose writer process is gone shows as interrupted; a read-only store
can be listed, shown and exported; a damaged or zero-length store file is a clear one-line
error, never silently taken as an empty store."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest

from xbarlab.cli import main
from xbarlab.store import RunStore, StoreOpenError


def store_with_a_run(folder) -> int:
    with RunStore(folder) as store, store.start_run("read-map", {"v_read": 0.2}) as run:
        run.record_point(0, 0, "read", 0.2, 2e-6)
        return run.run_id


def test_a_run_whose_writer_was_killed_shows_as_interrupted(tmp_path, capsys):
    code = ("import sys, os, signal; from xbarlab.store import RunStore;"
            "s = RunStore(sys.argv[1]); r = s.start_run('read-map', {});"
            "r.record_point(0, 0, 'read', 0.2, 1e-6); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    with RunStore(tmp_path) as store:
        (info,) = store.runs()
        assert info.status == "running"  # as stored: the writer never got to write its end
    assert main(["runs", "--store", str(tmp_path)]) == 0
    assert "interrupted" in capsys.readouterr().out
    assert main(["show", str(info.run_id), "--store", str(tmp_path)]) == 0
    assert f"run {info.run_id}: read-map (interrupted)" in capsys.readouterr().out


def test_a_read_only_store_can_be_listed_shown_and_exported(tmp_path, capsys):
    """The store file and its folder without write permission; the reading commands open it
    read-only, so its file is left byte for byte as it was (root may still write there, the
    commands do not)."""
    run_id = store_with_a_run(tmp_path / "store")
    folder = tmp_path / "store"
    database = folder / "runs.sqlite3"
    before = database.read_bytes()
    for path in [*folder.iterdir(), folder]:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR if path.is_dir() else stat.S_IRUSR)
    try:
        assert main(["runs", "--store", str(folder)]) == 0
        assert "read-map" in capsys.readouterr().out
        assert main(["show", str(run_id), "--store", str(folder)]) == 0
        assert main(["export", str(run_id), "--format", "csv", "--out",
                     str(tmp_path / "csv"), "--store", str(folder)]) == 0
        assert database.read_bytes() == before
    finally:
        for path in [folder, *folder.iterdir()]:
            path.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("content, message", [
    (b"", "an empty file"),
    (b"this is not a database" * 100, "cannot be opened as a run store"),
])
def test_a_damaged_store_is_a_clear_error(tmp_path, capsys, content, message):
    (tmp_path / "runs.sqlite3").write_bytes(content)
    with pytest.raises(StoreOpenError, match=message):
        RunStore(tmp_path)
    for command in (["runs"], ["show", "1"]):
        assert main([*command, "--store", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "runs.sqlite3").read_bytes() == content  # nothing was written
