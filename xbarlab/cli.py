"""The ``xbarlab`` command: check a bench, run protocols on it, and look at the runs.

    xbarlab bench check [--bench FILE]
    xbarlab bench reset [--bench FILE] [--store DIR]   (the virtual chip starts fresh)
    xbarlab run PROTOCOL [--bench FILE] [--set key=value ...] [--dry-run] [--json] [--store DIR]
    xbarlab run PROTOCOL --help          (its parameters: unit, range, default)
    xbarlab protocols [--json]
    xbarlab campaign FILE.toml [--scheduler tcp://HOST:PORT] [--workers N] [--resume RUN]
    xbarlab runs | show RUN | export RUN --format hdf5|csv | plot RUN | report RUN  [--store DIR]
    xbarlab view [--port 8765] [--store DIR]   (a live page on http://127.0.0.1:8765/)
    xbarlab demo

Every run goes through `xbarlab.run_protocol`, the same engine scripts and notebooks use; this
module only parses arguments and prints.

``--bench`` takes a bench-file path or the name of an embedded bench (``default`` when absent).
``--store`` is the run store's directory (else ``$XBARLAB_DATA``, else ``./xbarlab-data``).
A virtual bench's chip remembers what runs did to it, from one command to the next (kept in the
store's ``chips`` folder, its virtual clock running on; ``xbarlab bench reset`` starts it fresh
from its seed). A run commits every point as it is measured; Ctrl-C or SIGTERM ends it
``aborted`` with the instruments made safe first, and ``--resume RUN`` continues it.
``--json`` prints the run summary (run id, status, metrics) as one JSON object on the last line
of stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import threading
import time
import traceback
from pathlib import Path

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


def _demo(args: argparse.Namespace) -> int:
    """Solve one parasitic-aware matrix-vector product and compare it with the ideal one."""
    import numpy as np

    from xbarlab.physics import solve_crossbar

    rng = np.random.default_rng(args.seed)
    n = args.size
    g = rng.uniform(1e-6, 100e-6, size=(n, n))  # binary preset's HRS..LRS range, 1 MΩ..10 kΩ
    v_row = rng.uniform(0.0, 0.2, size=n)  # read voltages up to the 0.2 V default
    v_col = np.zeros(n)  # TIA virtual grounds
    parasitics = dict(r_source=args.r_source, r_sense=args.r_sense,
                      r_wire_row=args.r_wire, r_wire_col=args.r_wire)
    started = time.perf_counter()
    solve_crossbar(g, v_row, v_col, **parasitics)  # first call loads the cached numba kernels
    first = time.perf_counter() - started
    started = time.perf_counter()
    solution = solve_crossbar(g, v_row, v_col, **parasitics)
    elapsed = time.perf_counter() - started
    ideal = v_row @ g
    error = np.abs(solution.i_col - ideal) / np.abs(ideal).max()
    kappa = args.r_wire * g.max() * n * n
    print(f"crossbar {n}x{n}, G 1-100 uS, R_wire {args.r_wire} ohm/segment, "
          f"R_source {args.r_source} ohm, R_sense {args.r_sense} ohm (kappa = {kappa:.3g})")
    print(f"exact solve: {elapsed * 1e3:.1f} ms, {solution.iterations} CG iterations "
          f"(first call, loading the compiled kernels: {first * 1e3:.0f} ms)")
    print(f"IR drop vs ideal v@G: max {error.max():.2%}, mean {error.mean():.2%} "
          "of the largest current")
    return 0


class CommandError(ValueError):
    """A user error the command reports in one line (bad run id, an impossible request)."""


# ------------------------------------------------------------------------ bench check


def _bench_check(args: argparse.Namespace) -> int:
    """Connect, identify, drain error queues, and run the wiring self-test."""
    from xbarlab.bench import open_bench

    with open_bench(args.bench) as bench:
        print(f"bench {bench.spec.name!r} ({bench.spec.origin}): "
              f"{bench.rows}x{bench.cols} {bench.spec.chip.device} chip")
        for name, identity in bench.identities.items():
            address = bench.spec.instruments[name].address
            print(f"  {name:<10} {address:<20} {identity}")
        results = bench.self_test() + bench.check_error_queues()  # errors the test caused
    failed = [item for item in results if not item[1]]
    for item, ok, detail in results:
        if not ok or args.verbose:
            print(f"  {'ok ' if ok else 'FAIL'} {item}: {detail}")
    print(f"{len(results) - len(failed)} of {len(results)} checks passed")
    return EXIT_FAILED if failed else 0


def _bench_reset(args: argparse.Namespace) -> int:
    """Forget the virtual chip the store keeps for a bench: its next run starts fresh."""
    from xbarlab.benchfile import load_bench
    from xbarlab.chips import forget_chip
    from xbarlab.store import resolve_data_dir

    spec = load_bench(args.bench)
    if spec.sim is None:
        raise CommandError(f"bench {spec.name!r} is a real bench (no [sim] section): its chip "
                           "keeps its state; allowed: a virtual bench")
    kept = forget_chip(resolve_data_dir(args.store), spec)
    was = (f"forgot the chip kept at virtual time {kept['virtual_time_s']:.6g} s ({kept['file']})"
           if kept["kept"] else "no chip was kept")
    print(f"bench {spec.name!r}: {was}; the next run starts from the fresh chip of seed "
          f"{spec.sim.seed}")
    return 0


# ------------------------------------------------------------------------ run, protocols


def _run(args: argparse.Namespace) -> int:
    """Run a protocol through the engine (`xbarlab.run_protocol`) and print its summary."""
    from xbarlab.engine import RunFailed, RunInterrupted, RunTerminated, run_protocol
    from xbarlab.registry import get_protocol

    if args.help:
        return _protocol_help(args)
    protocol = get_protocol(args.protocol)
    params = protocol.parse_settings(args.set)
    if args.resume is not None and params:
        raise CommandError("--set cannot change the parameters of a resumed run")
    try:
        result = run_protocol(protocol, args.bench, store=args.store, resume=args.resume,
                              dry_run=args.dry_run, progress=not args.quiet,
                              remember_chip=True, **params)
    except (RunInterrupted, RunTerminated) as stopped:
        _print_summary(args, stopped.result)
        return stopped.exit_status
    except RunFailed as failed:
        _print_summary(args, failed.result)
        print("\n".join(_failure_lines(failed)), file=sys.stderr)
        if args.debug:
            traceback.print_exception(failed.error)
        return EXIT_FAILED
    if result.dry_run is not None:
        print(result.dry_run.format())
        if args.json:
            print(json.dumps(result.summary()))
        return EXIT_FAILED if result.dry_run.violations else 0
    _print_summary(args, result)
    return 0


def _failure_lines(failed) -> list[str]:
    """A failed run in two lines: what failed (the instrument, the command and its reply,
    as the error names them), then which instruments were made safe and what was kept."""
    from xbarlab.engine import one_line
    from xbarlab.safety import ShutdownError

    result = failed.result
    failures = getattr(failed.error, "shutdown_failures", None) or (
        failed.error.failures if isinstance(failed.error, ShutdownError) else [])
    unsafe: dict = {}  # a channel and its instrument may both have failed: each named once
    for name, error in failures:
        unsafe.setdefault(name, error)
    if unsafe:
        safe = "NOT made safe: " + "; ".join(
            f"{name} ({one_line(error)[:80]})" for name, error in unsafe.items())
    else:
        safe = "the instruments were made safe"
    kept = result.run.info.n_points if result.run_id is not None else 0
    return [f"xbarlab run: {failed}"[:400],
            f"  {safe}; the {kept} points measured are kept (xbarlab show {result.run_id})"]


def _print_summary(args: argparse.Namespace, result) -> None:
    """The run's summary: the protocol's table of its metrics where it has one, then one JSON
    object on the last line (``--json``), else one line."""
    from xbarlab.engine import json_ready
    from xbarlab.registry import get_protocol

    table = get_protocol(result.protocol).table
    if table is not None and result.metrics:
        print(table(result.metrics))
    if args.json:
        print(json.dumps(json_ready(result.summary())))
        return
    shown = "" if table is not None else ", ".join(
        f"{k} = {v}" for k, v in result.metrics.items() if k != "round_trips")
    print(f"run {result.run_id} {result.status}" + (f": {shown}" if shown else ""))


def _protocol_help(args: argparse.Namespace) -> int:
    """``xbarlab run PROTOCOL --help``: every parameter with unit, range and default."""
    from xbarlab.params import help_lines
    from xbarlab.registry import available_protocols, get_protocol

    if args.protocol is None:
        args.parser.print_help()
        print(f"\nprotocols: {', '.join(available_protocols())}\n"
              "xbarlab run PROTOCOL --help lists a protocol's parameters")
        return 0
    protocol = get_protocol(args.protocol)
    print(f"xbarlab run {protocol.name} [--bench B] [--set NAME=VALUE ...] [--dry-run] "
          "[--json] [--resume RUN] [--store DIR]\n")
    print(protocol.summary + "\n")
    print("parameters (--set NAME=VALUE):")
    print("\n".join(help_lines(protocol.parameters)))
    return 0


def _campaign(args: argparse.Namespace) -> int:
    """Run a campaign file's tasks on Dask (`xbarlab.campaign.run_campaign`)."""
    from xbarlab.campaign import load_campaign, run_campaign
    from xbarlab.engine import json_ready

    campaign = load_campaign(args.file)
    result = run_campaign(campaign, args.store, scheduler=args.scheduler, workers=args.workers,
                          resume=args.resume, progress=not args.quiet)
    if args.json:
        print(json.dumps(json_ready(result.summary())))
    else:
        print(f"campaign run {result.run_id} {result.status}: {result.completed} of "
              f"{result.tasks} tasks completed, {result.failed} failed, {result.skipped} done "
              f"before, {result.seconds:.1f} s")
        for entry in result.statistics:
            print("  " + _statistics_line(entry))
        for path in result.files:
            print(f"  {path}")
    return EXIT_FAILED if result.failed else 0


