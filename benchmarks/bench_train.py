"""The ``train`` protocol on the virtual 128 x 128 ``board`` bench (issue 13 acceptance figures).

What it runs, each a full ``train`` run through `xbarlab.engine.run_protocol` on the embedded
board bench with ``[sim] stuck_fraction`` set (the binary preset's stuck-on : stuck-off ratio
kept), the protocol's defaults otherwise (a ternary 64-16-10 network, 2 chip-in-the-loop epochs
of 300 training images, every one of the 359 test images measured):

1. At the first rate (10 % by default) with ``compare=true``: the thresholded updates against
   reprogramming every changed weight from the same ex-situ chip (pulses, energy, accuracy).
2. At every other rate: software, ex-situ and chip-in-the-loop accuracy
   (``accuracy_vs_defects``).

For each run it prints its time split from the run's own ledger (bench: the calls to the
instruments; store; computation: training and decoding) and, inside the bench time, the
simulator's physics (the crossbar solver and device model, timed by `physics_clock`: a
benchmark may look inside the simulator); the rest of the bench time is instrument I/O
(drivers, command parsing, the VISA layer, the World's bookkeeping). It ends with one JSON line.
Timings depend on the machine's load: print ``cat /proc/loadavg`` beside them.

Run: ``python benchmarks/bench_train.py`` (about 2 minutes a run on two idle cores, one more
loop for the comparison), ``--rates 10`` for the comparison alone, ``--set loop_samples=20
test_samples=20`` for a quick look.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import tempfile
from pathlib import Path

from physics_clock import PhysicsClock

from xbarlab.benches import with_sim_values
from xbarlab.engine import run_protocol


def board_with_defects(directory: Path, rate: float) -> Path:
    """The embedded board bench with `rate` of its cells stuck."""
    text = importlib.resources.files("xbarlab.benches").joinpath("board.toml").read_text()
    path = directory / f"board-stuck{rate:g}.toml"
    path.write_text(with_sim_values(text, {"stuck_fraction": rate}))
    return path


def one_run(directory: Path, rate: float, compare: bool, params: dict) -> dict:
    with PhysicsClock() as clock:
        result = run_protocol("train", board_with_defects(directory, rate),
                              store=directory / f"store-{rate:g}", progress=False,
                              compare=compare, **params)
    m = dict(result.metrics)
    m["wall_s"], m["physics_s"] = clock.total_wall, clock.wall
    m["physics"] = clock.report()
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 0, 5, 20],
                        help="stuck-cell rates in percent; the first with compare=true")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="train parameters (numbers), e.g. loop_samples=20 for a quick look")
    args = parser.parse_args()
    params = {name: float(value) if "." in value else int(value)
              for name, value in (item.split("=", 1) for item in args.set)}
    out: dict = {"accuracy_vs_defects": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for k, rate in enumerate(args.rates):
            m = one_run(Path(tmp), rate / 100, k == 0, params)
            s, d = m["seconds"], m["defects"]
            print(f"stuck {rate:g} %: software {100 * m['accuracy_software']:.1f} %, ex situ "
                  f"{100 * m['accuracy_ex_situ']:.1f} %, chip in the loop "
                  f"{100 * m['accuracy_chip_in_loop']:.1f} %; found {d['stuck_on']} stuck-on, "
                  f"{d['stuck_off']} stuck-off ({d['stuck_off_in_tiles']} in the tiles); "
                  f"{m['pulses']} pulses, {m['energy_j']:.3g} J; wall {m['wall_s']:.0f} s: bench "
                  f"{s['bench']:.0f} s (simulator physics {m['physics_s']:.0f} s, instrument "
                  f"I/O {s['bench'] - m['physics_s']:.0f} s) + store {s['store']:.1f} s + "
                  f"computation {s['compute']:.1f} s\n  {m['physics']}", flush=True)
            out["accuracy_vs_defects"][f"{rate:g}"] = {
                key: m[key] for key in ("accuracy_software", "accuracy_ex_situ",
                                        "accuracy_chip_in_loop", "pulses", "energy_j",
                                        "bench_time_s", "defects", "seconds", "physics_s")}
            if "comparison" in m:
                c = {key: value for key, value in m["comparison"].items()
                     if key != "epochs_every_change"}
                print(f"  thresholded updates: {c['pulses_efficient']} pulses against "
                      f"{c['pulses_every_change']} reprogramming every change (saving "
                      f"{100 * c['pulse_saving']:.0f} %), energy {c['energy_j_efficient']:.3g}"
                      f" J against {c['energy_j_every_change']:.3g} J, accuracy "
                      f"{100 * c['accuracy_efficient']:.1f} % against "
                      f"{100 * c['accuracy_every_change']:.1f} %", flush=True)
                out["comparison"] = c
    print(json.dumps(out))


if __name__ == "__main__":
    main()
