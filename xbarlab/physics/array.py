"""A simulated m x n memristor crossbar: cell states, device spread and defects, read and pulse.

``CrossbarArray`` ties the device model (``device.py``) to the exact circuit solver
(``solver.py``). A read solves the network with the cells' conductances (plus read noise);
a pulse solves it once with the true conductances and then moves every cell by the voltage it
really saw for the pulse duration. Half-select disturb, sneak paths and IR-drop-weakened
programming therefore follow from the circuit, not from rules.

Randomness comes from four independent streams spawned from ``seed``: the device population
(spread, defects), read noise (white part), programming noise (cycle-to-cycle noise,
compliance-landing spread and relaxation offsets, all drawn when a pulse moves a cell) and the
1/f read noise. Interleaving reads with a pulse sequence thus leaves the programmed states
unchanged.

Read noise is a fluctuation of each cell's conductance, G (1 + f) with f = expm1(sigma(g) z)
per cell and reading: ``sigma(g)`` grows toward the HRS (``DeviceParams.read_noise_sigma``),
and z = sqrt(1 - phi) w + sqrt(phi) x mixes white noise w (a fresh normal per reading) with
1/f noise x (``phi = flicker_fraction``): the equal-weight sum of Ornstein-Uhlenbeck
components of time constants ``FLICKER_TAUS`` (one Lorentzian per two decades), each of unit
variance, kept per cell and carried forward in time between readings (exactly: a component
decays by exp(-dt / tau) and gains the fresh variance 1 - exp(-2 dt / tau)). Readings close in
time share the slow components, so averaging many readings taken in a burst does not average
the 1/f part away, as on a real chip.

Time: the array relaxes only when told that time passes, by ``advance_time(seconds)`` or by
the duration of ``apply``. Reads take no time here (a bench advances its clock for them).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from .device import (
    FLICKER_TAUS,
    HEALTHY,
    STUCK_OFF,
    STUCK_ON,
    DeviceParams,
    cell_current,
    chord_conductance,
    kernel_constants,
    pulse_cells,
    relax_cells,
    sample_population,
)
from .presets import preset as named_preset
from .solver import CrossbarSolution, solve_crossbar
from .transistor import conducting, saturation_current

# Self-consistent sinh I-V: stop when no cell voltage changes by more than this fraction of the
# largest cell voltage between fixed-point iterations. Each linear solve is exact to ~1e-10 of
# the largest voltage, so asking for less would stop on (or stall at) the solver's own rounding.
IV_VOLTAGE_RTOL = 1e-9
IV_MAX_ITERATIONS = 500
IV_ANDERSON_DEPTH = 5


@dataclass(frozen=True)
class PulseResult:
    """What one pulse did: the circuit solution during the pulse and the energy it cost."""

    solution: CrossbarSolution
    """Solution with the cells' pre-pulse conductances (``v_cell`` is what each cell saw)."""
    energy_cells: np.ndarray
    """Energy dissipated in each cell, V·I·t (J), shape (m, n)."""
    energy_total: float
    """Energy delivered by all terminals (row sources and column terminals) during the pulse
    (J): the cells plus every wire, source and sense resistance."""
    duration: float
    """Pulse duration (s)."""


@dataclass(frozen=True)
class ArraySnapshot:
    """Everything that changes in a ``CrossbarArray``: restore() returns to exactly this."""

    w: np.ndarray
    formed: np.ndarray
    form_progress: np.ndarray
    read_rng_state: dict
    program_rng_state: dict
    relax_pending: np.ndarray
    elapsed_time: float
    flicker: np.ndarray | None = None
    """The 1/f read-noise components (K, m, n); None: keep the array's own (a state file)."""
    flicker_rng_state: dict | None = None
    noise_time: float = 0.0


def _checked_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
        1 <= value <= 1_000_000
    ):
        raise ValueError(f"{name} = {value!r} is outside the allowed range: an integer in [1, 1e6]")
    return int(value)


def _checked_resistance(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} = {value!r} ohm is outside the allowed range [0, inf) ohm")
    return value