def _statistics_line(entry: dict) -> str:
    """One campaign setting's line: its swept values, then each metric as mean ± s.d. (n)."""
    values = [f"{key}={value}" for key, value in entry.items()
              if not isinstance(value, dict) and key != "tasks"]
    metrics = [f"{key} {value['mean']:.4g} ± {value['std']:.2g} (n={value['n']})"
               for key, value in entry.items() if isinstance(value, dict)]
    return f"{', '.join(values) or 'all tasks'}: " + ("; ".join(metrics) or "no numeric metric")


def _protocols(args: argparse.Namespace) -> int:
    """List the protocols and their parameters (``--json``: the description tools read)."""
    from xbarlab.registry import available_protocols

    protocols = available_protocols()
    if args.json:
        print(json.dumps([protocol.describe() for protocol in protocols.values()]))
        return 0
    for name, protocol in protocols.items():
        print(f"{name:<18} {protocol.summary}")
    return 0


# ------------------------------------------------------------------------ runs, show, export


def _reading_store(args: argparse.Namespace, read_only: bool = True):
    """The existing run store that a reading command (runs, show, export, plot, report) names;
    a path with no store is refused, never created (`read_only` false: a command that changes
    a record in it, such as ``calibration retire``)."""
    from xbarlab.store import RunStore, resolve_data_dir
    from xbarlab.store.runstore import DB_FILENAME

    folder = resolve_data_dir(args.store)
    if not (folder / DB_FILENAME).is_file():
        raise CommandError(f"no run store at {folder} ({DB_FILENAME} not found); allowed: the "
                           "folder of a store a run wrote (--store DIR, or $XBARLAB_DATA)")
    return RunStore(folder, read_only=read_only)


