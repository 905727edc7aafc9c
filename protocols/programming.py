"""Write-verify primitives: program one cell to a target conductance, count its pulses and energy.

Reusable by every protocol that programs cells (``write-verify``, ``program-efficient``,
chip-in-the-loop training): `program_cell` runs one of three closed-loop algorithms from
reference/techniques.md §5.2 on one cell, through the bench only (`Bench.pulse`, `Bench.read`),
and returns a `CellResult`.

Algorithms:

* ``adaptive`` (D1, Alibart, Gao, Hoskins, Strukov, Nanotechnology 23:075201 (2012)): a
  variable-amplitude write pulse after every verify read, SET below the target and RESET above
  it (polarity reversal on overshoot). The amplitude is the one whose typical change matches
  the error still to correct, read off the response curve the chip's own pulses measured
  (`AmplitudeMemory`): on a device whose cycle-to-cycle noise grows with the drive of a pulse
  (NeuroSim: sigma x sqrt(pulses)), a pulse far smaller than the error wastes a pulse and one
  far larger throws the cell past the target.
* ``ispva`` (D2, Milo et al., IEEE TED 68 (2021)): incremental step pulse amplitude with
  verify, SET only: V_k = V_0 + k x step until G >= G_t (1 - tol); on an overshoot past
  G_t (1 + tol) a RESET ramp brings the cell back below the window and the SET ramp restarts
  from V_0 with half the step. A cell inside the window but not confirmed inside the guard
  band goes on with the SET ramp below the target and with the RESET ramp above it.
  This is an ISPVA-style algorithm of this project, not Milo 2021's regime: theirs stops
  one-sided at the target, on 1T1R cells; this one keeps a two-sided window (with the guard
  band and confirming reads when asked), RESET ramps and step halving, on a passive array.
* ``coarse-fine`` (D4): an ISPVA-style ramp of twice the step to within ``coarse_tolerance``,
  then ``adaptive`` to the tolerance.

Verify: ``settle`` seconds after each pulse (`hold`; 0 by default, so a reading follows the
pulse within the instrument's integration time and sees little of the cell's relaxation; a
settle of several relaxation times verifies the relaxed state, NeuRRAM-style, and the adaptive
amplitudes are then learned from relaxed moves), the conductance is the mean of ``reads``
readings (each ``I / V`` at ``v_read`` with the ``read_scheme`` bias). A cell inside
``tolerance`` is confirmed by ``confirm_reads`` more readings (0: as many as ``reads``) and
succeeds only if the mean of all of them is inside the guard band:

    |mean - target| <= tolerance x target - guard x s x sqrt(1/n + 1/guard_reads)

with s the standard deviation of one reading estimated from the n readings' own scatter, so
that an independent later re-read of ``guard_reads`` readings of the same cell (the one the
guard protects) still finds it inside the tolerance (``guard`` 3: for a cell accepted at the
very edge of the band, that re-read falls outside in 0.13 % of cases). With a guard the
confirmation is sequential: the readings double, up to ``guard_reads``, while the mean lies
within DECIDED standard errors of the band's edge, and a cell is accepted KEEP_INSIDE standard
errors inside it (a later re-read of the same precision does not then reject it at once).
``guard`` 0 (the default) is the plain test: the mean inside the tolerance.
``program_cell(..., confirm=False)`` stops at the first verify mean inside the tolerance,
without confirmation (a first, rough pass over a map).

Stuck cells: after ``stuck_pulses`` pulses in a row at ``v_max`` that each change the measured
conductance by less than ``stuck_change`` (relative), one pulse at ``v_max`` of the opposite
polarity is the probe, and one more of the first polarity if that one does not answer either:
no response to any is a stuck cell (stuck-on/stuck-off), reported and not retried. The last
pulse is there because a healthy cell at its bound can fail to switch: at its HRS bound a
SET pulse's cycle-to-cycle noise clips it back in a few % of pulses on the analog preset (two
such pulses in a row, then a RESET that cannot move it, flagged 3 healthy cells of 927 as
stuck). A response means a healthy cell: the first time, programming goes on (a pulse
at v_max toward the bound a cell approaches can move it by less than ``stuck_change``, the
soft-bound curve being flat there: on the analog preset's RESET, NL 4.88); the second time,
the cell is taken to sit at its own bound (the target lies outside its range): a failure, not
stuck.

Energy (techniques.md §5.3): what the instruments delivered during the pulses, Σ V x I x t
over every driven line (the selected cell, the half-selected cells of its row and column, the
sneak paths and the wires), as the instruments measured it (`Bench.pulse` leaves it in
``last_pulse_energy``: the array board measures it, and so does a Keithley 2600B or Keysight
B2900 that pulses while every other line floats, the ``float`` pulse scheme, or that pulses
the bias levels of ``v/2`` and ``v/3`` on its second channel, and on the channels of an SMU
cabled to its trigger lines, together with the pulse, each measuring). Where the instruments do
not measure all of it (an SMU not synchronised with the pulse holding a bias at DC, an SMU
that does not measure during a pulse), the pulse's energy is an estimate, and the result says
so
(``energy_measured`` False): |V| x I x t with I = |V| x G, G the mean of the conductances
measured just before and just after the pulse (a passive linear cell), capped by the pulse's
current limit: the selected cell's share only, a lower bound of what the sources deliver.
Verify reads are counted (``reads``), their energy is not: their integration time is the
instrument's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from xbarlab.protocols.parameters import PulseScheme, ReadScheme, VRead, Width
from xbarlab.protocols.recording import reading_points

from xbarlab.engine import json_ready
from xbarlab.params import Declared, Param, declared_fields, resolve
from xbarlab.safety import signals_held

ALGORITHMS = ("adaptive", "ispva", "coarse-fine")
"""Write-verify algorithms `program_cell` runs (techniques.md §5.2 D1, D2, D4)."""
AMPLITUDE_BIN = 1e-3
"""Resolution of the adaptive algorithm's response curve (V): a DAC's millivolt."""
MOVE_FRACTION = 0.4
"""Default of ``move_fraction`` (`PulseSettings`): the typical (geometric-mean) |ΔG| the
adaptive algorithm asks of a pulse, as a fraction of the error to correct. A controller gain,
not a property of a device: near its target a cell's change under a small pulse is mostly
zero-mean noise (cycle-to-cycle and relaxation, both growing with the drive), and the geometric
mean of |N(0, s²)| being 0.53 s, 0.4 asks for a spread s ≈ 0.75 |error|. The default was the
best of the values tried on the virtual analog chip [E: the loop on 400 single analog cells,
0.35-0.5 within a pulse of each other; 0.7, 35 % more pulses; 1.0, 140 % more, the search then
throwing cells further than it brings them]; a chip whose pulses are noisier or steadier than
that may do better with another (a write-verify parameter)."""
SMOOTHING = 0.005
"""Width (V) of the normal kernel that smooths the response curve over amplitude: the
per-bin means scatter by a factor ~3.7 each [E: 3-7 mV alike, 0 and 20 mV 5 % more pulses]."""
G_BIN, G_SMOOTHING = math.log(2) / 2, 0.5
"""Conductance bins (half an octave, in ln G) and the width of the kernel that weighs them
by closeness to the cell programmed (ln G; 0.5: a factor 1.65) [E: 0.5 and 1.0 alike]."""
_AMPLITUDE_KERNEL = np.exp(-0.5 * (np.arange(-6 * round(SMOOTHING / AMPLITUDE_BIN),
                                                6 * round(SMOOTHING / AMPLITUDE_BIN) + 1)
                                      * AMPLITUDE_BIN / SMOOTHING) ** 2)
"""SMOOTHING's normal kernel on the amplitude bins, to six standard deviations."""
STEP_OUT = 4
"""Largest step out of the measured curve, in v_step [E: 1 took 2.6 x the pulses on the
binary preset's per-cell programming, whose first pulses climb from a start far below its
threshold]."""
DEFAULT_SLOPE = 20.0
"""Assumed rise of ln|ΔG| per volt of amplitude where the measured curve does not show it yet
(one e-fold per 50 mV, the v_step of the amplitude ramps)."""
NO_RESPONSE, UNANSWERED = 0.1, 2
"""A pulse whose change is below NO_RESPONSE of the typical change asked went unanswered;
UNANSWERED of them in a row step the cell's amplitude up (`_Cell.adaptive`). Two in a row
happen to a healthy cell in about 0.2 % of its pulses (|N(0, s²)| < 0.05 s, 4 % each)."""
DECIDED, KEEP_INSIDE = 2.0, 1.0
"""Sequential confirmation with a guard (`_Cell.confirmed`): more readings while the mean is
within DECIDED standard errors of the guard band's edge; accepted only KEEP_INSIDE standard
errors inside it, so that a later re-read of the same precision does not reject the cell at once
[E: with 0, a quarter of the cells re-programmed after the map was re-read were rejected again
by the next re-read]."""
PROBES = 2
"""Responsive stuck probes after which a cell is taken to sit at its own bound (`_Cell.probe`)."""


