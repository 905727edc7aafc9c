"""The protocol engine: the one place a run lives its life.

Protocols only describe what to measure (`xbarlab.registry`); `run_protocol` owns everything
around them, the way Bluesky's RunEngine owns what its plans describe:

1. find the protocol and load the bench file; check every parameter against its declaration and
   the bench (`ParameterError` in one line, before any instrument is opened or anything stored);
   a resumed run takes its stored parameters and must be on the bench it started on;
2. open the bench (or, for a dry run, compute the protocol's plan and play its first commands
   on a recording copy of the bench: no instrument I/O, and an in-memory store, so a dry run
   leaves nothing behind);
3. start (or resume) the run in the store and keep each instrument's snapshot (identity and
   settings, with units) at its start; attach the newest calibration of the chip, so every
   read and product of the run is corrected (`xbarlab.calibration.record`);
4. run the protocol with progress, SIGTERM turned into an exception and the instruments' safe
   shutdown on every way out (return, exception, Ctrl-C, SIGTERM);
5. store the metrics and the end snapshots (taken after the shutdown: what the instruments were
   left in), and the final status.

The CLI, the dry run, the tests, scripts and notebooks all come through here::

    import xbarlab
    result = xbarlab.run_protocol("write-verify", "analog", rows=2, cols=4)
    print(result.metrics["success_rate"], result.run.latest_map("targets"))
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from xbarlab.benchfile import Bench as BenchSpec
from xbarlab.benchfile import load_bench
from xbarlab.chips import CHECKPOINT as CHIP_CHECKPOINT
from xbarlab.chips import chip_state_file, started_from
from xbarlab.params import ParameterError
from xbarlab.registry import Protocol, get_protocol
from xbarlab.safety import Terminated

DRY_RUN_STATUS = "dry-run"


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C, after its instruments were made safe and its status stored
    (``aborted``, resumable). `result` is its `RunResult`."""

    exit_status = 130

    def __init__(self, result: RunResult):
        super().__init__(f"run {result.run_id} aborted; resume it with resume={result.run_id}")
        self.result = result


class RunTerminated(Terminated):
    """A run stopped by SIGTERM (exit status 143), instruments safe and status stored
    (``aborted``, resumable). `result` is its `RunResult`."""

    exit_status = 143

    def __init__(self, result: RunResult):
        super().__init__()
        self.result = result


class RunFailed(RuntimeError):
    """A protocol raised: the instruments were made safe, every point measured before is kept
    and the run is stored ``failed`` with its traceback. `result` is its `RunResult`; `error`
    (also the cause) the protocol's exception."""

    def __init__(self, result: RunResult, error: BaseException):
        super().__init__(f"run {result.run_id} failed: {one_line(error)}")
        self.result = result
        self.error = error


@dataclass
class RunResult:
    """What a run gave: its id in the store, final status, metrics and resolved parameters.

    `run` reads the run's points and maps back (read-only). A dry run has no id; its `dry_run`
    report says what the protocol would have done, and `run` is the in-memory run it played.
    """

    protocol: str
    run_id: int | None
    status: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    store_dir: Path | None = None
    dry_run: Any = None
    _memory_run: Any = field(default=None, repr=False)

    @cached_property
    def run(self) -> Any:
        """The stored run, read-only (points, maps, checkpoints, snapshots)."""
        if self._memory_run is not None:
            return self._memory_run
        from xbarlab.store import RunStore

        return RunStore(self.store_dir).open_run(self.run_id)

    def summary(self) -> dict[str, Any]:
        """The JSON-ready summary ``xbarlab run --json`` prints."""
        if self.dry_run is not None:
            return {"dry_run": True, "protocol": self.protocol, "params": self.params,
                    **self.dry_run.summary()}
        return {"run_id": self.run_id, "status": self.status, "metrics": self.metrics}