def _runs(args: argparse.Namespace) -> int:
    """List the runs of the store, newest first, with the bench and chip of each."""
    from xbarlab.provenance import bench_and_chip
    from xbarlab.store import shown_status

    with _reading_store(args) as store:
        runs = store.runs(args.status)
        if not runs:
            print(f"no runs in {store.data_dir}")
            return 0
        print(f"{'id':>4}  {'protocol':<17} {'status':<11} {'started (UTC)':<19} "
              f"{'points':>8} {'maps':>5}  {'bench':<10} chip")
        for info in runs:
            bench, chip = bench_and_chip(info.bench_text)
            print(f"{info.run_id:>4}  {info.protocol:<17} {shown_status(info):<11} "
                  f"{_utc(info.started_at):<19} {info.n_points:>8} {info.n_maps:>5}  "
                  f"{bench:<10} {chip}")
    return 0


SHOWN_LIST = 6
"""Items of a list metric shown by ``xbarlab show`` (the rest counted; ``--json`` has all)."""


def _show(args: argparse.Namespace) -> int:
    """One run on a screen: metadata, bench and chip, parameters with units, metrics, counts,
    maps as statistics, history, instruments; ``--json`` all of it as one object, ``--points``
    every point (CSV, or JSON lines with ``--json``), streamed in bounded memory."""
    from xbarlab.engine import json_ready

    with _reading_store(args) as store:
        run = store.open_run(args.run)
        info = run.info
        if args.points:
            _print_points(run, info, args.json)
        elif args.json:
            print(json.dumps(json_ready(_run_summary(run, info)), indent=1))
        else:
            for line in _show_lines(run, info):
                print(line)
    return 0


def _run_summary(run, info) -> dict:
    """Everything `xbarlab show --json` prints: the metadata, maps' statistics, counts,
    checkpoints, history and snapshots (not the points: ``--points``)."""
    import dataclasses

    from xbarlab.calibration.record import summary_of
    from xbarlab.export import iso_utc
    from xbarlab.provenance import bench_and_chip

    bench, chip = bench_and_chip(info.bench_text)
    fields = dataclasses.asdict(info)
    fields.update(started_at_iso=iso_utc(info.started_at), bench=bench, chip=chip,
                  ended_at_iso=iso_utc(info.ended_at) if info.ended_at else None,
                  parameter_units=_parameter_units(info), points=run.operation_counts(),
                  maps=[_map_statistics(name, run.maps(name)) for name in run.map_names()],
                  checkpoints=run.checkpoints(),
                  events=[dataclasses.asdict(event) for event in run.events()],
                  snapshots=[dataclasses.asdict(shot) for shot in run.snapshots()],
                  calibrations=[summary_of(stored) for stored in run.calibrations()])
    fields["metrics"] = fields["checkpoints"].pop("metrics", None)
    return fields


