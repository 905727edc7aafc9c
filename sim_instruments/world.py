"""The World of one virtual bench: the crossbar, what every line is connected to, and time.

Every crossbar line is floating or tied, through a path resistance, to one or more sources:
SMU terminals (while their output is on), the bench ground (a matrix input wired to ground, or
a grounded board line) or board line drivers. A line tied to several sources sees their
Thevenin equivalent, so a line shorted to ground and an SMU through two relays is solved
exactly, and each source's own current is recovered from the line-end voltage.

Terminals are voltage sources with a current limit or current sources with a voltage limit.
Compliance is physics: a voltage source whose current would exceed its limit becomes a current
source at the limit; a current source whose voltage would exceed its limit holds the limit
voltage with at most its set current (if another source needs more, it delivers its set current
at the voltage it is driven to, and reports compliance). The network is linear in the terminal
voltages, so the World solves for the free terminal voltages with the responses to unit
voltages (one batched solve), updates the active set one change at a time and repeats until it
is consistent.

An SMU whose output is off does what its output-off state says (``TerminalState.off_state``):
a 0 V (or 0 A) source with its off limit, or an open output relay. Behind an open relay the
matrix input still joins every line closed to it: two or more such lines float together, as
one node that sources no current (`FLOATING_NODE`); a single one floats alone.

Time is virtual: measurements (NPLC), delays, relay settling and pulses call :meth:`advance`,
which moves every cell by the voltage it really sees for that long (the physics' ``apply``);
nothing sleeps. While cells switch, time advances in adaptive steps with the operating point
(compliance included) solved again between them, so a current limit reached during a pulse
stops a SET the way the instrument's limiter does. The array hears of every second that
passes, pulse or not, so programmed cells relax between commands (``array.elapsed_time``
follows ``clock``).
Solves are cached by a version counter that every change bumps. 1T1R arrays are simulated
with every access transistor on (no instrument here drives the gates).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from xbarlab.benchfile import Bench, Line, Sim, Terminal
from xbarlab.physics import CrossbarArray, solve_crossbar
from xbarlab.physics.array import ArraySnapshot

from .network import GROUND_KEY, Network

# Relative tolerance on a current limit before a terminal counts as over it.
LIMIT_RTOL = 1e-9
# Newton stops when every current-limited terminal is within this of its target, or when
# the remaining error is rounding: ROUNDING x (largest source voltage) x (largest path g).
TARGET_RTOL = 1e-12
ROUNDING = 1e-13
MAX_NEWTON_STEPS = 6  # per active set; one suffices for a linear network
# A terminal whose small-signal conductance to the rest of the bench is below this sees an
# open circuit (no cell, however pristine, is below 1e-10 S; solver residuals are ~1e-20 S).
OPEN_CIRCUIT_S = 1e-15
# The active set changes one terminal at a time, so a bench whose every line driver reaches
# its limit (a 128x128 board: 256 drivers) needs a change per terminal; the budget scales with
# the terminal count. A set seen before means the changes cycle, which is reported at once.
MAX_CHANGES_PER_TERMINAL = 4
MIN_ACTIVE_SET_CHANGES = 50
# Limit violations within this relative margin of the worst one are a tie.
TIE_RTOL = 1e-9
# While cells switch, time advances in steps within which no terminal voltage moves by more than
# STEP_VTOL x the switching threshold; the next step aims at STEP_SAFETY of that, changing by at
# most MAX_GROWTH up or MAX_SHRINK down per try; a step of MIN_STEP (s) is always kept.
STEP_VTOL = 0.05
STEP_SAFETY = 0.7
MAX_GROWTH = 2.0
MAX_SHRINK = 10.0
MIN_STEP = 1e-12
# Seed-sequence key of the line path resistances' spread (apart from the array's streams).
PATH_STREAM = 0x9A7


def line_paths(sim: Sim, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Each line's true path resistance (relay, cable, driver or sense): r_path_row and
    r_path_col spread lognormally by r_path_spread, seeded by the bench's seed (a stream of
    its own, so the array's realisation does not change with the spread)."""
    rng = np.random.default_rng([sim.seed, PATH_STREAM])
    spread = np.exp(sim.r_path_spread * rng.standard_normal(rows + cols))
    return sim.r_path_row * spread[:rows], sim.r_path_col * spread[rows:]