@dataclass
class CellResult:
    """What programming one cell did."""

    row: int
    col: int
    target: float
    """Target conductance (S)."""
    final_g: float
    """Last measured conductance (S): the mean of the last verify readings."""
    pulses: int
    """Write pulses applied (SET and RESET; stuck probes included)."""
    energy_j: float
    """Energy of the pulses (J), see the module docstring."""
    success: bool
    """Confirmed within the tolerance."""
    stuck: bool
    """No response to pulses at v_max of either polarity."""
    reads: int = 0
    """Verify readings taken."""
    reversals: int = 0
    """Polarity reversals (overshoots corrected)."""
    trace: list[float] = field(default_factory=list, repr=False)
    """Measured conductance after each pulse (S), the first entry before any pulse."""
    energy_measured: bool = True
    """Every pulse's energy was measured by the instruments (False: some are estimates of the
    selected cell's share, see the module docstring)."""

    @property
    def rel_error(self) -> float:
        """|final_g - target| / target."""
        return abs(self.final_g - self.target) / self.target


Tolerance = Annotated[float, Param("relative tolerance around the target", minimum=1e-4,
                                   maximum=0.5)]
Reads = Annotated[int, Param("readings averaged per verify", minimum=1, maximum=1000)]
ConfirmReads = Annotated[int, Param("further readings that confirm a cell inside the tolerance",
                                    zero="as many as reads", minimum=1, maximum=1000)]
