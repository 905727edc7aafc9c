"""Issue 18: a dry run plans, it does not simulate. Every shipped protocol's dry run on its
default bench opens no instrument (pyvisa is never asked for one), prints its plan (phases,
cells, pulse and reading budgets, the limits it will set, the duration bound) and plays at most
its budget of commands on recording instruments, whatever the protocol's own budgets."""

from __future__ import annotations

import json

import pytest

import xbarlab
from xbarlab.cli import main
from xbarlab.dryrun.report import PLAYED_COMMANDS
from xbarlab.registry import available_protocols

SHUTDOWN_COMMANDS = 300
"""Commands the safe shutdown after a cut play may add (every source off, every relay open,
every board line idle, and their read-backs)."""


class NoInstruments:
    """Stands in for pyvisa.ResourceManager: a dry run must never ask for one."""

    def __init__(self, *args, **kwargs):
        raise AssertionError("a dry run opened a VISA resource manager")


@pytest.fixture
def no_instruments(monkeypatch):
    import pyvisa

    import xbarlab.bench

    monkeypatch.setattr(pyvisa, "ResourceManager", NoInstruments)
    monkeypatch.setattr(xbarlab.bench, "open_bench", NoInstruments)


@pytest.mark.parametrize("name", sorted(available_protocols()))
def test_every_protocol_dry_runs_its_plan_on_its_default_bench_opening_nothing(
        name, no_instruments, tmp_path, capsys):
    assert main(["run", name, "--dry-run", "--quiet", "--json",
                 "--store", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert "plan, each phase at its budget:" in out
    assert "will set: bench limits |V| <=" in out and "estimated duration: " in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["instrument_calls"] <= PLAYED_COMMANDS + SHUTDOWN_COMMANDS
    assert summary["plan"]["phases"] and summary["plan"]["duration_s_at_most"] > 0
    assert not (tmp_path / "store").exists()


def test_write_verify_plan_on_analog_bounds_what_a_real_run_does(tmp_path):
    """The plan's budgets hold for a real run of the same parameters (the virtual bench's
    run, small): pulses and readings stored are within them."""
    params = {"rows": 1, "cols": 2, "relax_rounds": 1, "reread_reads": 8, "max_pulses": 30}
    plan = xbarlab.run_protocol("write-verify", "analog", dry_run=True, progress=False,
                                **params).dry_run.plan
    # the targets learned on both cells (each to both bounds, at most 30 trains of 10
    # pulses), 16 cells watched for disturb (read twice before, once after), then the
    # first pass, programming, one re-check round and the final re-read of both cells
    assert [phase.cells for phase in plan.phases] == [2, 16, 16, 2, 2, 2, 2, 16]
    assert plan.pulses == 2 * 2 * 30 * 10 + 2 * 30 * 3
    result = xbarlab.run_protocol("write-verify", "analog", store=tmp_path, progress=False,
                                  **params)
    points = result.run.points()
    pulses = sum(1 for p in points if p.operation in ("set", "reset"))
    readings = sum(1 for p in points if p.operation == "read")
    assert 0 < pulses <= plan.pulses and 0 < readings <= plan.readings
