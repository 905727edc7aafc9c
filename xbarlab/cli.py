"""The ``xbarlab`` command: check a bench, run protocols on it, and look at the runs.

    xbarlab bench check [--bench FILE]
    xbarlab run PROTOCOL [--bench FILE] [--set key=value ...] [--dry-run] [--json] [--store DIR]
    xbarlab run PROTOCOL --help          (its parameters: unit, range, default)
    xbarlab protocols [--json]
    xbarlab campaign FILE.toml [--scheduler tcp://HOST:PORT] [--workers N] [--resume RUN]
    xbarlab runs | show RUN | export RUN --format hdf5|csv | plot RUN | report RUN  [--store DIR]
    xbarlab demo

Every run goes through `xbarlab.run_protocol`, the same engine scripts and notebooks use; this
module only parses arguments and prints.

``--bench`` takes a bench-file path or the name of an embedded bench (``default`` when absent).
``--store`` is the run store's directory (else ``$XBARLAB_DATA``, else ``./xbarlab-data``).
A run commits every point as it is measured; Ctrl-C or SIGTERM ends it ``aborted`` with the
instruments made safe first, and ``--resume RUN`` continues it. ``--json`` prints the run summary
(run id, status, metrics) as one JSON object on the last line of stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from xbarlab.engine import json_ready, one_line

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


def _demo(args: argparse.Namespace) -> int:
    """Solve one parasitic-aware matrix-vector product and compare it with the ideal one."""
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


class CommandError(Exception):
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
                              dry_run=args.dry_run, progress=not args.quiet, **params)
    except (RunInterrupted, RunTerminated) as stopped:
        _print_summary(args, stopped.result)
        return stopped.exit_status
    except RunFailed as failed:
        _print_summary(args, failed.result)
        result = failed.result
        print(f"xbarlab run: {failed}; the instruments were made safe and every point "
              f"measured is kept (xbarlab show {result.run_id})", file=sys.stderr)
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


def _print_summary(args: argparse.Namespace, result) -> None:
    """The run's summary: one JSON object on the last line (``--json``), else one line."""
    if args.json:
        print(json.dumps(json_ready(result.summary())))
        return
    shown = ", ".join(f"{k} = {v}" for k, v in result.metrics.items() if k != "round_trips")
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

    campaign = load_campaign(args.file)
    result = run_campaign(campaign, args.store, scheduler=args.scheduler, workers=args.workers,
                          resume=args.resume, progress=not args.quiet)
    if args.json:
        print(json.dumps(json_ready(result.summary())))
    else:
        print(f"campaign run {result.run_id} {result.status}: {result.completed} of "
              f"{result.tasks} tasks completed, {result.failed} failed, {result.skipped} done "
              f"before, {result.seconds:.1f} s")
        for path in result.files:
            print(f"  {path}")
    return EXIT_FAILED if result.failed else 0


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


def _runs(args: argparse.Namespace) -> int:
    """List the runs of the store, newest first."""
    from xbarlab.store import RunStore

    with RunStore(args.store) as store:
        runs = store.runs(args.status)
        if not runs:
            print(f"no runs in {store.data_dir}")
            return 0
        print(f"{'id':>4}  {'protocol':<16} {'status':<10} {'started (UTC)':<19} "
              f"{'points':>7} {'maps':>5}")
        for info in runs:
            print(f"{info.run_id:>4}  {info.protocol:<16} {info.status:<10} "
                  f"{_utc(info.started_at):<19} {info.n_points:>7} {info.n_maps:>5}")
    return 0


def _show(args: argparse.Namespace) -> int:
    """Print one run's metadata, history, metrics and maps."""
    from xbarlab.store import RunStore

    with RunStore(args.store) as store:
        run = store.open_run(args.run)
        info = run.info
        print(f"run {info.run_id}: {info.protocol} ({info.status})")
        print(f"  started {_utc(info.started_at)}, ended "
              f"{_utc(info.ended_at) if info.ended_at else '-'}; xbarlab "
              f"{info.software_version}; seed {info.seed}; shape {info.shape}")
        print(f"  parameters: {json.dumps(info.params)}")
        for name, identity in info.instruments.items():
            print(f"  instrument {name}: {identity}")
        counts: dict[str, int] = {}
        for point in run.points():
            counts[point.operation] = counts.get(point.operation, 0) + 1
        print(f"  points: {info.n_points} ("
              + ", ".join(f"{op} {n}" for op, n in counts.items()) + ")")
        for record in run.maps():
            finite = record.data[np.isfinite(record.data)]
            spread = (f"median {np.median(finite):.4g}, min {finite.min():.4g}, "
                      f"max {finite.max():.4g}" if finite.size else "no finite values")
            print(f"  map {record.name!r} #{record.seq}: {record.data.shape}, {spread}")
        for key, value in run.checkpoints().items():
            print(f"  {key}: {_short_json(value)}")
        for stored in run.calibrations():
            print(f"  calibration record {_calibration_line(stored)}")
        for event in run.events():
            detail = f": {event.detail.splitlines()[-1]}" if event.detail else ""
            print(f"  {_utc(event.t)} {event.event}{detail}")
        for shot in run.snapshots():
            print(f"  instruments at the {shot.phase} ({_utc(shot.t)}):")
            for line in _snapshot_lines(shot.instruments):
                print(f"    {line}")
    return 0