VSetStart = Annotated[float, Param("first SET amplitude", unit="V", minimum=0.0,
                                   maximum="v_max")]
VResetStart = Annotated[float, Param("first RESET amplitude (negative)", unit="V",
                                     minimum="-v_max", maximum=0.0)]
VStep = Annotated[float, Param("amplitude step", unit="V", minimum=1e-4, maximum="v_max")]
VMax = Annotated[float, Param("largest pulse amplitude", unit="V", minimum=1e-3,
                              maximum="limits.max_voltage")]
MaxPulses = Annotated[int, Param("most pulses per cell", minimum=1, maximum=100000)]
StuckPulses = Annotated[int, Param("unanswered pulses at v_max in a row before the stuck probe",
                                   minimum=1, maximum=1000)]
StuckChange = Annotated[float, Param("relative change below which a pulse is unanswered",
                                     minimum=0.0, maximum=1.0)]
MoveFraction = Annotated[float, Param("typical change the adaptive algorithm asks of a pulse, "
                                      "as a fraction of the error", above=0.0, maximum=1.0)]
CoarseTolerance = Annotated[float, Param("relative tolerance of coarse-fine's coarse ramp",
                                         minimum="tolerance", maximum=1.0)]
CurrentLimit = Annotated[float, Param("current limit of every pulse and reading", unit="A",
                                      zero="the bench's", minimum=1e-9,
                                      maximum="limits.max_compliance")]
Settle = Annotated[float, Param("hold between a pulse and its verify", unit="s", minimum=0.0,
                                maximum=10.0)]
Guard = Annotated[float, Param("guard band, in standard deviations of a mean", minimum=0.0,
                               maximum=10.0)]
GuardReads = Annotated[int, Param("readings of the later re-read the guard band protects",
                                  zero="the mean's own standard error only", minimum=1,
                                  maximum=10000)]


CELL_ARGUMENTS = {
    "target": Declared("target", float, 1e-5, Param("target conductance", unit="S",
                                                    minimum=1e-12, maximum=1.0)),
    "algorithm": Declared("algorithm", str, "adaptive", Param("programming algorithm",
                                                              choices=ALGORITHMS)),
}
"""`program_cell`'s own arguments, declared as its settings are (`PulseSettings`)."""


