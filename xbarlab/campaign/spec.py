"""Campaign files: a grid or list of protocol runs over benches, parameters and seeds.

A campaign file is TOML::

    [campaign]
    name = "wire-resistance"            # default: the file's name
    protocol = "read-map"               # every task's protocol (a [[task]] may name another)
    bench = "board"                     # an embedded bench or a bench file (relative to this file)
    seeds = 20                          # seeds 0..19 of the virtual chip, or a list [3, 7, 11]

    [parameters]                        # protocol parameters of every task
    v_read = 0.2

    [grid]                              # every combination of these values is a task (x seeds)
    scheme = ["ground", "v/3"]          # a protocol parameter
    "sim.r_wire_row" = [0.5, 1.0, 2.0]  # a [sim] value of the virtual bench
    bench = ["board", "big.toml"]       # benches

    [[task]]                            # or a list of runs, each with its own protocol, bench and
    protocol = "iv-sweep"               # parameters (the grid and the seeds apply to each)
    parameters = { cells = "0,0" }

    [report]
    metrics = ["median_conductance_s"]  # plotted against each swept value (default: all numbers)

Each task is one run of a protocol on its own bench file: the bench with the task's ``[sim]``
values and seed written in (`variants`). Every task is checked (bench file, protocol, every
parameter against its declaration and its bench) before anything runs; a mistake is one line
naming the task and the field.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbarlab.benches import with_sim_values
from xbarlab.benchfile import BenchFileError, load_bench, parse_bench
from xbarlab.params import ParameterError
from xbarlab.registry import UnknownProtocolError, get_protocol

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_TASKS = 100_000
"""Most tasks one campaign file may expand to (a bound checked before anything runs)."""
SECTIONS = ("campaign", "parameters", "grid", "task", "report")
CAMPAIGN_KEYS = ("name", "protocol", "bench", "seeds")
TASK_KEYS = ("protocol", "bench", "parameters")


class CampaignFileError(ValueError):
    """A campaign file that cannot run; the message names the field (or task) and what is
    allowed."""


@dataclass(frozen=True)
class Task:
    """One run of a campaign: a protocol with its parameters on one variant of a bench file."""

    key: str
    """Unique within the campaign and stable across edits of other tasks: what it varies."""
    protocol: str
    bench_text: str
    params: dict[str, Any]
    axes: dict[str, Any]
    """The task's value of each swept axis (``bench``, ``seed``, ``sim.*``, parameters)."""
    virtual: bool
    """Its bench is a virtual one (has ``[sim]``): it may run on any worker."""
    bench_name: str = "bench"


@dataclass(frozen=True)
class Campaign:
    """A parsed campaign file: its tasks in order, the axes it sweeps, the metrics it plots."""

    name: str
    text: str
    origin: str
    tasks: tuple[Task, ...]
    axes: tuple[str, ...]
    metrics: tuple[str, ...] = field(default=())


def load_campaign(path: str | Path) -> Campaign:
    """Read and check a campaign file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CampaignFileError(f"campaign file {path}: cannot be read ({type(error).__name__})"
                                ) from None
    return parse_campaign(text, str(path))


def parse_campaign(text: str, origin: str = "<string>") -> Campaign:
    """Parse and check campaign-file text; `origin` is its path (benches are relative to it)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CampaignFileError(f"campaign file {origin}: not valid TOML: {error}") from None
    _only(data, SECTIONS, "", origin)
    head = _table(data, "campaign", origin)
    _only(head, CAMPAIGN_KEYS, "campaign.", origin)
    name = _text(head.get("name", Path(origin).stem), "campaign.name", origin)
    seeds = _seeds(head.get("seeds"), origin)
    common = _table(data, "parameters", origin)
    grid = _table(data, "grid", origin)
    axes = tuple(grid)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise CampaignFileError(f"campaign file {origin}: grid.{key} = {values!r}; allowed: "
                                    "a non-empty list of values")
    entries = data.get("task", [{}])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CampaignFileError(f"campaign file {origin}: [[task]] must be tables")
    combinations = list(itertools.product(*grid.values()))
    count = len(entries) * len(combinations) * max(1, len(seeds))
    if count > MAX_TASKS:
        raise CampaignFileError(f"campaign file {origin}: {count} tasks; allowed at most "
                                f"{MAX_TASKS}")
    report = _table(data, "report", origin)
    _only(report, ("metrics",), "report.", origin)
    metrics = report.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise CampaignFileError(f"campaign file {origin}: report.metrics = {metrics!r}; "
                                "allowed: a list of metric names")
    tasks: list[Task] = []
    benches: dict[str, Any] = {}
    for number, entry in enumerate(entries):
        where = f"task[{number}]." if "task" in data else "campaign."
        _only(entry, TASK_KEYS, where, origin)
        params = {**common, **_table(entry, "parameters", origin, where)}
        for values in combinations:
            chosen = dict(zip(axes, values, strict=True))
            for seed in seeds or [None]:
                tasks.append(_task(origin, head, entry, params, chosen, seed, number,
                                   len(entries) > 1, benches))
    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise CampaignFileError(f"campaign file {origin}: two tasks are both {twice!r}; allowed: "
                                "tasks that differ in protocol, bench, parameters or seed")
    swept = (("task",) if len(entries) > 1 else ()) + axes + (("seed",) if seeds else ())
    return Campaign(name, text, origin, tuple(tasks), swept, tuple(metrics))


