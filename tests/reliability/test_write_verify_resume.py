"""Item 5: a write-verify run interrupted (Ctrl-C) at several points - in the middle of a cell,
between a pulse and its verify, in the final re-read - and resumed each time ends with metrics
that equal those computed from its stored points: ``pulses_total`` is the count of stored
pulses and ``energy_j`` their energy by the protocol's definition (`programming` module
docstring) from the stored readings around each pulse; a re-read cut off goes on from its
stored readings instead of starting again."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
from reliability import small_text, write_bench

import xbarlab
from xbarlab.bench import Bench
from xbarlab.engine import RunInterrupted
from xbarlab.store import RunStore
from xbarlab.store.run import Run

READS, WIDTH, REREAD = 4, 1e-6, 8
PARAMS = {"rows": 2, "cols": 3, "reads": READS, "confirm_reads": READS, "width": WIDTH,
          "first_pass": 0.0, "relax_rounds": 0, "reread_reads": REREAD, "tolerance": 0.05,
          "settle": 0.01, "relax_wait": 0.01, "seed": 3, "g_low": 1.5e-6, "g_high": 30e-6}


def interrupt_at(monkeypatch, calls: list[int]) -> None:
    """Ctrl-C (a real SIGINT) while the run records its `calls[0]`-th step (a reading batch, a
    pulse or a checkpoint), counted from now; each interruption takes the next number. The
    engine's progress checkpoints are not steps: they come once a second of wall-clock time,
    so their number depends on the machine's speed."""
    originals = {name: getattr(Run, name) for name in ("record_point", "record_points",
                                                        "record_point_columns", "checkpoint")}
    count = [0]

    def counting(name):
        def method(self, *args, **kwargs):
            if name == "checkpoint" and args[0] == "progress":
                return originals[name](self, *args, **kwargs)
            count[0] += 1
            if calls and count[0] == calls[0]:
                calls.pop(0)
                count[0] = 0
                os.kill(os.getpid(), signal.SIGINT)  # held until the step is stored, if held
            return originals[name](self, *args, **kwargs)
        return method

    for name in originals:
        monkeypatch.setattr(Run, name, counting(name))


def measured_energy(monkeypatch) -> list[float]:
    """The energy the array board measured for every pulse the bench sends from now on,
    across every session of the run (the ledger the resumed account must equal)."""
    delivered: list[float] = []
    original = Bench.pulse

    def pulse(self, *args, **kwargs):
        bound = original(self, *args, **kwargs)
        delivered.append(self.last_pulse_energy)
        return bound

    monkeypatch.setattr(Bench, "pulse", pulse)
    return delivered


@pytest.mark.parametrize(("stops", "in_reread"), [  # the uninterrupted run takes 312 steps,
    ([7], False), ([40, 3, 25], False), ([2, 2, 2], False), ([307, 2], True)])  # 307 to 309
# the final re-read's (a row per step: the readings of one exchange are stored together), and
# the second stop is the resumed re-read's second row
def test_a_resumed_write_verify_counts_exactly_what_it_stored(tmp_path, monkeypatch, stops,
                                                              in_reread):
    path = write_bench(tmp_path, small_text("analog", 2, 3))
    store = tmp_path / "store"
    restarts = set()
    interrupt_at(monkeypatch, calls := list(stops))
    delivered = measured_energy(monkeypatch)
    run_id = None
    for _ in range(len(stops) + 1):
        try:
            result = xbarlab.run_protocol("write-verify", path, store=store, resume=run_id,
                                          progress=False, **({} if run_id else PARAMS))
            break
        except RunInterrupted:
            with RunStore(store, read_only=True) as runs:
                (info,) = runs.runs()
            run_id = info.run_id
            restarts.add(info.n_points)
    else:
        pytest.fail("the run never completed")
    assert not calls, "an interruption did not happen (the run ended before it)"
    with RunStore(store, read_only=True) as runs:
        run = runs.open_run(result.run_id)
        points = run.points()
        checkpoints = run.checkpoints()
        counts = run.latest_map("final-adaptive-count")
    pulses = [p for p in points if p.operation in ("set", "reset")]
    assert result.metrics["pulses_total"] == len(pulses) > 0
    # every pulse's measured energy counted once, whichever session verified it
    assert result.metrics["energy_measured"] and None not in delivered
    assert math.isclose(result.metrics["energy_j"], sum(delivered), rel_tol=1e-9)
    # the final re-read: every stored reading of it is in its map, none taken twice
    start = checkpoints["final-adaptive/from"]
    assert in_reread == any(seq > start for seq in restarts)
    reread = [p for p in points if p.seq >= start]
    assert all(p.operation == "read" for p in reread)
    assert len(reread) == np.nansum(counts) >= 6 * REREAD
    assert {(p.row, p.col) for p in reread} == {(r, c) for r in range(2) for c in range(3)}