@dataclass
class TerminalState:
    """One source-measure terminal: what it sources and what it limits, on and off.

    ``off_state`` is what the output does while it is off: None for an open output relay
    (high impedance), else ``(func, limit)``: a source at 0 (volts for "V", amps for "I")
    with that current (or voltage) limit, as the instruments' normal/zero off modes do.
    """

    output: bool = False
    func: str = "V"  # "V" (voltage source, current limit) or "I" (current source, voltage limit)
    level: float = 0.0
    limit_i: float = 1e-4
    limit_v: float = 20.0
    off_state: tuple[str, float] | None = None

    def acting(self) -> TerminalState | None:
        """The source this terminal is now (its off state while off), or None if open."""
        if self.output:
            return self
        if self.off_state is None:
            return None
        func, limit = self.off_state
        if func == "V":
            return TerminalState(True, "V", 0.0, limit_i=limit, limit_v=self.limit_v)
        return TerminalState(True, "I", 0.0, limit_i=self.limit_i, limit_v=limit)


FLOATING_NODE = TerminalState(True, "I", 0.0, limit_i=0.0, limit_v=np.inf)
"""A matrix input whose SMU has its output relay open, joining two or more lines: a node that
takes no current and whose voltage the lines set (a 0 A source with no voltage limit)."""


@dataclass
class OperatingPoint:
    """A solved state of the bench: terminal voltages and currents, and who is in compliance."""

    voltage: dict[str, float]
    current: dict[str, float]
    compliance: set[str]
    rows: tuple[np.ndarray, np.ndarray]  # (v_end, r_end) per row, NaN = floating
    cols: tuple[np.ndarray, np.ndarray]


