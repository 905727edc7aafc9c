"""Campaign files: expansion into tasks, bench variants, one-line errors before anything runs."""

from __future__ import annotations

import pytest

from xbarlab.benches import with_sim_values
from xbarlab.benchfile import BenchFileError, load_bench, parse_bench
from xbarlab.campaign import CampaignFileError, parse_campaign

GRID = """
[campaign]
protocol = "read-map"
bench = "board"
seeds = [4, 9]

[parameters]
cells = "0,0-3"

[grid]
scheme = ["ground", "v/3"]
"sim.r_wire_row" = [0.5, 2.0]
"""


def test_a_grid_times_seeds_is_one_task_each_on_its_own_bench_variant():
    campaign = parse_campaign(GRID, "grid.toml")
    assert len(campaign.tasks) == 2 * 2 * 2
    assert campaign.axes == ("scheme", "sim.r_wire_row", "seed")
    first = campaign.tasks[0]
    assert first.key == "scheme=ground sim.r_wire_row=0.5 seed=4"
    assert first.params == {"cells": "0,0-3", "scheme": "ground"}
    assert first.axes == {"scheme": "ground", "sim.r_wire_row": 0.5, "seed": 4}
    spec = parse_bench(first.bench_text)
    assert spec.sim.seed == 4 and spec.sim.r_wire_row == 0.5 and first.virtual
    assert spec.sim.r_wire_col == load_bench("board").sim.r_wire_col  # the rest unchanged
    assert len({task.key for task in campaign.tasks}) == 8


def test_explicit_tasks_each_with_its_protocol_and_parameters():
    campaign = parse_campaign("""
[campaign]
bench = "default"
[[task]]
protocol = "read-map"
parameters = { cells = "0,0" }
[[task]]
protocol = "iv-sweep"
parameters = { cells = "1,1", step = 0.5 }
""")
    assert [(t.protocol, t.key) for t in campaign.tasks] == [("read-map", "task=0"),
                                                             ("iv-sweep", "task=1")]
    assert campaign.tasks[1].params == {"cells": "1,1", "step": 0.5}


@pytest.mark.parametrize(("text", "message"), [
    (GRID.replace("seeds = [4, 9]", "seeds = 0"), r"campaign.seeds = 0; allowed: a count"),
    (GRID + "colour = 1\n", r"grid.colour = 1; allowed: a non-empty list"),
    (GRID.replace("[grid]", "[grid]\nv_read = [0.2, 9.0]"),
     r"task 'v_read=9.0 scheme=ground .*seed=4': v_read = 9.0 V: allowed .*max_read_voltage"),
    (GRID.replace('protocol = "read-map"', 'protocol = "read-mapp"'), "unknown protocol"),
    (GRID.replace('"sim.r_wire_row"', '"sim.r_wire_rows"'),
     r"sim.r_wire_rows = 0.5: expected one of the keys seed, r_wire_row"),
    (GRID + "[extra]\n", r"extra is not known; allowed: campaign, parameters"),
    (GRID.replace("seeds = [4, 9]", "seeds = [4, 9]\nfoo = 1"), "campaign.foo is not known"),
    (GRID.replace("seeds = [4, 9]", "seeds = 100000") + '"sim.r_wire_col" = [1, 2]',
     r"800000 tasks; allowed at most 100000"),
])
def test_a_mistake_is_one_line_naming_the_field(text, message):
    with pytest.raises(CampaignFileError, match=message) as refused:
        parse_campaign(text, "campaign.toml")
    assert "\n" not in str(refused.value)


def test_seeds_on_a_bench_without_sim_are_refused(tmp_path):
    real = tmp_path / "real.toml"
    text = load_bench("default").text
    real.write_text(text[:text.index("\n[sim]")])
    campaign = parse_campaign('[campaign]\nprotocol = "read-map"\nbench = "real.toml"\n',
                              str(tmp_path / "c.toml"))
    assert not campaign.tasks[0].virtual
    with pytest.raises(CampaignFileError, match=r"no \[sim\] section, so sim.seed cannot vary"):
        parse_campaign('[campaign]\nprotocol = "read-map"\nbench = "real.toml"\nseeds = 2\n',
                       str(tmp_path / "c.toml"))


def test_sim_values_replace_or_add_and_leave_fault_tables_alone():
    text = "[bench]\nname = 'x'\n[sim]\nseed = 1 # the chip\n[[sim.faults]]\nkind = 'drop'\n"
    changed = with_sim_values(text, {"seed": 7, "read_noise": False})
    assert changed == ("[bench]\nname = 'x'\n[sim]\nread_noise = false\nseed = 7\n"
                       "[[sim.faults]]\nkind = 'drop'\n")
    with pytest.raises(BenchFileError, match="no \\[sim\\] section"):
        with_sim_values("[bench]\n", {"seed": 1})


def test_the_shipped_accuracy_vs_defects_campaign_sweeps_the_stuck_rate_of_the_train_runs():
    from pathlib import Path

    from xbarlab.campaign import load_campaign
    from xbarlab.registry import get_protocol

    path = Path(__file__).parents[2] / "benchmarks" / "campaigns" / "accuracy_vs_defects.toml"
    campaign = load_campaign(path)
    assert campaign.axes == ("sim.stuck_fraction", "seed") and len(campaign.tasks) == 4 * 5
    assert {"accuracy_software", "accuracy_chip_in_loop"} <= set(campaign.metrics)
    for task in campaign.tasks:
        spec = parse_bench(task.bench_text)
        assert spec.sim.stuck_fraction == task.axes["sim.stuck_fraction"]
        get_protocol(task.protocol).resolve(task.params, spec)  # every task's parameters hold