def run_protocol(protocol: str | Protocol, bench: str | os.PathLike | BenchSpec | None = None,
                 *, store: Any = None, resume: int | None = None, dry_run: bool = False,
                 progress: bool | Any = True, remember_chip: bool = False,
                 **params: Any) -> RunResult:
    """Run `protocol` (a name or a `Protocol`) on `bench` (an embedded bench's name, a bench
    file, or a loaded `benchfile.Bench`; when None the protocol's default bench, the embedded
    ``default`` for most) as one run of the
    store `store` (a directory or a `RunStore`; else ``$XBARLAB_DATA``, else
    ``./xbarlab-data``), with `params` as the protocol declares them.

    `resume` continues an interrupted run of the same protocol on the same bench with its
    stored parameters (give none). `dry_run` computes the protocol's plan and plays its first
    commands on recording instruments, and returns the report in `RunResult.dry_run` (nothing
    opened, nothing stored). `progress`:
    True shows a progress bar on stderr, False nothing, or a `Progress` to use.
    `remember_chip`: a virtual bench continues the chip the store keeps for it and keeps it
    again at the end (`xbarlab.chips`; what the CLI does); else (and with a store in memory)
    the run starts from the fresh chip the bench's seed draws.

    Returns a `RunResult`. Raises `ParameterError` or `BenchFileError` (nothing opened),
    `RunInterrupted` (Ctrl-C or SIGTERM) or `RunFailed` (the protocol raised); in both of the
    latter the instruments are safe and the run is stored with what it measured.
    """
    chosen = get_protocol(protocol)
    spec = bench if isinstance(bench, BenchSpec) else load_bench(
        chosen.default_bench if bench is None else str(bench))
    if dry_run:
        if resume is not None:
            raise ParameterError("a dry run plays a protocol from the start; allowed: "
                                 "dry_run without resume")
        return _dry_run(chosen, spec, chosen.resolve(params, spec), progress)
    from xbarlab.store import RunStore

    resolved = chosen.resolve(params, spec) if resume is None else None  # before any file
    owned = not isinstance(store, RunStore)
    runs = RunStore(store) if owned else store
    try:
        if resolved is None:
            resolved = chosen.resolve(_resume_params(runs, resume, chosen, spec, params), spec)
        chip_file = chip_state_file(runs.data_dir, spec) if (
            remember_chip and spec.sim is not None and runs.data_dir is not None) else None
        return _measure(chosen, spec, runs, resolved, resume, progress, chip_file)
    finally:
        if owned:
            runs.close()


def _resume_params(runs, run_id: int, protocol: Protocol, spec: BenchSpec,
                   given: Mapping[str, Any]) -> dict[str, Any]:
    """The stored parameters of run `run_id`, after checking that it is a run of `protocol` on
    the bench described by `spec` and that no new parameters are given."""
    info = runs.run_info(run_id)
    if info.protocol != protocol.name:
        raise ParameterError(f"resume = {run_id}: run {run_id} is a {info.protocol!r} run, not "
                             f"{protocol.name!r}")
    if given:
        raise ParameterError(f"resume = {run_id}: a resumed run keeps its stored parameters; "
                             f"allowed: no parameters (given {', '.join(given)})")
    difference = bench_difference(info.bench_text, spec.text)
    if difference:
        raise ParameterError(f"resume = {run_id}: the bench differs from the one the run "
                             f"started on ({difference}); allowed: the same bench file")
    return dict(info.params)


def bench_difference(stored: str, current: str) -> str:
    """The first line where two bench descriptions differ, in words ('' when they agree);
    comments and blank lines do not count."""
    def lines(text: str) -> list[str]:
        kept = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return [line for line in kept if line]

    old, new = lines(stored), lines(current)
    for before, after in zip(old, new, strict=False):
        if before != after:
            return f"stored {before!r}, now {after!r}"
    if len(old) != len(new):
        longer, label = (old, "stored") if len(old) > len(new) else (new, "now")
        return f"{label} has {longer[min(len(old), len(new))]!r} more"
    return ""


def _progress(progress: bool | Any):
    from xbarlab.progress import Progress

    if isinstance(progress, bool):
        return Progress(show=progress)
    return progress


