"""The ``xbarlab`` command over a temporary run store, on the embedded virtual benches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xbarlab.benchfile import load_bench
from xbarlab.cli import main
from xbarlab.export import check_hdf5
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

HERE = Path(__file__).parent


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_unknown_protocol_lists_the_available_ones(tmp_path, capsys):
    assert main(["run", "no-such", "--store", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "unknown protocol 'no-such'; available: " in message
    assert "read-map" in message.split("available: ", 1)[1].strip().split(", ")


def test_a_parameter_the_protocol_does_not_take_is_named_with_the_allowed(tmp_path, capsys):
    assert main(["run", "read-map", "--set", "v_reed=0.1", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'v_reed' is not a parameter of read-map (did you mean v_read?); allowed: v_read, " \
           "scheme, current_limit" in err
    assert main(["run", "read-map", "--set", "v_read=high", "--store", str(tmp_path)]) == 2
    assert "v_read = 'high': allowed a number" in capsys.readouterr().err
    assert not (tmp_path / "runs.sqlite3").exists()


def test_run_read_map_then_runs_show_export_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = str(tmp_path / "store")
    assert main(["run", "read-map", "--bench", "classic", "--set", "v_read=0.1",
                 "--store", store, "--json", "--quiet"]) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["status"] == "completed" and summary["run_id"] == 1
    assert summary["metrics"]["cells_read"] == 256
    assert summary["metrics"]["round_trips"]["read"]["calls"] == 256

    with RunStore(store) as opened:
        run = opened.open_run(1)
        points = run.points()
        conductance = run.latest_map("conductance")
        params = run.info.params
        assert params["v_read"] == 0.1 and params["scheme"] == "ground"  # defaults stored too
        assert set(params) == set(get_protocol("read-map").parameters)
        assert "MODEL 2400" in run.info.instruments["smu1"]
    assert len(points) == 256 and {p.voltage for p in points} == {0.1}
    expected = np.full((16, 16), np.nan)
    for p in points:
        expected[p.row, p.col] = p.current / 0.1
    np.testing.assert_array_equal(conductance, expected)

    assert main(["runs", "--store", store]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[1].split()[1:3] == ["read-map", "completed"]
    assert listed[1].endswith("classic    16x16 passive, binary")  # the bench and the chip
    assert main(["show", "1", "--store", store]) == 0
    shown = capsys.readouterr().out
    assert "points: 256 (read 256)" in shown and "completed" in shown
    assert "  bench classic, chip 16x16 passive, binary, seed " in shown
    assert "v_read 0.1 V" in shown and "map conductance (16x16, 256 cells, 1 recorded)" in shown
    assert max(len(line) for line in shown.splitlines()) <= 100
    assert main(["show", "1", "--json", "--store", store]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["bench"] == "classic" and described["parameter_units"]["v_read"] == "V"
    assert described["points"] == {"read": 256} and described["maps"][0]["unit"] == "S"
    assert main(["show", "1", "--points", "--json", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 256 and json.loads(lines[5])["current"] == points[5].current

    assert main(["export", "1", "--format", "hdf5", "--store", store]) == 0
    check_hdf5(tmp_path / "run-1.h5")
    assert main(["export", "1", "--format", "csv", "--store", store]) == 0
    rows = (tmp_path / "run-1-csv" / "run-1-points.csv").read_text().splitlines()
    assert len(rows) == 259 and rows[0].startswith("# xbarlab run 1 (read-map), started 20")
    assert rows[2] == ("seq,row,col,operation,voltage (V),current (A),pulse_width (s),"
                       "compliance,t (s)")
    (Path(store) / "run-1-read-map.png").unlink()  # the run drew it; so does xbarlab plot
    assert main(["plot", "1", "--store", store]) == 0
    assert (Path(store) / "run-1-read-map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", "1", "--store", store, "-o", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "run-1-read-map.png").exists()
    assert main(["show", "7", "--store", store]) == 2


def test_dry_run_reports_and_touches_no_store(tmp_path, capsys):
    store = tmp_path / "store"
    code = main(["run", "read-map", "--bench", "classic", "--dry-run", "--json",
                 "--set", "v_read=0.22", "--store", str(store)])
    summary = last_json(capsys.readouterr().out)
    assert code == 0
    assert summary["operations"] == 256 and summary["max_abs_voltage"] == 0.22
    assert summary["violations"] == []
    assert not store.exists()


def test_dry_run_lists_the_limits_a_run_would_break(tmp_path, capsys):
    code = main(["run", "retention", "--bench", "classic", "--dry-run", "--json", "--set",
                 "width=1", "--store", str(tmp_path / "store")])
    summary = last_json(capsys.readouterr().out)
    assert code == 1
    assert any("limits.max_energy = 0.001 J" in v for v in summary["violations"])
    assert not (tmp_path / "store").exists()


def test_a_parameter_beyond_the_bench_limits_is_refused_before_anything_opens(tmp_path, capsys):
    for extra in ([], ["--dry-run"]):
        assert main(["run", "read-map", "--bench", "classic", "--set", "v_read=6",
                     "--store", str(tmp_path), *extra]) == 2
        err = capsys.readouterr().err
        assert err.strip() == ("xbarlab run: v_read = 6.0 V: allowed a number >= "
                               "-limits.max_read_voltage (-0.225 V) and <= "
                               "limits.max_read_voltage (0.225 V), not 0")
    assert not (tmp_path / "runs.sqlite3").exists()


def test_bench_check_passes_on_embedded_virtual_benches(capsys):
    for name in ("classic", "keysight", "board"):
        assert main(["bench", "check", "--bench", name]) == 0
        out = capsys.readouterr().out
        assert "checks passed" in out and "FAIL" not in out


def test_bench_check_finds_a_relay_stuck_open(tmp_path, capsys):
    text = load_bench("classic").text
    assert "[" not in text.split("[sim]")[1]  # [sim] is the last table: faults may follow
    bench_file = tmp_path / "stuck.toml"
    bench_file.write_text(text + '\n[[sim.faults]]\ninstrument = "matrix"\n'
                          'kind = "stuck_relay"\ninput = "A"\noutput = 3\n')
    assert main(["bench", "check", "--bench", str(bench_file)]) == 1
    out = capsys.readouterr().out
    failures = [line for line in out.splitlines() if "FAIL" in line]
    assert len(failures) == 1
    assert "smu1.1 to row:2 (output 3)" in failures[0] and "relay stuck open" in failures[0]


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_aborts_keeps_every_point_leaves_bench_safe_and_resumes(
        tmp_path, signum, code):
    store = tmp_path / "store"
    process = subprocess.Popen(
        [sys.executable, str(HERE / "interrupted_cli.py"), "default",
         "run", "read-map", "--store", str(store), "--json", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while seen < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
            if (store / "runs.sqlite3").exists():
                with RunStore(store) as reader:
                    runs = reader.runs()
                    seen = runs[0].n_points if runs else 0
        assert seen >= 50, "the run did not start"
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    state = json.loads(err.strip().splitlines()[-1])
    assert state["code"] == code
    assert not any(state["outputs"].values()) and set(state["closed"].values()) == {0}
    summary = last_json(out)
    assert summary["status"] == "aborted"
    with RunStore(store) as reader:
        info = reader.run_info(summary["run_id"])
        kept = info.n_points
    assert info.status == "aborted" and seen <= kept < 1024

    resumed = subprocess.run(
        [sys.executable, "-m", "xbarlab.cli", "run", "read-map", "--resume",
         str(summary["run_id"]), "--store", str(store), "--json", "--quiet"],
        capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    metrics = last_json(resumed.stdout)["metrics"]
    assert metrics["cells_read"] == 1024 and metrics["cells_read_now"] == 1024 - kept


def test_a_limit_refused_mid_run_fails_the_run_with_a_clear_message(tmp_path, capsys):
    code = main(["run", "retention", "--bench", "classic", "--set", "width=1",
                 "--store", str(tmp_path), "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and last_json(captured.out)["status"] == "failed"
    assert "exceeds limits.max_energy = 0.001 J" in captured.err
    assert "instruments were made safe" in captured.err
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) <= 2
    with RunStore(tmp_path) as store:
        assert "LimitError" in store.run_info(1).traceback


@pytest.mark.parametrize("command", [["runs"], ["show", "1"], ["export", "1", "--format", "csv"],
                                     ["plot", "1"], ["report", "1"]])
def test_reading_commands_refuse_a_store_that_does_not_exist(tmp_path, capsys, command):
    missing = tmp_path / "no-store-here"
    assert main([*command, "--store", str(missing)]) == 2
    assert f"no run store at {missing}" in capsys.readouterr().err
    assert not missing.exists()


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_show_points_into_a_reader_that_stops_early_ends_quietly(tmp_path, extra):
    """``xbarlab show RUN --points | head -1``: the first line, then no traceback."""
    with RunStore(tmp_path) as store:
        run = store.start_run("read-map", shape=(8, 8))
        run.record_points({"row": k % 8, "col": k // 8 % 8, "operation": "read",
                           "voltage": 0.2, "current": 1e-6 * k, "t": float(k)}
                          for k in range(40_000))  # far more than a pipe holds
        run.finish()
    process = subprocess.Popen([sys.executable, "-m", "xbarlab", "show", "1", "--points",
                                *extra, "--store", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # as head does after its lines
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0
    assert first.startswith(b"# xbarlab run 1" if not extra else b"{")
    assert errors == ""