def _short_json(value, limit: int = 160) -> str:
    """A checkpoint value as JSON, or what it holds when that is longer than `limit`."""
    text = json.dumps(value)
    if len(text) <= limit:
        return text
    kind = "list" if isinstance(value, list) else "object" if isinstance(value, dict) else "text"
    return f"<{kind} of {len(value)} items, {len(text)} characters of JSON>"


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
    from xbarlab.calibration.record import export_calibration, summary_of
    from xbarlab.store import RunStore

    with RunStore(args.store) as store:
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
    from xbarlab.store import RunStore

    with RunStore(args.store) as store:
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
    from xbarlab.store import RunStore

    with RunStore(args.store) as store:
        print(write_report(store, args.run, args.out))
    return 0


def _plot(args: argparse.Namespace) -> int:
    """PNG of a run: each map (latest of its name) as a heat map, and every point over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xbarlab.store import RunStore

    with RunStore(args.store) as store:
        run = store.open_run(args.run)
        names = list(dict.fromkeys(record.name for record in run.maps()))
        maps = {name: run.latest_map(name) for name in names}
        points = run.points()
    panels = len(maps) + (1 if points else 0)
    if panels == 0:
        raise CommandError(f"run {args.run} has no points and no maps to plot")
    figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2), squeeze=False)
    for axis, (name, data) in zip(axes[0], maps.items(), strict=False):
        image = axis.imshow(data, cmap="viridis", interpolation="nearest")
        axis.set(title=f"{name} (latest)", xlabel="column", ylabel="row")
        figure.colorbar(image, ax=axis)
    if points:
        axis = axes[0][-1]
        t0 = min(p.t for p in points)
        for operation in dict.fromkeys(p.operation for p in points):
            chosen = [p for p in points if p.operation == operation and p.current is not None]
            axis.plot([p.t - t0 for p in chosen], [abs(p.current) for p in chosen], ".",
                      markersize=2, label=operation)
        axis.set(title="points over time", xlabel="time since first point (s)",
                 ylabel="|current| (A)", yscale="log")
        axis.legend()
    out = Path(args.out or f"run-{args.run}.png")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    print(out)
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

    run = commands.add_parser("run", help="run a protocol on the bench", add_help=False)
    run.add_argument("protocol", nargs="?", default=None,
                     help="protocol name (an unknown name lists the available)")
    run.add_argument("-h", "--help", action="store_true",
                     help="show this help, or a protocol's parameters with a protocol name")
    run.add_argument("--bench", default=None, help="bench file or embedded bench name")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="protocol parameter (repeatable)")
    run.add_argument("--dry-run", action="store_true",
                     help="play the protocol on a recording bench: no instrument I/O; "
                          "exit status 1 if it would break a limit")
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

    show = commands.add_parser("show", help="metadata, history, metrics and maps of a run")
    show.add_argument("run", type=int)
    store_option(show)
    show.set_defaults(handler=_show)

    export = commands.add_parser("export", help="export a run to HDF5 or CSV")
    export.add_argument("run", type=int)
    export.add_argument("--format", choices=("hdf5", "csv"), required=True)
    export.add_argument("--out", default=None, help="file (hdf5) or directory (csv)")
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

    plot = commands.add_parser("plot", help="PNG of a run's maps and points")
    plot.add_argument("run", type=int)
    plot.add_argument("--out", default=None, help="PNG path (default run-<id>.png)")
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xbarlab`` console script.

    A user's mistake (a bad parameter, bench file, run id or protocol name) is one line and exit
    status 2; an instrument or protocol failure one line and 1 (``--debug`` adds the
    traceback); Ctrl-C 130 and SIGTERM 143, the instruments made safe first."""
    from xbarlab.bench import BenchError
    from xbarlab.benchfile import BenchFileError
    from xbarlab.campaign.spec import CampaignFileError
    from xbarlab.params import ParameterError
    from xbarlab.registry import UnknownProtocolError
    from xbarlab.safety import LimitError, Terminated
    from xbarlab.store import CalibrationNotFoundError, RunNotFoundError, RunStateError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (CommandError, UnknownProtocolError, ParameterError, BenchFileError, BenchError,
            LimitError, RunNotFoundError, RunStateError, CalibrationNotFoundError,
            FileExistsError, CampaignFileError) as error:
        print(f"xbarlab {args.command}: {one_line(error)}", file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_USAGE
    except BrokenPipeError:  # the reader (| head) stopped reading: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"xbarlab {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
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