class World:
    """State shared by every virtual instrument of one bench."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.sim: Sim = bench.sim or Sim()
        chip = bench.chip
        self.rows, self.cols = chip.rows, chip.cols
        self._array = CrossbarArray(
            chip.rows,
            chip.cols,
            preset=chip.preset,
            seed=self.sim.seed,
            r_wire_row=self.sim.r_wire_row,
            r_wire_col=self.sim.r_wire_col,
            one_transistor=chip.device == "1t1r",
            pristine=self.sim.pristine,
            defects=self.sim.defects,
        )
        self._initial_array = self._array.copy()
        self.lock = threading.RLock()
        self.line_index = {Line("row", i): i for i in range(self.rows)} | {
            Line("col", j): self.rows + j for j in range(self.cols)
        }
        self.port_line = {
            (port.instrument, port.output): line for line, port in bench.wiring.lines.items()
        }
        self.stuck = {
            (f.instrument, f.input, f.output) for f in self.sim.faults if f.kind == "stuck_relay"
        }
        self.path_row, self.path_col = line_paths(self.sim, self.rows, self.cols)
        self.welded: dict[str, set[tuple[str, int]]] = {}
        """Relays stuck closed, per matrix: they conduct whatever the matrix reports."""
        for f in self.sim.faults:
            if f.kind == "stuck_closed":
                self.welded.setdefault(f.instrument, set()).add((f.input, f.output))
        self.reset()

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Back to the state the bench file describes: fresh array, everything open and off."""
        with self.lock:
            self._array = self._initial_array.copy()
            self.clock = 0.0
            self.energy = 0.0
            self.terminals: dict[str, TerminalState] = {}
            self.relays: dict[str, set[tuple[str, int]]] = {
                name: set()
                for name, inst in self.bench.instruments.items()
                if inst.kind == "matrix"
            }
            self.board_lines: dict[str, dict[int, float | str]] = {
                name: {} for name, inst in self.bench.instruments.items() if inst.kind == "board"
            }
            self.version = 0
            self._op: OperatingPoint | None = None
            self._op_version = -1
            self._g: np.ndarray | None = None
            self._g_version = -1
            self._quiet_version = -1
            self._relaxing = False  # a pulse left relaxation pending (see _let_time_pass)
            self._unheard = 0.0  # quiet seconds the settled array has not been told of yet

    @property
    def array(self) -> CrossbarArray:
        """The crossbar, told of every second of virtual time so far (see _let_time_pass)."""
        self._tell_array_the_time()
        return self._array

    def state(self) -> dict:
        """What the instruments are doing now, as plain data (for state files and tests)."""
        with self.lock:
            return {
                "bench": self.bench.name,
                "clock": self.clock,
                "energy": self.energy,
                "terminals": {
                    key: {"output": t.output, "func": t.func, "level": t.level}
                    for key, t in sorted(self.terminals.items())
                },
                "closed": {m: [list(c) for c in self.closed(m)] for m in sorted(self.relays)},
                "board_lines": {
                    b: {str(ch): level for ch, level in sorted(lines.items())}
                    for b, lines in sorted(self.board_lines.items())
                },
            }

    def resume(self, snapshot: ArraySnapshot, clock: float) -> None:
        """Continue a chip kept from an earlier session (`chipstate`): its cells as `snapshot`
        has them, at virtual time `clock`; the instruments stay as they are."""
        with self.lock:
            self._array.restore(snapshot)
            self.clock = clock
            self._relaxing = True  # the next passing of time finds out whether cells still relax
            self.changed()

    def changed(self) -> None:
        """Something that affects the circuit changed: the next measurement re-solves."""
        self.version += 1

    # ------------------------------------------------------------------ terminals
    def terminal(self, key: str) -> TerminalState:
        """The state of terminal ``instrument.terminal`` (created on first use)."""
        state = self.terminals.get(key)
        if state is None:
            state = self.terminals[key] = TerminalState()
        return state

    def set_terminal(self, key: str, **changes) -> None:
        with self.lock:
            state = self.terminal(key)
            for name, value in changes.items():
                if getattr(state, name) != value:
                    setattr(state, name, value)
                    self.changed()

    # ------------------------------------------------------------------ matrices
    def close(self, matrix: str, crosspoints) -> None:
        """Close relays (input label, output number); a stuck relay silently stays open."""
        with self.lock:
            closed = self.relays[matrix]
            before = len(closed)
            closed.update(crosspoints)
            if len(closed) != before:
                self.changed()

    def open(self, matrix: str, crosspoints) -> None:
        with self.lock:
            closed = self.relays[matrix]
            before = len(closed)
            closed.difference_update(crosspoints)
            if len(closed) != before:
                self.changed()

    def open_all(self, matrix: str) -> None:
        with self.lock:
            if self.relays[matrix]:
                self.relays[matrix].clear()
                self.changed()

    def closed(self, matrix: str) -> list[tuple[str, int]]:
        """The relays the matrix believes closed (including stuck ones it commanded)."""
        return sorted(self.relays[matrix], key=lambda c: (c[1], c[0]))

    # ------------------------------------------------------------------ boards
    def set_board_lines(self, board: str, levels: dict[int, float | str], limit_i: float) -> None:
        """Board channel -> volts, ``"F"`` (floating) or ``"G"`` (grounded).

        A driven channel is a voltage-source terminal ``<board>.<channel>`` limited to
        ``limit_i``; a floating or grounded one has no terminal.
        """
        with self.lock:
            lines = self.board_lines[board]
            for channel, level in levels.items():
                key = f"{board}.{channel}"
                if lines.get(channel, "F") == level:
                    continue
                if level == "F":
                    lines.pop(channel, None)
                else:
                    lines[channel] = level
                if isinstance(level, str):
                    self.terminals.pop(key, None)
                else:
                    self.terminals[key] = TerminalState(
                        output=True,
                        func="V",
                        level=float(level),
                        limit_i=limit_i,
                        limit_v=np.inf,
                    )
                self.changed()

    def set_board_limit(self, board: str, limit_i: float) -> None:
        with self.lock:
            for channel in self.board_lines[board]:
                state = self.terminals.get(f"{board}.{channel}")
                if state is not None and state.limit_i != limit_i:
                    state.limit_i = limit_i
                    self.changed()

    def board_level(self, board: str, channel: int) -> float | str:
        return self.board_lines[board].get(channel, "F")

    # ------------------------------------------------------------------ circuit
    def _sources(self) -> list[list[tuple[str, float]]]:
        """For every line (rows then columns), the sources tied to it: (terminal key, ohms)."""
        feeds: list[list[tuple[str, float]]] = [[] for _ in range(self.rows + self.cols)]
        floating = self._floating_nodes()
        for line, term in self._closed_lines():
            if term.is_ground:
                key = GROUND_KEY
            else:
                key = str(term)
                if self.terminal(key).acting() is None and key not in floating:
                    continue
            feeds[self.line_index[line]].append((key, self._path(line)))
        for board, levels in self.board_lines.items():
            for channel, level in levels.items():
                line = self.port_line.get((board, channel))
                if line is None:
                    continue
                key = GROUND_KEY if level == "G" else f"{board}.{channel}"
                feeds[self.line_index[line]].append((key, self._path(line)))
        return feeds

    def _path(self, line: Line) -> float:
        """The hidden series resistance between a line's end and whatever drives it."""
        return float((self.path_row if line.kind == "row" else self.path_col)[line.index])

    def conductance(self) -> np.ndarray:
        """Cell conductances now (cached until the array changes)."""
        if self._g is None or self._g_version != self.version:
            self._g = self._array.conductance()
            self._g_version = self.version
        return self._g

    def _solve_lines(
        self, v_end: np.ndarray, r_end: np.ndarray, noise: bool, linear: bool = False
    ) -> np.ndarray:
        """Currents from the sources into every line end, for a batch of end voltages.

        Measurements go through the array's own solve (warm-started, self-consistent for a
        nonlinear I-V, with one read-noise draw per reading when asked: every vector of a
        batch is a reading of its own); ``linear`` responses (the compliance Jacobian) through
        the linear solver on the small-signal conductances.
        """
        m = self.rows
        if linear:
            sol = solve_crossbar(
                self.conductance(),
                v_end[:, :m],
                v_end[:, m:],
                r_source=r_end[:m],
                r_sense=r_end[m:],
                r_wire_row=self.sim.r_wire_row,
                r_wire_col=self.sim.r_wire_col,
            )
        else:
            rows, cols = (
                (v_end[0, :m], v_end[0, m:]) if len(v_end) == 1 else (v_end[:, :m], v_end[:, m:])
            )
            sol = self._array.solve(
                rows,
                cols,
                r_source=r_end[:m],
                r_sense=r_end[m:],
                read_noise=noise,
                noise_per_vector=True,
            )
        inflow = np.concatenate([np.atleast_2d(sol.i_row), -np.atleast_2d(sol.i_col)], axis=1)
        return np.where(np.isnan(v_end), 0.0, inflow)

    def _evaluate(self, net: Network, volts: np.ndarray, noise: bool, linear: bool = False):
        """Terminal currents and line inflows for a batch of terminal voltage vectors."""
        v_end, r_end = net.thevenin(volts)
        inflow = self._solve_lines(v_end, r_end, noise, linear)
        return net.terminal_currents(inflow, v_end, volts), inflow, v_end, r_end

    def operating_point(self, noise: bool = False) -> OperatingPoint:
        """Solve the bench: every terminal's voltage and current, with compliance as physics.

        Active set: a voltage source over its current limit, and every current source, is a
        terminal of unknown voltage with a target current; a current source over its voltage
        limit is a voltage source at that limit. Newton steps with the unit-voltage responses
        (one batched solve; exact in one step for a linear network) meet the targets; the set
        is updated until no terminal breaks a limit. The set changes one terminal at a time
        within a budget that scales with the terminal count; a floating group of limited
        terminals whose currents cannot cancel releases the terminal its voltage reaches first.
        """
        with self.lock:
            if not noise and self._op is not None and self._op_version == self.version:
                return self._op
            states = self._acting()
            keys = list(states)
            index = {k: i for i, k in enumerate(keys)}
            net = Network(self._sources(), index)
            volts = np.array(
                [s.level if s.func == "V" else 0.0 for s in states.values()],
                dtype=float,
            )
            active: dict[str, tuple[str, float]] = {
                k: ("I", s.level) for k, s in states.items() if s.func == "I"
            }
            responses: dict[int, np.ndarray] = {}  # terminal -> currents per unit volt on it
            # currents come from voltage differences: below this they are rounding noise
            floor = ROUNDING * max(np.abs(volts).max(initial=0.0), 1.0) * net.g.max(initial=0.0)
            newton_steps = 0
            forced: set[str] = set()  # current sources driven past their voltage limit
            budget = max(MIN_ACTIVE_SET_CHANGES, MAX_CHANGES_PER_TERMINAL * len(keys))
            changes = 0
            seen = {self._set_signature(active, forced)}
            while True:
                currents, inflow, v_end, r_end = self._evaluate(
                    net, volts[None, :], noise and not active
                )
                currents = currents[0]
                free = [k for k in keys if active.get(k, ("",))[0] == "I"]
                if free:
                    cols = [index[k] for k in free]
                    target = np.array([active[k][1] for k in free])
                    residual = target - currents[cols]
                    tolerance = TARGET_RTOL * np.abs(target).max() + floor
                    if np.abs(residual).max() > tolerance and newton_steps < MAX_NEWTON_STEPS:
                        newton_steps += 1
                        missing = [c for c in cols if c not in responses]
                        if missing:
                            unit = np.zeros((len(missing), len(keys)))
                            unit[np.arange(len(missing)), missing] = 1.0
                            rows = self._evaluate(net, unit, False, linear=True)[0]
                            responses.update(zip(missing, rows, strict=True))
                        jac = self._jacobian(responses, cols)
                        dead = np.abs(np.diag(jac)) < OPEN_CIRCUIT_S
                        missed = np.abs(residual) > tolerance
                        for k in np.array(free)[dead & missed]:  # current into an open circuit
                            active[k] = ("open", active[k][1])
                        live = ~dead
                        if live.any():  # least squares: a floating pair has no common mode
                            sub = jac[np.ix_(live, live)]
                            step = np.linalg.lstsq(sub, residual[live], rcond=None)[0]
                            volts[np.array(cols)[live]] += step
                        continue
                    # targets still missed: a floating group of limited terminals whose
                    # currents cannot cancel changes first
                    floating = (
                        np.abs(residual).max() > tolerance
                        and all(c in responses for c in cols)
                        and self._float_component(
                            states, free, cols, self._jacobian(responses, cols), target, volts,
                            active, forced,
                        )
                    )
                else:
                    floating = False
                if not floating and not self._update_active_set(
                    states, keys, volts, currents, active, forced
                ):
                    break
                newton_steps = 0
                changes += 1
                signature = self._set_signature(active, forced)
                if signature in seen or changes > budget:
                    why = "went back to an earlier set"
                    if signature not in seen:
                        why = f"took more than {budget} changes"
                    raise RuntimeError(
                        f"compliance active set did not settle: {why} "
                        f"({len(active)} of {len(keys)} terminals limited)"
                    )
                seen.add(signature)
            if noise and active:
                currents, inflow, v_end, r_end = self._evaluate(net, volts[None, :], True)
                currents = currents[0]
            compliance = set(forced)  # forced past the voltage limit: the limit is not held
            for k, (kind, target) in active.items():
                if (states[k].func == "V") == (kind == "I"):
                    compliance.add(k)
                if kind == "I":
                    currents[index[k]] = target
            m = self.rows
            op = OperatingPoint(
                voltage={k: float(volts[index[k]]) for k in keys},
                current={k: float(currents[index[k]]) for k in keys},
                compliance=compliance,
                rows=(v_end[0, :m], r_end[:m]),
                cols=(v_end[0, m:], r_end[m:]),
            )
            if not noise:
                self._op, self._op_version = op, self.version
            return op

    @staticmethod
    def _jacobian(responses, cols) -> np.ndarray:
        """d(current of terminal t) / d(voltage of terminal u) over the limited terminals."""
        return np.array([[responses[u][t] for u in cols] for t in cols])

    @staticmethod
    def _float_component(states, free, cols, jac, target, volts, active, forced) -> bool:
        """Resolve terminals whose every source is current-limited with no common mode.

        A group of current-limited terminals tied to nothing else (every line between them
        floats) has no fixed voltage: its currents must cancel. When their targets do not, the
        group's voltage runs in the direction of the net current until the first terminal
        changes: a clamped voltage source meets its level (it is released) or a current source
        meets its voltage limit (it holds the limit; not one already driven past it, which
        goes wherever it is driven). That change is made here; False when no
        such group exists (or none can change: no finite operating point).
        """
        n = len(free)
        coupled = np.abs(jac) > OPEN_CIRCUIT_S
        group = np.zeros(n, dtype=int) - 1
        for start in range(n):  # connected groups of the current-limited terminals
            if group[start] >= 0:
                continue
            group[start], todo = start, [start]
            while todo:
                u = todo.pop()
                for t in np.flatnonzero((coupled[u] | coupled[:, u]) & (group < 0)):
                    group[t] = start
                    todo.append(t)
        scale = np.abs(jac).max(initial=0.0)
        for g in np.unique(group):
            members = np.flatnonzero(group == g)
            if np.abs(jac[:, members].sum(axis=1)).max() > 1e-9 * scale:
                continue  # tied to a fixed voltage: the group's voltage is set
            excess = target[members].sum()
            tol = 1e-9 * np.abs(target[members]).max(initial=0.0)
            if abs(excess) <= tol:
                continue
            up = np.sign(excess)  # the group's voltage runs this way
            best, event = np.inf, None
            for m in members:
                k, i = free[m], cols[m]
                state = states[k]
                if state.func == "V" and np.sign(target[m]) == up:
                    t, change = up * (state.level - volts[i]), None
                elif state.func == "I" and np.isfinite(state.limit_v) and k not in forced:
                    t, change = up * (up * state.limit_v - volts[i]), ("V", up * state.limit_v)
                else:
                    continue
                if t < best:
                    best, event = t, (k, i, change)
            if event is None:
                continue
            k, i, change = event
            volts[np.array(cols)[members]] += up * max(best, 0.0)
            if change is None:
                del active[k]
                volts[i] = states[k].level
            else:
                active[k] = change
                volts[i] = change[1]
            return True
        return False

    @staticmethod
    def _set_signature(active, forced) -> tuple:
        """The active set as a hashable value: which terminals are limited, and how."""
        return (
            frozenset((k, kind, float(target)) for k, (kind, target) in active.items()),
            frozenset(forced),
        )

    def _acting(self) -> dict[str, TerminalState]:
        """Every terminal that is a source now (on, or off in a 0 V / 0 A off state), and the
        open ones that join lines (`FLOATING_NODE`)."""
        floating = self._floating_nodes()
        acting = {key: FLOATING_NODE if key in floating else t.acting()
                  for key, t in self.terminals.items()}
        return {key: t for key, t in acting.items() if t is not None}

    def _closed_lines(self) -> list[tuple[Line, Terminal]]:
        """(line, matrix input's terminal) of every relay that joins them now (a relay stuck
        open never does; one stuck closed always does)."""
        joined = []
        inputs = self.bench.wiring.inputs
        for matrix, closed in self.relays.items():
            for label, output in closed | self.welded.get(matrix, set()):
                if (matrix, label, output) in self.stuck:
                    continue
                line = self.port_line.get((matrix, output))
                term: Terminal | None = inputs.get((matrix, label))
                if line is not None and term is not None:
                    joined.append((line, term))
        return joined

    def _floating_nodes(self) -> set[str]:
        """SMU terminals with their output relay open (off, high-impedance off state) whose
        matrix input joins two or more lines: each such input is one floating node."""
        open_relays = {key for key, t in self.terminals.items()
                       if not t.output and t.off_state is None}
        if not open_relays:
            return set()
        lines: dict[str, int] = {}
        for _, term in self._closed_lines():
            key = str(term)
            if key in open_relays:
                lines[key] = lines.get(key, 0) + 1
        return {key for key, count in lines.items() if count >= 2}

    @staticmethod
    def _update_active_set(states, keys, volts, currents, active, forced) -> bool:
        """Make one change to the active set (the most urgent); return False when none is due.

        Limit violations come first, the worst one (of sources in series that reach the same
        limit at the same current, the first, so the choice does not flip with rounding): a
        current source beyond its voltage limit becomes a voltage source at the limit; a
        voltage source beyond its current limit becomes a current source at the limit. Only
        then a release: a clamped voltage source whose voltage has passed its level, or a
        voltage-limited current source whose current has passed its level, goes back to its
        set level. One change per round keeps sources
        that share a path from flipping each other back and forth. A current source that
        cannot hold its voltage limit with its set current (another source drives the node)
        delivers its current at whatever voltage it is forced to (``forced``).
        """
        violations, releases = [], []
        for i, k in enumerate(keys):
            state = states[k]
            kind, target = active.get(k, ("", 0.0))
            if state.func == "V" and not kind:
                ratio = abs(currents[i]) / state.limit_i
                if ratio > 1 + LIMIT_RTOL:
                    violations.append(
                        (ratio, i, k, ("I", float(np.copysign(state.limit_i, currents[i]))))
                    )
            elif state.func == "V":
                if np.sign(target) * (volts[i] - state.level) > 0:
                    releases.append((i, k, state.level))
            elif kind == "open":
                violations.append(
                    (np.inf, i, k, ("V", float(np.sign(state.level) * state.limit_v)))
                )
            elif kind == "I":
                ratio = abs(volts[i]) / state.limit_v
                if ratio > 1 + LIMIT_RTOL and k not in forced:
                    violations.append(
                        (ratio, i, k, ("V", float(np.sign(volts[i]) * state.limit_v)))
                    )
            elif abs(currents[i]) > abs(state.level) * (1 + LIMIT_RTOL):
                releases.append((i, k, None))  # holding the limit takes more than |level|
        if violations:  # the worst; on a tie (series sources at one current) the first
            worst = max(v[0] for v in violations)
            _, i, k, change = next(v for v in violations if v[0] >= worst * (1 - TIE_RTOL))
            active[k] = change
            if change[0] == "V":
                volts[i] = change[1]
            return True
        if releases:
            i, k, level = releases[0]
            if level is None:  # the limit voltage needs more than the set current
                active[k] = ("I", states[k].level)
                forced.add(k)
            else:
                del active[k]
                volts[i] = level
            return True
        return False

    # ------------------------------------------------------------------ measuring and time
    def sweep(self, key: str, levels: list[float], dwell: float) -> list[tuple[float, float, bool]]:
        """A voltage source stepping through ``levels``, ``dwell`` seconds each: (V, I, limited).

        One terminal of :meth:`sweep_together`.
        """
        return self.sweep_together({key: levels}, dwell)[key]

    def sweep_together(
        self, levels: dict[str, list[float]], dwell: float
    ) -> dict[str, list[tuple[float, float, bool]]]:
        """Voltage sources stepping through their ``levels`` in lockstep (every point applies
        every terminal's level at once), ``dwell`` seconds each; (V, I, limited) per point and
        terminal, all terminals of one point read from one operating point.

        When no point can move a cell and no cell is still relaxing from a pulse, every point
        comes from one batched model call (with read noise on, each point draws its own, as a
        single reading does); points where some terminal would break its limit are then
        solved one by one with compliance. Otherwise (a point could switch cells, or the
        conductances drift during the sweep) the sweep runs point by point through
        :meth:`advance`. Every terminal is left at its last level.
        """
        keys = list(levels)
        count = len(levels[keys[0]])
        if any(len(levels[key]) != count for key in keys):
            raise ValueError(f"sweep lists of unequal length: {[len(v) for v in levels.values()]}")
        with self.lock:
            on = all(self.terminal(key).output for key in keys)
            batched = self._batched_sweep(levels) if on else None
            if batched is None:
                results: dict[str, list] = {key: [] for key in keys}
                for k in range(count):
                    self._set_levels(levels, k)
                    self.advance(dwell)
                    for key, point in self._measure_all(keys).items():
                        results[key].append(point)
                return results
            points, power = batched
            for k in range(count):
                if points[keys[0]][k] is None:  # over a limit somewhere: the exact solve
                    self._set_levels(levels, k)
                    for key, point in self._measure_all(keys).items():
                        points[key][k] = point
                    op = self.operating_point()
                    power[k] = sum(op.voltage[t] * op.current[t] for t in op.voltage)
            self.clock += dwell * count
            self.energy += dwell * float(np.sum(power))
            self._let_time_pass(dwell * count)
            self._set_levels(levels, count - 1)
            return points

    def _set_levels(self, levels: dict[str, list[float]], k: int) -> None:
        """Every sweeping terminal at its level of point ``k``."""
        for key, values in levels.items():
            self.set_terminal(key, level=values[k])

    def _measure_all(
        self, keys: list[str], noise: bool | None = None
    ) -> dict[str, tuple[float, float, bool]]:
        """(voltage, current, in compliance) of several terminals from one operating point
        (one read-noise draw for all of them; read noise as the bench says unless `noise`);
        (0, 0, False) for a terminal that is off."""
        op = self.operating_point(noise=self.sim.read_noise if noise is None else noise)
        return {
            key: (op.voltage[key], op.current[key], key in op.compliance)
            if key in op.voltage else (0.0, 0.0, False)
            for key in keys
        }

    def _batched_sweep(self, levels: dict[str, list[float]]):
        """Per-point (V, I, limited) of each sweeping terminal of a quiet voltage sweep in one
        model call, and the power every point's sources deliver; or None. A point over a limit
        is None for every terminal (power 0)."""
        if self._relaxing:
            return None  # the conductances change from point to point
        states = self._acting()
        if any(s.func != "V" for s in states.values()):  # the sweeping terminals among them
            return None
        keys = list(states)
        index = {k: i for i, k in enumerate(keys)}
        net = Network(self._sources(), index)
        count = len(next(iter(levels.values())))
        volts = np.tile([s.level for s in states.values()], (count, 1))
        for key, values in levels.items():
            volts[:, index[key]] = values
        v_end, r_end = net.thevenin(volts)
        driven = ~np.isnan(v_end)
        high = np.where(driven, v_end, -np.inf).max(axis=1)
        low = np.where(driven, v_end, np.inf).min(axis=1)
        span = np.where(driven.sum(axis=1) >= 2, high - low, 0.0)
        if (span > self.switching_threshold()).any():
            return None
        inflow = self._solve_lines(v_end, r_end, self.sim.read_noise)
        currents = net.terminal_currents(inflow, v_end, volts)
        limits = np.array([s.limit_i for s in states.values()])
        over = (np.abs(currents) > limits * (1 + LIMIT_RTOL)).any(axis=1)
        points = {
            key: [
                None if over[k] else (float(volts[k, index[key]]), float(currents[k, index[key]]),
                                      False)
                for k in range(count)
            ]
            for key in levels
        }
        return points, np.where(over, 0.0, np.sum(volts * currents, axis=1))

    def measure(self, key: str, noise: bool | None = None) -> tuple[float, float, bool]:
        """(voltage, current, in compliance) of one terminal; (0, 0, False) when it is off."""
        with self.lock:
            return self._measure_all([key], noise)[key]

    def switching_threshold(self) -> float:
        """The smallest cell voltage that can move any cell (SET, RESET or forming)."""
        p = self._array.params
        threshold = min(p.v_set, -p.v_reset)
        if not self._array.formed().all():
            threshold = min(threshold, p.v_form)
        return threshold

    def _quiet(self) -> bool:
        """True when no cell can see a switching voltage now (checked once per version)."""
        if self._quiet_version == self.version:
            return True
        op = self.operating_point()
        ends = np.concatenate([op.rows[0], op.cols[0]])
        driven = ends[~np.isnan(ends)]
        quiet = driven.size < 2 or driven.max() - driven.min() <= self.switching_threshold()
        if quiet:
            self._quiet_version = self.version
        return quiet

    def advance(self, seconds: float) -> set[str]:
        """Let ``seconds`` of virtual time pass with the bench as it is now.

        Every cell sees the voltage the circuit gives it for that long and moves by the device
        model; when no cell can see more than the smallest switching threshold (the node
        voltages lie between the lowest and highest source voltage), the cells only relax.
        While cells switch, time advances in steps (:meth:`_pulse_step`) and the operating
        point, compliance included, is solved again between them: a source that reaches its
        limit while a cell SETs holds the limit, the cell's voltage sags and the SET stops
        itself. ``energy`` accumulates what the sources deliver (V * I * t) either way.
        Returns the terminals that were at a limit at some point of the interval.
        """
        limited: set[str] = set()
        if seconds <= 0.0:
            return limited
        with self.lock:
            self.clock += seconds
            remaining, step = seconds, seconds
            while remaining > 0.0:
                op = self.operating_point()
                limited |= op.compliance
                if self._quiet():  # nothing switches; the sources still deliver V * I
                    power = sum(op.voltage[k] * op.current[k] for k in op.voltage)
                    self.energy += remaining * power
                    self._let_time_pass(remaining)
                    return limited
                taken, step, limited_after = self._pulse_step(op, min(step, remaining))
                limited |= limited_after
                remaining = remaining - taken if taken < remaining else 0.0
            return limited

    def _pulse_step(self, op: OperatingPoint, dt: float) -> tuple[float, float, set[str]]:
        """Hold the line ends of ``op`` on the array for at most ``dt``; return the time taken,
        the step to try next and the terminals at a limit at the end of the step.

        A step is taken back (array snapshot) and retried shorter while it moves some
        terminal's voltage by more than STEP_VTOL of the switching threshold, i.e. while
        holding the starting operating point for that long is no longer what the sources do
        (a limit was reached, or a limited source sagged further). The voltage moves about in
        proportion to the step, so the next step aims at STEP_SAFETY of the tolerance, within
        [1 / MAX_SHRINK, MAX_GROWTH] of this one. A step of MIN_STEP is kept whatever it does
        (a forming cell jumps to its LRS within any step). A step after which no source can
        have reached its limit (:meth:`_far_from_limits`) needs no check.
        """
        self._tell_array_the_time()
        snapshot = self._array.snapshot()
        tolerance = STEP_VTOL * self.switching_threshold()
        shortest = min(dt, MIN_STEP)
        g_before = self.conductance()
        while True:
            result = self._array.apply(
                op.rows[0], op.cols[0], dt, r_source=op.rows[1], r_sense=op.cols[1]
            )
            self.changed()
            if self._far_from_limits(op, g_before):
                factor, limited = MAX_GROWTH, set()
                break
            after = self.operating_point()
            limited = after.compliance
            moved = max(
                (abs(after.voltage[k] - v) for k, v in op.voltage.items()), default=0.0
            )
            factor = STEP_SAFETY * tolerance / moved if moved > 0.0 else MAX_GROWTH
            if moved <= tolerance or dt <= shortest:
                break
            self._array.restore(snapshot)
            self.changed()
            dt = max(dt * max(factor, 1.0 / MAX_SHRINK), shortest)
        self.energy += float(result.energy_total)
        self._relaxing = True
        return dt, max(dt * min(factor, MAX_GROWTH), shortest), limited

    def _far_from_limits(self, op: OperatingPoint, g_before: np.ndarray) -> bool:
        """True when every source of ``op`` is a voltage source below its current limit and
        stays below it with the cells' new conductances, so ``op`` held all along.

        Bound (compensation theorem): a cell whose conductance changes by dG changes any
        terminal current by at most dG times the current it carries per unit conductance at
        the most extreme voltage in the network (the span of the source voltages, 0 V
        included), the current division of a passive network passing at most all of it.
        """
        states = self._acting()
        if op.compliance or any(s.func != "V" for s in states.values()):
            return False
        volts = [0.0, *op.voltage.values()]
        span = max(volts) - min(volts)
        v0 = self._array.params.iv_v0
        per_siemens = v0 * np.sinh(span / v0) if v0 > 0.0 else span
        bound = per_siemens * float(np.abs(self.conductance() - g_before).sum())
        return all(
            abs(op.current[k]) + bound < s.limit_i * (1 - LIMIT_RTOL) for k, s in states.items()
        )

    def _let_time_pass(self, seconds: float) -> None:
        """Tell the array that ``seconds`` passed without a pulse, so programmed cells relax.

        While a pulse's relaxation is still pending the cells move and the next reading
        re-solves. Once it can no longer change any conductance, the seconds only add to the
        array's count, so they are collected and told at once before the next pulse or when
        someone looks at ``array`` (the same state, without the cost on every reading).
        """
        if not self._relaxing:
            self._unheard += seconds
            return
        self._array.advance_time(seconds)
        self.changed()
        self._relaxing = not np.array_equal(
            self._array.relaxed_conductance(), self._array.conductance()
        )

    def _tell_array_the_time(self) -> None:
        if self._unheard:
            self._array.advance_time(self._unheard)
            self._unheard = 0.0
