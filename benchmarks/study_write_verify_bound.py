"""How few pulses can write-verify need on the ``analog`` preset? A dynamic-programming bound.

Issue 6 asks the adaptive write-verify for at most 16 pulses a cell at ±1 % on the analog
preset, whose cycle-to-cycle noise (3.5 % of the range x sqrt(reference pulses)) and relaxation
(Wan 2022) keep their cited values. This study computes what the best possible policy would
need: one nominal cell (1-40 µS), its relaxed conductance known exactly after every pulse
(perfect verify), any amplitude of either polarity at the protocol's 1 µs width (at most
``v_max``), and a band of ``--band`` (the protocol's ±1 % less its guard margin, about 0.8 %).
The cell's outcomes are sampled from the device kernel itself (`pulse_cells`, then
`relax_cells` for one second), ``--samples`` per state and amplitude; value iteration over a
grid of conductances (dense near the target) gives the least expected number of pulses to
land inside the band, from the HRS bound and from ±10 %.

It also prints the optimal pulse's spread near the band as a multiple of the error, the
quantity the adaptive algorithm's move_fraction targets (protocols/programming.py).

Usage::

    python benchmarks/study_write_verify_bound.py [--band 0.008] [--targets 12]
        [--samples 512]

Measured (128 s): expected pulses from the HRS, averaged over 12 targets spread evenly over
1.5-30 µS, 12.0 (14.8 at 1.5 µS, 15.3 at 4.1 µS, 10.7 at 19.6 µS); from ±10 %, 6.4-13.5. Near
the band the best pulse spreads the cell by 0.76-1.08 times its error (median per target).
Fewer samples bias the bound low (the minimum over noisy estimates): 10.8 with 128. The
adaptive algorithm on the full 32 x 32 bench (benchmarks/bench_write_verify.py) has read
noise, device-to-device spread and IR drops to contend with, and learns its amplitudes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xbarlab.physics.device import (
    DevicePopulation,
    kernel_constants,
    pulse_cells,
    relax_cells,
)
from xbarlab.physics.presets import ANALOG

WIDTH = 1e-6
"""The write-verify protocol's pulse width (s)."""
V_MAX = 1.3
"""The protocol's largest amplitude (V): 10 reference pulses of drive at 1 µs."""


def amplitudes(params) -> np.ndarray:
    """Overdrives from 0.05 mV to V_MAX above each threshold, log-spaced, both polarities."""
    over = np.geomspace(5e-5, V_MAX - params.v_set, 48)
    return np.concatenate([params.v_set + over, params.v_reset - over])


def outcomes(states: np.ndarray, volts: float, samples: int, rng) -> np.ndarray:
    """Relaxed states (samples per state) one second after a pulse of `volts` on settled
    nominal cells at `states`."""
    params = ANALOG
    shape = (len(states), samples)
    population = DevicePopulation(np.full(shape, params.g_min), np.full(shape, params.g_max),
                                  np.full(shape, params.g_min), np.zeros(shape, np.int8))
    w = np.repeat(states[:, None], samples, axis=1).copy()
    formed = np.ones(shape, bool)
    progress = np.zeros(shape)
    pending = np.zeros(shape)
    pulse_cells(w, formed, progress, population, np.full(shape, volts), WIDTH,
                kernel_constants(params), i_compliance=None, rng=rng, relax_pending=pending)
    relax_cells(w, pending, 1.0, params.relax_tau)
    return w


def least_pulses(target: float, band: float, samples: int, rng) -> tuple:
    """Value iteration for one target (S): the grid of conductances, the least expected
    pulses from each, and the best amplitude at each."""
    params = ANALOG
    span = params.g_max - params.g_min
    offsets = np.geomspace(1e-4, 30.0, 200)
    g = np.unique(np.clip(np.concatenate(
        [target * (1 - offsets), [target], target * (1 + offsets), [params.g_min, params.g_max]]),
        params.g_min, params.g_max))
    states = (g - params.g_min) / span
    inside = np.abs(g - target) <= band * target
    volts = amplitudes(params)
    lower = np.empty((len(states), len(volts), samples), np.int64)
    share = np.empty((len(states), len(volts), samples))
    for a, v in enumerate(volts):
        after = outcomes(states, float(v), samples, rng)
        j = np.clip(np.searchsorted(states, after) - 1, 0, len(states) - 2)
        lower[:, a] = j
        share[:, a] = np.clip((after - states[j]) / (states[j + 1] - states[j]), 0.0, 1.0)
    value = np.zeros(len(states))
    for _ in range(1000):
        expected = 1 + (value[lower] * (1 - share) + value[lower + 1] * share).mean(axis=2)
        new = np.where(inside, 0.0, expected.min(axis=1))
        if np.max(np.abs(new - value)) < 1e-4:
            value = new
            break
        value = new
    best = expected.argmin(axis=1)
    spread = np.array([
        np.std(outcomes(states[i:i + 1], float(volts[best[i]]), 4 * samples, rng)) * span
        for i in range(len(states))])
    return g, value, spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--band", type=float, default=0.008)
    parser.add_argument("--targets", type=int, default=12)
    parser.add_argument("--samples", type=int, default=512)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    print(f"analog preset, band ±{100 * args.band:.2f} %, pulses of 1 µs up to {V_MAX} V, "
          "perfect verify of the relaxed state")
    print(" target µS   from HRS   from +10 %   from -10 %   best spread / |error| at 1.5-5 % "
          "(median)")
    from_hrs = []
    for target in np.linspace(1.5e-6, 30e-6, args.targets):
        g, value, spread = least_pulses(float(target), args.band, args.samples, rng)
        near = (np.abs(g / target - 1) >= 0.015) & (np.abs(g / target - 1) <= 0.05)
        ratio = spread[near] / np.abs(g[near] - target)
        from_hrs.append(value[0])
        print(f" {target * 1e6:9.2f}   {value[0]:8.1f}   {np.interp(1.1 * target, g, value):10.1f}"
              f"   {np.interp(0.9 * target, g, value):10.1f}   "
              f"{np.median(ratio):.2f}", flush=True)
    print(f"mean from the HRS over the targets: {np.mean(from_hrs):.1f} pulses "
          f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
