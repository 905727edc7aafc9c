"""The World of one virtual bench: the crossbar, what every line is connected to, and time.

Every crossbar line is floating or tied, through a path resistance, to one or more sources:
SMU terminals (while their output is on), the bench ground (a matrix input wired to ground, or
a grounded board line) or board line drivers. A line tied to several sources sees their
Thevenin equivalent, so a line shorted to ground and an SMU through two relays is solved
exactly, and each source's own current is recovered from the line-end voltage.

Terminals are voltage sources with a current limit or current sources with a voltage limit.
Compliance is physics (`circuit.CircuitSolver`): a voltage source whose current would exceed
its limit becomes a current source at the limit; a current source whose voltage would exceed
its limit holds the limit voltage with at most its set current.

An SMU whose output is off does what its output-off state says (``TerminalState.off_state``):
a 0 V (or 0 A) source with its off limit, or an open output relay. Behind an open relay the
matrix input still joins every line closed to it: two or more such lines float together, as
one node that sources no current (`FLOATING_NODE`); a single one floats alone.

Lazy: a command only changes the described state (levels, relays, board lines). The circuit is
solved when a reply needs it (a reading, a compliance flag) or when time passes with the
cells at a switching voltage; a solve is kept while nothing it depends on changes, and each
wiring's network is built once. Time passing quietly (no cell can switch) costs no solve: the
energy the sources deliver meanwhile is booked against the circuit of that interval and
worked out when someone reads ``energy`` (at once when that circuit's solve is known, or when
the intervals kept reach ``PENDING_INTERVALS``).

Readings (`read`) carry read noise without a solve of their own: a cell's read noise is a
fluctuation of its current, which reaches each terminal through the unit responses of the
network (`circuit.Response`), kept for every reading of the same wiring and conductances.

Time is virtual: measurements (NPLC), delays, relay settling and pulses call :meth:`advance`,
which moves every cell by the voltage it really sees for that long (the physics' ``apply``);
nothing sleeps. While cells switch, time advances in adaptive steps with the operating point
(compliance included) solved again between them, so a current limit reached during a pulse
stops a SET the way the instrument's limiter does. The array hears of every second that
passes, pulse or not, so programmed cells relax between commands (``array.elapsed_time``
follows ``clock``). The access transistors of a 1T1R chip (``[chip] device = "1t1r"``) are
on at the device's default gate voltage until a board's gate drivers set them
(`set_board_gates`, array_board.md §6.6): then each row conducts, and limits SET, as its gate
voltage says (``xbarlab.physics.transistor``); no other instrument drives the gates.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from xbarlab.benchfile import Bench, Line, Sim, Terminal
from xbarlab.physics import CrossbarArray, preset, with_stuck_fraction
from xbarlab.physics.array import ArraySnapshot
from xbarlab.physics.device import HARDER_READ_NOISE

from .circuit import (
    LIMIT_RTOL,
    Circuit,
    CircuitSolver,
    OperatingPoint,
    Response,
    TerminalState,
)
from .network import Network

__all__ = ["World", "TerminalState", "OperatingPoint", "Readings"]

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
# Quiet intervals whose energy waits for a solve; past this many they are worked out.
PENDING_INTERVALS = 65536
# Networks kept, one per wiring (relays, board line states, acting terminals).
NETWORKS_KEPT = 256
# Readings whose noise is drawn at once: at most this many cell values at a time.
NOISE_CHUNK = 2**21


FLOATING_NODE = TerminalState(True, "I", 0.0, limit_i=0.0, limit_v=np.inf)
"""A matrix input whose SMU has its output relay open, joining two or more lines: a node that
takes no current and whose voltage the lines set (a 0 A source with no voltage limit)."""


@dataclass
class Readings:
    """``count`` readings of terminals ``keys``: voltage, current and compliance flag per
    reading and terminal, (count, K) each; ``limited_during``: every terminal at a limit at
    some moment of the time that passed for them."""

    keys: list[str]
    voltage: np.ndarray
    current: np.ndarray
    limited: np.ndarray
    limited_during: set[str]



def line_paths(sim: Sim, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Each line's true path resistance (relay, cable, driver or sense): r_path_row and
    r_path_col spread lognormally by r_path_spread, seeded by the bench's seed (a stream of
    its own, so the array's realisation does not change with the spread)."""
    rng = np.random.default_rng([sim.seed, PATH_STREAM])
    spread = np.exp(sim.r_path_spread * rng.standard_normal(rows + cols))
    return sim.r_path_row * spread[:rows], sim.r_path_col * spread[rows:]

