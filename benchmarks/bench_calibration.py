"""Acceptance of the measured parasitic calibration (issue 12) on virtual benches.

Plays the registered protocols exactly as ``xbarlab run`` does (on one open bench, as stages
of one parent run, so the chip keeps its state from one to the next), then looks inside the
virtual bench for the truth: the hidden per-line paths, wire resistances and cells.

Parts (``--part``, several joined by ``,``):

* ``recovery``: ``calibrate-parasitics`` on board benches whose hidden values span the IR-drop
  strength kappa = R_wire G_max N^2 (benchmarks/bench_solver.py) from 0.1 to 10, paths
  ``--path`` ohm with a 20 % lognormal spread line to line, and on the ``default`` matrix
  bench with such paths: recovered medians and worst line against the truth, and how many
  lines' 95 % intervals hold their true value.
* ``mvm``: board benches of ``--sizes`` (binary preset, 1 ohm segments, paths about 100 ohm),
  programmed with random binary weights (an initial condition of the virtual chip, like a
  chip that arrives programmed: programming 16 384 cells one pulse at a time is not what is
  measured here), calibrated on those weights (``patterns=0``), then ``mvm-error``: the
  largest and mean column error relative to full scale on 100 held-out random inputs,
  uncorrected, corrected with the model and with the per-column linear fit (10 inputs),
  against the protocol's measured map and against the true cells; and pre-distortion on the
  calibrated model (analog targets in the lower half of the range, reference input 0.02 V on
  every row): the modelled largest column error relative to full scale before and after,
  and the cells held at a bound.
* ``write-verify``: the embedded ``analog`` bench calibrated, then ``write-verify`` on it,
  with and without correction: the true conductance of every successful cell against its
  target.
* ``runtime``: ``calibrate-parasitics`` on the embedded ``board`` (128 x 128) and
  ``default`` (32 x 32) benches as they are.

Every time is printed with the machine's load average (the machine is shared); the runtime
part also prints the CPU time of the process (what the wall time is on an idle machine, give or
take the solver's second thread).

    python benchmarks/bench_calibration.py --part recovery,mvm --sizes 64,128
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvisa

from xbarlab.bench import open_bench
from xbarlab.benches import board_of_size, with_sim
from xbarlab.benchfile import load_bench
from xbarlab.calibration import LinearColumnCorrection, Parasitics, predistort
from xbarlab.calibration.record import parasitics_of
from xbarlab.engine import run_stage
from xbarlab.progress import Progress
from xbarlab.store import RunStore

G_MAX = 100e-6  # binary preset LRS (S)
QUIET = Progress(show=False)


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def world_of(path) -> object:
    return pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world


class Session:
    """One open bench and a parent run in a store: protocols run as its stages."""

    def __init__(self, path, store: RunStore):
        self.path, self.store = path, store

    def __enter__(self):
        self.bench = open_bench(str(self.path)).__enter__()
        self.parent = self.store.start_run("benchmark", {}, self.bench.spec.text,
                                           shape=(self.bench.rows, self.bench.cols))
        self.parent.__enter__()
        self.world = world_of(self.path)
        self.count = 0
        return self

    def __exit__(self, *exc):
        self.parent.__exit__(*exc)
        return self.bench.__exit__(*exc)

    def stage(self, protocol: str, **params):
        self.count += 1
        started = time.perf_counter()
        result = run_stage(f"{protocol}-{self.count}", protocol, self.bench, self.parent, QUIET,
                           **params)
        return result, time.perf_counter() - started


def truth_of(world) -> Parasitics:
    return Parasitics(world.path_row, world.path_col, world.sim.r_wire_row,
                      world.sim.r_wire_col)


def recovery_row(label, metrics, truth: Parasitics, seconds: float) -> str:
    cells = [label]
    for name, true in (("r_source", truth.r_source), ("r_sense", truth.r_sense)):
        found = np.array(metrics[name]["per_line"])
        bounds = np.array(metrics[name]["per_line_ci95"])
        covered = np.mean((bounds[:, 0] <= true) & (true <= bounds[:, 1]))
        cells.append(f"{np.median(found) / np.median(true) - 1:+.2%} "
                     f"{np.max(np.abs(found / true - 1)):.2%} {covered:.0%}")
    for name, true in (("r_wire_row", truth.r_wire_row), ("r_wire_col", truth.r_wire_col)):
        low, high = metrics[name]["ci95"]
        inside = "in" if low <= true <= high else "out"
        cells.append(f"{metrics[name]['value'] / true - 1:+.2%} {inside}")
    cells.append(f"{metrics['chi2_reduced']:.2f}  {seconds:.0f} s")
    return " | ".join(cells)


def part_recovery(args, scratch: Path) -> None:
    print(f"\n## Recovery (paths {args.path:g} ohm x lognormal 20 %, read noise on; {load()})")
    print("median error of r_source, worst line, lines whose 95 % CI holds the truth | same "
          "for r_sense | r_wire_row error, truth in CI | r_wire_col | chi2, time")
    cases = [(0.1, 32), (0.3, 32), (1.0, 32), (3.0, 32), (10.0, 32), (1.0, 64), (10.0, 64)]
    for kappa, size in cases:
        r_wire = kappa / (G_MAX * size * size)
        path = scratch / f"recovery-{kappa}-{size}.toml"
        path.write_text(board_of_size(size, size, seed=int(kappa * 100) + size,
                                      r_path_row=args.path, r_path_col=args.path,
                                      r_path_spread=0.2, r_wire_row=r_wire, r_wire_col=r_wire))
        with RunStore(scratch / f"store-recovery-{kappa}-{size}") as store, \
                Session(path, store) as session:
            result, seconds = session.stage("calibrate-parasitics", patterns=args.patterns)
            truth = truth_of(session.world)
        print(recovery_row(f"board {size}x{size} kappa {kappa:g} (R_wire {r_wire:.3g} ohm)",
                           result.metrics, truth, seconds))
    path = scratch / "recovery-default.toml"
    path.write_text(with_sim(load_bench("default").text, r_path_row=args.path,
                             r_path_col=args.path, r_path_spread=0.2))
    with RunStore(scratch / "store-recovery-default") as store, Session(path, store) as session:
        result, seconds = session.stage("calibrate-parasitics", patterns=args.patterns)
        truth = truth_of(session.world)
    print(recovery_row("default 32x32 matrix bench (kappa 0.1)", result.metrics, truth,
                       seconds))


def part_mvm(args, scratch: Path) -> None:
    print(f"\n## MVM error relative to full scale, 100 held-out inputs ({load()})")
    print("size | calibration s | vs the measured map: uncorrected / model / linear (max, "
          "mean) | vs the true cells: uncorrected / model / linear (max) | pre-distortion")
    for size in args.sizes:
        path = scratch / f"mvm-{size}.toml"
        path.write_text(board_of_size(size, size, seed=size, r_path_row=100.0,
                                      r_path_col=100.0, r_path_spread=0.1, r_wire_row=1.0,
                                      r_wire_col=1.0))
        with RunStore(scratch / f"store-mvm-{size}") as store, Session(path, store) as session:
            weights = np.random.default_rng(size).random((size, size)) < args.weights
            session.world.array.set_state(weights.astype(float))  # initial condition
            session.world.changed()
            calibration, calibration_s = session.stage("calibrate-parasitics", patterns=0)
            result, _ = session.stage("mvm-error", inputs=100, fit_inputs=10)
            truth = session.world.conductance().copy()
            run = store.open_run(result.run_id)
            checkpoints = run.checkpoints()
            stored = store.latest_calibration(session.bench.spec.chip.id)
        m = result.metrics
        v = np.random.default_rng(0).uniform(0.0, 0.2, (110, size))  # mvm-error's inputs
        raw = np.array([checkpoints[f"product{k}"]["raw"] for k in range(110)])
        corrected = np.array([checkpoints[f"product{k}"]["corrected"] for k in range(110)])
        ideal = v @ truth
        scale = 0.2 * truth.sum(axis=0).max()
        linear = LinearColumnCorrection.fit(raw[:10], ideal[:10]).apply(raw[10:])
        true_errors = [np.abs(values - ideal[10:]).max() / scale
                       for values in (raw[10:], corrected[10:], linear)]
        # analog targets in the lower half of the range leave the cells headroom to go up
        targets = np.random.default_rng(1).uniform(1e-6, G_MAX / 2, truth.shape)
        pre = predistort(targets, parasitics_of(stored.record), 0.02, 1e-6, G_MAX)
        chi2 = calibration.metrics["chi2_reduced"]
        print(f"{size}x{size} | {calibration_s:.0f} s (chi2 {chi2:.2f}) | "
              f"{m['mvm_error_uncorrected']:.2%} / {m['mvm_error_corrected']:.2%} / "
              f"{m['mvm_error_linear']:.2%} (mean {m['mvm_mae_uncorrected']:.3%} / "
              f"{m['mvm_mae_corrected']:.3%} / {m['mvm_mae_linear']:.3%}) | "
              + " / ".join(f"{e:.2%}" for e in true_errors)
              + f" | modelled column error {pre.column_error_before:.2%} -> "
              f"{pre.column_error_after:.2%}, {int(pre.clipped.sum())} cells at a bound")


def part_write_verify(args, scratch: Path) -> None:
    print(f"\n## write-verify after calibration, true conductance of successful cells ({load()})")
    for correct in (False, True):
        path = scratch / f"analog-{correct}.toml"
        path.write_text(load_bench("analog").text)
        with RunStore(scratch / f"store-wv-{correct}") as store, \
                Session(path, store) as session:
            if correct:
                calibration, seconds = session.stage("calibrate-parasitics")
                print(f"calibration: {seconds:.0f} s, chi2 "
                      f"{calibration.metrics['chi2_reduced']:.2f}, r_wire "
                      f"{calibration.metrics['r_wire_row']['value']:.3f} / "
                      f"{calibration.metrics['r_wire_col']['value']:.3f} ohm (true 1), paths "
                      f"{calibration.metrics['r_source']['value']:.2f} / "
                      f"{calibration.metrics['r_sense']['value']:.2f} ohm (true 2)")
            result, seconds = session.stage("write-verify", rows=args.wv_rows,
                                            cols=args.wv_rows, correct=correct)
            session.bench.pulse(0, 0, 0.0, 1e-3, "float", count=1, period=1.0)  # relax 1 s
            truth = session.world.conductance().copy()
            targets = store.open_run(result.run_id).latest_map("targets")
        m = result.metrics
        failed = {(r, c) for r, c, _ in m["failed_cells"]}
        stuck = {tuple(cell) for cell in m["stuck_cells"]}
        cells = [(r, c) for r, c in np.argwhere(np.isfinite(targets))
                 if (r, c) not in failed and (r, c) not in stuck]
        error = np.array([truth[cell] / targets[cell] - 1 for cell in cells])
        print(f"correct={correct}: {len(cells)} successful cells, true error mean "
              f"{error.mean():+.3%}, median {np.median(error):+.3%}, within +-1 % "
              f"{np.mean(np.abs(error) <= 0.01):.1%}; mean pulses {m['mean_pulses']:.1f}; "
              f"{seconds:.0f} s")


def part_runtime(args, scratch: Path) -> None:
    print(f"\n## Runtime on the embedded benches ({load()})")
    for name, params in (("board", {"patterns": 0}), ("default", {})):
        path = scratch / f"runtime-{name}.toml"
        path.write_text(load_bench(name).text)
        with RunStore(scratch / f"store-runtime-{name}") as store, \
                Session(path, store) as session:
            cpu = time.process_time()
            result, seconds = session.stage("calibrate-parasitics", **params)
            cpu = time.process_time() - cpu
        m = result.metrics
        print(f"{name} {params}: {seconds:.0f} s wall, {cpu:.0f} s CPU ({load()}); r_source "
              f"{m['r_source']['value']:.3g} {m['r_source']['ci95']}, r_sense "
              f"{m['r_sense']['value']:.3g}, r_wire {m['r_wire_row']['value']:.3g} / "
              f"{m['r_wire_col']['value']:.3g} ohm (true paths 2, wires 1); chi2 "
              f"{m['chi2_reduced']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="recovery,mvm,write-verify,runtime")
    parser.add_argument("--sizes", default="64,128", help="MVM board sizes")
    parser.add_argument("--weights", type=float, default=0.5,
                        help="fraction of low-resistance weights of the MVM chips")
    parser.add_argument("--path", type=float, default=100.0, help="hidden path median (ohm)")
    parser.add_argument("--patterns", type=int, default=2, help="patterns of the recovery")
    parser.add_argument("--wv-rows", type=int, default=0,
                        help="write-verify on the first rows x rows cells (0: all)")
    args = parser.parse_args()
    args.sizes = [int(size) for size in args.sizes.split(",")]
    parts = {"recovery": part_recovery, "mvm": part_mvm, "write-verify": part_write_verify,
             "runtime": part_runtime}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.part.split(","):
            parts[name](args, Path(scratch))


if __name__ == "__main__":
    main()
