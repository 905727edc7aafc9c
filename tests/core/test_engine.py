"""The protocol engine: every registered protocol's parameters checked before anything opens,
the run lifecycle from a script (interrupt, failure, resume), and instrument snapshots."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
import pyvisa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xbarlab
from xbarlab.benchfile import load_bench
from xbarlab.cli import main
from xbarlab.engine import RunFailed, RunInterrupted, bench_difference, run_protocol, run_stage
from xbarlab.export import export_hdf5
from xbarlab.params import ParameterError
from xbarlab.registry import available_protocols, register_protocol
from xbarlab.store import RunStore

PROTOCOLS = available_protocols()
CASES = [(name, entry.name) for name, protocol in PROTOCOLS.items()
         for entry in protocol.parameters.values()]


def bad_values(entry) -> list:
    """Values of the wrong kind, non-finite or beyond a bound, for one declared parameter."""
    if entry.kind is bool:
        return ["yes", 1, None, 1.5]
    if entry.kind is str:
        values: list = [3, None, True, 2.5]
        if entry.param.choices:
            values.append("no-such-choice")
        return values
    values = ["text", True, None, math.nan, math.inf, -math.inf]
    if entry.kind is int:
        values.append(1.5)
    p = entry.param
    huge = 10**30 if entry.kind is int else 1e300
    if p.maximum is not None or p.below is not None:
        values.append(huge)
    if p.minimum is not None or p.above is not None:
        values.append(-huge)
    return values


@pytest.fixture
def nothing_opens(monkeypatch):
    """Fail the test if any bench is opened."""
    def refuse(*args, **kwargs):
        raise AssertionError("an instrument was opened")

    monkeypatch.setattr("xbarlab.bench.open_bench", refuse)
    monkeypatch.setattr("xbarlab.dryrun.RecordingBench", refuse)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), data=st.data(), dry=st.booleans())
def test_every_bad_parameter_of_every_protocol_is_one_line_before_anything_opens(
        case, data, dry, tmp_path_factory, nothing_opens):
    name, parameter = case
    entry = PROTOCOLS[name].parameters[parameter]
    value = data.draw(st.sampled_from(bad_values(entry)), label="value")
    store = tmp_path_factory.mktemp("store")
    with pytest.raises(ParameterError) as refused:
        run_protocol(name, "default", store=store, dry_run=dry, progress=False,
                     **{parameter: value})
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{parameter} = ") and "allowed" in message
    assert list(store.iterdir()) == []


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_an_unknown_parameter_is_named_with_the_allowed_ones(name, tmp_path, nothing_opens):
    with pytest.raises(ParameterError, match=f"'colour' is not a parameter of {name}.*allowed"):
        run_protocol(name, "default", store=tmp_path, progress=False, colour=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_default_passes_every_embedded_bench_it_fits(name):
    protocol = PROTOCOLS[name]
    for bench in ("default", "board", "keysight", "analog"):
        spec = load_bench(bench)
        try:
            protocol.resolve({}, spec)
        except ParameterError as refused:  # a default that needs a bigger chip, a pulse the
            text = str(refused)                # bench cannot make, or a board it has not, is named
            assert ("chip" in text and "cells" in text) or (
                f"no source of bench '{bench}' pulses" in text and "set width=" in text) or (
                f"bench '{bench}' has no array board; allowed: a board bench" in text)


def test_help_lists_every_parameter_with_unit_range_and_default(capsys):
    assert main(["run", "write-verify", "--help"]) == 0
    text = capsys.readouterr().out
    for entry in PROTOCOLS["write-verify"].parameters.values():
        assert f"  {entry.name} ({entry.kind.__name__}, default " in text
    assert "  v_max (float, default 1.3 V)" in text
    assert "allowed: a number >= 0.001 V and <= limits.max_voltage" in text
    assert main(["protocols", "--json"]) == 0
    described = {d["protocol"]: d for d in json.loads(capsys.readouterr().out)}
    tolerance = next(p for p in described["write-verify"]["parameters"]
                     if p["name"] == "tolerance")
    assert tolerance == {"name": "tolerance", "type": "float", "default": 0.01, "unit": "",
                         "help": "relative tolerance around the target", "minimum": 0.0001,
                         "maximum": 0.5}


# ------------------------------------------------------------------------ lifecycle


def world_of(bench: str):
    return pyvisa.ResourceManager(f"{bench}@xbarsim").visalib.world


def outputs_on(world) -> list[str]:
    bench = world.bench
    return [f"{n}.{t}" for n, inst in bench.instruments.items() if inst.kind == "smu"
            for t in inst.info.terminals if world.terminal(f"{n}.{t}").output]


@register_protocol("reads-then-stops")
def reads_then_stops(bench, run, progress):
    """Reads cells (0, 0..3), leaves a source on, then is interrupted (Ctrl-C)."""
    for col in range(4):
        reading = bench.read(0, col, 0.2)
        run.record_point(0, col, "read", reading.voltage, reading.current)
    bench.channels["smu.a"].output_on()
    raise KeyboardInterrupt


@register_protocol("reads-then-fails")
def reads_then_fails(bench, run, progress):
    """Reads cell (1, 1), then raises."""
    reading = bench.read(1, 1, 0.2)
    run.record_point(1, 1, "read", reading.voltage, reading.current)
    raise ZeroDivisionError("the analysis divided by zero")


def test_an_interrupted_run_is_aborted_safe_kept_and_resumable(tmp_path):
    with pytest.raises(RunInterrupted) as stopped:
        run_protocol(reads_then_stops, "default", store=tmp_path, progress=False)
    result = stopped.value.result
    assert result.status == "aborted" and stopped.value.exit_status == 130
    assert len(result.run.points()) == 4
    assert outputs_on(world_of("default")) == []
    with RunStore(tmp_path) as store:
        assert store.run_info(result.run_id).status == "aborted"
    resumed = run_protocol("read-map", "default", store=tmp_path, progress=False)
    assert resumed.run_id == result.run_id + 1  # a new run; the aborted one stays as it was


def test_a_failing_protocol_is_stored_failed_with_its_points(tmp_path):
    expected = "run 1 failed: ZeroDivisionError: the analysis divided by zero"
    with pytest.raises(RunFailed, match=expected) as failed:
        run_protocol(reads_then_fails, "default", store=tmp_path, progress=False)
    assert isinstance(failed.value.error, ZeroDivisionError)
    result = failed.value.result
    assert result.status == "failed" and len(result.run.points()) == 1
    assert "ZeroDivisionError" in result.run.info.traceback


def test_a_resume_on_another_bench_is_refused_naming_the_difference(tmp_path):
    with pytest.raises(RunInterrupted) as stopped:
        run_protocol(reads_then_stops, "default", store=tmp_path, progress=False)
    other = tmp_path / "other.toml"
    other.write_text(load_bench("default").text.replace("seed = 2026", "seed = 2027"))
    with pytest.raises(ParameterError,
                       match=r"the bench differs .*'seed = 2026'.*'seed = 2027'"):
        run_protocol(reads_then_stops, str(other), store=tmp_path, progress=False,
                     resume=stopped.value.result.run_id)
    with pytest.raises(ParameterError, match="is a 'reads-then-stops' run, not 'read-map'"):
        run_protocol("read-map", "default", store=tmp_path, progress=False, resume=1)
    with pytest.raises(ParameterError, match="keeps its stored parameters"):
        run_protocol(reads_then_stops, "default", store=tmp_path, progress=False, resume=1,
                     v_read=0.1)


def test_bench_difference_ignores_comments_and_blank_lines():
    assert bench_difference("a = 1  # x\n\nb = 2\n", "a = 1\nb = 2") == ""
    assert bench_difference("a = 1\nb = 2", "a = 1") == "stored has 'b = 2' more"


def test_snapshots_of_every_instrument_at_start_and_end_in_show_and_hdf5(tmp_path, capsys):
    result = xbarlab.run_protocol("read-map", "keysight", store=tmp_path, progress=False,
                                  cells="0,0-1")
    shots = result.run.snapshots()
    assert [shot.phase for shot in shots] == ["start", "end"]
    end = shots[1].instruments
    assert set(end) == {"smu", "matrix"}
    channel = end["smu"]["settings"]["channels"]["1"]
    assert channel["current_limit"]["unit"] == "A" and channel["nplc"]["unit"] == "PLC"
    assert channel["output"]["value"] is False and channel["source_level"]["value"] == 0.0
    assert end["matrix"]["settings"]["closed"]["value"] == []
    assert end["smu"]["identity"].startswith("Keysight Technologies,B2902B")

    assert main(["show", str(result.run_id), "--store", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "instruments at the start" in shown and "instruments at the end" in shown
    assert "current_limit 0.001 A" in shown

    path = export_hdf5(RunStore(tmp_path), result.run_id, tmp_path / "run.h5")
    with h5py.File(path) as file:
        node = file["snapshots/1-end/smu/1"]
        assert node.attrs["output"] == np.False_
        assert json.loads(node.attrs["units"])["current_limit"] == "A"
        assert file["snapshots/0-start"].attrs["phase"] == "start"


@pytest.mark.parametrize("bench, channels", [
    ("default", ["smu.a", "smu2.b"]), ("keysight", ["smu.1", "smu.2"]),
    ("classic", ["smu1.1", "smu2.1"]),
])
def test_snapshots_read_the_output_off_mode_and_terminals_from_the_instruments(bench, channels):
    with xbarlab.open_bench(bench) as opened:
        for name in channels:
            opened.channels[name].set_output_off_mode("high_z")
        shots = opened.snapshot()
    for name in channels:
        instrument, terminal = name.split(".")
        settings = shots[instrument]["settings"]
        channel = settings.get("channels", {}).get(
            {"a": "smua", "b": "smub"}.get(terminal, terminal), settings)
        assert channel["output_off_mode"] == {"value": "high_z", "unit": ""}
        if bench == "classic":
            assert channel["terminals"]["value"] == "front"


# ------------------------------------------------------------------------ stages

INTERRUPTIONS = []


@register_protocol("reads-once-interrupted")
def reads_once_interrupted(bench, run, progress):
    """Reads cell (1, 0) (once per run), then is interrupted the first time it is called."""
    if not run.points():
        reading = bench.read(1, 0, 0.2)
        run.record_point(1, 0, "read", reading.voltage, reading.current)
    if not INTERRUPTIONS:
        INTERRUPTIONS.append(True)
        raise KeyboardInterrupt
    return {"points": len(run.points())}


@register_protocol("two-stages")
def two_stages(bench, run, progress):
    """A read map, then a stage that is interrupted once: a pipeline in miniature."""
    first = run_stage("map", "read-map", bench, run, progress, cells="0,0-3")
    second = run_stage("flaky", reads_once_interrupted, bench, run, progress)
    return {"stages": [first.run_id, second.run_id], "cells": first.metrics["cells"],
            "points": second.metrics["points"]}


def test_stages_are_child_runs_and_an_interrupted_pipeline_resumes_at_its_stage(tmp_path):
    INTERRUPTIONS.clear()
    with pytest.raises(RunInterrupted) as stopped:
        run_protocol(two_stages, "default", store=tmp_path, progress=False)
    parent = stopped.value.result.run_id
    with RunStore(tmp_path) as store:
        children = store.children(parent)
        assert [(c.protocol, c.status) for c in children] == [
            ("read-map", "completed"), ("reads-once-interrupted", "aborted")]
        map_points = children[0].n_points
        snapshots = store.open_run(children[1].run_id).snapshots()
        assert [shot.phase for shot in snapshots] == ["start", "end"]
    assert outputs_on(world_of("default")) == []
    result = run_protocol(two_stages, "default", store=tmp_path, progress=False, resume=parent)
    assert result.status == "completed" and result.metrics["cells"] == 4
    assert result.metrics["stages"] == [child.run_id for child in children]  # the same runs
    assert result.metrics["points"] == 1  # the interrupted stage's reading was kept, not redone
    with RunStore(tmp_path) as store:
        after = store.children(parent)
        assert [c.status for c in after] == ["completed", "completed"]
        assert after[0].n_points == map_points
        assert store.open_run(after[1].run_id).checkpoints()["pipeline.stage"] == "flaky"