def _measure(protocol: Protocol, spec: BenchSpec, runs, params: dict[str, Any],
             resume: int | None, progress: bool | Any, chip_file: Path | None) -> RunResult:
    """Open the bench (continuing the chip kept in `chip_file`, if any), start or resume the
    run, run the protocol; the instruments are made safe before the end snapshots and the run's
    final status are stored."""
    from xbarlab.bench import open_bench
    from xbarlab.calibration.record import attach_calibration
    from xbarlab.safety import signals_held

    chip = None if chip_file is None else started_from(chip_file)
    bench = open_bench(spec, chip_state=chip_file)
    try:
        if resume is not None:
            run = runs.resume(resume)
        else:
            run = runs.start_run(protocol.name, params, spec.text, bench.identities,
                                 seed=spec.sim.seed if spec.sim is not None else None,
                                 shape=(bench.rows, bench.cols))
        with signals_held():
            run.record_snapshots("start", bench.snapshot())
            if spec.sim is not None:
                run.checkpoint(CHIP_CHECKPOINT if resume is None else f"{CHIP_CHECKPOINT}/resumed",
                               chip or {"kept": False})
            attach_calibration(bench, runs, run)
    except BaseException:
        bench.close()
        raise
    metrics: dict[str, Any] = {}
    stopped: BaseException | None = None
    try:
        with run:  # its exit stores the status: completed, failed (traceback) or aborted
            try:
                with bench.made_safe(), _progress(progress) as shown:
                    shown.listener = lambda state: run.checkpoint("progress", state)
                    metrics = dict(protocol.function(bench, run, shown, **params) or {})
                    metrics["round_trips"] = bench.round_trips()
                    run.checkpoint("metrics", json_ready(metrics))
            finally:
                with signals_held(redeliver=False):
                    run.record_snapshots("end", bench.snapshot())
                    bench.disconnect()
    except BaseException as error:
        stopped = error
    result = RunResult(protocol.name, run.run_id, run.status, metrics, params, runs.data_dir)
    if stopped is None:
        return result
    if isinstance(stopped, KeyboardInterrupt):
        raise RunInterrupted(result) from stopped
    if isinstance(stopped, Terminated):
        raise RunTerminated(result) from stopped
    if isinstance(stopped, Exception):
        raise RunFailed(result, stopped) from stopped
    raise stopped


STAGE_CHECKPOINT = "pipeline.stage"
"""The checkpoint of a stage's child run that names its stage."""


def run_stage(stage: str, protocol: str | Protocol, bench: Any, run: Any, progress: Any,
              **params: Any) -> RunResult:
    """Run `protocol` as stage `stage` of the protocol running `run` (a pipeline), on the same
    open `bench`, as a child run of `run` in the same store, with its own parameters (checked
    first), snapshots, metrics and status.

    A stage that completed before (a resumed pipeline) is not run again: its stored result is
    returned. A stage that was cut short continues its own child run (its protocol skips what
    that run already did) with its stored parameters. An exception ends the stage's run
    failed or aborted and propagates to the pipeline, which the engine then stores the same.
    """
    from xbarlab.calibration.record import attach_calibration
    from xbarlab.safety import signals_held

    chosen = get_protocol(protocol)
    runs = run.store()
    earlier = _stage_run(runs, run.run_id, stage)
    if earlier is not None and earlier.status == "completed":
        stored = runs.open_run(earlier.run_id)
        return RunResult(chosen.name, earlier.run_id, "completed",
                         stored.checkpoints().get("metrics") or {}, dict(earlier.params),
                         runs.data_dir)
    if earlier is not None:
        resolved = chosen.resolve(earlier.params, bench.spec)
        child = runs.resume(earlier.run_id, force=True)  # its writer is this pipeline's
    else:
        resolved = chosen.resolve(params, bench.spec)
        spec = bench.spec
        child = runs.start_run(chosen.name, resolved, spec.text, bench.identities,
                               seed=spec.sim.seed if spec.sim is not None else None,
                               shape=(bench.rows, bench.cols), parent=run.run_id)
        child.checkpoint(STAGE_CHECKPOINT, stage)
    metrics: dict[str, Any] = {}
    with child:
        with signals_held():
            child.record_snapshots("start", bench.snapshot())
            attach_calibration(bench, runs, child)  # a calibration stage's record included
        try:
            metrics = dict(chosen.function(bench, child, progress, **resolved) or {})
            child.checkpoint("metrics", json_ready(metrics))
        finally:
            with signals_held(redeliver=False):
                bench.idle()
                child.record_snapshots("end", bench.snapshot())
    return RunResult(chosen.name, child.run_id, child.status, metrics, resolved, runs.data_dir)


