"""A virtual chip that remembers (issue 18): runs through the CLI continue the chip the store
keeps for a virtual bench, with its virtual clock running on; ``xbarlab bench reset`` starts it
fresh from its seed; scripts, dry runs and stores in memory always start from a fresh chip.

The truth the runs are checked against is the fresh chip of the bench's seed, looked at inside
a World of its own (tests may; protocols never do)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyvisa
from xbarlab.sim_instruments import XbarSimVisaLibrary

from xbarlab import run_protocol
from xbarlab.benchfile import load_bench, simulator_source
from xbarlab.chips import CHECKPOINT, chip_state_file
from xbarlab.cli import main
from xbarlab.store import RunStore

CELLS = [(0, 0), (0, 1)]


def fresh_conductance() -> np.ndarray:
    """The true conductances of the analog bench's fresh chip (its seed's)."""
    return XbarSimVisaLibrary.fresh("analog").world.array.conductance()


def first_reads(run) -> dict[tuple[int, int], float]:
    """Each cell's first read of a run, as a conductance (current / voltage)."""
    found: dict[tuple[int, int], float] = {}
    for chunk in run.point_chunks():
        for row, col, op, v, i in zip(chunk["row"], chunk["col"], chunk["operation"],
                                      chunk["voltage"], chunk["current"], strict=True):
            if op == 0:  # a read
                found.setdefault((int(row), int(col)), float(i / v))
    return found


def test_form_write_verify_retention_across_three_commands_sees_the_programmed_state(tmp_path):
    """The acceptance sequence on the virtual analog bench: three CLI commands, the retention
    run reads what write-verify programmed, not the fresh chip."""
    store = str(tmp_path)
    commands = [
        ["run", "forming", "--set", "cells=0,0-1"],
        ["run", "write-verify", "--set", "rows=1", "--set", "cols=2", "--set", "reads=2",
         "--set", "confirm_reads=1"],
        ["run", "retention", "--set", "cells=0,0-1", "--set", "program=none",
         "--set", "points=2", "--set", "t_last=0.1"],
    ]
    for command in commands:
        assert main([*command, "--bench", "analog", "--store", store, "-q"]) == 0
    with RunStore(store) as runs:
        targets = runs.open_run(2).latest_map("targets")
        retention = first_reads(runs.open_run(3))
        chips = [runs.open_run(run_id).checkpoints()[CHECKPOINT] for run_id in (1, 2, 3)]
    fresh = fresh_conductance()
    for cell in CELLS:
        target, seen, before = targets[cell], retention[cell], fresh[cell]
        assert abs(before - target) > 0.2 * target  # the fresh chip would tell them apart
        assert abs(seen - target) < 0.1 * target, (cell, seen, target, before)
        assert abs(seen - target) < 0.25 * abs(before - target)
    assert chips[0]["kept"] is False
    assert chips[1]["kept"] and chips[2]["kept"]
    assert chips[2]["virtual_time_s"] > chips[1]["virtual_time_s"] > 0.0
    path = chip_state_file(store, load_bench("analog"))
    assert chips[2]["file"] == str(path)


def test_bench_reset_starts_from_the_fresh_chip_of_the_seed(tmp_path, capsys):
    spec = load_bench("analog")
    path = chip_state_file(tmp_path, spec)
    assert main(["bench", "reset", "--bench", "analog", "--store", str(tmp_path)]) == 0
    assert "no chip was kept" in capsys.readouterr().out
    manager = pyvisa.ResourceManager(f"{simulator_source('analog', path)}@xbarsim")
    world = manager.visalib.world
    world.array.set_state(np.full((32, 32), 0.5))
    world.changed()
    world.advance(3.0)
    manager.close()  # the chip is kept
    assert json.loads(path.read_text())["clock"] >= 3.0

    assert main(["bench", "reset", "--bench", "analog", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "forgot the chip kept at virtual time 3 s" in out and "seed 4032" in out
    assert not path.exists()
    manager = pyvisa.ResourceManager(f"{simulator_source('analog', path)}@xbarsim")
    assert np.array_equal(manager.visalib.world.array.conductance(), fresh_conductance())
    assert manager.visalib.world.clock == 0.0
    manager.close()


def test_a_real_bench_has_no_chip_to_reset(tmp_path, capsys):
    real = tmp_path / "real.toml"
    text = load_bench("default").text
    real.write_text(text[:text.index("\n[sim]\n")].replace('"@xbarsim"', '"@py"'))
    assert main(["bench", "reset", "--bench", str(real), "--store", str(tmp_path)]) == 2
    assert "is a real bench (no [sim] section)" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["script", "memory", "dry-run"])
def test_runs_outside_the_cli_start_fresh_and_keep_nothing(tmp_path, how):
    """A script's run (unless it asks), a run into a store in memory and a dry run neither
    continue a kept chip nor leave one behind."""
    spec = load_bench("analog")
    kept = chip_state_file(tmp_path, spec)
    kept.parent.mkdir()
    kept.write_text("not read")  # a run that read it would fail on it
    store = RunStore.in_memory() if how == "memory" else RunStore(tmp_path)
    result = run_protocol("retention", spec, store=store, progress=False,
                          dry_run=how == "dry-run", remember_chip=how != "script",
                          cells="0,0", program="none", points=2, t_last=0.02)
    assert kept.read_text() == "not read" and len(list(kept.parent.iterdir())) == 1
    if how != "dry-run":
        assert store.open_run(result.run_id).checkpoints()[CHECKPOINT] == {"kept": False}
    store.close()
