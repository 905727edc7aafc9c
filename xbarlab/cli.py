"""The ``xbarlab`` command.

For now it has one job, ``xbarlab demo``: solve a crossbar with every parasitic resistance on the
exact solver and report how far IR drop moves the column currents from the ideal ``v @ G``. The
bench, run and export commands join it as the layers above the physics land.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xbarlab`` command."""
    parser = argparse.ArgumentParser(prog="xbarlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
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
    """Entry point of the ``xbarlab`` console script."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