def _stage_run(runs, parent: int, stage: str):
    """The child run of `parent` that is stage `stage` (the latest), or None."""
    found = None
    for child in runs.children(parent):
        if runs.open_run(child.run_id).checkpoints().get(STAGE_CHECKPOINT) == stage:
            found = child
    return found


def json_ready(value: Any) -> Any:
    """`value` with numpy numbers and arrays as plain JSON values (NaN as null)."""
    return json.loads(json.dumps(value, default=_json_value).replace("NaN", "null"))


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def one_line(error: BaseException) -> str:
    """An exception as one line: its type (unless the message says it all) and its message."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (ValueError, LookupError, RuntimeError, OSError)) and str(error):
        return text
    return f"{type(error).__name__}: {text}"


def _dry_run(protocol: Protocol, spec: BenchSpec, params: dict[str, Any], progress) -> RunResult:
    """The protocol's plan (if it declares one), and the protocol played on a recording copy of
    the bench, with an in-memory run, up to `PLAYED_COMMANDS` instrument commands."""
    from xbarlab.bench import NothingMeasured
    from xbarlab.dryrun import PlayCut, RecordingBench
    from xbarlab.dryrun.report import PLAYED_COMMANDS
    from xbarlab.store import RunStore

    plan = protocol.plan(params, spec) if protocol.plan is not None else None
    recording = RecordingBench(spec, budget=PLAYED_COMMANDS)
    store = RunStore.in_memory()
    run = store.start_run(protocol.name, params, spec.text,
                          shape=(recording.bench.rows, recording.bench.cols))
    metrics: dict[str, Any] = {}
    stopped = ""
    try:
        with run, recording.bench as bench, _progress(progress) as shown:
            metrics = dict(protocol.function(bench, run, shown, **params) or {})
    except PlayCut:
        pass  # the rest is the plan's
    except NothingMeasured as error:  # the rest needs what only a measurement gives
        stopped = str(error)
    report = recording.report(plan, protocol.name, _settings(protocol, spec, params),
                              run.n_points, stopped)
    return RunResult(protocol.name, None, DRY_RUN_STATUS, json_ready(metrics), params,
                     dry_run=report, _memory_run=run)


def _settings(protocol: Protocol, spec: BenchSpec, params: Mapping[str, Any]) -> dict[str, str]:
    """What a run of `protocol` will set, in words: the bench's limits, and every parameter
    with a unit (voltages, current limits, widths, waits) at its resolved value."""
    limits = spec.limits
    bench = (f"bench limits |V| <= {limits.max_voltage:g} V, compliance <= "
             f"{limits.max_compliance:g} A, pulse width <= {limits.max_pulse_width:g} s, pulse "
             f"energy <= {limits.max_energy:g} J, read |V| <= {limits.max_read_voltage:.3g} V")
    united = [f"{name} = {params[name]:g} {declared.param.unit}" + (
              f" ({declared.param.zero})" if declared.param.zero and params[name] == 0 else "")
              for name, declared in protocol.parameters.items()
              if declared.param.unit and isinstance(params.get(name), (int, float))]
    return {"bench": bench, "parameters": "parameters " + ", ".join(united)} if united \
        else {"bench": bench}


__all__ = ["RunFailed", "RunInterrupted", "RunResult", "RunTerminated", "bench_difference",
           "json_ready", "one_line", "run_protocol", "run_stage"]