def _task(origin, head, entry, params, chosen, seed, number, numbered, benches) -> Task:
    """One task, checked: its bench variant parses and its protocol takes its parameters."""
    protocol_name = _text(entry.get("protocol", head.get("protocol")), "protocol", origin)
    bench = _text(chosen.get("bench", entry.get("bench", head.get("bench", "default"))),
                  "bench", origin)
    sim = {key[4:]: value for key, value in chosen.items() if key.startswith("sim.")}
    given = {key: value for key, value in chosen.items()
             if key != "bench" and not key.startswith("sim.")}
    params = {**params, **given}
    axes = dict(chosen)
    parts = [f"task={number}"] if numbered else []
    parts += [f"{key}={value}" for key, value in chosen.items()]
    if seed is not None:
        sim["seed"] = seed
        axes["seed"] = seed
        parts.append(f"seed={seed}")
    if numbered:
        axes["task"] = number
    key = " ".join(parts) or "task"
    base = benches.get(bench)
    if base is None:
        base = benches[bench] = _bench(bench, origin)
    try:
        text = with_sim_values(base.text, sim, bench)
        spec = parse_bench(text, f"{bench} ({key})")
        protocol = get_protocol(protocol_name)
        protocol.resolve(params, spec)
    except (BenchFileError, ParameterError, UnknownProtocolError) as error:
        raise CampaignFileError(f"campaign file {origin}, task {key!r}: {error}") from None
    return Task(key, protocol.name, text, params, axes, spec.sim is not None,
                Path(bench).stem if bench.endswith(".toml") else bench)


def _bench(bench: str, origin: str):
    """The bench named in a campaign file: an embedded bench, or a file relative to it."""
    path = Path(bench)
    if bench.endswith(".toml") and not path.is_absolute() and not origin.startswith("<"):
        path = Path(origin).parent / path
    try:
        return load_bench(str(path) if bench.endswith(".toml") else bench)
    except BenchFileError as error:
        raise CampaignFileError(f"campaign file {origin}: bench = {bench!r}: {error}") from None


def _seeds(value: Any, origin: str) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TASKS:
        return list(range(value))
    if (isinstance(value, list) and value and len(set(value)) == len(value)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        return list(value)
    raise CampaignFileError(f"campaign file {origin}: campaign.seeds = {value!r}; allowed: a "
                            f"count from 1 to {MAX_TASKS}, or a list of distinct seeds >= 0")


def _table(data: dict, key: str, origin: str, where: str = "") -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CampaignFileError(f"campaign file {origin}: {where}{key} = {value!r}; allowed: a "
                                "table")
    return value


def _text(value: Any, name: str, origin: str) -> str:
    if not isinstance(value, str) or not value:
        raise CampaignFileError(f"campaign file {origin}: {name} = {value!r}; allowed: a "
                                "non-empty string")
    return value


def _only(table: dict, allowed: tuple[str, ...], prefix: str, origin: str) -> None:
    unknown = [key for key in table if key not in allowed]
    if unknown:
        raise CampaignFileError(f"campaign file {origin}: {prefix}{unknown[0]} is not known; "
                                f"allowed: {', '.join(prefix + key for key in allowed)}")
