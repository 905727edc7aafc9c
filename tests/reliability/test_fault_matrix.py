"""Item 14: the fault matrix. Every fault kind of the virtual bench on every kind of instrument
(an SMU, a switch matrix, an array board) at a few positions of a read map, through the CLI:
the run ends (no hang: timeouts take virtual time), its message is at most two lines and names
the faulted instrument, the other instruments are left safe and the points measured before the
fault are kept. Relay faults: a relay stuck open makes cells unreachable (named), one stuck
closed is named by the bench check."""

from __future__ import annotations

import time

import pytest
from reliability import fault, small_text, world_of, write_bench

from xbarlab.cli import main
from xbarlab.store import RunStore

KINDS = ("timeout", "drop", "garbled", "error", "late")
INSTRUMENTS = {  # instrument: (bench, address, commands at the fault positions)
    "smu": ("default", "GPIB0::26::INSTR", (8, 30, 50)),
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
