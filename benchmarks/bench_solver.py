"""Benchmark of the crossbar circuit solver against a direct sparse (SuperLU) solve.

For every size N and regime it prints: our time for one input vector from scratch (set-up
included, JIT compilation excluded), our time per vector in a batch, CG iterations, our peak
working memory (tracemalloc: every array of the solve is a numpy array), and SuperLU build
and factor + solve times of the same network in the same process, with the speed ratio and
the largest deviation of our currents from SuperLU's. Below the table, for N <= 256, the
time per vector of a batch with one conductance matrix per vector (G of shape (B, N, N)).
Then numba compile time on first use, cold (empty on-disk cache) and cached, each in a fresh
subprocess, and what a later first solve with lumped lines (zero wire resistance; compiled
apart) adds in that process.

Regimes (reference/physics.md §3): 1 ohm wire segments, 1 ohm source and sense resistance,
rows driven uniformly in [0, 1] V, columns at virtual ground; G uniform in 0.1-10 uS
(moderate) or 1-100 uS (stress). kappa = R_wire * G_max * N^2.

    python benchmarks/bench_solver.py                       # the full table (a few minutes)
    python benchmarks/bench_solver.py --sizes 64,128 --regimes moderate --batch 8
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from xbarlab.physics.nodal import NodalNetwork
from xbarlab.physics.solver import solve_crossbar

REGIMES = {"moderate": (0.1e-6, 10e-6), "stress": (1e-6, 100e-6)}
PARASITICS = dict(r_source=1.0, r_sense=1.0, r_wire_row=1.0, r_wire_col=1.0)
SPLU_LIMIT = 512  # SuperLU needs ~14 GB at N = 1024
PER_VECTOR_G_LIMIT = 256  # a (B, N, N) G per batch: time and memory grow with B


def best_time(function, repeats: int) -> tuple[float, object]:
    """Shortest wall time of ``repeats`` calls (the machine is shared) and the last result."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_bytes(function) -> int:
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def max_relative_deviation(ours, i_row, i_col) -> float:
    scale = max(np.abs(i_row).max(), np.abs(i_col).max())
    return max(np.abs(ours.i_row - i_row).max(), np.abs(ours.i_col - i_col).max()) / scale


def bench_one(N: int, regime: str, batch: int, rng) -> dict:
    g_low, g_high = REGIMES[regime]
    G = rng.uniform(g_low, g_high, (N, N))
    v_row = rng.uniform(0.0, 1.0, N)
    v_zero = np.zeros(N)
    repeats = 5 if N <= 256 else 2
    row = {"regime": regime, "N": N, "kappa": PARASITICS["r_wire_row"] * g_high * N * N}

    row["one"], ours = best_time(lambda: solve_crossbar(G, v_row, v_zero, **PARASITICS), repeats)
    row["iterations"] = ours.iterations
    row["peak_mb"] = peak_bytes(lambda: solve_crossbar(G, v_row, v_zero, **PARASITICS)) / 2**20
    batch_rows = rng.uniform(0.0, 1.0, (batch, N))
    batch_time, batched = best_time(
        lambda: solve_crossbar(G, batch_rows, v_zero, **PARASITICS), 2 if N <= 256 else 1
    )
    row["per_vector"] = batch_time / batch
    row["batch_iterations"] = batched.iterations
    if N <= PER_VECTOR_G_LIMIT:  # its own generator: the networks above stay the same
        spread = np.exp(0.01 * np.random.default_rng(N).standard_normal((batch, N, N)))
        each_time, _ = best_time(
            lambda: solve_crossbar(G * spread, batch_rows, v_zero, **PARASITICS), 2
        )
        row["per_vector_g"] = each_time / batch

    if N <= SPLU_LIMIT:
        driven_rows, driven_cols = np.ones(N, bool), np.ones(N, bool)
        start = time.perf_counter()
        network = NodalNetwork(G, driven_rows, driven_cols, **PARASITICS)
        row["splu_build"] = time.perf_counter() - start
        start = time.perf_counter()
        network.factor()
        i_row, i_col, _, _ = network.solve(v_row, v_zero)
        row["splu"] = time.perf_counter() - start
        row["ratio"] = row["splu"] / row["one"]
        row["error"] = max_relative_deviation(ours, i_row[0], i_col[0])
    return row


def print_table(rows):
    header = (f"{'regime':<9}{'N':>6}{'kappa':>8}{'one vec':>10}{'per vec':>10}{'iters':>7}"
              f"{'peak MB':>9}{'splu bld':>10}{'splu f+s':>10}{'ratio':>8}{'max err':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        splu = (f"{r['splu_build'] * 1e3:>8.0f}ms{r['splu']:>9.3f}s{r['ratio']:>7.0f}x"
                f"{r['error']:>10.1e}" if "splu" in r else f"{'skipped (~14 GB)':>38}")
        print(f"{r['regime']:<9}{r['N']:>6}{r['kappa']:>8.2f}{r['one'] * 1e3:>8.1f}ms"
              f"{r['per_vector'] * 1e3:>8.2f}ms{r['iterations']:>4}/{r['batch_iterations']:<2}"
              f"{r['peak_mb']:>9.1f}{splu}")
    each = [r for r in rows if "per_vector_g" in r]
    if each:
        print("a matrix per vector (G of shape (B, N, N), 1% lognormal spread), per vector: "
              + ", ".join(f"{r['regime']} N={r['N']} {r['per_vector_g'] * 1e3:.2f}ms"
                          for r in each))