@dataclass(frozen=True)
class PulseSettings:
    """Pulse and verify settings of `program_cell` (volts, seconds, siemens; see its doc),
    declared as protocol parameters are, so a bad one is refused in the same words."""

    tolerance: Tolerance = 0.01
    v_read: VRead = 0.2
    read_scheme: ReadScheme = "ground"
    reads: Reads = 2
    confirm_reads: ConfirmReads = 0
    pulse_scheme: PulseScheme = "v/2"
    width: Width = 1e-6
    v_set_start: VSetStart = 0.8
    v_reset_start: VResetStart = -0.8
    v_step: VStep = 0.05
    v_max: VMax = 1.3
    max_pulses: MaxPulses = 200
    stuck_pulses: StuckPulses = 2
    stuck_change: StuckChange = 0.05
    move_fraction: MoveFraction = MOVE_FRACTION
    coarse_tolerance: CoarseTolerance = 0.1
    current_limit: CurrentLimit = 0.0
    settle: Settle = 0.0
    guard: Guard = 0.0
    guard_reads: GuardReads = 0

    def margin(self, scatter: float, readings: int) -> float:
        """Guard band (S) of a mean of `readings` readings whose one-reading standard deviation
        is `scatter` (S): guard x the standard deviation of the difference between that mean
        and an independent mean of ``guard_reads`` readings (scatter x sqrt(1/readings +
        1/guard_reads); guard_reads 0: the mean's own standard error only)."""
        if self.guard == 0:
            return 0.0
        later = 1 / self.guard_reads if self.guard_reads else 0.0
        margin = self.guard * scatter * math.sqrt(1 / readings + later)
        return margin if math.isfinite(margin) else math.inf

    def distance(self, mean: float, scatter: float, readings: int, target: float,
                 tolerance: float | None = None) -> float:
        """How far (S) a mean of `readings` readings lies inside the guard band around
        `target` (negative: outside): tolerance x target - margin - |mean - target|."""
        tolerance = self.tolerance if tolerance is None else tolerance
        return tolerance * target - self.margin(scatter, readings) - abs(mean - target)


def pulse_energy(volts: float, g_before: float, g_after: float, width: float,
                 current_limit: float = 0.0) -> float:
    """|V| x I x width of one pulse (J), I = |V| x the mean of the conductances measured just
    before and just after it (S), capped by `current_limit` (A; 0: no cap); NaN when either
    conductance is unknown (module docstring, Energy)."""
    current = abs(volts) * max(0.5 * (g_before + g_after), 0.0)
    if current_limit:
        current = min(current, current_limit)
    return abs(volts) * current * width


def hold(bench, seconds: float) -> None:
    """Let `seconds` pass on the instruments' clock (nothing when 0): a 0 V pulse train of one
    pulse whose period is `seconds`, on cell (0, 0) with the other lines floating. The bench
    waits the same way on real and virtual instruments, and a virtual bench's clock (and the
    relaxation of its cells) advances with it. The pulse is 1 ms wide (half the hold if that
    is shorter): long enough for SMUs whose shortest pulse is 0.1-1 ms."""
    if seconds > 0:
        bench.pulse(0, 0, 0.0, min(1e-3, seconds / 2), "float", count=1, period=seconds)