def _parameter_units(info) -> dict[str, str]:
    from xbarlab.registry import available_protocols

    declared = getattr(available_protocols().get(info.protocol), "parameters", {})
    return {name: declared[name].param.unit for name in info.params if name in declared}


def _map_statistics(name: str, records: list) -> dict:
    """A map name's count and the statistics of its latest map's finite values."""
    import numpy as np

    data = records[-1].data
    finite = data[np.isfinite(data)]
    statistics = {"name": name, "unit": records[-1].unit, "count": len(records),
                  "shape": list(data.shape), "finite": int(finite.size)}
    if finite.size:
        statistics.update(median=float(np.median(finite)), min=float(finite.min()),
                          max=float(finite.max()))
    return statistics


def _chip_text(chip: dict, seed: int | None) -> str:
    """Where a run's virtual chip started (its ``chip`` checkpoint, `xbarlab.chips`)."""
    if not chip.get("kept"):
        return f"a fresh chip drawn from seed {seed}"
    return (f"continued the chip kept at virtual time {chip['virtual_time_s']:.6g} s, saved "
            f"{_utc(chip['saved_at'])} UTC (sha256 {chip['sha256'][:12]}, {chip['file']})")


def _show_lines(run, info) -> list[str]:
    """The screen of `xbarlab show`."""
    from xbarlab.chips import CHECKPOINT as CHIP_CHECKPOINT
    from xbarlab.provenance import bench_and_chip
    from xbarlab.store import shown_status

    bench, chip = bench_and_chip(info.bench_text)
    duration = f", {info.ended_at - info.started_at:.1f} s" if info.ended_at else ""
    lines = [f"run {info.run_id}: {info.protocol} ({shown_status(info)})",
             f"  bench {bench}, chip {chip}, seed {info.seed}",
             f"  started {_utc(info.started_at)} UTC, ended "
             f"{_utc(info.ended_at) + ' UTC' if info.ended_at else '-'}{duration}; xbarlab "
             f"{info.software_version}, host {info.writer_host}, pid {info.writer_pid}"]
    if info.parent_id is not None:
        lines.append(f"  part of run {info.parent_id}")
    checkpoints = run.checkpoints()
    if CHIP_CHECKPOINT in checkpoints:
        lines.append(f"  virtual chip: {_chip_text(checkpoints[CHIP_CHECKPOINT], info.seed)}")
    units = _parameter_units(info)
    lines += _wrapped("parameters", [f"{name} {_value_text(value)}"
                                     + (f" {units[name]}" if units.get(name) else "")
                                     for name, value in info.params.items()])
    metrics = checkpoints.pop("metrics", None) or {}
    used = checkpoints.get("calibration")
    if used:
        lines.append(f"  corrected with calibration record #{used['id']} (measured by run "
                     f"{used['run']} at {_utc(used['created_at'])} UTC)")
    lines += _wrapped("metrics", [f"{name} {_value_text(value)}"
                                  for name, value in _flat_items(metrics)])
    counts = run.operation_counts()
    lines.append(f"  points: {info.n_points}" + (" (" + ", ".join(
        f"{op} {n}" for op, n in counts.items()) + ")" if counts else ""))
    for name in run.map_names():
        stats = _map_statistics(name, run.maps(name))
        unit = f" {stats['unit']}" if stats["unit"] not in ("", "1") else ""
        spread = (f"median {stats['median']:.4g}{unit}, min {stats['min']:.4g}, max "
                  f"{stats['max']:.4g}" if stats["finite"] else "no finite values")
        lines.append(f"  map {name} ({stats['shape'][0]}x{stats['shape'][1]}, "
                     f"{stats['finite']} cells, {stats['count']} recorded): {spread}")
    if checkpoints:
        lines.append(f"  {len(checkpoints)} checkpoints (--json lists them)")
    lines += [f"  calibration record {_calibration_line(stored)}"
              for stored in run.calibrations()]
    if info.traceback:
        lines.append(f"  error: {info.traceback.strip().splitlines()[-1]}")
    lines.append("  history: " + ", ".join(f"{event.event} {_utc(event.t)}"
                                           for event in run.events()))
    shots = run.snapshots()
    if shots:  # the last session's start in full, its end as changes; --json has them all
        starts = [k for k, shot in enumerate(shots) if shot.phase == "start"]
        first = starts[-1] if starts else len(shots) - 1
        shot = shots[first]
        lines.append(f"  instruments at the {shot.phase} ({_utc(shot.t)} UTC; "
                     f"{len(shots)} snapshots, --json has all):")
        lines += [f"    {line}" for line in _snapshot_lines(shot.instruments)]
        for end in shots[first + 1:first + 2]:
            changes = _snapshot_changes(shot.instruments, end.instruments)
            lines.append(f"  instruments at the {end.phase} ({_utc(end.t)} UTC): "
                         + ("as at the start" if not changes else "changed " + "; ".join(
                             changes)))
    return [part for line in lines for part in textwrap.wrap(
        line, 100, subsequent_indent=" " * (len(line) - len(line.lstrip()) + 4))]