def target_lines(rows, compile_times):
    """The issue's targets (moderate regime, one vector unless stated), met or missed."""
    by_size = {r["N"]: r for r in rows if r["regime"] == "moderate"}
    checks = []
    if 256 in by_size and "ratio" in by_size[256]:
        checks.append(("N=256 vs splu >= 40x", by_size[256]["ratio"] >= 40,
                       f"{by_size[256]['ratio']:.0f}x"))
    if 512 in by_size and "ratio" in by_size[512]:
        checks.append(("N=512 vs splu >= 60x", by_size[512]["ratio"] >= 60,
                       f"{by_size[512]['ratio']:.0f}x"))
    if 1024 in by_size:
        checks.append(("N=1024 <= 0.6 s", by_size[1024]["one"] <= 0.6,
                       f"{by_size[1024]['one']:.3f} s"))
        checks.append(("N=1024 peak <= 0.5 GB", by_size[1024]["peak_mb"] <= 512,
                       f"{by_size[1024]['peak_mb']:.0f} MB"))
    if 256 in by_size:
        checks.append(("N=256 batched <= 10 ms/vector", by_size[256]["per_vector"] <= 0.010,
                       f"{by_size[256]['per_vector'] * 1e3:.2f} ms"))
    for r in rows:
        if "error" in r:
            checks.append((f"{r['regime']} N={r['N']} within 1e-9 of splu", r["error"] <= 1e-9,
                           f"{r['error']:.1e}"))
    if compile_times:
        cold, cached = compile_times
        checks.append(("compile cold <= 5 s", cold <= 5, f"{cold:.2f} s"))
        checks.append(("compile cached <= 1 s", cached <= 1, f"{cached:.2f} s"))
    return [f"  {'met   ' if ok else 'MISSED'} {name:<38} {value}" for name, ok, value in checks]


FIRST_USE = """
import time
import numpy as np
def two_solves(**wires):
    times = []
    for _ in range(2):
        start = time.perf_counter()
        solve_crossbar(G, np.ones((2, 8)), np.zeros(8), r_source=1.0, r_sense=1.0, **wires)
        times.append(time.perf_counter() - start)
    return times[0] - times[1]
start = time.perf_counter()
from xbarlab.physics.solver import solve_crossbar
imported = time.perf_counter() - start
G = np.full((8, 8), 1e-5)
wired = two_solves(r_wire_row=1.0, r_wire_col=1.0)
lumped = two_solves(r_wire_row=0.0, r_wire_col=0.0)
print(imported, wired, lumped)
"""


def first_use_seconds(cache_dir: str) -> tuple[float, float, float]:
    """In a fresh process using cache_dir: (import time, first solve minus a second solve,
    the same for a later first solve with lumped lines, whose kernels compile apart)."""
    environment = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    output = subprocess.run([sys.executable, "-c", FIRST_USE], env=environment, check=True,
                            capture_output=True, text=True).stdout
    imported, wired, lumped = map(float, output.split())
    return imported, wired, lumped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128,256,512,1024")
    parser.add_argument("--regimes", default="moderate,stress")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--skip-compile", action="store_true", help="skip the compile timing")
    args = parser.parse_args()

    # Compile once on a small problem so no timing below includes JIT.
    solve_crossbar(np.full((4, 4), 1e-5), np.ones((2, 4)), np.zeros(4), **PARASITICS)
    rng = np.random.default_rng(2026)
    rows = []
    for regime in args.regimes.split(","):
        for N in map(int, args.sizes.split(",")):
            rows.append(bench_one(N, regime, args.batch, rng))
    print(f"crossbar solve, 1 ohm segments/source/sense, batch of {args.batch}, "
          f"{os.cpu_count()} CPUs (iters: one vector / batch)")
    print_table(rows)

    compile_times = None
    if not args.skip_compile:
        with tempfile.TemporaryDirectory() as cache_dir:
            import_cold, cold, lumped_cold = first_use_seconds(cache_dir)
            import_cached, cached, lumped_cached = first_use_seconds(cache_dir)
        compile_times = (cold, cached)
        print(f"numba compile on first use: cold {cold:.2f} s, with on-disk cache {cached:.2f} s"
              f" (import {import_cold:.2f} s / {import_cached:.2f} s); a later first use with"
              f" lumped lines adds {lumped_cold:.2f} s / {lumped_cached:.2f} s")
    print("targets (reference/physics.md, issue 2 §5):")
    print("\n".join(target_lines(rows, compile_times)))


if __name__ == "__main__":
    main()