class World:
    """State shared by every virtual instrument of one bench."""

    def __init__(self, bench: Bench):
        self.bench = bench
        self.sim: Sim = bench.sim or Sim()
        chip = bench.chip
        self.rows, self.cols = chip.rows, chip.cols
        device = preset(chip.preset)
        if self.sim.stuck_fraction is not None:
            device = with_stuck_fraction(device, self.sim.stuck_fraction)
        if self.sim.harder_read_noise:
            device = dataclasses.replace(device, **HARDER_READ_NOISE)
        if self.sim.relaxation_spread:
            device = dataclasses.replace(device, relax_tau_spread=self.sim.relaxation_spread)
        self._array = CrossbarArray(
            chip.rows,
            chip.cols,
            preset=device,
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
        self._matrices = [n for n, inst in bench.instruments.items() if inst.kind == "matrix"]
        self._boards = [n for n, inst in bench.instruments.items() if inst.kind == "board"]
        self._relay_codes: dict[tuple[str, str, int], int] = {}
        self._board_keys: dict[str, dict[int, str]] = {}  # board -> channel -> terminal key
        # per relay code: the line it ties (-1: none, a relay stuck open or unwired), the
        # terminal (its number in _term_ids; -1: ground) and the path ohms
        self._code_feeds: tuple[list[int], list[int], list[float]] = ([], [], [])
        self._code_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._term_ids: dict[str, int] = {}
        self._networks: OrderedDict[tuple, Network] = OrderedDict()
        self.welded: dict[str, frozenset[tuple[str, int]]] = {name: frozenset() for name in
                                                              self._matrices}
        """Relays stuck closed, per matrix: they conduct whatever the matrix reports."""
        for f in self.sim.faults:
            if f.kind == "stuck_closed":
                self.welded[f.instrument] |= {(f.input, f.output)}
        self._welded_codes = frozenset(self._relay_code(m, *point)
                                       for m, points in self.welded.items() for point in points)
        link = bench.wiring.trigger_link
        self.trigger_linked: dict[str, frozenset[str]] = {
            name: frozenset(link) - {name} for name in link}
        """Instrument -> the instruments its DIGITAL I/O port is cabled to (``[wiring]
        trigger_link``): an output trigger of one is an input trigger of the others."""
        self.reset()
        self._solver.warm_up()

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Back to the state the bench file describes: fresh array, everything open and off."""
        with self.lock:
            self._array = self._initial_array.copy()
            self._solver = CircuitSolver(self._array, self.sim.r_wire_row, self.sim.r_wire_col)
            self.clock = 0.0
            self._energy = 0.0
            self._pending: list[list] = []  # [circuit, seconds] of quiet intervals not solved
            self.terminals: dict[str, TerminalState] = {}
            self.relays: dict[str, frozenset[tuple[str, int]]] = {
                name: frozenset() for name in self._matrices
            }
            # every conducting relay, by code: True at its code (grown as codes are made)
            self._conducting = np.zeros(max(64, 2 * len(self._relay_codes)), dtype=bool)
            self._conducting[list(self._welded_codes)] = True
            self.board_lines: dict[str, dict[int, float | str]] = {
                name: {} for name in self._boards
            }
            self._board_wiring: dict[str, frozenset[tuple[int, str]]] = {
                name: frozenset() for name in self._boards
            }
            self.version = 0
            self._wiring: tuple | None = None
            self._circuit_now: Circuit | None = None
            self._op: OperatingPoint | None = None
            self._op_version = -1
            self._g: np.ndarray | None = None
            self._gates: np.ndarray | None = None  # each chip row's gate voltage, once driven
            self._g_version = 0
            self._g_cached = -1
            self._quiet_version = -1
            self._threshold, self._threshold_of = 0.0, -1
            self._surely_quiet_version, self._span_now = -1, (False, 0.0)
            self._grounded_of, self._grounded_now = None, True
            self._relaxing = False  # a pulse left relaxation pending (see _let_time_pass)
            self._unheard = 0.0  # quiet seconds the settled array has not been told of yet
            self._meter: dict | None = None  # key -> [V x s, A x s] while `integrate` runs
            self.armed_on_line: dict[tuple[str, int], object] = {}
            """(instrument, digital I/O line) -> the behaviour of that instrument whose
            channels wait for an input trigger on the line (a linked pulse's follower)."""

    @property
    def array(self) -> CrossbarArray:
        """The crossbar, told of every second of virtual time so far (see _let_time_pass)."""
        self._tell_array_the_time()
        return self._array

    @property
    def energy(self) -> float:
        """Energy the sources have delivered since the reset (J), every interval worked out."""
        with self.lock:
            self._settle_pending(len(self._pending))
            return self._energy

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
        """Something outside the World changed the array (a test): forget every solve."""
        with self.lock:
            self._array_changed()
            self._solver.forget()

    def _levels_changed(self) -> None:
        """A source level or limit changed: the next solve is a new one."""
        self.version += 1
        self._circuit_now = None

    def _wiring_changed(self) -> None:
        """What feeds the line ends changed (relays, board line states, acting terminals)."""
        self._wiring = None
        self._levels_changed()

    def _array_changed(self) -> None:
        """The cells' conductances changed (a pulse, relaxation, a reset)."""
        self._g_version += 1
        self._levels_changed()

    # ------------------------------------------------------------------ terminals
    def terminal(self, key: str) -> TerminalState:
        """The state of terminal ``instrument.terminal`` (created on first use)."""
        state = self.terminals.get(key)
        if state is None:
            state = self.terminals[key] = TerminalState()
            self._wiring_changed()  # an open output relay: it may join lines (a node)
        return state

    def set_terminal(self, key: str, **changes) -> None:
        with self.lock:
            state = self.terminal(key)
            new = {name: value for name, value in changes.items()
                   if getattr(state, name) != value}
            if not new:
                return
            self.terminals[key] = state._replace(**new)
            if "output" in new or "off_state" in new:
                self._wiring_changed()
            else:
                self._levels_changed()

    # ------------------------------------------------------------------ matrices
    def close(self, matrix: str, crosspoints) -> None:
        """Close relays (input label, output number); a stuck relay silently stays open."""
        with self.lock:
            new = frozenset(crosspoints) - self.relays[matrix]
            if new:
                self.relays[matrix] |= new
                self._conduct([self._relay_code(matrix, *point) for point in new], True)
                self._wiring_changed()

    def open(self, matrix: str, crosspoints) -> None:
        with self.lock:
            self._opened(matrix, self.relays[matrix] & frozenset(crosspoints))

    def open_all(self, matrix: str) -> None:
        with self.lock:
            self._opened(matrix, self.relays[matrix])

    def _opened(self, matrix: str, points: frozenset[tuple[str, int]]) -> None:
        """Relays `points` (closed ones) open; a welded relay still conducts."""
        if not points:
            return
        self.relays[matrix] -= points
        welded = self.welded[matrix]
        self._conduct([self._relay_code(matrix, *point) for point in points
                       if point not in welded], False)
        self._wiring_changed()

    def _conduct(self, codes: list[int], closed: bool) -> None:
        """Mark the relays of `codes` conducting (or not)."""
        if codes and max(codes) >= len(self._conducting):
            grown = np.zeros(2 * max(codes) + 2, dtype=bool)
            grown[:len(self._conducting)] = self._conducting
            self._conducting = grown
        self._conducting[codes] = closed

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
            rewired = changed = False
            terminals = self.terminals
            keys = self._board_keys.setdefault(board, {})
            for channel, level in levels.items():
                before = lines.get(channel, "F")
                if before == level:
                    continue
                changed = True
                key = keys.get(channel)
                if key is None:
                    key = keys[channel] = f"{board}.{channel}"
                if type(level) is str:  # floating or grounded: no terminal
                    rewired = True
                    if level == "F":
                        del lines[channel]
                    else:
                        lines[channel] = level
                    terminals.pop(key, None)
                else:
                    rewired |= type(before) is str
                    lines[channel] = level
                    # output on, a voltage source, its level, current limit, no voltage limit
                    terminals[key] = TerminalState(True, "V", float(level), limit_i, np.inf)
            if rewired:
                self._board_wiring[board] = frozenset(
                    (ch, _line_kind(level)) for ch, level in lines.items())
                self._wiring_changed()
            elif changed:
                self._levels_changed()

    def set_board_limit(self, board: str, limit_i: float) -> None:
        with self.lock:
            changed = False
            for channel in self.board_lines[board]:
                key = f"{board}.{channel}"
                state = self.terminals.get(key)
                if state is not None and state.limit_i != limit_i:
                    self.terminals[key] = state._replace(limit_i=limit_i)
                    changed = True
            if changed:
                self._levels_changed()

    def set_board_gates(self, board: str, volts: dict[int, float]) -> None:
        """Board row channel -> the gate voltage of its word line (V). Only a 1T1R chip has
        gates; on any other chip the gate outputs are not connected."""
        if not self._array.one_transistor:
            return
        with self.lock:
            gates = (np.full(self.rows, self._array.params.v_gate_set) if self._gates is None
                     else self._gates.copy())
            for channel, level in volts.items():
                line = self.port_line.get((board, channel))
                if line is not None and line.kind == "row":
                    gates[line.index] = level
            if self._gates is None or not np.array_equal(gates, self._gates):
                self._gates = gates
                self._array_changed()

    def gate_voltages(self) -> np.ndarray | None:
        """Each chip row's gate voltage (V), or None while no instrument has driven them."""
        return None if self._gates is None else self._gates.copy()

    def _through_gates(self, g: np.ndarray) -> np.ndarray:
        """Conductances `g` ((..., m, n)) as the circuit sees them: zero in rows whose access
        transistors are off."""
        if self._gates is None:
            return g
        on = self._array.conducting_rows(self._gates)
        return np.where(on[:, None], g, 0.0)

    def board_level(self, board: str, channel: int) -> float | str:
        return self.board_lines[board].get(channel, "F")

    # ------------------------------------------------------------------ circuit
    def _wiring_now(self) -> tuple:
        """What feeds the line ends now, as a hashable value: the closed relays of every
        matrix (a bit per relay code, kept up to date by every close and open), the state
        (driven or grounded) of every board line, the acting terminals."""
        if self._wiring is None:
            floating = self._floating_nodes()
            acting = tuple(k for k, t in self.terminals.items()
                           if t.acting() is not None or k in floating)
            self._wiring = (
                # compact (intervals keep it) and one value per set of relays
                np.packbits(self._conducting).tobytes().rstrip(b"\0"),
                tuple(self._board_wiring[b] for b in self._boards),
                acting,
                floating,
            )
        return self._wiring

    def _floating_nodes(self) -> frozenset[str]:
        """SMU terminals with their output relay open (off, high-impedance off state) whose
        matrix input joins two or more lines through the closed relays: each such input is
        one floating node."""
        open_relays = [key for key, t in self.terminals.items()
                       if not t.output and t.off_state is None and key in self._term_ids]
        if not open_relays:
            return frozenset()
        closed = np.flatnonzero(self._conducting)
        line, term, _ = self._feeds_of_codes()
        tied = term[closed][line[closed] >= 0]
        lines = np.bincount(tied[tied >= 0], minlength=len(self._term_ids))
        return frozenset(key for key in open_relays if lines[self._term_ids[key]] >= 2)

    def _relay_code(self, matrix: str, label: str, output: int) -> int:
        """A number for each relay ever closed (a wiring names its closed relays by them),
        with what the relay ties when closed: its line, terminal and path (a relay stuck
        open, or one whose output has no line or whose input no terminal, ties nothing)."""
        point = (matrix, label, output)
        code = self._relay_codes.get(point)
        if code is None:
            code = self._relay_codes[point] = len(self._relay_codes)
            line = self.port_line.get((matrix, output))
            term: Terminal | None = self.bench.wiring.inputs.get((matrix, label))
            lines, terms, paths = self._code_feeds
            if point in self.stuck or line is None or term is None:
                lines.append(-1)
                terms.append(-1)
                paths.append(np.inf)
            else:
                lines.append(self.line_index[line])
                terms.append(-1 if term.is_ground else
                             self._term_ids.setdefault(str(term), len(self._term_ids)))
                paths.append(self._path(line))
            self._code_arrays = None
        return code

    def _feeds_of_codes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(line, terminal, path ohms) of every relay code, as arrays (`_relay_code`)."""
        if self._code_arrays is None:
            lines, terms, paths = self._code_feeds
            self._code_arrays = (np.array(lines, dtype=np.intp), np.array(terms, dtype=np.intp),
                                 np.array(paths, dtype=float))
        return self._code_arrays

    def _path(self, line: Line) -> float:
        """The hidden series resistance between a line's end and whatever drives it."""
        return float((self.path_row if line.kind == "row" else self.path_col)[line.index])

    def _network(self, wiring: tuple) -> Network:
        """The network of a wiring (built once; the last ``NETWORKS_KEPT`` are kept)."""
        network = self._networks.get(wiring)
        if network is not None:
            self._networks.move_to_end(wiring)
            return network
        relays, boards, acting, _ = wiring
        codes = np.flatnonzero(np.unpackbits(np.frombuffer(relays, dtype=np.uint8)))
        line_of, term_of, path_of = self._feeds_of_codes()
        acting_index = np.full(len(self._term_ids) + 1, -1, dtype=np.intp)  # last: ground
        for k, key in enumerate(acting):
            if key in self._term_ids:
                acting_index[self._term_ids[key]] = k
        lines, terms = line_of[codes], term_of[codes]
        index = acting_index[terms]
        tied = (lines >= 0) & ((terms < 0) | (index >= 0))  # ground, or an acting terminal
        line, term, path = lines[tied], index[tied], path_of[codes[tied]]
        if self._boards:
            line, term, path = self._board_feeds(boards, acting, line, term, path)
        network = Network.ordered(line, term, path, self.rows + self.cols, list(acting))
        self._networks[wiring] = network
        if len(self._networks) > NETWORKS_KEPT:
            self._networks.popitem(last=False)
        return network

    def _board_feeds(self, boards: tuple, acting: tuple, line, term, path):
        """The sources `line`, `term`, `path` (arrays) and those of the board lines, driven
        (their terminal) or grounded, as the wiring's board states say."""
        place = {k: i for i, k in enumerate(acting)}
        lines, terms, paths = [line], [term], [path]
        for board, states in zip(self._boards, boards, strict=True):
            tied_lines = [(at, channel, kind) for channel, kind in states
                          if (at := self.port_line.get((board, channel))) is not None]
            lines.append(np.array([self.line_index[at] for at, _, _ in tied_lines],
                                  dtype=np.intp))
            terms.append(np.array([-1 if kind == "G" else place[f"{board}.{channel}"]
                                   for _, channel, kind in tied_lines], dtype=np.intp))
            paths.append(np.array([self._path(at) for at, _, _ in tied_lines], dtype=float))
        return np.concatenate(lines), np.concatenate(terms), np.concatenate(paths)

    def conductance(self) -> np.ndarray:
        """Cell conductances now as the circuit sees them (cached until the array or a gate
        changes; do not modify): on a 1T1R chip zero in rows whose transistors are off
        (``array.conductance()`` is every cell's own)."""
        if self._g is None or self._g_cached != self._g_version:
            self._g = self._through_gates(self._array.conductance())
            self._g.flags.writeable = False
            self._g_cached = self._g_version
        return self._g

    def _circuit(self) -> Circuit:
        """The circuit now (one per version)."""
        if self._circuit_now is None:
            wiring = self._wiring_now()
            terminals = self.terminals
            floating = wiring[3]
            states = {k: (t if (t := terminals[k]).output else
                          FLOATING_NODE if k in floating else t.acting()) for k in wiring[2]}
            self._circuit_now = Circuit(states, wiring, self.conductance(), self._g_version,
                                        self._network)
        return self._circuit_now

    def _acting(self) -> dict[str, TerminalState]:
        """Every terminal that is a source now (on, or off in a 0 V / 0 A off state), and the
        open ones that join lines (`FLOATING_NODE`): the states of the circuit now."""
        return self._circuit().states

    def operating_point(self, responses_for=()) -> OperatingPoint:
        """Solve the bench now (`circuit.CircuitSolver.operating_point`), kept until something
        changes; the unit responses of `responses_for` come in the same batch of solves."""
        with self.lock:
            if self._op_version == self.version:
                return self._op
            circuit = self._circuit()
            op = self._solver.operating_point(circuit, responses_for)
            self._op, self._op_version = op, self.version
            if self._pending and self._pending[-1][0] is circuit:
                self._energy += self._pending.pop()[1] * op.power
            return op

    # ------------------------------------------------------------------ readings
    def read(self, keys, count: int = 1, dwell: float = 0.0,
             noise: bool | None = None) -> Readings:
        """`count` readings of terminals `keys`, each after ``dwell`` seconds of the bench as
        it is (an integration): voltage, current (read noise as the bench says, or as
        `noise` says) and compliance flag; (0, 0, False) for a terminal that is off.

        Readings while nothing changes (no cell can switch or is relaxing) share one
        operating point and differ only by their read noise, drawn for all of them at once;
        otherwise every reading is of the bench as it has become by then.
        """
        keys = list(keys)
        noisy = self.sim.read_noise if noise is None else noise
        voltage, current = np.zeros((count, len(keys))), np.zeros((count, len(keys)))
        limited = np.zeros((count, len(keys)), bool)
        during: set[str] = set()
        with self.lock:
            k = 0
            while k < count:
                share = count - k if dwell == 0.0 else 1
                if dwell > 0.0 and count - k > 1 and self._relaxing and self._surely_quiet():
                    drifting = self._read_relaxing(keys, count - k, dwell, noisy)
                    if drifting is not None:
                        voltage[k:], current[k:] = drifting
                        break
                if dwell > 0.0:
                    if not self._relaxing and self._surely_quiet():
                        share = count - k
                        self.clock += share * dwell
                        self._pass_quietly(
                            share * dwell,
                            self.operating_point(self._noise_responses(keys, share, noisy)))
                    else:
                        during |= self._advance(dwell, watch_limits=True)
                op = self.operating_point(self._noise_responses(keys, share, noisy))
                during |= op.compliance
                rows = slice(k, k + share)
                for t, key in enumerate(keys):
                    if key in op.voltage:
                        voltage[rows, t] = op.voltage[key]
                        current[rows, t] = op.current[key]
                        limited[rows, t] = key in op.compliance
                if noisy:
                    current[rows] += self._read_noise(op, keys, share, dwell)
                k += share
        return Readings(keys, voltage, current, limited, during)

    def _read_relaxing(self, keys: list[str], count: int, dwell: float, noisy: bool):
        """`count` readings while cells relax, each after ``dwell`` seconds, all in one batched
        solve (every reading at the conductances of its moment, with its unit responses for
        the read noise): (voltage, current), each (count, K); or None, with nothing changed,
        when a source would be at its limit somewhere (or the I-V is nonlinear): the readings
        are then taken one by one. The batch also holds the bench as it is now (the first
        integration's energy) and, when the interval kept last without a solve is of the same
        sources and wiring, that interval (its energy)."""
        if self._array.params.iv_v0 > 0.0:
            return None
        before = self._circuit()
        known = self._op if self._op_version == self.version else None
        if known is not None and known.compliance:
            return None
        prior = self._pending[-1] if self._pending else None
        if prior is not None and not (prior[0].wiring == before.wiring
                                      and prior[0].states == before.states):
            prior = None
        states = ([] if prior is None else [prior[0].g]) + ([] if known else [before.g])
        saved = (self._array.snapshot(), self._unheard, self._relaxing)
        first_reading = self.clock + dwell
        states += list(self._relax_for_readings(dwell, count))
        measured = [key for key in keys if key in before.states] if noisy else []
        currents, v_cell, volts, v_end, r_end = self._solver.solve_drifting(
            before, np.stack(states), measured)
        limits = np.array([state.limit_i for state in before.states.values()])
        if (np.abs(currents[:, 0]) > limits * (1 + LIMIT_RTOL)).any():
            snapshot, self._unheard, self._relaxing = saved
            self._array.restore(snapshot)
            self._array_changed()
            return None
        power = currents[:, 0] @ volts  # of every state solved
        if prior is not None:
            self._pending.pop()
            self._energy += prior[1] * float(power[0])
            currents, v_cell, power = currents[1:], v_cell[1:], power[1:]
        first = known.power if known else float(power[0])
        if not known:
            currents, v_cell, power = currents[1:], v_cell[1:], power[1:]
        self.clock += count * dwell
        self._energy += dwell * (first + float(power[:-1].sum()))
        index = {key: i for i, key in enumerate(before.states)}
        voltage, current = np.zeros((count, len(keys))), np.zeros((count, len(keys)))
        for t, key in enumerate(keys):
            if key in index:
                voltage[:, t] = volts[index[key]]
                current[:, t] = currents[:, 0, index[key]]
        if noisy:
            g_each = np.stack(states[-count:])
            cells = self._array.read_noise_currents(g_each * v_cell[:, 0], count,
                                                    interval=dwell, now=first_reading,
                                                    conductance=g_each)
            noise = np.einsum("kij,ktij->kt", cells, v_cell[:, 1:])
            current[:, [keys.index(key) for key in measured]] += noise
        m = self.rows
        self._op = OperatingPoint(
            voltage={key: float(volts[i]) for key, i in index.items()},
            current={key: float(currents[-1, 0, i]) for key, i in index.items()},
            compliance=set(), rows=(v_end[:m], r_end[:m]), cols=(v_end[m:], r_end[m:]),
            held=frozenset(), v_cell=v_cell[-1, 0], power=float(power[-1]))
        self._op_version = self.version
        self._solver.keep_responses(self._circuit(), {
            key: Response(currents[-1, 1 + t], v_cell[-1, 1 + t])
            for t, key in enumerate(measured)})
        return voltage, current

    def _relax_for_readings(self, dwell: float, count: int) -> np.ndarray:
        """The conductances after each of `count` intervals of ``dwell`` seconds, the cells
        relaxing as `_let_time_pass` lets them, interval by interval."""
        steps = self._array.relax_in_steps(dwell, count)
        self._array_changed()
        steps = self._through_gates(steps)
        self._g, self._g_cached = steps[-1], self._g_version  # the conductances now
        self._g.flags.writeable = False
        self._relaxing = len(steps) == count and self._array.relaxation_changes_conductance()
        for _ in range(count - len(steps)):
            self._unheard += dwell
        return np.concatenate([steps, np.repeat(steps[-1:], count - len(steps), axis=0)])

    def _noise_responses(self, keys: list[str], count: int, noisy: bool) -> list[str]:
        """The terminals whose unit responses should be solved with the operating point of
        `count` readings of `keys`: all of them when their noise will come from the
        responses, none when the readings are re-solved (`CircuitSolver.noise_by_responses`:
        a board's 256 lines read once while cells relax are one solve, not 256)."""
        if not noisy or not self._solver.noise_by_responses(self._circuit(), keys, count):
            return []
        return keys

    def _read_noise(self, op: OperatingPoint, keys: list[str], count: int,
                    interval: float = 0.0) -> np.ndarray:
        """(count, K) read noise of `count` readings at `op`, `interval` seconds apart, the
        last one now: every cell's noise current (the array's read stream; its 1/f part
        carried on the bench's clock) carried to each terminal by its sensitivities, or each
        reading re-solved when that is cheaper (`CircuitSolver.noise_by_responses`).
        Terminals that are off, or whose current is held at a limit, get none."""
        circuit = self._circuit()
        columns = [t for t, key in enumerate(keys) if key in op.voltage and key not in op.held]
        noisy = [keys[t] for t in columns]
        result = np.zeros((count, len(keys)))
        cells = self._solver.cell_currents(circuit, op)
        start = self.clock - (count - 1) * interval
        if not noisy:  # the draws are taken all the same
            self._array.read_noise_currents(cells, count, interval=interval, now=start,
                                            conductance=circuit.g)
            return result
        if not self._solver.noise_by_responses(circuit, noisy, count):
            result[:, columns] = self._solver.resolved_noise(
                circuit, op, noisy, count, interval, start)
            return result
        weights = self._solver.noise_weights(circuit, op, noisy)
        step = max(1, NOISE_CHUNK // cells.size)
        for first in range(0, count, step):
            part = self._array.read_noise_currents(cells, min(step, count - first),
                                                    interval=interval,
                                                    now=start + first * interval,
                                                    conductance=circuit.g)
            result[first:first + len(part), columns] = np.einsum(  # no BLAS threads here
                "kx,tx->kt", part.reshape(len(part), -1), weights)
        return result

    def measure(self, key: str, noise: bool | None = None) -> tuple[float, float, bool]:
        """(voltage, current, in compliance) of one terminal now; (0, 0, False) when off."""
        return self._measure_all([key], noise)[key]

    def measure_after(self, key: str, seconds: float, noise: bool | None = None
                      ) -> tuple[float, float, bool]:
        """One reading of terminal `key` after ``seconds`` of the bench as it is (an
        integration): `measure` once the time has passed (`read` of one reading, without
        its arrays: the path of every spot reading)."""
        with self.lock:
            noisy = self.sim.read_noise if noise is None else noise
            if seconds > 0.0 and not self._relaxing and self._surely_quiet():
                op = self.operating_point(self._noise_responses([key], 1, noisy))
                self.clock += seconds
                self._pass_quietly(seconds, op)
            else:
                self._advance(seconds, watch_limits=False)
            return self._measure_all([key], noisy)[key]

    def integrate(self, key: str, seconds: float, noise: bool | None = None
                  ) -> tuple[float, float, bool]:
        """Let ``seconds`` pass with the bench as it is and return terminal `key`'s voltage
        and current averaged over them, and whether it was at its limit at some moment: what
        an integrating converter whose aperture spans the interval reports (a measurement
        during a pulse). One terminal of `integrate_together`."""
        return self.integrate_together([key], seconds, noise)[key]

    def integrate_together(self, keys, seconds: float, noise: bool | None = None
                           ) -> dict[str, tuple[float, float, bool]]:
        """`integrate` of several terminals over the same ``seconds`` (converters of several
        channels started by one trigger): key -> (mean V, mean I, at its limit at some
        moment). The averages are those of the operating points the time advances through,
        the ones the World's energy is booked from, so V x I x t of every terminal sums to
        the energy the sources delivered meanwhile; each current then carries one read-noise
        draw, as a spot reading at the end would (read noise as the bench says unless
        `noise`)."""
        seconds = float(seconds)
        if not (math.isfinite(seconds) and seconds > 0.0):
            raise ValueError(f"seconds = {seconds!r}: allowed a finite time above 0 s")
        keys = list(keys)
        with self.lock:
            self._meter = {key: [0.0, 0.0] for key in keys}
            try:
                limited = self._advance(seconds, watch_limits=True)
            finally:
                meter, self._meter = self._meter, None
            spot = self._measure_all(keys, noise)
            current = self.operating_point().current
            return {key: (meter[key][0] / seconds,
                          meter[key][1] / seconds + spot[key][1] - current.get(key, 0.0),
                          key in limited) for key in keys}

    def _meter_interval(self, op: OperatingPoint, seconds: float) -> None:
        """Add `seconds` of `op` to the terminals being integrated (`integrate_together`)."""
        if self._meter is not None:
            for key, sums in self._meter.items():
                if key in op.voltage:
                    sums[0] += op.voltage[key] * seconds
                    sums[1] += op.current[key] * seconds

    def _measure_all(self, keys: list[str], noise: bool | None = None
                     ) -> dict[str, tuple[float, float, bool]]:
        """(voltage, current, in compliance) of several terminals from one operating point
        and one read-noise draw (read noise as the bench says unless `noise`)."""
        with self.lock:
            noisy = self.sim.read_noise if noise is None else noise
            op = self.operating_point(self._noise_responses(keys, 1, noisy))
            noise_now = self._read_noise(op, keys, 1)[0].tolist() if noisy else [0.0] * len(keys)
            return {key: (op.voltage[key], op.current[key] + noise_now[t], key in op.compliance)
                    if key in op.voltage else (0.0, 0.0, False) for t, key in enumerate(keys)}

    # ------------------------------------------------------------------ sweeps
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
        comes from the unit responses of the terminals (the network is linear: a point is
        their sum weighted by its levels; with read noise on, each point draws its own, as a
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
                    power[k] = self.operating_point().power
            self.clock += dwell * count
            self._energy += dwell * float(np.sum(power))
            self._let_time_pass(dwell * count)
            self._set_levels(levels, count - 1)
            return points

    def _set_levels(self, levels: dict[str, list[float]], k: int) -> None:
        """Every sweeping terminal at its level of point ``k``."""
        for key, values in levels.items():
            self.set_terminal(key, level=values[k])

    def _batched_sweep(self, levels: dict[str, list[float]]):
        """Per-point (V, I, limited) of each sweeping terminal of a quiet voltage sweep from
        the unit responses, and the power every point's sources deliver; or None. A point
        over a limit is None for every terminal (power 0)."""
        if self._relaxing or self._array.params.iv_v0 > 0.0:
            return None  # the conductances change from point to point, or no superposition
        states = self._acting()
        if any(s.func != "V" for s in states.values()):  # the sweeping terminals among them
            return None
        circuit = self._circuit()
        index = {k: i for i, k in enumerate(circuit.states)}
        count = len(next(iter(levels.values())))
        volts = np.tile([s.level for s in circuit.states.values()], (count, 1))
        for key, values in levels.items():
            volts[:, index[key]] = values
        v_end, _ = circuit.network.thevenin(volts)
        driven = ~np.isnan(v_end)
        high = np.where(driven, v_end, -np.inf).max(axis=1)
        low = np.where(driven, v_end, np.inf).min(axis=1)
        span = np.where(driven.sum(axis=1) >= 2, high - low, 0.0)
        if (span > self.switching_threshold()).any():
            return None
        sources = [k for k in circuit.states if np.any(volts[:, index[k]] != 0.0)]
        found = self._solver.responses(circuit, [*levels, *sources])
        weights = volts[:, [index[k] for k in sources]]
        currents = np.einsum("ks,st->kt", weights, np.array(
            [found[k].currents for k in sources]).reshape(len(sources), len(index)))
        limits = np.array([s.limit_i for s in circuit.states.values()])
        over = (np.abs(currents) > limits * (1 + LIMIT_RTOL)).any(axis=1)
        if self.sim.read_noise:
            currents = currents + self._sweep_noise(circuit, found, sources, weights, levels,
                                                    index)
        points = {
            key: [
                None if over[k] else (float(volts[k, index[key]]), float(currents[k, index[key]]),
                                      False)
                for k in range(count)
            ]
            for key in levels
        }
        return points, np.where(over, 0.0, np.sum(volts * currents, axis=1))

    def _sweep_noise(self, circuit, found, sources, weights, levels, index) -> np.ndarray:
        """(count, K) read noise of every point of a sweep (one draw per point, in order)."""
        count = weights.shape[0]
        noise = np.zeros((count, len(index)))
        swept = [index[k] for k in levels]
        sensitivities = np.stack([found[k].v_cell.ravel() for k in levels])
        g = circuit.g.ravel()
        fields = np.array([found[k].v_cell.ravel() for k in sources]).reshape(len(sources),
                                                                              g.size)
        step = max(1, NOISE_CHUNK // g.size)
        for start in range(0, count, step):
            part = slice(start, min(start + step, count))
            cells = np.einsum("ks,sx->kx", weights[part], fields) * g  # each point's cells
            draws = self._array.read_noise_currents(cells.reshape(-1, *circuit.g.shape),
                                                    len(cells), now=self.clock)
            noise[part, swept] = np.einsum("kx,tx->kt", draws.reshape(len(cells), -1),
                                           sensitivities)
        return noise

    # ------------------------------------------------------------------ time
    def switching_threshold(self) -> float:
        """The smallest cell voltage that can move any cell (SET, RESET or forming); kept
        while the conductances stay (only a pulse forms a cell)."""
        if self._threshold_of != self._g_version:
            p = self._array.params
            threshold = min(p.v_set, -p.v_reset)
            if not self._array.formed().all():
                threshold = min(threshold, p.v_form)
            self._threshold, self._threshold_of = threshold, self._g_version
        return self._threshold

    def _surely_quiet(self) -> bool:
        """True when no cell can see a switching voltage, known without a solve: every source
        is a voltage source and their levels (and ground, when something is tied to it) span
        less than the switching threshold (every node lies within that span)."""
        voltage_sources, span = self._source_span()
        return voltage_sources and span <= self.switching_threshold()

    def _silent(self) -> bool:
        """True when no current flows anywhere, known without a solve: every source at 0, or
        every source a voltage source at one level (ground, when something is tied to it,
        at that level too): every node sits at that level."""
        voltage_sources, span = self._source_span()
        return (voltage_sources and span == 0.0) or not any(
            t.level for t in self._circuit().states.values())

    def _source_span(self) -> tuple[bool, float]:
        """(every source a voltage source, the span of their levels and of ground when the
        wiring ties a line to it), once per version."""
        if self._surely_quiet_version != self.version:
            volts = [0.0] if self._grounded() else []
            voltage_sources = True
            for state in self._source_states():
                voltage_sources &= state.func == "V"
                volts.append(state.level)
            self._span_now = voltage_sources, max(volts) - min(volts) if volts else 0.0
            self._surely_quiet_version = self.version
        return self._span_now

    def _grounded(self) -> bool:
        """Whether the wiring now ties some line to ground (a closed relay to a ground input,
        a grounded board line), known without building its network; once per wiring."""
        wiring = self._wiring_now()
        if self._grounded_of is not wiring:
            line, term, _ = self._feeds_of_codes()
            closed = np.flatnonzero(self._conducting[:len(term)])
            self._grounded_now = bool(((term[closed] < 0) & (line[closed] >= 0)).any()) or any(
                kind == "G" for states in wiring[1] for _, kind in states)
            self._grounded_of = wiring
        return self._grounded_now

    def _source_states(self):
        """The states of the circuit now (`_circuit`), in any order, without working out a
        wiring not known yet when it cannot matter: with no output relay open on a matrix
        input, no floating node joins lines, and the sources are every terminal's acting
        state (a relay change between two readings then costs no wiring of its own)."""
        if self._circuit_now is not None or self._wiring is not None:  # (the wiring known)
            return self._circuit().states.values()
        states, inputs = [], self._term_ids
        for k, t in self.terminals.items():
            if t.output:
                states.append(t)
            elif t.off_state is not None:
                states.append(t.acting())
            elif k in inputs:  # an open output relay on a matrix input: a floating node?
                return self._circuit().states.values()
        return states

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

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass with the bench as it is now.

        Every cell sees the voltage the circuit gives it for that long and moves by the device
        model; when no cell can see more than the smallest switching threshold (the node
        voltages lie between the lowest and highest source voltage), the cells only relax.
        While cells switch, time advances in steps (:meth:`_pulse_step`) and the operating
        point, compliance included, is solved again between them: a source that reaches its
        limit while a cell SETs holds the limit, the cell's voltage sags and the SET stops
        itself. The energy the sources deliver (V * I * t) is booked either way.
        """
        self._advance(seconds, watch_limits=False)

    def advance_watching_limits(self, seconds: float) -> set[str]:
        """:meth:`advance`, returning the terminals that were at a limit at some point of the
        interval (a solve even when the interval is quiet)."""
        return self._advance(seconds, watch_limits=True)

    def _advance(self, seconds: float, watch_limits: bool) -> set[str]:
        limited: set[str] = set()
        if seconds <= 0.0:
            return limited
        with self.lock:
            if not watch_limits and self._surely_quiet():
                self.clock += seconds
                self._pass_quietly(seconds)
                return limited
            self.clock += seconds
            remaining, step = seconds, seconds
            while remaining > 0.0:
                op = self.operating_point()
                limited |= op.compliance
                if self._quiet():  # nothing switches; the sources still deliver V * I
                    self._meter_interval(op, remaining)
                    self._pass_quietly(remaining, op)
                    return limited
                taken, step, limited_after = self._pulse_step(op, min(step, remaining))
                self._meter_interval(op, taken)
                limited |= limited_after
                remaining = remaining - taken if taken < remaining else 0.0
            return limited

    def _pass_quietly(self, seconds: float, op: OperatingPoint | None = None) -> None:
        """Quiet time: the sources deliver V * I (booked now when the solve is known, else
        with the circuit for later) and the cells relax."""
        if op is None and self._op_version == self.version:
            op = self._op
        if op is not None:
            self._energy += seconds * op.power
        elif not self._silent():
            circuit = self._circuit()
            if self._pending and self._pending[-1][0] is circuit:
                self._pending[-1][1] += seconds
            else:
                self._pending.append([circuit, seconds])
                if len(self._pending) > PENDING_INTERVALS:
                    self._settle_pending(PENDING_INTERVALS // 2)
        self._let_time_pass(seconds)

    def _settle_pending(self, count: int) -> None:
        """Work out the energy of the oldest `count` intervals kept without a solve: those of
        one wiring and one set of sources in one batched solve (their conductances differ,
        the sources were all voltage sources: the intervals were quiet), each one that would
        have a source beyond its limit by the full compliance solve."""
        settled, self._pending = self._pending[:count], self._pending[count:]
        groups: dict[tuple, list] = {}
        for circuit, seconds in settled:
            key = (circuit.wiring, tuple(circuit.states.items()))
            groups.setdefault(key, []).append((circuit, seconds))
        for group in groups.values():
            first = group[0][0]
            if self._array.params.iv_v0 > 0.0:
                powers = [self._solver.operating_point(c).power for c, _ in group]
            else:
                currents, _, volts, _, _ = self._solver.solve_drifting(
                    first, np.stack([c.g for c, _ in group]), [])
                limits = np.array([state.limit_i for state in first.states.values()])
                over = (np.abs(currents[:, 0]) > limits * (1 + LIMIT_RTOL)).any(axis=1)
                powers = [self._solver.operating_point(c).power if over[k] else
                          float(currents[k, 0] @ volts) for k, (c, _) in enumerate(group)]
            for (_, seconds), power in zip(group, powers, strict=True):
                self._energy += seconds * power

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
                op.rows[0], op.cols[0], dt, r_source=op.rows[1], r_sense=op.cols[1],
                gate=self._gates)
            self._array_changed()
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
            self._array_changed()
            dt = max(dt * max(factor, 1.0 / MAX_SHRINK), shortest)
        self._energy += float(result.energy_total)
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
        self._array_changed()
        self._relaxing = self._array.relaxation_changes_conductance()

    def _tell_array_the_time(self) -> None:
        if self._unheard:
            self._array.advance_time(self._unheard)
            self._unheard = 0.0


def _line_kind(level: float | str) -> str:
    """How a board line is tied: floating "F", grounded "G" or driven "V"."""
    return level if isinstance(level, str) else "V"
