"""What a virtual SMU's current meter adds to the current the World delivers: the random error
of one reading and the range's resolution, per range, from the manufacturer's specification
sheet (``measurement_specs.toml``, which cites each table and says what it lacks).

A reading on a range with accuracy +-(p % of reading + offset), plus the sheet's derating for
an NPLC below 1 (d % of range), has an error drawn from a normal distribution of sigma
(p/100 |I| + offset + d/100 range) / 3 (the bound read as 3 sigma: the file's header), then
is rounded to the range's resolution. Autorange reads on the smallest range holding |I|. Each
instrument draws from a stream of its own, seeded by the bench's seed and its name, so the
device's read noise and the chip are the same with or without it.
"""

from __future__ import annotations

import bisect
import importlib.resources
import math
import sys
import zlib
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

METER_STREAM = 0x4D455452
"""Seed-sequence word of the meters' random streams ("METR"), beside the bench's seed."""
SIGMA_PER_BOUND = 1.0 / 3.0
"""A specification's accuracy bound read as three standard deviations (file header) [E]."""


@dataclass(frozen=True)
class MeterSpec:
    """One family's current ranges: tops (A), resolutions (A), % of reading and offsets (A)
    (NaN: not in any sheet read), and its NPLC derating (% of range per column of ranges)."""

    family: str
    ranges: np.ndarray
    resolution: np.ndarray
    percent: np.ndarray
    offset: np.ndarray
    derating_tops: tuple[float, ...]
    derating: tuple[tuple[float, ...], ...]
    """Rows of (NPLC, % of range of each derating column)."""

    @cached_property
    def tops(self) -> list[float]:
        """The range tops as plain floats (`Meter.read_one`)."""
        return self.ranges.tolist()

    def range_for(self, current: np.ndarray, fixed: float | None) -> np.ndarray:
        """Index of the range each reading is taken on: the fixed one, or the smallest
        holding |current| (the largest when none does)."""
        if fixed is not None:
            index = int(np.searchsorted(self.ranges, fixed * (1 - 1e-9)))
            return np.full(np.shape(current), min(index, len(self.ranges) - 1))
        index = np.searchsorted(self.ranges, np.abs(current) * (1 - 1e-12))
        return np.minimum(index, len(self.ranges) - 1)

    def derated(self, top: float, nplc: float) -> float:
        """% of range the sheet adds to a reading at `nplc` on the range of `top`
        (interpolated in log NPLC between its rows; 0 at 1 NPLC and above, or untabled)."""
        column = next((k for k, t in enumerate(self.derating_tops) if top <= t * (1 + 1e-9)),
                      None)
        if column is None or nplc >= 1.0 or not self.derating:
            return 0.0
        points = [(1.0, 0.0)] + [(row[0], row[column + 1]) for row in self.derating]
        logs = [math.log10(p[0]) for p in points]
        return float(np.interp(-math.log10(nplc), [-x for x in logs], [p[1] for p in points]))

    def sigma(self, current: np.ndarray, index: np.ndarray, nplc: float) -> np.ndarray:
        """Standard deviation of each reading's error (0 where the sheet has no figure)."""
        bound = self.percent[index] / 100 * np.abs(current) + self.offset[index]
        if nplc < 1.0 and self.derating:
            tops = self.ranges[index]
            bound += tops / 100 * np.array([self.derated(top, nplc)
                                            for top in tops.ravel()]).reshape(tops.shape)
        return np.nan_to_num(bound * SIGMA_PER_BOUND, nan=0.0)


class Meter:
    """One instrument's current meter: `read` puts the true currents through it."""

    def __init__(self, spec: MeterSpec | None, seed: int, name: str, noisy: bool):
        self.spec = spec
        self.noisy = noisy
        self._rng = np.random.default_rng([seed, METER_STREAM, zlib.crc32(name.encode())])

    def read(self, currents, fixed_range: float | None, nplc: float,
             conversions: int = 1) -> np.ndarray:
        """The readings of true `currents` (A) on `fixed_range` (None: autorange) at `nplc`,
        each the mean of `conversions` A/D conversions (an averaging filter: the error of one
        conversion over the root of their count); NaN and beyond-range values pass unchanged
        (the caller reports the overflow)."""
        if self.spec is None:
            return np.asarray(currents, dtype=float)
        current = np.asarray(currents, dtype=float)
        finite = np.isfinite(current) & (np.abs(current) < 1e30)
        true = np.where(finite, current, 0.0)
        index = self.spec.range_for(true, fixed_range)
        if self.noisy:
            sigma = self.spec.sigma(true, index, nplc) / math.sqrt(conversions)
            true = true + sigma * self._rng.standard_normal(true.shape)
        step = self.spec.resolution[index]
        return np.where(finite, np.round(true / step) * step, current)


    def read_one(self, current: float, fixed_range: float | None, nplc: float,
                 conversions: int = 1) -> float:
        """`read` of one current, in plain floats (a cell read alone is the common case)."""
        if self.spec is None or not (math.isfinite(current) and abs(current) < 1e30):
            return current
        spec = self.spec
        index = min(bisect.bisect_left(spec.tops, (abs(current) if fixed_range is None
                                                   else fixed_range) * (1 - 1e-9)),
                    len(spec.tops) - 1)
        if self.noisy:
            bound = spec.percent[index] / 100 * abs(current) + spec.offset[index]
            if nplc < 1.0 and spec.derating:
                bound += spec.tops[index] / 100 * spec.derated(spec.tops[index], nplc)
            if bound == bound:  # NaN: no figure for this range
                current += bound * SIGMA_PER_BOUND / math.sqrt(conversions) * float(
                    self._rng.standard_normal())
        step = spec.resolution[index]
        return round(current / step) * step


@cache
def _specs() -> dict:
    text = importlib.resources.files(__package__).joinpath("measurement_specs.toml").read_text()
    return tomllib.loads(text)


@cache
def meter_spec(model: str) -> MeterSpec | None:
    """The specification of `model`'s current meter (None: no sheet tabled for it)."""
    for family, table in _specs().items():
        if model in table["models"] and table["current"]:
            rows = np.array(table["current"], dtype=float)
            return MeterSpec(family, *rows.T, tuple(table["derating_tops"]),
                             tuple(tuple(row) for row in table["nplc_derating"]))
    return None


def meter_for(world, instrument) -> Meter:
    """The meter of bench `instrument` on `world` (``[sim] instrument_meter``; without it the
    World's currents pass unchanged): noisy when the bench reads with noise."""
    spec = meter_spec(instrument.model) if world.sim.instrument_meter else None
    return Meter(spec, world.sim.seed, instrument.name, world.sim.read_noise)
