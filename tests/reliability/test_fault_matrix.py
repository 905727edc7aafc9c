"""Item 14: the fault matrix. Every fault kind of the virtual bench on every kind of instrument
(an SMU, a switch matrix, an array board) at a few positions of a read map, through the CLI:
the run ends (no hang: timeouts take virtual time), its message is at most two lines and names
the faulted instrument, the other instruments are left safe and the points measured before the
fault are kept. Relay faults: a relay stuck open makes cells unreachable (named), one stuck
closed is named by the bench check."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from reliability import fault, small_text, write_bench
from virtualbenches import world_of

from xbarlab.cli import main
from xbarlab.store import RunStore

KINDS = ("timeout", "drop", "garbled", "error", "late")
INSTRUMENTS = {  # instrument: (bench, address, commands at the fault positions)
    "smu": ("default", "GPIB0::26::INSTR", (8, 60, 100)),
    "matrix": ("default", "GPIB0::18::INSTR", (12, 30, 45)),
    "board": ("board", "ASRL1::INSTR", (11, 13, 15)),
}
CASES = [(kind, name, after) for kind in KINDS for name, (_, _, positions) in
         INSTRUMENTS.items() for after in positions]


def safe_except(world, faulted: str) -> list[str]:
    """What is not safe on the instruments other than `faulted`."""
    bench = world.bench
    unsafe = [f"{n}.{t} on" for n, inst in bench.instruments.items() if inst.kind == "smu"
              and n != faulted for t in inst.info.terminals
              if world.terminal(f"{n}.{t}").output]
    unsafe += [f"{n} relays closed" for n, inst in bench.instruments.items()
               if inst.kind == "matrix" and n != faulted and world.closed(n)]
    unsafe += [f"{n} lines driven" for n, inst in bench.instruments.items()
               if inst.kind == "board" and n != faulted and world.board_lines[n]]
    return unsafe


@pytest.mark.parametrize("kind, instrument, after", CASES)
def test_a_fault_ends_the_run_cleanly(tmp_path, capsys, kind, instrument, after):
    bench, address, _ = INSTRUMENTS[instrument]
    path = write_bench(tmp_path, small_text(bench, 3, 3) + fault(instrument, kind, after=after))
    store = tmp_path / "store"
    started = time.perf_counter()
    code = main(["run", "read-map", "--bench", str(path), "--store", str(store), "--quiet"])
    assert time.perf_counter() - started < 60  # no hang
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert not safe_except(world_of(path), instrument)
    if code == 0:  # the fault never struck, or the run got past it (a reply read again)
        assert "completed" in out
        return
    lines = err.strip().splitlines()
    assert len(lines) <= 2, err
    assert address in lines[0] or instrument in lines[0], err
    if "shutdown incomplete" in lines[0] or "NOT made safe" in lines[-1]:
        assert "NOT made safe: " in lines[-1] and instrument in lines[-1], err
    if code == 1 and "run " in lines[0]:  # the run had started: its points are kept
        with RunStore(store, read_only=True) as runs:
            (info,) = runs.runs()
            assert info.status == "failed"
            assert f"the {info.n_points} points measured are kept" in lines[1]


def test_a_relay_stuck_closed_is_named_by_the_bench_check(tmp_path, capsys):
    text = small_text("default", 3, 3) + fault("matrix", "stuck_closed", input="B", output=2)
    path = write_bench(tmp_path, text)
    assert main(["bench", "check", "--bench", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL smu.b isolated with its relays open" in out and "stuck closed" in out
    assert not safe_except(world_of(path), "")


def test_debug_adds_the_traceback_to_the_two_lines(tmp_path, capsys):
    """Item 9: the same instrument fault, once plain (two lines naming the instrument, the
    command and the reply), once with --debug (the same lines, then the traceback)."""
    text = small_text("default", 3, 3) + fault("smu", "garbled", after=50)  # a reading
    errors = []
    for stem, debug in (("plain", []), ("debug", ["--debug"])):  # a World each
        path = write_bench(tmp_path, text, stem)
        assert main([*debug, "run", "read-map", "--bench", str(path), "--quiet",
                     "--store", str(tmp_path / stem)]) == 1
        errors.append(capsys.readouterr().err.strip().splitlines())
    lines, debug = errors
    assert len(lines) == 2 and "GPIB0::26::INSTR" in lines[0] and "Traceback" not in lines[0]
    assert debug[:2] == lines and debug[2].startswith("Traceback")


def test_a_fault_through_the_console_script_is_two_lines_on_stderr(tmp_path):
    """Outside pytest (which captures logging) nothing but the two lines reaches stderr: the
    drivers' warnings about the timeouts stay in the loggers (``--log FILE`` keeps them)."""
    text = small_text("default", 3, 3) + fault("smu", "timeout", after=30)
    for stem, log in (("plain", []), ("logged", ["--log", str(tmp_path / "io.log")])):
        path = write_bench(tmp_path, text, stem)  # a World each
        result = subprocess.run(
            [sys.executable, "-m", "xbarlab.cli", *log, "run", "read-map", "--bench", str(path),
             "--store", str(tmp_path / stem), "--quiet"],
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and "GPIB0::26::INSTR" in lines[0], result.stderr
    assert "WARNING" in (tmp_path / "io.log").read_text()
