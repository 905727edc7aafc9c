"""Same results before and after a change of the virtual bench: every protocol on every shipped
bench, with read noise off and on, recorded on one checkout and compared on another.

    python benchmarks/same_results.py record results-main.json     # on the reference checkout
    python benchmarks/same_results.py compare results-main.json    # on the changed one

Each case is a registered protocol played exactly as ``xbarlab run`` plays it (small parameters,
so the whole set runs in minutes) on an embedded bench, once as shipped (read noise on) and
once with ``read_noise = false`` (the same chip, seed and parasitics). What is kept per case:
the protocol's metrics and every map it recorded, or the error it raised.

Comparison, case by case:

- read noise off: every integer, string and flag equal; every number equal to within
  ``QUIET_RTOL`` relative (the solver's own accuracy: a change in which solves warm-start which
  moves results at that level; bit-for-bit only where the order of operations is the same);
- read noise on: the noise draws of two implementations differ, so single numbers may too.
  Integers and flags of counts and decisions are printed side by side; the conductance maps of
  ``read-map`` (one noisy reading per cell) must agree statistically: the mean of the relative
  differences within 4 standard errors of 0 and their spread within 20 % of what two
  independent readings with the preset's read noise give (sqrt(2) x read noise).

Wall-clock times (``seconds``, ``seconds_*``) and plot paths are not compared; round trips
(``round_trips*``: instrument messages, which a faster command path cuts on purpose) are
printed side by side, not compared. Noisy read maps that are equal reading for reading (the
same draws in the same order), or within a tenth of the read noise of each other, agree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from xbarlab.bench import open_bench
from xbarlab.benchfile import load_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

QUIET_RTOL = 1e-8
"""Relative agreement of noise-free numbers (the solver is exact to ~1e-10 of its currents)."""
IGNORED = {"seconds", "plot", "wall_s"}
TRAFFIC = "round_trips"
"""Metrics named so count instrument messages: printed side by side, not compared."""


def _ignored(key: str) -> bool:
    return key in IGNORED or key.startswith(("seconds_", TRAFFIC))

WRITE_VERIFY = {"rows": 2, "cols": 3, "relax_rounds": 1, "reread_reads": 16}
CASES: dict[str, list[tuple[str, dict]]] = {
    "default": [
        ("read-map", {"scheme": "ground"}),
        ("read-map", {"scheme": "float", "cells": "0-7,0-7"}),
        ("read-map", {"scheme": "v/3", "cells": "0-7,0-31", "reads": 2}),
        ("iv-sweep", {"cells": "0-1,0"}),
        ("forming", {"cells": "0-1,0-1"}),
        ("endurance", {"cells": "0,0", "cycles": 4}),
        ("retention", {"cells": "0-1,0-1", "points": 3, "t_last": 1.0}),
        ("write-verify", dict(WRITE_VERIFY, algorithm="adaptive,ispva")),
        ("program-efficient", {"rows": 2, "cols": 4}),
    ],
    "classic": [
        ("read-map", {"scheme": "ground"}),
        ("iv-sweep", {"cells": "0,0"}),
        ("write-verify", WRITE_VERIFY),
    ],
    "keysight": [
        ("read-map", {"scheme": "v/2", "cells": "0-7,0-7"}),
        ("iv-sweep", {"cells": "0,0"}),
        ("write-verify", WRITE_VERIFY),
    ],
    "analog": [
        ("read-map", {"scheme": "ground"}),
        ("read-map", {"scheme": "float", "cells": "0-3,0-31"}),
        ("write-verify", dict(WRITE_VERIFY, rows=2, cols=4)),
        ("retention", {"cells": "0-1,0-1", "points": 3, "t_last": 1.0}),
    ],
    "board": [  # 128 x 128: programming cases kept to two cells (each pulse solves the chip)
        ("read-map", {"scheme": "ground"}),
        ("read-map", {"scheme": "v/2", "cells": "0-3,0-127"}),
        ("program-efficient", {"rows": 1, "cols": 2, "width": 1e-7}),
        ("write-verify", dict(WRITE_VERIFY, rows=1, cols=2, g_low=5e-6, g_high=50e-6)),
    ],
}


def bench_file(directory: Path, name: str, noise: bool) -> str:
    """The embedded bench `name`, as shipped or with read noise off, as a file."""
    text = load_bench(name).text
    if not noise:
        if "read_noise = true" not in text:
            raise RuntimeError(f"bench {name!r} no longer says 'read_noise = true'")
        text = text.replace("read_noise = true", "read_noise = false")
    path = directory / f"{name}-noise-{'on' if noise else 'off'}.toml"
    path.write_text(text)
    return str(path)


def run_case(bench: str, protocol: str, params: dict, store: Path) -> dict:
    """Metrics and maps of one protocol run on a fresh opening of `bench`, or its error."""
    try:
        with RunStore(store) as runs, open_bench(bench) as opened:
            run = runs.start_run(protocol, params, opened.spec.text,
                                 shape=(opened.rows, opened.cols))
            with run:
                metrics = get_protocol(protocol)(opened, run, Progress(show=False), **params)
                maps = {record.name: np.asarray(record.data, float).tolist()
                        for record in run.maps()}
    except Exception as error:  # the same error must happen on both checkouts
        return {"error": f"{type(error).__name__}: {error}"}
    return {"metrics": json.loads(json.dumps(metrics, default=_plain)), "maps": maps}


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def record(path: Path, benches: list[str]) -> None:
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name in benches:
            for noise in (False, True):
                file = bench_file(scratch, name, noise)
                for k, (protocol, params) in enumerate(CASES[name]):
                    key = f"{name} noise={'on' if noise else 'off'} #{k} {protocol} {params}"
                    print(key, flush=True)
                    results[key] = run_case(file, protocol, params, scratch / f"store-{key}")
    path.write_text(json.dumps(results))


def _walk(a, b, where: str, out: list[tuple[str, object, object]]) -> None:
    """Every pair of leaves of two JSON values, with its path."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if _ignored(key):
                continue
            _walk(a.get(key), b.get(key), f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{where}[{k}]", out)
    else:
        out.append((where, a, b))


def _same(a, b, rtol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= rtol * max(abs(a), abs(b)) or a == b
    return a == b


def compare_quiet(key: str, before: dict, after: dict) -> list[str]:
    leaves: list[tuple[str, object, object]] = []
    _walk(before, after, key, leaves)
    return [f"{where}: {a!r} -> {b!r}" for where, a, b in leaves
            if not _same(a, b, QUIET_RTOL)]


def compare_noisy(key: str, before: dict, after: dict, read_noise: float) -> list[str]:
    """Read-map conductance maps agree statistically; errors must be the same."""
    if "error" in before or "error" in after:
        return [] if before.get("error") == after.get("error") else [
            f"{key}: {before.get('error')!r} -> {after.get('error')!r}"]
    problems = []
    if " read-map " in key and "'reads'" not in key:
        old = np.asarray(before["maps"]["conductance"], float)
        new = np.asarray(after["maps"]["conductance"], float)
        if np.array_equal(old, new, equal_nan=True):
            return problems  # the same draws, reading for reading
        both = np.isfinite(old) & np.isfinite(new) & (old > 0)
        ratio = new[both] / old[both] - 1
        if np.abs(ratio).max(initial=0.0) <= 0.1 * read_noise:
            return problems  # the same draws, the readings within a tenth of their noise
        standard_error = ratio.std() / math.sqrt(ratio.size)
        expected = math.sqrt(2) * read_noise
        if abs(ratio.mean()) > 4 * standard_error:
            problems.append(f"{key}: mean relative difference {ratio.mean():.2e} "
                            f"(standard error {standard_error:.1e})")
        if not 0.8 < ratio.std() / expected < 1.2:
            problems.append(f"{key}: spread of relative differences {ratio.std():.4f}, "
                            f"expected {expected:.4f}")
    return problems


def summary(key: str, before: dict, after: dict) -> str:
    """The counts and decisions of a noisy case side by side (integers and lists)."""
    if "metrics" not in before or "metrics" not in after:
        return f"{key}: {before.get('error')} | {after.get('error')}"
    shown = []
    for name in sorted(before["metrics"]):
        a, b = before["metrics"][name], after["metrics"].get(name)
        if _ignored(name) and not name.startswith(TRAFFIC) or isinstance(
                a, (dict, list, str)) or a is None:
            continue
        shown.append(f"{name} {a:.4g}/{b:.4g}" if isinstance(b, (int, float)) else
                     f"{name} {a}/{b}")
    return f"{key}: " + ", ".join(shown)


def compare(path: Path) -> int:
    from xbarlab.physics import preset

    before = json.loads(path.read_text())
    benches = sorted({key.split()[0] for key in before})
    with tempfile.NamedTemporaryFile(suffix=".json") as scratch:
        record(Path(scratch.name), benches)
        after = json.loads(Path(scratch.name).read_text())
    problems = []
    for key, old in before.items():
        new = after.get(key, {"error": "case missing"})
        bench = load_bench(key.split()[0])
        if "noise=off" in key:
            problems += compare_quiet(key, old, new)
            traffic = {name: (value, new.get("metrics", {}).get(name))
                       for name, value in old.get("metrics", {}).items()
                       if name.startswith(TRAFFIC)}
            if any(a != b for a, b in traffic.values()):
                print(f"{key}: " + ", ".join(f"{name} {a:.4g} -> {b:.4g}"
                                             for name, (a, b) in traffic.items()))
        else:
            problems += compare_noisy(key, old, new, preset(bench.chip.preset).read_noise)
            print(summary(key, old, new))
    print("\n".join(problems) if problems else "same results: every case agrees")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("record", "compare"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--benches", default=",".join(CASES))
    args = parser.parse_args()
    if args.mode == "record":
        record(args.path, args.benches.split(","))
        return 0
    return compare(args.path)


if __name__ == "__main__":
    sys.exit(main())
