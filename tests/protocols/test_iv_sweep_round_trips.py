"""What an iv-sweep branch costs in instrument round trips on the benches with a paired-sweep SMU,
and that the settings the drivers and the bench remember are never trusted across an
interrupted sweep (every later set-up sent again, outputs off and relays open at the end).

A branch after the first sends nothing but the sweep: on a 2600B one chunk, one error-queue
check and one printbuffer; on a B2900 two program messages that each end with the error query.
The first branch also sets both sweep channels to 0 V (their levels from the reads before):
a set-up message, its error check and the guard's compliance read-back per channel."""

from __future__ import annotations

import pytest
from sessionlog import MessageLog
from xbarlab.protocols.iv_sweep import branches

from xbarlab.bench import open_bench

CYCLE = branches(1.5, -1.5, 0.05)  # 30, 29, 30, 29 points
BRANCH_TRIPS = {"default": [9, 3, 3, 3], "keysight": [6, 2, 2, 2]}
PER_BRANCH = {"default": 4.5, "keysight": 3.0}  # before messages and memory: 72.5 and 43.5


def reads_then_branches(bench, row=0, col=0, reset_limit=1e-3):
    """The protocol's two reference reads, then one cycle of branches; round trips of each
    branch and which instruments they went to."""
    bench.read(row, col, 0.2, "ground", 1e-3)
    bench.read(row, col, 0.2, "v/2", 1e-3)
    trips, instruments = [], set()
    for branch in CYCLE:
        before = dict(bench.io.counts)
        bench.sweep_cell(row, col, branch, "v/2", 1e-3 if branch[0] > 0 else reset_limit)
        trips.append(bench.last_round_trips)
        instruments |= {name for name, n in bench.io.counts.items() if n != before.get(name, 0)}
    return trips, instruments


@pytest.mark.parametrize("bench_name", sorted(BRANCH_TRIPS))
def test_iv_sweep_round_trips_per_branch(run_named, tmp_path, bench_name):
    """The protocol's own metric, as `xbarlab run iv-sweep --json [--bench keysight]` prints."""
    outcome = run_named("iv-sweep", bench_name, tmp_path / "store")
    assert outcome.metrics["paired_sweeps"] is True
    assert outcome.metrics["round_trips_per_branch"] == PER_BRANCH[bench_name]
    assert PER_BRANCH[bench_name] == sum(BRANCH_TRIPS[bench_name]) / len(CYCLE)
    assert outcome.metrics["switching_fraction"] == 1.0


@pytest.mark.parametrize("bench_name", sorted(BRANCH_TRIPS))
def test_each_branch_s_round_trips_go_to_the_smu_only(bench_name):
    with open_bench(bench_name) as bench:
        trips, instruments = reads_then_branches(bench)
    assert trips == BRANCH_TRIPS[bench_name]
    assert instruments == {"smu"}  # the relays the reads closed stay as they are


@pytest.mark.parametrize("bench_name", sorted(BRANCH_TRIPS))
def test_a_new_limit_is_set_and_read_back_again(bench_name):
    """RESET branches with their own compliance: the first of them sets (and the guard reads
    back) the new limit on both channels; the next runs as cheaply as any other."""
    with open_bench(bench_name) as bench:
        trips, _ = reads_then_branches(bench, reset_limit=2e-3)
    steady = BRANCH_TRIPS[bench_name][1]
    assert trips[1] == trips[3] == steady
    assert trips[2] > steady  # limit changed: set-up and read-back again


READ_BACK = {"default": [f"print(smu{c}.source.limiti)" for c in "ab"],
             "keysight": [f":SENS{n}:CURR:PROT?" for n in (1, 2)]}
FETCH = {"default": "printbuffer(", "keysight": ":OUTP2 ON;:OUTP1 ON;:INIT (@1,2)"}
RESTORE = {"default": "smub.abort(); smua.abort(); smua.trigger.source.stimulus = 0; "
                      "smub.trigger.measure.stimulus = 0; smub.trigger.endpulse.stimulus = 0",
           "keysight": ":TRIG"}
SOURCE_SETUP = {  # function and limit sent again (not trusted), then the level
    "default": [f"smu{c}.source.func = smu{c}.OUTPUT_DCVOLTS; smu{c}.source.limiti = 0.001; "
                f"smu{c}.source.levelv = 0.0" for c in "ab"],
    "keysight": [f":SOUR{n}:FUNC:MODE VOLT;:SOUR{n}:VOLT:MODE FIX;:SENS{n}:CURR:PROT 0.001;"
                 ":SYST:ERR?" for n in (1, 2)],
}


@pytest.mark.parametrize("bench_name", sorted(BRANCH_TRIPS))
def test_an_interrupted_sweep_leaves_nothing_remembered(bench_name):
    """Ctrl-C while the sweep's readings are being fetched: the driver aborts the trigger
    models (2600B) and puts the trigger set-up back, forgets the function and limits, the
    bench forgets the levels and outputs; the next sweep sets both channels up again (limit
    read back) before it runs, and the bench ends with every output off and every relay
    open."""
    with open_bench(bench_name) as bench:
        smu = bench._drivers["smu"]
        world = smu._resource.visalib.world
        reads_then_branches(bench)
        log = MessageLog(smu)
        ask = smu.ask

        def interrupted(command, *args, **kwargs):
            if command.startswith(FETCH[bench_name]):
                log.messages.append("<Ctrl-C>")
                raise KeyboardInterrupt
            return ask(command, *args, **kwargs)

        smu.ask = interrupted
        with pytest.raises(KeyboardInterrupt):
            bench.sweep_cell(0, 0, CYCLE[0], "v/2", 1e-3)
        smu.ask = ask
        after = log.messages[log.messages.index("<Ctrl-C>") + 1:]
        assert after[0].startswith(RESTORE[bench_name])  # put back at once
        assert all(c._known_limit is None and c._function is None
                   for c in smu.channels.values())
        log.messages.clear()
        readings = bench.sweep_cell(0, 0, CYCLE[0], "v/2", 1e-3)
        assert [r.voltage for r in readings] == CYCLE[0]
        for message in SOURCE_SETUP[bench_name] + READ_BACK[bench_name]:
            assert message in log.messages  # both channels set up and read back again
        assert bench.last_round_trips > BRANCH_TRIPS[bench_name][1]
    state = world.state()
    assert not any(t["output"] for t in state["terminals"].values())
    assert not any(state["closed"].values())
