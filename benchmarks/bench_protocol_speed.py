"""How fast the long protocols run on the virtual bench, and how much of it is physics (issue 19).

Plays ``write-verify`` on the embedded ``analog`` bench (32 x 32, ±1 %, every parameter at its
default) and ``program-efficient`` on ``default`` (defaults) exactly as ``xbarlab run`` plays
them (`xbarlab.engine.run_protocol`: the run stored, its figure drawn), each on the fresh chip
of its bench file, and prints per run: the wall-clock and CPU time, the time inside the
physics kernels (`physics_clock.PhysicsClock`: the crossbar solver and the device model) as a
share of both, the solver calls, and the load average before and after.

Targets (issue 19): each run under 90 s of wall-clock time on a quiet 2-core machine, at least
half of it in the physics kernels. Under load the wall-clock figures stretch with the other
processes; the CPU time and the physics share of it are the fairer figures then.

Usage::

    python benchmarks/bench_protocol_speed.py [--only write-verify|program-efficient]
        [--set KEY=VALUE ...]

``--set`` overrides a parameter of every protocol run (e.g. ``--set rows=8`` for a shorter
look; the targets are for the defaults).
"""

from __future__ import annotations

import argparse
import os
import tempfile

from physics_clock import PhysicsClock

from xbarlab.engine import run_protocol
from xbarlab.registry import get_protocol

RUNS = (("write-verify", "analog"), ("program-efficient", "default"))
"""The protocols the issue times, each on its bench, every parameter at its default."""
WALL_TARGET_S, PHYSICS_TARGET = 90.0, 0.5


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=[name for name, _ in RUNS], default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; targets: wall < {WALL_TARGET_S:g} s, physics >= "
          f"{PHYSICS_TARGET:.0%} of it (defaults, quiet machine)")
    for name, bench in RUNS:
        if args.only not in (None, name):
            continue
        params = get_protocol(name).parse_settings(args.set)
        before = load()
        with tempfile.TemporaryDirectory() as scratch, PhysicsClock() as clock:
            result = run_protocol(name, bench, store=scratch, progress=False, **params)
        share = clock.wall / clock.total_wall
        print(f"\n{name} on {bench} ({result.status}{', ' + str(params) if params else ''}); "
              f"load before {before}")
        print(f"  {clock.report()}")
        print(f"  wall {clock.total_wall:.1f} s (< {WALL_TARGET_S:g} s: "
              f"{clock.total_wall < WALL_TARGET_S}), physics {share:.0%} of it (>= "
              f"{PHYSICS_TARGET:.0%}: {share >= PHYSICS_TARGET}); CPU {clock.total_cpu:.1f} s, "
              f"physics {clock.cpu / clock.total_cpu:.0%} of it")


if __name__ == "__main__":
    main()
