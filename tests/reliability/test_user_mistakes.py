"""Items 3 and 13 at the command line: a resume on a bench whose description differs is
refused naming the first differing line; a mask file that is not a mask is named, never
quoted; each in one line, exit status 2, nothing opened or stored."""

from __future__ import annotations

from reliability import set_key, small_text, write_bench

from xbarlab.cli import main
from xbarlab.store import RunStore


def test_a_resume_on_another_bench_is_refused_naming_the_difference(tmp_path, capsys):
    first = write_bench(tmp_path, small_text("default"), "first")
    other = write_bench(tmp_path, set_key(small_text("default"), "seed", "7"), "other")
    store = str(tmp_path / "store")
    with RunStore(store) as runs:
        run = runs.start_run("read-map", {}, first.read_text())
        run.abort()
    code = main(["run", "read-map", "--resume", "1", "--bench", str(other), "--store", store])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "the bench differs from the one the run started on" in err[0]
    assert "stored 'seed = 2026', now 'seed = 7'" in err[0]
    with RunStore(store) as runs:
        assert runs.run_info(1).n_points == 0


def test_a_mask_that_is_not_a_mask_is_named_not_quoted(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:the first line of a private file\n")
    path = write_bench(tmp_path, small_text("default"))
    store = tmp_path / "store"
    for extra in ([], ["--dry-run"]):
        code = main(["run", "read-map", "--bench", str(path), "--set", f"mask={secret}",
                     "--store", str(store), *extra])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert str(secret) in err and "cannot be read as a mask" in err
        assert "root:x" not in err and "private" not in err
    assert not (store / "runs.sqlite3").exists()