class CrossbarArray:
    """A seeded m x n crossbar of memristors with wire resistance per segment.

    Parameters
    ----------
    rows, cols : array size.
    preset : "binary", "analog", "high_r" (``xbarlab.physics.presets``) or a ``DeviceParams``.
    seed : seeds device spread, defects, read noise and programming noise.
    r_wire_row, r_wire_col : wire resistance per segment between neighbouring cells (ohm).
    one_transistor : 1T1R array: reads and pulses take a per-row ``gate``: a bool mask (True:
        the transistor on at the default gate ``params.v_gate_set``, SET limited by
        ``params.i_compliance_1t1r`` unless a pulse gives its own compliance) or each row's
        gate voltage (V; off at or below ``params.v_gate_threshold``, SET limited by the
        transistor's saturation current at that voltage, ``transistor.py``).
    pristine : cells start unformed (``params.pristine_conductance``) and need forming.
    defects : draw stuck-on / stuck-off cells at the preset's rates.
    """

    def __init__(self, rows: int, cols: int, preset: str | DeviceParams = "binary", *,
                 seed: int = 0, r_wire_row: float = 1.0, r_wire_col: float = 1.0,
                 one_transistor: bool = False, pristine: bool = False, defects: bool = True):
        self.rows = _checked_count("rows", rows)
        self.cols = _checked_count("cols", cols)
        if isinstance(preset, DeviceParams):
            self.params = preset
        elif isinstance(preset, str):
            self.params = named_preset(preset)
        else:
            raise ValueError(
                f"preset = {preset!r} must be a preset name or a DeviceParams instance"
            )
        self.r_wire_row = _checked_resistance("r_wire_row", r_wire_row)
        self.r_wire_col = _checked_resistance("r_wire_col", r_wire_col)
        self.one_transistor = bool(one_transistor)
        self.seed = int(seed)
        population_seq, read_seq, program_seq, flicker_seq, relax_seq = np.random.SeedSequence(
            self.seed).spawn(5)
        shape = (self.rows, self.cols)
        self._population = sample_population(
            self.params, shape, np.random.default_rng(population_seq), defects=defects
        )
        self._read_rng = np.random.default_rng(read_seq)
        self._program_rng = np.random.default_rng(program_seq)
        self._flicker_rng = np.random.default_rng(flicker_seq)
        self._flicker_taus = np.array(FLICKER_TAUS)
        self._flicker = self._flicker_rng.standard_normal((len(FLICKER_TAUS), *shape))
        self._noise_time = 0.0  # when the last reading's 1/f noise was drawn (s)
        self._constants = kernel_constants(self.params)
        self._w = np.zeros(shape)
        self._formed = np.full(shape, not pristine)
        self._form_progress = np.zeros(shape)
        self._relax_pending = np.zeros(shape)
        self._relax_taus: float | np.ndarray = self.params.relax_tau
        """Each cell's relaxation time constant (s): one for all, or lognormal from cell to
        cell (``params.relax_tau_spread``, a stream of its own)."""
        if self.params.relax_tau_spread:
            self._relax_taus = self.params.relax_tau * np.exp(
                self.params.relax_tau_spread * np.random.default_rng(relax_seq).standard_normal(
                    shape))
        self._elapsed_time = 0.0
        self._last_solution: dict[tuple, CrossbarSolution] = {}
        self._sigma_kept: tuple | None = None  # (conductance, params, sigma): `_noise_sigma`

    # ------------------------------------------------------------------ looking inside

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return (self.rows, self.cols)

    def conductance(self) -> np.ndarray:
        """True small-signal conductance of every cell now (S), without read noise."""
        return self._conductance_at(self._w)

    def _conductance_at(self, w: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """Conductance at states `w`: of every cell, or of the flat indices `cells`."""
        pop = self._population
        g_lo, g_hi, formed, pristine, defects = (
            pop.g_lo, pop.g_hi, self._formed, pop.g_pristine, pop.defects)
        if cells is not None:
            g_lo, g_hi, formed, pristine, defects = (
                a.ravel()[cells] for a in (g_lo, g_hi, formed, pristine, defects))
        g = g_lo * (1.0 - w) + g_hi * w
        g = np.where(formed, g, pristine)
        g = np.where(defects == STUCK_ON, g_hi, g)
        return np.where(defects == STUCK_OFF, g_lo, g)

    def defect_map(self) -> np.ndarray:
        """int8 (m, n): 0 healthy, 1 stuck-on, 2 stuck-off."""
        return self._population.defects.copy()

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell conductance bounds (g_lo, g_hi) in siemens (device-to-device spread)."""
        return self._population.g_lo.copy(), self._population.g_hi.copy()

    def state(self) -> np.ndarray:
        """Normalised state w in [0, 1] of every cell (meaningless for stuck or pristine cells)."""
        return self._w.copy()

    def formed(self) -> np.ndarray:
        """bool (m, n): which cells are formed."""
        return self._formed.copy()

    @property
    def elapsed_time(self) -> float:
        """Seconds the array has been told have passed (``advance_time`` and pulse durations)."""
        return self._elapsed_time

    def relaxation_changes_conductance(self) -> bool:
        """Whether the pending relaxation can still change some cell's conductance (the
        relaxed conductance differs from the present one), looking at the cells whose
        relaxation is pending only."""
        cells = np.flatnonzero(self._relax_pending)
        if cells.size == 0:
            return False
        pending = self._relax_pending.ravel()[cells]
        w = self._w.ravel()[cells]
        return not np.array_equal(self._conductance_at(np.clip(w + pending, 0.0, 1.0), cells),
                                  self._conductance_at(w, cells))

    def relaxed_conductance(self) -> np.ndarray:
        """Conductance every cell will settle at once its pending relaxation is over (S)."""
        return self._conductance_at(np.clip(self._w + self._relax_pending, 0.0, 1.0))

    # ------------------------------------------------------------------ time

    def advance_time(self, seconds: float) -> None:
        """Let ``seconds`` pass with no pulse: each programmed cell relaxes a fraction
        1 - exp(-seconds / tau) of the way toward where its last pulse left it to settle
        (``device.py``), tau its time constant (``params.relax_tau``, or its own with
        ``params.relax_tau_spread``). Deterministic; zero seconds change nothing.
        """
        seconds = float(seconds)
        relax_cells(self._w, self._relax_pending, seconds, self._relax_taus)
        self._elapsed_time += seconds

    def relax_in_steps(self, seconds: float, count: int) -> np.ndarray:
        """`count` intervals of ``seconds`` one after the other, each exactly as an
        ``advance_time(seconds)``, up to and including the first at whose end the pending
        relaxation can no longer change a conductance (`relaxation_changes_conductance`);
        the conductances at the end of each interval taken, (taken, m, n). Only the cells
        whose relaxation is pending are worked on.
        """
        seconds = float(seconds)
        cells = np.flatnonzero(self._relax_pending)
        w, pending = self._w.ravel()[cells], self._relax_pending.ravel()[cells]
        taus = self._relax_taus if np.isscalar(self._relax_taus) \
            else self._relax_taus.ravel()[cells]
        states, left = np.empty((count, cells.size)), np.empty((count, cells.size))
        for k in range(count):
            relax_cells(w, pending, seconds, taus)
            states[k], left[k] = w, pending
        g_now = self._conductance_at(states, cells)
        settled = np.all(self._conductance_at(np.clip(states + left, 0.0, 1.0), cells) == g_now,
                         axis=1)
        taken = int(np.argmax(settled)) + 1 if settled.any() else count
        for _ in range(taken):
            self._elapsed_time += seconds
        self._w.ravel()[cells] = states[taken - 1]
        self._relax_pending.ravel()[cells] = left[taken - 1]
        steps = np.repeat(self.conductance().ravel()[None], taken, axis=0)
        steps[:, cells] = g_now[:taken]
        return steps.reshape(taken, *self.shape)

    # ------------------------------------------------------------------ setting states

    def set_state(self, w, *, formed=True) -> None:
        """Set the normalised state of every cell (tests and initial conditions only).

        ``w``: scalar or (m, n) in [0, 1]; ``formed``: bool or (m, n) bool. The cells are
        settled: no relaxation is pending.
        """
        w = np.broadcast_to(np.asarray(w, dtype=float), self.shape)
        if not np.all(np.isfinite(w) & (w >= 0.0) & (w <= 1.0)):
            raise ValueError("set_state: w is outside the allowed range [0, 1]")
        self._w = np.ascontiguousarray(w, dtype=float).copy()
        self._formed = np.ascontiguousarray(np.broadcast_to(np.asarray(formed, bool), self.shape))
        self._formed = self._formed.copy()
        self._form_progress = np.where(self._formed, 1.0, 0.0)
        self._relax_pending = np.zeros(self.shape)

    def set_conductance(self, G_target) -> None:  # noqa: N803 (G is the physics symbol)
        """Put every healthy cell at conductance ``G_target`` (S) and mark it formed.

        Tests and simulator initial conditions only. Stuck cells keep their stuck value; healthy
        cells are settled (no relaxation pending). Raises if a healthy cell's target lies outside
        that cell's own [g_lo, g_hi].
        """
        target = np.broadcast_to(np.asarray(G_target, dtype=float), self.shape)
        pop = self._population
        healthy = pop.defects == HEALTHY
        bad = healthy & ~(np.isfinite(target) & (target >= pop.g_lo) & (target <= pop.g_hi))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"G_target[{i}, {j}] = {float(target[i, j])!r} S is outside the allowed range "
                f"[{pop.g_lo[i, j]:.6g}, {pop.g_hi[i, j]:.6g}] S of that cell "
                f"({int(bad.sum())} cells out of range)"
            )
        w = np.where(healthy, (target - pop.g_lo) / (pop.g_hi - pop.g_lo), self._w)
        self._w = np.ascontiguousarray(np.clip(w, 0.0, 1.0))  # only rounding is clipped here
        self._formed = np.ascontiguousarray(self._formed | healthy)
        self._form_progress = np.where(self._formed, 1.0, self._form_progress)
        self._relax_pending = np.where(healthy, 0.0, self._relax_pending)

    def snapshot(self) -> ArraySnapshot:
        """Copy of every mutable part (states, forming, random streams: a PCG64 state is a
        fresh dict of plain integers on every read, and setting one copies it in)."""
        return ArraySnapshot(
            w=self._w.copy(), formed=self._formed.copy(),
            form_progress=self._form_progress.copy(),
            read_rng_state=self._read_rng.bit_generator.state,
            program_rng_state=self._program_rng.bit_generator.state,
            relax_pending=self._relax_pending.copy(), elapsed_time=self._elapsed_time,
            flicker=self._flicker.copy(),
            flicker_rng_state=self._flicker_rng.bit_generator.state,
            noise_time=self._noise_time,
        )

    def restore(self, snap: ArraySnapshot) -> None:
        """Return to a snapshot taken from this array (a bench's *RST)."""
        if snap.w.shape != self.shape:
            raise ValueError(f"snapshot of shape {snap.w.shape} does not fit array {self.shape}")
        self._w = snap.w.copy()
        self._formed = snap.formed.copy()
        self._form_progress = snap.form_progress.copy()
        self._read_rng.bit_generator.state = snap.read_rng_state
        self._program_rng.bit_generator.state = snap.program_rng_state
        self._relax_pending = snap.relax_pending.copy()
        self._elapsed_time = snap.elapsed_time
        if snap.flicker is not None:
            self._flicker = snap.flicker.copy()
            self._flicker_rng.bit_generator.state = snap.flicker_rng_state
        self._noise_time = snap.noise_time
        self._last_solution.clear()

    def copy(self) -> CrossbarArray:
        """Independent deep copy (same population, states and random streams)."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ circuit

    def conducting_rows(self, gate) -> np.ndarray:
        """Rows whose access transistors conduct, from a bool mask or gate voltages (V)."""
        if not self.one_transistor:
            raise ValueError("gate is only accepted by one_transistor (1T1R) arrays")
        gate = np.asarray(gate)
        if gate.shape != (self.rows,) or not (gate.dtype == bool or (
                gate.dtype.kind in "iuf" and np.all(np.isfinite(gate)))):
            raise ValueError(f"gate must be a bool mask or finite gate voltages (V) of shape "
                             f"({self.rows},)")
        return gate if gate.dtype == bool else conducting(gate, self.params)

    def _gated(self, g: np.ndarray, gate) -> np.ndarray:
        if gate is None:
            return g
        return np.where(self.conducting_rows(gate)[:, None], g, 0.0)

    def _transistor_compliance(self, gate, i_compliance):
        """SET compliance of a pulse: the default transistor's (a mask or no gate given) unless
        the pulse gives one; with gate voltages, each row's saturation current (inf where the
        transistor is off: its cells see no voltage), and the pulse's own where lower."""
        if not self.one_transistor:
            return i_compliance
        if gate is None or np.asarray(gate).dtype == bool:
            return self.params.i_compliance_1t1r if i_compliance is None else i_compliance
        limit = saturation_current(gate, self.params)
        limit = np.where(limit > 0.0, limit, np.inf)
        if i_compliance is not None:
            limit = np.minimum(limit, i_compliance)
        return np.ascontiguousarray(np.broadcast_to(limit[:, None], self.shape))

    def _circuit(self, kind, g, v_row, v_col, r_source, r_sense) -> CrossbarSolution:
        """Exact solve with conductances ``g``; self-consistent when the I-V is nonlinear.

        Reads and pulses keep separate warm starts (``kind``), so a pulse sequence gives
        bit-identical states whether or not reads are interleaved.
        """
        v_row = np.asarray(v_row, dtype=float)
        v_col = np.asarray(v_col, dtype=float)
        key = (kind, v_row.shape, v_col.shape)
        kwargs = dict(r_source=r_source, r_sense=r_sense, r_wire_row=self.r_wire_row,
                      r_wire_col=self.r_wire_col)
        solution = solve_crossbar(g, v_row, v_col, warm_start=self._last_solution.get(key),
                                  **kwargs)
        v0 = self.params.iv_v0
        if v0 > 0.0:
            solution = self._self_consistent(g, v_row, v_col, solution, kwargs)
        self._last_solution[key] = solution
        return solution

    def _self_consistent(self, g, v_row, v_col, solution, kwargs) -> CrossbarSolution:
        """Fixed point v = F(v) of the cell voltages, F(v) = v_cell of the linear solve with the
        chord conductances I(v)/v; Anderson-accelerated over the last ``IV_ANDERSON_DEPTH``
        iterates (plain iteration converges too, only more slowly under strong IR drop).
        """
        shape = solution.v_cell.shape
        v = solution.v_cell.ravel()
        history_v: list[np.ndarray] = []
        history_r: list[np.ndarray] = []
        change = math.inf
        for _ in range(IV_MAX_ITERATIONS):
            g_eff = chord_conductance(g, v.reshape(shape), self.params.iv_v0)
            solution = solve_crossbar(g_eff, v_row, v_col, warm_start=solution, **kwargs)
            residual = solution.v_cell.ravel() - v
            change = np.abs(residual).max()
            if change <= IV_VOLTAGE_RTOL * max(np.abs(solution.v_cell).max(), 1e-12):
                return solution
            history_v.append(v)
            history_r.append(residual)
            if len(history_v) > IV_ANDERSON_DEPTH + 1:
                history_v.pop(0)
                history_r.pop(0)
            step = residual
            if len(history_v) > 1:
                d_v = np.diff(np.array(history_v), axis=0).T
                d_r = np.diff(np.array(history_r), axis=0).T
                gamma = np.linalg.lstsq(d_r, residual, rcond=None)[0]
                step = residual - (d_v + d_r) @ gamma
            v = v + step
        raise RuntimeError(
            f"nonlinear I-V did not converge in {IV_MAX_ITERATIONS} fixed-point iterations "
            f"(last change {change:.3g} V)"
        )

    def solve(self, v_row, v_col, *, r_source=0.0, r_sense=0.0, gate=None,
              read_noise: bool = True, noise_per_vector: bool = False,
              conductance: np.ndarray | None = None) -> CrossbarSolution:
        """Read: solve the circuit for line voltages without changing any state.

        ``v_row`` (m,) or (B, m), ``v_col`` (n,) or (B, n); NaN = floating line end. Read noise
        (lognormal, sigma ``params.read_noise``) is drawn per cell per call from the array's
        read stream, so the vectors of a batch share one draw (one noisy matrix-vector
        product). ``noise_per_vector``: every vector of a batch gets its own draw instead, in
        batch order from the same stream, so a batch of B is exactly B single reads in a row
        (a buffered sweep); it costs one solve per vector. ``gate`` (1T1R only): rows whose
        gate is off carry no cell current. ``conductance``: the cells' true conductances at
        an earlier moment (as ``conductance()`` gave them then) instead of now.
        """
        g = self.conductance() if conductance is None else conductance
        noisy = read_noise and self.params.read_noise > 0.0
        batch = max(np.ndim(v_row), np.ndim(v_col)) == 2
        if noisy and noise_per_vector and batch:
            return self._solve_each(g, v_row, v_col, r_source, r_sense, gate)
        if noisy:
            g = g * (1.0 + self.read_noise_factors(1)[0])
        return self._circuit("read", self._gated(g, gate), v_row, v_col, r_source, r_sense)

    def read_noise_factors(self, count: int, *, interval: float = 0.0, now: float | None = None,
                           conductance: np.ndarray | None = None) -> np.ndarray:
        """Relative conductance fluctuation f of every cell in `count` successive readings,
        (count, m, n): a reading sees G (1 + f) (module docstring: conductance-dependent
        sigma, white and 1/f parts). The first reading is at time `now` (s; default the
        array's elapsed time), the others `interval` seconds apart; the 1/f components are
        carried forward from the last reading's time. The noise's amplitude follows the cells'
        conductance now, or `conductance` ((m, n), or (count, m, n): each reading's own).
        White draws come from the read stream
        (one normal per cell and reading, in reading order), the 1/f ones from their own.
        Without read noise: zeros, and nothing is drawn."""
        p = self.params
        if p.read_noise == 0.0:
            return np.zeros((count, *self.shape))
        z = self._read_rng.standard_normal((count, *self.shape))
        if p.flicker_fraction > 0.0:
            flicker = self._flicker_path(count, float(interval),
                                         self._elapsed_time if now is None else float(now))
            z *= math.sqrt(1.0 - p.flicker_fraction)
            z += math.sqrt(p.flicker_fraction) * flicker
        z *= self._noise_sigma(self.conductance() if conductance is None else conductance)
        return np.expm1(z, out=z)

    def _noise_sigma(self, conductance: np.ndarray) -> np.ndarray:
        """``params.read_noise_sigma(conductance)``, kept for the last read-only conductance
        array (a World's cached conductances, read again and again until the cells change)."""
        kept = self._sigma_kept
        if kept is not None and kept[0] is conductance and kept[1] is self.params:
            return kept[2]
        sigma = self.params.read_noise_sigma(conductance)
        if isinstance(conductance, np.ndarray) and not conductance.flags.writeable:
            self._sigma_kept = (conductance, self.params, sigma)
        return sigma

    def _flicker_path(self, count: int, interval: float, start: float) -> np.ndarray:
        """(count, m, n) unit-variance 1/f noise of readings at start, start + interval, ...:
        every Ornstein-Uhlenbeck component carried exactly from the last reading's time."""
        self._carry_flicker(start - self._noise_time)
        path = np.empty((count, *self.shape))
        path[0] = self._flicker.sum(axis=0)
        if interval > 0.0:
            for k in range(1, count):
                self._carry_flicker(interval)
                path[k] = self._flicker.sum(axis=0)
        else:
            path[1:] = path[0]
        self._noise_time = max(self._noise_time, start + (count - 1) * interval)
        return path / math.sqrt(len(self._flicker_taus))

    def _carry_flicker(self, seconds: float) -> None:
        """Let `seconds` pass for the 1/f components (nothing when it is not positive)."""
        if seconds <= 0.0:
            return
        decay = np.exp(-seconds / self._flicker_taus)[:, None, None]
        fresh = np.sqrt(-np.expm1(-2.0 * seconds / self._flicker_taus))[:, None, None]
        self._flicker *= decay
        self._flicker += fresh * self._flicker_rng.standard_normal(self._flicker.shape)

    def read_noise_currents(self, cell_current: np.ndarray, count: int, *,
                            interval: float = 0.0, now: float | None = None,
                            conductance: np.ndarray | None = None) -> np.ndarray:
        """Read noise of `count` readings, (count, m, n) amperes: each cell's current
        fluctuates by f times ``cell_current`` (f of `read_noise_factors`, with its `interval`,
        `now` and `conductance`). The noise is a current in parallel with each cell: the
        circuit carries it to the terminals linearly (``xbarlab.sim_instruments.circuit``)."""
        noise = self.read_noise_factors(count, interval=interval, now=now,
                                        conductance=conductance)
        return np.multiply(noise, cell_current, out=noise)

    def _solve_each(self, g, v_row, v_col, r_source, r_sense, gate) -> CrossbarSolution:
        """A batch read with one noise draw per vector: vector k sees the k-th draw of the
        read stream, as the k-th of single reads in a row would.

        A linear I-V solves the batch in one call (G of shape (B, m, n)); every vector starts
        from the last single read's solution, and the last vector's solution becomes the start
        of the next single read. A nonlinear I-V solves vector by vector (each self-consistent
        solve warm-starts the next).
        """
        v_row, v_col = np.asarray(v_row, dtype=float), np.asarray(v_col, dtype=float)
        count = v_row.shape[0] if v_row.ndim == 2 else v_col.shape[0]
        draws = self.read_noise_factors(count)
        if self.params.iv_v0 > 0.0:
            v_row = np.broadcast_to(v_row, (count, self.rows))
            v_col = np.broadcast_to(v_col, (count, self.cols))
            parts = [
                self._circuit("read", self._gated(g * (1.0 + draw), gate), v_row[k],
                              v_col[k], r_source, r_sense)
                for k, draw in enumerate(draws)
            ]
            return CrossbarSolution(
                *(np.stack([getattr(p, name) for p in parts])
                  for name in ("i_row", "i_col", "v_cell", "v_word", "v_bit")),
                iterations=max(p.iterations for p in parts),
            )
        # g * (1 + draw), computed in place (the same operations, rounded alike)
        g_each = np.add(draws, 1.0, out=draws)
        g_each = self._gated(np.multiply(g_each, g, out=g_each), gate)
        key = ("read", (self.rows,), (self.cols,))  # the key of a single read
        solution = solve_crossbar(g_each, v_row, v_col, r_source=r_source, r_sense=r_sense,
                                  r_wire_row=self.r_wire_row, r_wire_col=self.r_wire_col,
                                  warm_start=self._last_solution.get(key))
        self._last_solution[key] = CrossbarSolution(
            *(getattr(solution, name)[-1].copy()
              for name in ("i_row", "i_col", "v_cell", "v_word", "v_bit")),
            iterations=solution.iterations,
        )
        return solution

    def apply(self, v_row, v_col, duration, *, r_source=0.0, r_sense=0.0, gate=None,
              i_compliance=None, substeps: int = 1) -> PulseResult:
        """Pulse: hold the line voltages for ``duration`` seconds and move every cell.

        The circuit is solved with the true pre-pulse conductances; each cell then moves by the
        voltage it saw (cells of gated-off rows see none). ``i_compliance`` (A) limits SET; in a
        1T1R array the access transistors limit it too (class docstring: ``gate``).
        ``substeps`` > 1 splits the pulse into that many equal parts and re-solves the circuit
        before each, so a cell whose conductance rises during the pulse feels the growing IR
        drop (self-limiting SET); ``solution`` is then the one at the start of the pulse and
        energies are summed.
        The pulse also lets ``duration`` pass (``advance_time``): in each part every cell first
        relaxes, then the cells the pulse moves get a fresh pending relaxation.
        """
        duration = float(duration)
        if not (math.isfinite(duration) and duration >= 0.0):
            raise ValueError(f"duration = {duration!r} s is outside the allowed range [0, inf) s")
        if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or not (
            1 <= substeps <= 10_000
        ):
            raise ValueError(f"substeps = {substeps!r} is outside the allowed range [1, 10000]")
        if np.ndim(v_row) != 1 or np.ndim(v_col) != 1:
            raise ValueError("apply takes one pulse: v_row must be (m,) and v_col (n,)")
        i_compliance = self._transistor_compliance(gate, i_compliance)
        v_row = np.asarray(v_row, dtype=float)
        v_col = np.asarray(v_col, dtype=float)
        dt = duration / substeps
        first = None
        energy_cells = np.zeros(self.shape)
        energy_total = 0.0
        for _ in range(int(substeps)):
            solution, e_cells, e_total = self._pulse_step(v_row, v_col, dt, r_source, r_sense,
                                                          gate, i_compliance)
            if first is None:
                first = solution
            energy_cells += e_cells
            energy_total += e_total
        return PulseResult(solution=first, energy_cells=energy_cells,
                           energy_total=energy_total, duration=duration)

    def _pulse_step(self, v_row, v_col, dt, r_source, r_sense, gate, i_compliance):
        """One solve and one state update of ``dt`` seconds; returns (solution, E_cells, E)."""
        g = self._gated(self.conductance(), gate)
        solution = self._circuit("pulse", g, v_row, v_col, r_source, r_sense)
        v_device = solution.v_cell
        if gate is not None:
            v_device = np.where(self.conducting_rows(gate)[:, None], v_device, 0.0)
        energy_cells = v_device * cell_current(g, v_device, self.params.iv_v0) * dt
        power = (np.sum(np.where(np.isnan(v_row), 0.0, v_row) * solution.i_row)
                 - np.sum(np.where(np.isnan(v_col), 0.0, v_col) * solution.i_col))
        self.advance_time(dt)
        pulse_cells(self._w, self._formed, self._form_progress, self._population,
                    np.ascontiguousarray(v_device), dt, self._constants,
                    i_compliance=i_compliance, rng=self._program_rng,
                    relax_pending=self._relax_pending)
        return solution, energy_cells, float(power * dt)
