"""Acceptance figures of the ``read-map`` protocol on the embedded virtual benches.

1. Speed: a 32 x 32 map on ``default`` (two 2636B + 707B), a 128 x 128 map on ``board`` (array
   board) and a 128 x 128 cell-by-cell map on a switch-matrix bench of that size (four 2636Bs on
   four 707Bs, written by `matrix_bench_text`): the protocol's own ``seconds`` (the measuring,
   not the plot) against its target (2 s, 1 s and 30 s: met or not), the CPU time of the
   protocol call, the load average (a shared machine stretches seconds, not CPU), and the solves
   behind each reading
   (solver calls, vectors solved, operating points worked out; target <= 1.05 solves per cell
   reading on ``default``). ``--speed`` runs only this part.
2. Accuracy on ``default``: the conductance error of every healthy cell (not stuck) against the
   World's true conductance (a benchmark may look inside the virtual bench; protocols never do),
   for the ground, floating and V/3 schemes, V/3 also before its half-select correction.
   Target: V/3 within 5 % of each healthy cell; the floating scheme's error is printed as it is.
   V/3 runs on ``default``'s two 2636Bs (four terminals) and ground. Rows split its error by
   whether another cell of the column is low-resistance (its read noise stays in the sensed
   current), show it without read noise (the correction's own accuracy) and with 4 reads
   averaged.
3. Accuracy on programmed chips (``--patterns``): the same 32 x 32 chip with its cells put at
   their own LRS or HRS bound in a pattern (random 50 % LRS, checkerboard, all LRS; the
   benchmark sets the World's hidden state directly, as a chip programmed beforehand), read with
   the ground and V/3 schemes; the error of every healthy cell against the World's truth. A
   read map on the near-HRS chip fresh out of the bench file says little about a programmed
   one: the sneak and half-select currents grow with the LRS cells. Then the same with the
   chip calibrated first (``calibrate-parasitics``, one session as the pipeline runs it) and
   every read corrected with the calibration (`xbarlab.calibration`): the corrected read
   against the ≤ 5 % target.
4. V/3 with a precision target (``--precision``, default 1.25 % standard error per cell): the
   readings the protocol plans from their spreads, where they went, the time, and the error
   of every healthy cell (target: within 5 % of each). ``--precision 0`` skips it.
5. Honest error bars (``--error-bars``, only this): ground and V/3 maps of 8 readings a cell,
   with and without the optional 1/f read noise (``harder_read_noise``): the spread of each
   healthy cell's error over its reported standard error (target 1 +- 0.1), and its mean.

Run: ``python benchmarks/bench_read_map.py`` (about two minutes on two cores, plus the
precision run: several minutes, as it takes millions of simulated readings).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvisa
from physics_clock import PhysicsClock
from xbarlab.sim_instruments.circuit import CircuitSolver

from xbarlab.bench import open_bench
from xbarlab.benchfile import load_bench
from xbarlab.engine import run_stage
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

PATTERNS = ("random 50 % LRS", "checkerboard", "all LRS")
"""The programmed patterns the accuracy is measured on (`pattern_state`)."""


def pattern_state(pattern: str, shape: tuple[int, int], seed: int = 17) -> np.ndarray:
    """Normalised device state of `pattern` (1: the cell's own LRS bound, 0: its HRS bound)."""
    if pattern == "random 50 % LRS":
        return (np.random.default_rng(seed).random(shape) < 0.5).astype(float)
    if pattern == "checkerboard":
        return (np.indices(shape).sum(axis=0) % 2 == 0).astype(float)
    if pattern == "all LRS":
        return np.ones(shape)
    raise ValueError(f"pattern {pattern!r}: allowed {', '.join(PATTERNS)}")


def run_read_map(bench: str, scheme: str, store: Path, reads: int = 1, pattern: str = "",
                 **params) -> dict:
    """Run read-map on a fresh opening of `bench` (its cells first put in `pattern`, when one
    is named); metrics, maps, truth and defect map, the CPU time of the protocol, the solver
    calls and vectors and the operating points."""
    with RunStore(store) as runs, open_bench(bench) as opened:
        origin = opened.spec.origin.removeprefix("embedded:")
        world = pyvisa.ResourceManager(f"{origin}@xbarsim").visalib.world
        if pattern:
            world.array.set_state(pattern_state(pattern, world.array.shape))
            world.changed()
        truth = world.conductance().copy()
        healthy = world.array.defect_map() == 0
        params = {"scheme": scheme, "reads": reads, **params}
        operating_points = CircuitSolver.operating_point
        counted = [0]

        def counting(*args, **kwargs):
            counted[0] += 1
            return operating_points(*args, **kwargs)

        CircuitSolver.operating_point = counting
        try:
            with runs.start_run("read-map", params, opened.spec.text,
                                shape=(opened.rows, opened.cols)) as run, \
                    PhysicsClock() as clock:
                metrics = get_protocol("read-map")(opened, run, Progress(show=False), **params)
                maps = {record.name: record.data for record in run.maps()}
        finally:
            CircuitSolver.operating_point = operating_points
    return {"metrics": metrics, "maps": maps, "truth": truth, "healthy": healthy,
            "clock": clock, "operating_points": counted[0]}


def matrix_bench_text(size: int = 128) -> str:
    """A switch-matrix bench for a size x size chip: the default bench's chip, limits and
    simulation with four 2636Bs on four 707Bs of six cards (72 outputs) each, rows on the
    first two matrices, columns on the last two, every matrix with a ground input."""
    text = load_bench("default").text
    parts = [text[:text.index("[instruments.smu]")]]
    half = size // 2
    for k in range(4):
        parts.append(f'[instruments.smu{k + 1}]\ndriver = "keithley2600"\nmodel = "2636B"\n'
                     f'address = "GPIB0::{26 + k}::INSTR"\nbackend = "@xbarsim"\n\n')
    for k in range(4):
        parts.append(f'[instruments.matrix{k + 1}]\ndriver = "keithley707b"\nmodel = "707B"\n'
                     f'address = "GPIB0::{18 + k}::INSTR"\nbackend = "@xbarsim"\ncards = 6\n\n')
    parts.append("[wiring]\npath_resistance = 2.0\n\n")
    for k in range(4):
        parts.append(f'[wiring.inputs.matrix{k + 1}]\nA = "smu{k + 1}.a"\nB = "smu{k + 1}.b"\n'
                     'H = "ground"\n\n')
    for k in range(4):
        first = (k % 2) * half
        parts.append(f'[[wiring.lines]]\nlines = "{"row" if k < 2 else "col"}:{first}-'
                     f'{first + half - 1}"\ninstrument = "matrix{k + 1}"\n'
                     f'outputs = "1-{half}"\n\n')
    chip = text[text.index("[chip]"):]
    parts.append(chip.replace("rows = 32\ncols = 32", f"rows = {size}\ncols = {size}"))
    return "".join(parts)


def speed(scratch: Path) -> None:
    """The speed table (module docstring, part 1)."""
    matrix = scratch / "matrix-128.toml"
    matrix.write_text(matrix_bench_text())
    print(f"{load()} (1, 5, 15 min) before the table; seconds: the protocol's own measuring "
          "time (not the bench opening, not the plot); CPU s: the whole protocol call's")
    print("| map | cells | seconds | target | CPU s | load | solver calls / reading "
          "| vectors / reading | operating points / reading | round trips per cell |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, bench, target in (("default 32x32, ground", "default", 2.0),
                                 ("board 128x128, ground", "board", 1.0),
                                 ("switch matrix 128x128, ground", str(matrix), 30.0)):
        result = run_read_map(bench, "ground", scratch / label.split()[0])
        m, clock = result["metrics"], result["clock"]
        readings = m["readings_now"]
        verdict = "met" if m["seconds"] <= target else "NOT met"
        print(f"| {label} | {m['cells']} | {m['seconds']:.2f} | <= {target:g} s ({verdict}) | "
              f"{clock.total_cpu:.2f} | {os.getloadavg()[0]:.2f} | "
              f"{clock.solves / readings:.3f} | {clock.vectors / readings:.3f} | "
              f"{result['operating_points'] / readings:.3f} | "
              f"{m['round_trips_per_cell']:.2f} |")
    print(f"{load()} after the table (a load above 1 per core stretches seconds, not CPU s)")


def without_read_noise(directory: Path) -> str:
    """The default bench file with read noise off (same chip, seed and parasitics)."""
    path = directory / "default-no-read-noise.toml"
    path.write_text(load_bench("default").text.replace("read_noise = true", "read_noise = false"))
    return str(path)


def error_row(label: str, estimate: np.ndarray, result: dict, where=None) -> str:
    truth, healthy = result["truth"], result["healthy"]
    chosen = healthy if where is None else healthy & where
    error = (np.abs(estimate - truth) / truth)[chosen]
    return (f"| {label} | {chosen.sum()} | {np.median(error) * 100:.2f} % | "
            f"{np.percentile(error, 95) * 100:.2f} % | {error.max() * 100:.1f} % | "
            f"{(error <= 0.05).mean() * 100:.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", type=float, default=0.0125,
                        help="V/3 precision target (relative standard error); 0 skips that run")
    parser.add_argument("--max-reads", type=int, default=16384)
    parser.add_argument("--patterns", choices=("yes", "only", "no"), default="yes",
                        help="accuracy on programmed patterns too (only: nothing else)")
    parser.add_argument("--speed", action="store_true", help="the speed table only")
    parser.add_argument("--error-bars", action="store_true",
                        help="error over reported standard error only")
    args = parser.parse_args()
    if args.error_bars:
        with tempfile.TemporaryDirectory() as scratch:
            print_error_bars(Path(scratch))
        return
    if args.patterns != "no" and not args.speed:
        with tempfile.TemporaryDirectory() as scratch:
            print_pattern_accuracy(Path(scratch))
            print_calibrated_pattern_accuracy(Path(scratch))
        if args.patterns == "only":
            return
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        speed(scratch)
        if args.speed:
            return
        ground = run_read_map("default", "ground", scratch / "a")
        floating = run_read_map("default", "float", scratch / "c")
        v3 = run_read_map("default", "v/3", scratch / "d")
        quiet = run_read_map(without_read_noise(scratch), "v/3", scratch / "e")
        averaged = run_read_map("default", "v/3", scratch / "f", reads=4)
        m = v3["metrics"]
        print(f"\nV/3 32x32 on default: {m['seconds']:.2f} s, "
              f"{m['round_trips_per_cell']:.2f} round trips per cell")
        print("\nconductance error per healthy cell against the World's truth")
        print("| scheme | healthy cells | median | p95 | max | within 5 % |")
        print("|---|---|---|---|---|---|")
        print(error_row("ground", ground["maps"]["conductance"], ground))
        print(error_row("float (as measured)", floating["maps"]["conductance"], floating))
        print(error_row("V/3 corrected", v3["maps"]["conductance"], v3))
        print(error_row("V/3 raw I/V", v3["maps"]["conductance_raw"], v3))
        # read noise of a low-resistance neighbour (u g_k 1 %) stays in the sensed current
        lrs_neighbour = (v3["truth"] > 2e-5).sum(axis=0, keepdims=True) - (v3["truth"] > 2e-5)
        corrected = v3["maps"]["conductance"]
        print(error_row("V/3 corrected, columns with no other cell > 20 uS", corrected, v3,
                        lrs_neighbour == 0))
        print(error_row("V/3 corrected, columns with another cell > 20 uS", corrected, v3,
                        lrs_neighbour > 0))
        print(error_row("V/3 corrected, read noise off", quiet["maps"]["conductance"], quiet))
        print(error_row("V/3 corrected, 4 reads averaged", averaged["maps"]["conductance"],
                        averaged))
        print(error_row("V/3 corrected, 4 reads, columns with no other cell > 20 uS",
                        averaged["maps"]["conductance"], averaged, lrs_neighbour == 0))
        print(f"(4 reads: {averaged['metrics']['seconds']:.1f} s)")
        if args.precision:
            print_precision_run(run_read_map("default", "v/3", scratch / "g",
                                             precision=args.precision,
                                             max_reads=args.max_reads), args.precision)


def print_pattern_accuracy(scratch: Path) -> None:
    """Ground and V/3 read maps of each programmed pattern on ``default``, against the truth."""
    print("conductance error per healthy cell against the World's truth, programmed chips "
          "(32x32 default bench, binary preset, one reading per cell)")
    print("| scheme | healthy cells | median | p95 | max | within 5 % |")
    print("|---|---|---|---|---|---|")
    for number, pattern in enumerate(PATTERNS):
        for scheme in ("ground", "v/3"):
            result = run_read_map("default", scheme, scratch / f"p{number}{scheme[0]}",
                                  pattern=pattern)
            print(error_row(f"{pattern}, {scheme}", result["maps"]["conductance"], result))
    print()


def print_calibrated_pattern_accuracy(scratch: Path) -> None:
    """The patterns again, read with the chip's calibration's correction (issue 17): one bench
    session (`xbarlab.engine.run_stage`, as the pipeline runs stages), ``calibrate-parasitics``
    on the chip as the bench file gives it, then per pattern the World's cells put in it and
    read-map with ``correct`` on (the calibration attached by the engine), ground and V/3."""
    path = scratch / "calibrated.toml"
    path.write_text(load_bench("default").text)
    quiet = Progress(show=False)
    with RunStore(scratch / "store-calibrated") as runs, open_bench(str(path)) as opened:
        world = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world
        with runs.start_run("benchmark", {}, opened.spec.text,
                            shape=(opened.rows, opened.cols)) as parent:
            started = time.perf_counter()
            calibration = run_stage("calibrate-parasitics-1", "calibrate-parasitics", opened,
                                    parent, quiet)
            print(f"conductance error per healthy cell against the World's truth, programmed "
                  f"chips read with the calibration's correction (calibrate-parasitics: "
                  f"{time.perf_counter() - started:.0f} s, {load()}; chi2 "
                  f"{calibration.metrics['chi2_reduced']:.2f})")
            print("| pattern, scheme | healthy cells | median | p95 | max | within 5 % |")
            print("|---|---|---|---|---|---|")
            for number, pattern in enumerate(PATTERNS):
                for scheme in ("ground", "v/3"):
                    world.array.set_state(pattern_state(pattern, world.array.shape))
                    world.changed()
                    truth = world.conductance().copy()
                    stage = run_stage(f"read-map-{number}{scheme[0]}", "read-map", opened,
                                      parent, quiet, scheme=scheme, correct=True)
                    measured = runs.open_run(stage.run_id).latest_map("conductance")
                    result = {"truth": truth, "healthy": world.array.defect_map() == 0}
                    print(error_row(f"{pattern}, {scheme}, corrected", measured, result))
    print()


def print_error_bars(scratch: Path, reads: int = 8) -> None:
    """Error over reported standard error of every healthy cell (module docstring, part 5)."""
    print(f"error / reported standard error per healthy cell, 32x32 default bench, {reads} "
          f"readings a cell ({load()})")
    print("| scheme | read noise | spread (1 = honest) | mean | median error |")
    print("|---|---|---|---|---|")
    for harder in (False, True):
        path = scratch / f"default-harder-{harder}.toml"
        text = load_bench("default").text
        if harder:
            text = text.replace("read_noise = true", "read_noise = true\nharder_read_noise = true")
        path.write_text(text)
        for scheme in ("ground", "v/3"):
            result = run_read_map(str(path), scheme, scratch / f"z{harder}{scheme[0]}", reads)
            maps, healthy = result["maps"], result["healthy"]
            error = maps["conductance"] - result["truth"]
            z = (error / maps["conductance_stderr"])[healthy]
            relative = np.abs(error / result["truth"])[healthy]
            print(f"| {scheme} | {'harder (1/f)' if harder else 'default'} | {np.std(z):.3f} | "
                  f"{np.mean(z):+.3f} | {np.median(relative) * 100:.2f} % |")


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def print_precision_run(result: dict, precision: float) -> None:
    """The V/3 map with a precision target: readings, time, and the error of every cell."""
    m = result["metrics"]
    readings = result["maps"]["readings"][result["healthy"]]
    print(f"\nV/3 with a {precision:.2%} precision target: {m['readings_now']} readings "
          f"({np.median(readings):.0f} median, {readings.max():.0f} max per cell), "
          f"{m['seconds']:.0f} s, {m['round_trips_per_cell']:.0f} round trips per cell, "
          f"cells short of the target {m['cells_short_of_precision']}")
    print("| scheme | healthy cells | median | p95 | max | within 5 % |")
    print("|---|---|---|---|---|---|")
    print(error_row(f"V/3 corrected, precision {precision:.2%}", result["maps"]["conductance"],
                    result))
    error = result["maps"]["conductance"] - result["truth"]
    z = (error / result["maps"]["conductance_stderr"])[result["healthy"]]
    print(f"error / reported standard error: std {np.std(z):.2f} (1 = honest error bars)")


if __name__ == "__main__":
    main()