def _flat_items(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested metrics as (``outer/inner``, value) pairs."""
    items = []
    for key, value in values.items():
        if isinstance(value, dict):
            items += _flat_items(value, f"{prefix}{key}/")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _value_text(value) -> str:
    """A value for the screen: floats to 4 significant digits, long lists shortened."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(_value_text(item) for item in value[:SHOWN_LIST])
        more = f", ... {len(value)} in all" if len(value) > SHOWN_LIST else ""
        return f"[{shown}{more}]"
    if isinstance(value, str) and len(value) > 60:
        return value[:57] + "..."
    return str(value)


def _wrapped(label: str, items: list[str], width: int = 100) -> list[str]:
    """``  label: a, b, c`` wrapped at `width` characters."""
    if not items:
        return [f"  {label}: none"]
    lines, line = [], f"  {label}: "
    for k, item in enumerate(items):
        text = item + ("," if k < len(items) - 1 else "")
        if len(line) + len(text) > width and line.strip() != f"{label}:":
            lines.append(line.rstrip())
            line = "    "
        line += text + " "
    lines.append(line.rstrip())
    return lines


def _print_points(run, info, as_json: bool) -> None:
    """Every point on stdout, a chunk at a time: CSV with units (`export.write_points_csv`),
    or one JSON object per line."""
    import numpy as np

    from xbarlab.export import CSV_COLUMNS, point_rows, write_points_csv

    if not as_json:
        write_points_csv(run, info, sys.stdout)
        return
    numbers = {"voltage", "current", "pulse_width", "t"}

    def value(name: str, item):
        if name not in numbers:
            return item
        if item == "":
            return None  # not measured
        number = float(item)
        return number if np.isfinite(number) else item  # NaN and inf as text, as reported

    keys = [f"{name}_s_since_start" if name == "t" else name for name in CSV_COLUMNS]
    for rows in point_rows(run, info):
        sys.stdout.write("".join(json.dumps({key: value(name, item) for key, name, item in zip(
            keys, CSV_COLUMNS, row, strict=True)}) + "\n" for row in rows))


def _snapshot_changes(before: dict, after: dict) -> list[str]:
    """The settings whose value differs between two snapshots, ``instrument.setting value``."""
    changes = []
    for name, shot in after.items():
        old = dict(before.get(name, {}).get("settings", {}))
        new = dict(shot.get("settings", {}))
        groups = {"": (old, new), **{channel: (old.get("channels", {}).get(channel, {}), values)
                                     for channel, values in new.pop("channels", {}).items()}}
        old.pop("channels", None)
        for channel, (was, now) in groups.items():
            for key, entry in now.items():
                if was.get(key) != entry:
                    where = f"{name}.{channel}." if channel else f"{name}."
                    changes.append(f"{where}{key} {_setting_text(entry)}")
    return changes


# ------------------------------------------------------------------------ calibration records


def _calibration_line(stored) -> str:
    """One calibration record on one line: id, chip, run, age and each median with its CI."""
    from xbarlab.calibration.record import summary_of

    summary = summary_of(stored)
    state = "retired " + _utc(stored.retired_at) if stored.retired_at else "in use"
    medians = ", ".join(
        f"{name} {summary[name]['value']:.4g} [{summary[name]['ci95'][0]:.4g}, "
        f"{summary[name]['ci95'][1]:.4g}] ohm" for name in ("r_source", "r_sense",
                                                             "r_wire_row", "r_wire_col")
        if name in summary)
    return (f"#{stored.calibration_id} chip {stored.chip_id!r} by run {stored.run_id} at "
            f"{_utc(stored.created_at)} ({state}): {medians}")


def _calibration(args: argparse.Namespace) -> int:
    """List, show, export or retire the chips' calibration records."""
    import numpy as np

    from xbarlab.calibration.record import export_calibration, summary_of

    with _reading_store(args, read_only=args.calibration_command != "retire") as store:
        if args.calibration_command == "list":
            records = store.calibrations(args.chip, retired=args.all)
            if args.json:
                print(json.dumps([summary_of(stored) for stored in records]))
            elif not records:
                print(f"no calibration records{f' of chip {args.chip!r}' if args.chip else ''} "
                      f"in {store.data_dir}")
            for stored in [] if args.json else records:
                print(_calibration_line(stored))
            return 0
        stored = store.calibration(args.id)
        if args.calibration_command == "retire":
            stored = store.retire_calibration(args.id)
            newest = store.latest_calibration(stored.chip_id)
            print(f"retired {_calibration_line(stored)}")
            print(f"chip {stored.chip_id!r} now uses "
                  + (f"#{newest.calibration_id}" if newest else "no calibration"))
        elif args.calibration_command == "export":
            out = Path(args.out or f"calibration-{stored.calibration_id}.json")
            if out.exists() and not args.overwrite:
                raise CommandError(f"{out} exists; allowed: a new file, or --overwrite")
            export_calibration(stored, out)
            print(out)
        else:
            print(json.dumps(summary_of(stored), indent=1) if args.json
                  else _calibration_line(stored))
            if not args.json:
                for name, entry in stored.record["intervals"].items():
                    if "per_line" in entry:
                        values = np.array(entry["per_line"])
                        print(f"  {name} per line: min {values.min():.4g}, median "
                              f"{np.median(values):.4g}, max {values.max():.4g} ohm")
                fit = stored.record.get("fit", {})
                print(f"  fit: {fit.get('data_count')} entries, reduced chi-square "
                      f"{fit.get('chi2_reduced', float('nan')):.3g}; measured with "
                      f"{json.dumps(stored.record.get('measurement', {}))}")
    return 0


def _snapshot_lines(instruments: dict) -> list[str]:
    """An instrument snapshot as lines: identity, then ``setting value unit`` per channel."""
    lines = []
    for name, shot in instruments.items():
        lines.append(f"{name} ({shot.get('model', '?')} at {shot.get('address', '?')}): "
                     f"{shot.get('identity', '')}")
        if "error" in shot:
            lines.append(f"  not read: {shot['error']}")
        settings = dict(shot.get("settings", {}))
        groups = {"": settings, **settings.pop("channels", {})}
        for channel, values in groups.items():
            if values:
                prefix = f"  {channel}: " if channel else "  "
                lines.append(prefix + ", ".join(f"{key} {_setting_text(entry)}"
                                                for key, entry in values.items()))
    return lines


def _setting_text(entry: dict) -> str:
    """One snapshot value with its unit; long lists as counts of each value."""
    if "error" in entry:
        return "(not read)"
    value, unit = entry.get("value"), entry.get("unit", "")
    if isinstance(value, list) and len(value) > 8:
        counts: dict[str, int] = {}
        for item in value:
            counts[str(item)] = counts.get(str(item), 0) + 1
        value = "[" + ", ".join(f"{k} x{n}" for k, n in counts.items()) + "]"
    return f"{value} {unit}".rstrip()


def _export(args: argparse.Namespace) -> int:
    """Write a run to HDF5 (one file) or CSV (points, maps, metadata)."""
    from xbarlab.export import export_csv, export_hdf5

    with _reading_store(args) as store:
        if args.format == "hdf5":
            out = Path(args.out or f"run-{args.run}.h5")
            paths = [export_hdf5(store, args.run, out, overwrite=args.overwrite)]
        else:
            out = Path(args.out or f"run-{args.run}-csv")
            paths = export_csv(store, args.run, out, overwrite=args.overwrite)
    for path in paths:
        print(path)
    return 0


def _report(args: argparse.Namespace) -> int:
    """One self-contained HTML file of a run (`xbarlab.report`)."""
    from xbarlab.report import write_report

    with _reading_store(args) as store:
        print(write_report(store, args.run, args.out))
    return 0


def _plot(args: argparse.Namespace) -> int:
    """PNGs of a run: the figures its protocol declares (else its maps and points), next to
    the run in the store (``--out DIR`` to choose)."""
    from xbarlab.figures import run_figures, save_run_figures

    with _reading_store(args) as store:
        run = store.open_run(args.run)
        figures = run_figures(run)
        if not figures:
            raise CommandError(f"run {args.run} has nothing to plot yet (no points, no maps)")
        paths = save_run_figures(run, figures, run.info.protocol, args.out or store.data_dir)
    for path in paths:
        print(path)
    return 0


def _view(args: argparse.Namespace) -> int:
    """Serve the live view of the store on the loopback interface (`xbarlab.view`)."""
    from xbarlab.view import serve

    _reading_store(args).close()  # an existing store, or a one-line refusal
    serve(args.store, args.port)
    return 0


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


# ------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xbarlab`` command."""
    parser = argparse.ArgumentParser(prog="xbarlab", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error, not only its one-line message")
    parser.add_argument("--log", default=None, metavar="FILE",
                        help="append every instrument write and read (DEBUG) and instrument "
                             "errors (WARNING) to FILE, one timestamped line each")
    commands = parser.add_subparsers(dest="command", required=True)

    def store_option(command: argparse.ArgumentParser) -> None:
        command.add_argument("--store", default=None,
                             help="run store directory (default $XBARLAB_DATA or ./xbarlab-data)")

    bench = commands.add_parser("bench", help="bench commands")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True)
    check = bench_commands.add_parser(
        "check", help="connect, identify, read error queues, run the wiring self-test")
    check.add_argument("--bench", default=None, help="bench file or embedded bench name")
    check.add_argument("--verbose", "-v", action="store_true", help="list passing checks too")
    check.set_defaults(handler=_bench_check)
    reset = bench_commands.add_parser(
        "reset", help="forget the virtual chip the store keeps for a bench: the next run starts "
                      "from the fresh chip of the bench's seed")
    reset.add_argument("--bench", default=None, help="bench file or embedded bench name")
    store_option(reset)
    reset.set_defaults(handler=_bench_reset)

    run = commands.add_parser("run", help="run a protocol on the bench", add_help=False)
    run.add_argument("protocol", nargs="?", default=None,
                     help="protocol name (an unknown name lists the available)")
    run.add_argument("-h", "--help", action="store_true",
                     help="show this help, or a protocol's parameters with a protocol name")
    run.add_argument("--bench", default=None, help="bench file or embedded bench name")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="protocol parameter (repeatable)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the protocol's plan and play its first commands on a "
                          "recording bench: no instrument I/O; exit status 1 if it would "
                          "break a limit")
    run.add_argument("--json", action="store_true",
                     help="print the summary as one JSON object on the last line")
    run.add_argument("--resume", type=int, default=None, metavar="RUN",
                     help="continue an interrupted run, skipping what it already did")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    store_option(run)
    run.set_defaults(handler=_run, parser=run)

    campaign = commands.add_parser(
        "campaign", help="run a campaign file's protocol runs on Dask (seeds, grids, benches)")
    campaign.add_argument("file", help="campaign file (TOML)")
    campaign.add_argument("--scheduler", default=None, metavar="ADDRESS",
                          help="an existing Dask scheduler (tcp://host:port); default: a local "
                               "cluster of single-threaded worker processes")
    campaign.add_argument("--workers", type=int, default=None,
                          help="workers of the local cluster (default: one per core)")
    campaign.add_argument("--resume", type=int, default=None, metavar="RUN",
                          help="continue campaign run RUN: its completed tasks are skipped")
    campaign.add_argument("--json", action="store_true",
                          help="print the summary as one JSON object on the last line")
    campaign.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    store_option(campaign)
    campaign.set_defaults(handler=_campaign)

    protocols = commands.add_parser("protocols", help="the protocols and their parameters")
    protocols.add_argument("--json", action="store_true",
                           help="every protocol's parameters (type, unit, range, default, help)")
    protocols.set_defaults(handler=_protocols)

    runs = commands.add_parser("runs", help="list the runs in the store")
    runs.add_argument("--status", default=None, help="only runs with this status")
    store_option(runs)
    runs.set_defaults(handler=_runs)

    show = commands.add_parser("show", help="a run on one screen: metadata, bench, chip, "
                                            "parameters, metrics, counts, maps as statistics")
    show.add_argument("run", type=int)
    show.add_argument("--json", action="store_true",
                      help="everything as one JSON object (checkpoints, snapshots, history)")
    show.add_argument("--points", action="store_true",
                      help="every point, streamed: CSV with units, or JSON lines with --json")
    store_option(show)
    show.set_defaults(handler=_show)

    export = commands.add_parser("export", help="export a run to HDF5 or CSV")
    export.add_argument("run", type=int)
    export.add_argument("--format", choices=("hdf5", "csv"), required=True)
    export.add_argument("--out", "-o", default=None, help="file (hdf5) or directory (csv)")
    export.add_argument("--overwrite", action="store_true")
    store_option(export)
    export.set_defaults(handler=_export)

    report = commands.add_parser(
        "report", help="one self-contained HTML file of a run: metadata, parameters, metrics, "
                       "figures, instrument snapshots")
    report.add_argument("run", type=int)
    report.add_argument("--out", "-o", default=None,
                        help="HTML path (default report-<id>.html next to the store)")
    store_option(report)
    report.set_defaults(handler=_report)

    plot = commands.add_parser("plot", help="PNGs of a run: its protocol's figures, with units")
    plot.add_argument("run", type=int)
    plot.add_argument("--out", "-o", default=None, metavar="DIR",
                      help="folder of the PNGs run-<id>-<protocol>[-k].png (default: the "
                           "run store's folder, beside the run)")
    store_option(plot)
    plot.set_defaults(handler=_plot)

    calibration = commands.add_parser("calibration", help="the chips' calibration records")
    calibration_commands = calibration.add_subparsers(dest="calibration_command", required=True)
    listing = calibration_commands.add_parser("list", help="calibration records, newest first")
    listing.add_argument("--chip", default=None, help="only this chip's ([chip] id)")
    listing.add_argument("--all", action="store_true", help="retired records too")
    listing.add_argument("--json", action="store_true", help="one JSON list")
    store_option(listing)
    for name, text in (("show", "one record: resistances, intervals, how it was measured"),
                       ("export", "one record as a JSON file"),
                       ("retire", "stop later runs from using a record")):
        command = calibration_commands.add_parser(name, help=text)
        command.add_argument("id", type=int, help="calibration record id")
        store_option(command)
        if name == "show":
            command.add_argument("--json", action="store_true")
        if name == "export":
            command.add_argument("--out", default=None,
                                 help="file (default calibration-<id>.json)")
            command.add_argument("--overwrite", action="store_true")
    calibration.set_defaults(handler=_calibration)

    view = commands.add_parser(
        "view", help="a local web page following the store's runs live (127.0.0.1 only)")
    view.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    store_option(view)
    view.set_defaults(handler=_view)

    demo = commands.add_parser(
        "demo", help="solve a parasitic crossbar and report the IR-drop error"
    )
    demo.add_argument("--size", type=int, default=64, help="rows = columns (default 64)")
    demo.add_argument("--seed", type=int, default=0, help="RNG seed (default 0)")
    demo.add_argument("--r-wire", type=float, default=1.0, help="ohm per wire segment (default 1)")
    demo.add_argument("--r-source", type=float, default=100.0, help="driver ohms (default 100)")
    demo.add_argument("--r-sense", type=float, default=100.0, help="sense ohms (default 100)")
    demo.set_defaults(handler=_demo)
    return parser