class AmplitudeMemory:
    """The write amplitude for the change a pulse should make, from the response curve the
    chip's own pulses measured.

    Per polarity, every pulse adds ln|ΔG| (the change it made, measured by the verifies before
    and after it) to the bin of its amplitude (AMPLITUDE_BIN wide) and of the conductance of
    the cell it pulsed (G_BIN wide in ln G). The curve for a cell at G weighs each bin by its
    closeness in ln G (a normal kernel of G_SMOOTHING) and in amplitude (SMOOTHING), and is
    the non-decreasing fit of the weighted means (pool adjacent violators: a larger pulse
    moves a cell at least as much on average). For an error to correct, the amplitude is where
    the curve reaches ln(move_fraction x |error|), interpolated between bins; beyond the
    measured amplitudes it steps out at the curve's own slope (DEFAULT_SLOPE until the curve
    shows one), by 2 mV to STEP_OUT x v_step, so the curve grows where it is needed. With
    nothing measured yet for a polarity, the start amplitude of the settings.

    One memory shared by the cells of a chip learns once, from thousands of pulses, what each
    cell would otherwise learn again (Alibart 2012 adapts the amplitude per cell from zero;
    pooling the chip's responses is our change [E]). The conductance kernel is for soft-bound
    devices, whose change under one pulse scales with the distance to the bound it approaches:
    a binary cell RESET from 100 µS to 1.5 µS one pulse at a time needs a larger amplitude at
    every octave down (per-cell programming on the binary preset: 96 pulses a cell pooled over
    G, 37 weighted). Near its target an analog cell's change is mostly noise whatever its G,
    and the weighting changes nothing measurable there [E: measured on both presets].
    """

    def __init__(self, config: PulseSettings):
        self.config = config
        self.start = {1: config.v_set_start, -1: -config.v_reset_start}
        self.bins: dict[int, dict[tuple[int, int], list[float]]] = {1: {}, -1: {}}
        # polarity -> (amplitude bin, ln G bin) -> [pulses, sum of ln|ΔG|]

    def curve(self, direction: int, g: float = math.nan) -> tuple[list[float], list[float]]:
        """Amplitudes (V, ascending) of the measured bins of `direction` and the
        non-decreasing fit of their mean ln|ΔG| (S) for a cell at `g` siemens (every
        conductance alike when `g` is not known)."""
        bins = self.bins[direction]
        if not bins:
            return [], []
        keys = np.array(list(bins), dtype=float).reshape(-1, 2)
        entries = np.array(list(bins.values()), dtype=float).reshape(-1, 2)
        weight = entries[:, 0]
        if math.isfinite(g) and g > 0:
            weight = weight * np.exp(-0.5 * ((keys[:, 1] * G_BIN - math.log(g))
                                             / G_SMOOTHING) ** 2)
        first = int(keys[:, 0].min())
        where = keys[:, 0].astype(int) - first  # amplitude bins on a dense grid
        counts = np.convolve(np.bincount(where, weight), _AMPLITUDE_KERNEL, "same")
        sums = np.convolve(np.bincount(where, weight * entries[:, 1] / entries[:, 0]),
                           _AMPLITUDE_KERNEL, "same")
        measured = np.unique(where)
        measured = measured[counts[measured] > 1e-12 * counts[measured].max()]
        return (list((measured + first) * AMPLITUDE_BIN),
                _nondecreasing(list(sums[measured] / counts[measured]),
                               list(counts[measured])))

    def amplitude(self, direction: int, error: float, g: float = math.nan) -> float:
        """|V| of the next pulse of `direction` (+1 SET, -1 RESET) for |error| siemens on a
        cell at `g`; v_max when the error is not known (a reading that measured nothing)."""
        c = self.config
        if not math.isfinite(error):
            return c.v_max
        volts, fit = self.curve(direction, g)
        if not volts:
            return self.start[direction]
        want = math.log(c.move_fraction * max(error, 1e-15))
        above = next((i for i, level in enumerate(fit) if level >= want), None)
        if above is None:  # beyond the largest amplitude tried
            return min(volts[-1] + self._step(volts, fit, want - fit[-1], -1), c.v_max)
        if above == 0:  # below the smallest amplitude tried
            return max(volts[0] - self._step(volts, fit, fit[0] - want, 0), AMPLITUDE_BIN)
        v0, v1, f0, f1 = volts[above - 1], volts[above], fit[above - 1], fit[above]
        return v0 + (v1 - v0) * (want - f0) / (f1 - f0)

    def _step(self, volts: list[float], fit: list[float], gap: float, end: int) -> float:
        """How far (V) beyond the curve's `end` (0 or -1) to reach `gap` more ln|ΔG|: at the
        slope of the curve's nearest rise (at least DEFAULT_SLOPE per volt), 2 mV to
        STEP_OUT x v_step."""
        slope = DEFAULT_SLOPE
        order = range(1, len(fit)) if end == 0 else range(len(fit) - 2, -1, -1)
        for i in order:
            if fit[i] != fit[end]:
                slope = max(slope, abs(fit[i] - fit[end]) / abs(volts[i] - volts[end]))
                break
        return min(max(gap / slope, 2 * AMPLITUDE_BIN), STEP_OUT * self.config.v_step)

    def learn(self, volts: float, moved: float, g: float = math.nan) -> None:
        """A pulse of `volts` changed the measured conductance of a cell at `g` siemens by
        `moved` siemens."""
        self._count(volts, moved, g, 1)

    def forget(self, volts: float, moved: float, g: float = math.nan) -> None:
        """Take back what `learn` was told (a cell found stuck: its non-responses say
        nothing of how the chip's healthy cells respond)."""
        self._count(volts, moved, g, -1)

    def _count(self, volts: float, moved: float, g: float, sign: int) -> None:
        if not (math.isfinite(moved) and volts):
            return
        bins = self.bins[1 if volts > 0 else -1]
        g_bin = round(math.log(g) / G_BIN) if math.isfinite(g) and g > 0 else 0
        key = (round(abs(volts) / AMPLITUDE_BIN), g_bin)
        entry = bins.setdefault(key, [0, 0.0])
        entry[0] += sign
        entry[1] += sign * math.log(max(abs(moved), 1e-15))
        if entry[0] <= 0:
            del bins[key]


def _nondecreasing(values: list[float], weights: list[float]) -> list[float]:
    """The weighted least-squares non-decreasing fit of `values` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [weighted sum, weight, members]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([value * weight, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight_sum, members = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight_sum
            blocks[-1][2] += members
    return [total / weight_sum for total, weight_sum, members in blocks for _ in range(members)]


def cell_budget(config: PulseSettings, confirm: bool = True) -> tuple[int, int, float]:
    """The most pulses, readings and seconds of pulses and settling `program_cell` spends on
    one cell with `config`: ``max_pulses`` pulses, each followed by ``settle`` and a verify of
    ``reads`` readings (and the first verify); with `confirm`, a confirmation before each pulse
    and at the end, of up to ``guard_reads`` readings (``confirm_reads``, else ``reads``, when
    that is more)."""
    c = config
    verifies = (c.max_pulses + 1) * c.reads
    confirms = (c.max_pulses + 1) * max(c.guard_reads, c.confirm_reads or c.reads)
    return c.max_pulses, verifies + (confirms if confirm else 0), c.max_pulses * (c.width
                                                                                 + c.settle)


def program_cell(bench, row: int, col: int, target: float, *, algorithm: str = "adaptive",
                 run=None, memory: AmplitudeMemory | None = None, confirm: bool = True,
                 checkpoint: str | None = None, partial: dict | None = None,
                 **settings) -> CellResult:
    """Program cell (row, col) of `bench` to `target` siemens with `algorithm`.

    `settings` are `PulseSettings` fields (``tolerance``, ``width``, ``v_step`` ...). Every
    pulse and reading is recorded on `run` (a writable run of the run store) as it happens,
    when one is given. `memory` carries the adaptive amplitudes from cell to cell (pass the
    same one for the cells of one chip and the same settings; a fresh one when None). Without
    `confirm`, the cell stops at its first verify mean inside ``tolerance`` (unconfirmed, not
    a success: a rough first pass). Raises `ParameterError` naming a bad argument before
    anything is sent.

    With `checkpoint` (and a `run`), the cell's account so far (`partial_state`) is saved
    under that key with every pulse and after its verify, so that an interrupted cell resumes
    with it: pass what was saved as `partial`, and the pulses, energy and readings taken
    before the interruption stay counted (a pulse whose verify was cut off gets the resumed
    cell's first verify as its "after" conductance).
    """
    resolve({**CELL_ARGUMENTS, **declared_fields(PulseSettings)},
            {"target": target, "algorithm": algorithm, **settings}, bench.spec, "program_cell")
    config = PulseSettings(**settings)
    cell = _Cell(bench, row, col, target, config, run, checkpoint if run is not None else None,
                 partial)
    memory = memory or AmplitudeMemory(config)
    if algorithm == "adaptive":
        cell.adaptive(config.tolerance, memory, confirm)
    elif algorithm == "ispva":
        cell.ispva(config.tolerance, config.v_step, confirm)
    else:
        cell.ispva(max(config.coarse_tolerance, config.tolerance), 2 * config.v_step,
                   confirm=False)
        if not cell.finished:
            cell.adaptive(config.tolerance, memory, confirm)
    return cell.result()


class _Cell:
    """One cell being programmed: its measured conductance, pulse count, energy and state."""

    def __init__(self, bench, row, col, target, config: PulseSettings, run,
                 checkpoint: str | None = None, partial: dict | None = None):
        self.bench, self.row, self.col, self.target = bench, row, col, target
        self.config, self.run, self.checkpoint = config, run, checkpoint
        partial = partial or {}
        self.pulses = partial.get("pulses", 0)
        self.reads = partial.get("reads", 0)
        self.reversals = partial.get("reversals", 0)
        energy = partial.get("energy_j", 0.0)
        self.energy = math.nan if energy is None else energy  # NaN is stored as null
        self.energy_measured = partial.get("energy_measured", True)
        self.last_direction = partial.get("last_direction", 0)
        pending = partial.get("pending")  # [volts, conductance before, measured energy or
        # None] of a pulse whose verify has not been taken yet; a NaN conductance stored as null
        self.pending = None if pending is None else [
            math.nan if k == 1 and value is None else value for k, value in enumerate(pending)]
        self.success = self.stuck = self.finished = False
        self.dead_pulses = 0  # consecutive pulses at v_max without a response
        self.probes = 0
        self.readings: list[float] = []
        self.scatter = math.nan  # one reading's standard deviation at the last confirmation
        self.g = self.measure()  # resumed after a pulse whose verify was cut off: its verify
        self.trace = [self.g]

    # -- the account of an interrupted cell ------------------------------------------------

    def partial_state(self) -> dict:
        """What a resumed cell needs to keep counting where this one stopped (JSON: a reading
        that measured nothing, NaN, as null)."""
        return json_ready({"partial": True, "pulses": self.pulses, "reads": self.reads,
                           "reversals": self.reversals, "energy_j": self.energy,
                           "energy_measured": self.energy_measured,
                           "last_direction": self.last_direction, "pending": self.pending})

    def save(self) -> None:
        if self.checkpoint is not None:
            self.run.checkpoint(self.checkpoint, self.partial_state())

    def _count_energy(self, volts: float, before: float, after: float,
                      delivered: float | None = None) -> None:
        """Add the energy of the pulse of `volts` (module docstring): what the instruments
        measured they `delivered`, or where they did not measure it, the selected cell's share
        estimated between conductances `before` and `after`; the pulse is no longer pending."""
        c = self.config
        if delivered is not None:
            self.energy += delivered
        else:
            self.energy_measured = False
            energy = pulse_energy(volts, before, after, c.width, c.current_limit)
            if math.isfinite(energy):  # no estimate without a measured current
                self.energy += energy
        self.pending = None

    # -- instrument steps ------------------------------------------------------------------

    def measure(self, count: int | None = None) -> float:
        """Mean conductance of `count` (default ``reads``) verify readings under one bias state
        (`Bench.read_repeated`: buffered where the instrument can), all recorded as they are
        taken (kept in ``readings``). The verify of a pending pulse: its energy is counted and
        the account saved with the readings (one step, signals held)."""
        c = self.config
        with signals_held():
            batch = self.bench.read_repeated(self.row, self.col, c.v_read, c.read_scheme,
                                             count or c.reads)
            if self.run is not None:
                self.run.record_points(reading_points(batch))
            self.reads += len(batch)
            self.readings = [reading.conductance for reading in batch]
            mean = sum(self.readings) / len(self.readings)
            if self.pending:
                volts, before, *delivered = self.pending  # a checkpoint may hold only two
                self._count_energy(volts, before, mean, delivered[0] if delivered else None)
                self.save()
        return mean

    def pulse(self, volts: float) -> float:
        """One write pulse, then a verify; returns the relative change of the conductance.
        After `stuck_pulses` unanswered pulses at v_max in a row, the stuck probe follows;
        the cell is finished at `max_pulses`."""
        change = self._write_and_verify(volts)
        if self.dead_pulses >= self.config.stuck_pulses and not self.finished_by_count():
            self.probe(-1 if volts > 0 else 1)
        self.finished_by_count()
        return change

    def finished_by_count(self) -> bool:
        """Whether the cell has had its `max_pulses` (then it is finished)."""
        if self.pulses >= self.config.max_pulses:
            self.finished = True
        return self.finished

    def _write_and_verify(self, volts: float) -> float:
        """The pulse itself: write, record, settle, verify, energy, reversals and the count of
        unanswered pulses at v_max; the relative change of the conductance."""
        c = self.config
        before = self.g
        direction = 1 if volts > 0 else -1
        with signals_held():  # the pulse, its point and the account that counts it
            self.bench.pulse(self.row, self.col, volts, c.width, c.pulse_scheme,
                             current_limit=c.current_limit or None)
            delivered = self.bench.last_pulse_energy  # before the settle's hold replaces it
            if self.run is not None:
                self.run.record_point(self.row, self.col, "set" if volts > 0 else "reset",
                                      voltage=volts, pulse_width=c.width)
            self.pulses += 1
            if self.last_direction and direction != self.last_direction:
                self.reversals += 1
            self.last_direction = direction
            self.pending = [volts, before, delivered]
            self.save()
        hold(self.bench, c.settle)
        self.g = self.measure()
        self.trace.append(self.g)
        change = abs(self.g - before) / max(abs(before), abs(self.g), 1e-15)
        if abs(volts) >= c.v_max and change < c.stuck_change:
            self.dead_pulses += 1
        else:
            self.dead_pulses = 0
        return (self.g - before) / max(abs(before), 1e-15)

    def probe(self, direction: int) -> None:
        """After no response at v_max: one v_max pulse the other way and, if that does not
        answer either, one more the first way; no answer to any = stuck. A response the second
        time probing = a healthy cell at its own bound (finished, failed). Probe pulses count
        toward `max_pulses` and never start a probe of their own."""
        self.probes += 1
        change = self._write_and_verify(direction * self.config.v_max)
        self.dead_pulses = 0  # the probe's pulses are not a new run of unanswered pulses
        if abs(change) < self.config.stuck_change:
            if self.finished_by_count():
                return  # out of pulses before the probe could decide: failed, not stuck
            change = self._write_and_verify(-direction * self.config.v_max)
            self.dead_pulses = 0
        self.stuck = abs(change) < self.config.stuck_change
        self.finished = self.finished or self.stuck or self.probes >= PROBES

    def inside(self, tolerance: float) -> bool:
        return abs(self.g - self.target) <= tolerance * self.target

    def confirmed(self, tolerance: float) -> bool:
        """Inside now, and inside the guard band once enough readings are averaged in:
        |mean - target| <= tolerance x target - `PulseSettings.margin` (from the scatter of
        the verify's own readings). ``confirm_reads`` more readings first (0: as many as
        ``reads``); with a guard, the readings then double, up to ``guard_reads``, while the
        mean lies within two standard errors of the band's edge (a sequential test: a cell
        far inside or far outside is decided early, one near the edge with the precision of
        the re-read the guard protects)."""
        if not self.inside(tolerance):
            return False
        c = self.config
        readings = self.readings
        more = c.confirm_reads or c.reads
        while True:
            self.measure(more)
            readings = readings + self.readings
            n = len(readings)
            self.g = sum(readings) / n
            self.scatter = math.sqrt(sum((r - self.g) ** 2 for r in readings) / (n - 1)) \
                if n > 1 else math.inf
            distance = c.distance(self.g, self.scatter, n, self.target, tolerance)
            if c.guard == 0:
                break
            standard_error = self.scatter / math.sqrt(n)
            if n >= c.guard_reads or abs(distance) > DECIDED * standard_error:
                distance -= KEEP_INSIDE * standard_error
                break
            more = min(n, c.guard_reads - n)
        self.readings = readings
        self.trace[-1] = self.g
        return distance >= 0

    # -- algorithms ----------------------------------------------------------------------------

    def adaptive(self, tolerance: float, memory: AmplitudeMemory, confirm: bool = True) -> None:
        """D1 with amplitudes learned from the measured response (`AmplitudeMemory`). Without
        `confirm`, stops (not finished) at the first verify mean inside `tolerance`.

        UNANSWERED pulses in a row that each moved the cell by less than NO_RESPONSE of the
        change asked raise this cell's amplitude by v_step a pulse, whatever the memory says,
        so a stuck cell reaches v_max (and its stuck probe) in a few pulses instead of
        creeping up the chip's curve. A cell found stuck takes its responses back from the
        memory."""
        taught: list[tuple[float, float, float]] = []  # (volts, change, conductance before)
        unanswered, last = 0, 0.0
        while not self.finished:
            if not confirm and self.inside(tolerance):
                break
            if confirm and self.confirmed(tolerance):
                self.success = self.finished = True
                break
            before = self.g
            error = self.target - before
            d = -1 if error < 0 else 1  # SET when the error is not known (no reading)
            volts = memory.amplitude(d, abs(error), before)
            if unanswered >= UNANSWERED:
                volts = max(volts, min(last + self.config.v_step, self.config.v_max))
            self.pulse(d * volts)
            moved = self.g - before
            memory.learn(d * volts, moved, before)
            taught.append((d * volts, moved, before))
            asked = self.config.move_fraction * abs(error)
            unanswered = unanswered + 1 if abs(moved) < NO_RESPONSE * asked else 0
            last = volts
        if self.stuck:
            for volts, moved, g in taught:
                memory.forget(volts, moved, g)

    def ispva(self, tolerance: float, step: float, confirm: bool = True) -> bool:
        """D2 (Milo 2021): SET ramp to the window; RESET ramp and half step on overshoot.
        Returns True when the cell is inside `tolerance` (confirmed if `confirm`). A cell
        inside the window but outside the guard band (`confirmed`) goes on with the SET ramp
        below the target and starts the RESET ramp above it."""
        c = self.config
        while not self.finished:
            volts = c.v_set_start
            while not self.finished:
                if self.g >= self.target * (1 - tolerance):
                    if not self.inside(tolerance):
                        break  # overshoot
                    if not confirm or self.confirmed(tolerance):
                        self.success = self.finished = confirm
                        return True
                    if self.g > self.target:
                        break  # inside the window above the target, outside the guard band
                self.pulse(volts)
                volts = min(volts + step, c.v_max)
            if self.finished:
                return False
            volts = c.v_reset_start
            while not self.finished and self.g > self.target * (1 - tolerance):
                self.pulse(volts)
                volts = max(volts - step, -c.v_max)
            step /= 2
        return False

    def result(self) -> CellResult:
        return CellResult(self.row, self.col, self.target, self.g, self.pulses, self.energy,
                          self.success, self.stuck, self.reads, self.reversals, self.trace,
                          self.energy_measured)