def _log_to(path: str) -> None:
    """Send the ``xbarlab`` loggers (each instrument's I/O at DEBUG, errors at WARNING) to a
    file, as PyMeasure and QCoDeS users log their instruments."""
    import logging

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("xbarlab")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xbarlab`` console script.

    A user's mistake (a bad parameter, bench file, run id or protocol name) is one line and exit
    status 2; an instrument or protocol failure one or two lines and 1 (``--debug`` adds the
    traceback); Ctrl-C 130 and SIGTERM 143, the instruments made safe first. Ctrl-C anywhere,
    while the modules load, during a bench check, or a second one while the first is handled,
    ends the same way: one line and 130."""
    command = "xbarlab"
    _redeliver_interrupts_from_callbacks()
    try:
        args = build_parser().parse_args(argv)
        command = f"xbarlab {args.command}"
        return _dispatch(args)
    except KeyboardInterrupt:
        _ignore_further_interrupts()
        print(f"{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _redeliver_interrupts_from_callbacks() -> None:
    """A Ctrl-C that lands in a callback Python cannot raise from (a weakref callback of the
    import system while a module loads, a finalizer) would be printed as "Exception ignored"
    with a traceback and lost: signal it again instead, so it ends the run where it can (a
    no-op once further interrupts are ignored)."""
    default = sys.unraisablehook

    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):  # (after the callback ends)
            threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        default(unraisable)

    sys.unraisablehook = hook


def _ignore_further_interrupts() -> None:
    """From now on Ctrl-C is ignored (the process is ending with 130); a Ctrl-C that lands
    while this is being arranged is absorbed too."""
    while True:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            continue


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command's handler; errors become one line and an exit status (see `main`)."""
    from xbarlab.bench import BenchError
    from xbarlab.benchfile import BenchFileError
    from xbarlab.campaign.spec import CampaignFileError
    from xbarlab.engine import one_line
    from xbarlab.params import ParameterError
    from xbarlab.registry import UnknownProtocolError
    from xbarlab.safety import LimitError, Terminated
    from xbarlab.store import (
        CalibrationNotFoundError,
        RunNotFoundError,
        RunStateError,
        StoreOpenError,
    )

    if args.log:
        _log_to(args.log)
    try:
        return args.handler(args)
    except (CommandError, UnknownProtocolError, ParameterError, BenchFileError, BenchError,
            LimitError, RunNotFoundError, RunStateError, StoreOpenError,
            CalibrationNotFoundError, FileExistsError, CampaignFileError) as error:
        print(f"xbarlab {args.command}: {one_line(error)}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_USAGE
    except BrokenPipeError:  # the reader (| head) stopped reading: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Terminated:
        print(f"xbarlab {args.command}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as error:  # an instrument or I/O failure: one line, the traceback on --debug
        print(f"xbarlab {args.command}: {one_line(error)}"
              + ("" if args.debug else " (--debug shows the traceback)"), file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
