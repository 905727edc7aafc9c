"""The bench as a circuit at one moment, and its solution: operating point, compliance and the
unit responses that carry read noise to the instruments.

A `Circuit` is the World's electrical state frozen at one version: the sources acting on the
bench (`TerminalState`), the `Network` tying them to the line ends and the cells'
conductances. It never changes, so a solve can come later than the moment it describes (the
energy of an interval nobody measured is computed only when someone asks for it).

`CircuitSolver` solves circuits on one crossbar:

- the operating point (`OperatingPoint`), compliance included: a voltage source over its
  current limit, and every current source, is a terminal of unknown voltage with a target
  current; a current source over its voltage limit is a voltage source at that limit. Newton
  steps with the unit responses (exact in one step for a linear network) meet the targets; the
  set is updated until no terminal breaks a limit;
- unit responses (`Response`): one terminal at 1 V, every other source at 0 V. Its row of
  terminal currents is a column of the compliance Jacobian, and its cell voltages are, by
  reciprocity, the sensitivity of that terminal's current to a current injected across each
  cell: read noise, a fluctuation of each cell's current, reaches the terminal through them
  exactly (the network is linear), so a noisy reading is the operating point plus
  ``sum(response.v_cell * noise_current)`` without another solve. Responses depend on the
  network and the conductances only, not on the source levels: they are kept until either
  changes, for every reading of that wiring.

Solves of one network reuse a `CrossbarSolver` (checks and line elimination done once) and
start from the last solution of the same kind (the operating point, or the same terminal's
response).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from xbarlab.physics import CrossbarArray
from xbarlab.physics.device import cell_current
from xbarlab.physics.solver import CrossbarSolution, CrossbarSolver

from .network import Network

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
# Prepared solvers kept (one per conductance state and set of line-end resistances).
SOLVERS_KEPT = 4
# Drifting states that differ in at most this many cells follow from one of them by the
# compensation theorem (a solve per differing cell); more are solved state by state.
MAX_COMPENSATED_CELLS = 8
# Noisy readings re-solved at once hold at most this many conductances (memory).
RESOLVE_CHUNK = 2**21
# Terminals x cells above which one reading's noise carried through the unit responses (a
# product streaming that many sensitivities) costs about a solve of its own: a circuit read
# again is then re-solved per reading, its responses not worked out (a 128 x 128 board's 128
# sensed columns: 2^21).
RESPONSE_PRODUCT_MAX = 2**20


class TerminalState(NamedTuple):
    """One source-measure terminal: what it sources and what it limits, on and off.

    ``off_state`` is what the output does while it is off: None for an open output relay
    (high impedance), else ``(func, limit)``: a source at 0 (volts for "V", amps for "I")
    with that current (or voltage) limit, as the instruments' normal/zero off modes do.
    Immutable (a named tuple: made, compared and hashed in C): the World replaces a
    terminal's state when it changes, so a `Circuit` keeps the states it was built with.
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


class Circuit:
    """The bench's electrical state at one version: the acting sources (in the World's
    order), what feeds the line ends (``wiring``, hashable) and its network (built on first
    use by ``build(wiring)``), and the cells' conductances (read-only; ``g_version`` names
    them). Nothing in it changes once made."""

    __slots__ = ("states", "wiring", "g", "g_version", "_build", "_network")

    def __init__(self, states: dict[str, TerminalState], wiring: tuple, g: np.ndarray,
                 g_version: int, build: Callable[[tuple], Network]):
        self.states, self.wiring, self.g, self.g_version = states, wiring, g, g_version
        self._build, self._network = build, None

    @property
    def network(self) -> Network:
        if self._network is None:
            self._network = self._build(self.wiring)
        return self._network


@dataclass
class OperatingPoint:
    """A solved state of the bench: terminal voltages and currents, and who is in compliance.

    ``held``: terminals whose current is held at a target (current sources and current-limited
    voltage sources): read noise does not reach their current. ``v_cell``: every cell's
    voltage. ``power``: what the sources deliver, sum of V x I (W).
    """

    voltage: dict[str, float]
    current: dict[str, float]
    compliance: set[str]
    rows: tuple[np.ndarray, np.ndarray]  # (v_end, r_end) per row, NaN = floating
    cols: tuple[np.ndarray, np.ndarray]
    held: frozenset[str]
    v_cell: np.ndarray
    power: float


@dataclass(frozen=True)
class Response:
    """One terminal at 1 V, every other source at 0 V: each acting terminal's current (A, in
    the circuit's order) and each cell's voltage (V, (m, n))."""

    currents: np.ndarray
    v_cell: np.ndarray


class CircuitSolver:
    """Operating points and unit responses of circuits on one crossbar (module docstring)."""

    def __init__(self, array: CrossbarArray, r_wire_row: float, r_wire_col: float):
        self.array = array
        self.rows, self.cols = array.shape
        self.r_wire_row, self.r_wire_col = r_wire_row, r_wire_col
        self._solvers: OrderedDict[tuple, CrossbarSolver] = OrderedDict()
        self._warm: dict[str, np.ndarray] = {}  # last bit-line voltages per kind of solve
        self._responses: dict[str, Response] = {}
        self._responses_of: tuple | None = None  # (network, g_version) they belong to
        self._weights: dict[tuple, np.ndarray] = {}  # stacked cell voltages, for read noise
        self._lines: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # see _evaluate
        self._lines_of: tuple | None = None
        self._resolved_of: tuple | None = None  # the circuit last read by re-solving

    def warm_up(self) -> None:
        """Load the compiled solver kernels this crossbar uses (from numba's disk cache) on a
        2 x 2 network, so the first reading does not pay for it."""
        g = np.full((2, 2), 1e-6)
        kw = dict(r_source=1.0, r_sense=1.0, r_wire_row=self.r_wire_row,
                  r_wire_col=self.r_wire_col)
        ends = np.array([[0.1, np.nan], [0.0, np.nan]])
        first = CrossbarSolver(g, **kw).solve(ends[0], ends[1])
        CrossbarSolver(g, **kw).solve(ends[0], ends[1], warm_start=first, cells=False)
        CrossbarSolver(np.stack([g, g]), **kw).solve(ends[0], ends[1], warm_start=first.v_bit)

    def forget(self) -> None:
        """Drop every kept solve (the array was replaced or restored)."""
        self._solvers.clear()
        self._warm.clear()
        self._responses.clear()
        self._weights.clear()
        self._responses_of = None
        self._lines, self._lines_of = {}, None
        self._resolved_of = None

    # ------------------------------------------------------------------ line solves
    def _solver(self, circuit: Circuit, r_end: np.ndarray) -> CrossbarSolver:
        key = (circuit.g_version, r_end.tobytes())
        solver = self._solvers.get(key)
        if solver is None:
            m = self.rows
            solver = CrossbarSolver(circuit.g, r_source=r_end[:m], r_sense=r_end[m:],
                                    r_wire_row=self.r_wire_row, r_wire_col=self.r_wire_col)
            self._solvers[key] = solver
            if len(self._solvers) > SOLVERS_KEPT:
                self._solvers.popitem(last=False)
        else:
            self._solvers.move_to_end(key)
        return solver

    def _solve_lines(self, circuit: Circuit, v_end: np.ndarray, r_end: np.ndarray,
                     kinds: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Line-end inflows (B, L) and cell voltages (B, m, n) for a batch of line-end
        voltages, vector b warm-started from the last solve of kind ``kinds[b]``."""
        m = self.rows
        if self.array.params.iv_v0 > 0.0 and kinds == ["op"]:  # self-consistent nonlinear I-V
            sol = self.array.solve(v_end[0, :m], v_end[0, m:], r_source=r_end[:m],
                                   r_sense=r_end[m:], read_noise=False, conductance=circuit.g)
            i_row, i_col, v_cell = sol.i_row[None], sol.i_col[None], sol.v_cell[None]
        else:
            starts = [self._warm.get(kind) for kind in kinds]
            warm = None
            if any(start is not None for start in starts):
                zeros = np.zeros((self.rows, self.cols))
                warm = np.stack([zeros if s is None else s for s in starts])
            sol = self._solver(circuit, r_end).solve(v_end[:, :m], v_end[:, m:],
                                                     warm_start=warm)
            for kind, bits in zip(kinds, sol.v_bit, strict=True):
                if kind is not None:
                    self._warm[kind] = bits
            i_row, i_col, v_cell = sol.i_row, sol.i_col, sol.v_cell
        return _inflows(i_row, i_col, v_end), v_cell

    def _evaluate(self, circuit: Circuit, volts: np.ndarray, kinds: list[str]):
        """Terminal currents, cell voltages and line ends for a batch of terminal voltages.

        A vector whose line ends are all at 0 V but one, or whose non-zero line ends all have
        a kept line response, is the sum of line responses (the crossbar is linear): one line
        end at 1 V, every other fed end at 0 V. Line responses are kept while the
        conductances, the line-end resistances and which ends are fed stay the same, so a
        read map, whose cells differ by which line is driven and which is sensed, solves each
        line once. Other vectors are solved as they are (warm-started by kind)."""
        net = circuit.network
        v_end, r_end = net.thevenin(volts)
        if self.array.params.iv_v0 > 0.0:
            inflow, v_cell = self._solve_lines(circuit, v_end, r_end, kinds)
            return net.terminal_currents(inflow, v_end, volts), v_cell, v_end, r_end
        fed = ~np.isnan(v_end[0])
        lines = self._line_responses_of(circuit, r_end, fed)
        driven = [np.flatnonzero(fed & (row != 0.0)) for row in v_end]
        summed = [b for b, nz in enumerate(driven)
                  if nz.size <= 1 or all(line in lines for line in nz.tolist())]
        missing = sorted({line for b in summed for line in driven[b].tolist()
                          if line not in lines})
        direct = [b for b in range(len(v_end)) if b not in set(summed)]
        if missing or direct:
            units = np.where(fed, 0.0, np.nan)[None].repeat(len(missing), axis=0)
            units[np.arange(len(missing)), missing] = 1.0
            ends = np.concatenate([units, v_end[direct]])
            solved, cells = self._solve_lines(circuit, ends, r_end,
                                              [None] * len(missing) + [kinds[b] for b in direct])
            for k, line in enumerate(missing):
                lines[line] = (solved[k], cells[k])
        m, n = self.rows, self.cols
        inflow = np.zeros((len(v_end), m + n))
        v_cell: list = [None] * len(v_end)  # one (m, n) array per vector
        for b in summed:
            nz = driven[b].tolist()
            if len(nz) == 1 and v_end[b, nz[0]] == 1.0 and kinds[b] != "op":
                # a unit response that is one line's own: its cell voltages as kept (read
                # only, for the noise it carries), its inflows as 0 + 1 x them
                inflow[b] += lines[nz[0]][0]
                v_cell[b] = lines[nz[0]][1]
                continue
            v_cell[b] = cells_b = np.zeros((m, n))
            for k, line in enumerate(nz):
                scale = v_end[b, line]
                inflow[b] += scale * lines[line][0]
                if k:
                    cells_b += scale * lines[line][1]
                else:  # 0 + the first term, without a temporary (-0.0 + 0.0 is 0.0)
                    np.multiply(lines[line][1], scale, out=cells_b)
                    cells_b += 0.0
        for k, b in enumerate(direct):
            inflow[b], v_cell[b] = solved[len(missing) + k], cells[len(missing) + k]
        return net.terminal_currents(inflow, v_end, volts), v_cell, v_end, r_end

    def _line_responses_of(self, circuit: Circuit, r_end: np.ndarray, fed: np.ndarray) -> dict:
        """The kept line responses, line -> (inflows, cell voltages), for the circuit's
        conductances, these line-end resistances and these fed ends."""
        owner = (circuit.g_version, r_end.tobytes(), fed.tobytes())
        if self._lines_of != owner:
            self._lines, self._lines_of = {}, owner
        return self._lines

    # ------------------------------------------------------------------ unit responses
    def responses(self, circuit: Circuit, keys, extra=None) -> dict[str, Response]:
        """Unit responses of terminals `keys` (kept while the network and the conductances
        stay), solved together in one batch; `extra` (terminal voltages) joins that batch as
        one more vector, whose (currents, v_cell, v_end, r_end) come back under key None."""
        owner = (circuit.wiring, circuit.g_version)
        if self._responses_of != owner:
            self._responses, self._responses_of, self._weights = {}, owner, {}
        missing = [k for k in dict.fromkeys(keys) if k not in self._responses]
        if not missing and extra is None:
            return self._responses
        index = {k: i for i, k in enumerate(circuit.states)}
        volts = np.zeros((len(missing) + (extra is not None), len(index)))
        volts[np.arange(len(missing)), [index[k] for k in missing]] = 1.0
        kinds = list(missing)
        if extra is not None:
            volts[-1] = extra
            kinds.append("op")
        currents, v_cell, v_end, r_end = self._evaluate(circuit, volts, kinds)
        for k, key in enumerate(missing):
            self._responses[key] = Response(currents[k], v_cell[k])
        if extra is None:
            return self._responses
        return {**self._responses, None: (currents[-1], v_cell[-1], v_end[-1], r_end)}

    def solve_drifting(self, circuit: Circuit, conductances: np.ndarray, keys: list[str]):
        """The circuit's sources (voltage sources within their limits: the caller knows) on a
        sequence of conductance states (n, m, n): per state, the terminal currents and cell
        voltages of the operating point and the unit responses of `keys` ((n, 1 + K, terms)
        and (n, 1 + K, m, n)), with the sources' voltages, line-end voltages and resistances.
        For readings while cells relax, each at the conductances of its moment.

        When only a few cells differ between the states (the relaxing ones), the first state
        is solved and every other follows exactly from it by the compensation theorem
        (`_compensated`); otherwise all states are one batched solve."""
        index = {k: i for i, k in enumerate(circuit.states)}
        per_state = 1 + len(keys)
        volts = np.zeros((per_state, len(index)))
        volts[0] = [state.level for state in circuit.states.values()]
        volts[np.arange(1, per_state), [index[k] for k in keys]] = 1.0
        v_end, r_end = circuit.network.thevenin(volts)
        kinds = ["op", *keys]
        count = len(conductances)
        changed = np.flatnonzero((conductances != conductances[0]).any(axis=0))
        fields = None
        if 0 < changed.size <= MAX_COMPENSATED_CELLS:
            fields = self._compensated(conductances, changed, v_end, r_end, kinds)
        if fields is None:
            fields = self._solved_each(conductances, v_end, r_end, kinds)
        v_cell, i_row, i_col = fields
        ends = np.tile(v_end, (count, 1))
        currents = circuit.network.terminal_currents(_inflows(i_row, i_col, ends), ends,
                                                     np.tile(volts, (count, 1)))
        return (currents.reshape(count, per_state, len(index)),
                v_cell.reshape(count, per_state, *conductances.shape[1:]), volts[0], v_end[0],
                r_end)

    def _batch(self, conductances, v_end, r_end, starts: list, kept: list,
               cells: bool = True) -> CrossbarSolution:
        """One solve of line ends `v_end` (one row per vector) with a matrix per vector, each
        vector started from the last solution of kind ``starts[b]`` (None: cold) and kept as
        kind ``kept[b]`` (None: not kept); ``cells=False``: without the cell voltages."""
        m = self.rows
        begin = [None if kind is None else self._warm.get(kind) for kind in starts]
        warm = None
        if any(start is not None for start in begin):
            zeros = np.zeros((self.rows, self.cols))
            warm = np.stack([zeros if start is None else start for start in begin])
        solver = CrossbarSolver(conductances, r_source=r_end[:m], r_sense=r_end[m:],
                                r_wire_row=self.r_wire_row, r_wire_col=self.r_wire_col)
        sol = solver.solve(v_end[:, :m], v_end[:, m:], warm_start=warm, cells=cells)
        for kind, bits in zip(kept, sol.v_bit, strict=True):
            if kind is not None:
                self._warm[kind] = bits
        return sol

    def _solved_each(self, conductances, v_end, r_end, kinds):
        """Every state's vectors solved: (v_cell, i_row, i_col), state by state."""
        count, per_state = len(conductances), len(kinds)
        sol = self._batch(np.repeat(conductances, per_state, axis=0), np.tile(v_end, (count, 1)),
                          r_end, kinds * count, [None] * (per_state * (count - 1)) + kinds)
        return sol.v_cell, sol.i_row, sol.i_col

    def _compensated(self, conductances, changed, v_end, r_end, kinds):
        """The states' vectors from the first state's solution, exactly: a cell whose
        conductance changes by d carries an extra current d x (its new voltage), so with the
        fields z_c that a current across each changed cell c sets up (found from one solve
        with that cell's conductance doubled: x - x' = z_c d_c v'_c), a state whose cells
        differ by D has fields F - Z (I + D Z_CC)^-1 D F_C for every field F of the first
        state (compensation theorem; Z_CC: z at the changed cells). None when a changed cell
        carries no voltage in the operating point (its z cannot be found that way)."""
        base = conductances[0]
        flat = base.ravel()
        rank, per_state, count = changed.size, len(kinds), len(conductances)
        doubled = np.repeat(base[None], per_state + rank, axis=0)
        step = np.where(flat[changed] > 0.0, flat[changed], flat.mean())
        for k, cell in enumerate(changed):
            doubled[per_state + k].ravel()[cell] += step[k]
        ends = np.concatenate([v_end, np.repeat(v_end[:1], rank, axis=0)])
        sol = self._batch(doubled, ends, r_end, kinds + ["op"] * rank, kinds + [None] * rank)
        cells = sol.v_cell.reshape(per_state + rank, -1)
        fields, perturbed = cells[:per_state], cells[per_state:]
        across = perturbed[np.arange(rank), changed]  # v'_c
        if np.any(np.abs(across) <= 1e-9 * np.abs(fields[0]).max(initial=0.0)):
            return None
        z = (fields[0] - perturbed) / (step * across)[:, None]  # (rank, m*n)
        z_cc = z[:, changed].T  # z_cc[a, b]: field of cell b at cell a
        d = conductances.reshape(count, -1)[:, changed] - flat[changed]  # (count, rank)
        system = np.eye(rank) + d[:, :, None] * z_cc[None]
        weights = np.linalg.solve(system, d[:, :, None] * fields[:, changed].T[None])
        v_cell = fields[None] - np.einsum("krp,rx->kpx", weights, z)  # (count, P, m*n)
        m, n = base.shape
        current = conductances.reshape(count, 1, m, n) * v_cell.reshape(count, per_state, m, n)
        return (v_cell.reshape(count * per_state, m, n),
                current.sum(axis=3).reshape(count * per_state, m),
                current.sum(axis=2).reshape(count * per_state, n))

    def keep_responses(self, circuit: Circuit, responses: dict[str, Response]) -> None:
        """Take unit responses solved elsewhere as the circuit's own."""
        self._responses, self._responses_of = dict(responses), (circuit.wiring,
                                                                circuit.g_version)
        self._weights = {}

    def noise_by_responses(self, circuit: Circuit, keys: list[str], count: int) -> bool:
        """Whether the read noise of `count` readings of `keys` should come from the unit
        responses (one solve per terminal, kept for every later reading of this circuit)
        rather than from re-solving each reading (`resolved_noise`, one solve per reading,
        kept for none): when the responses are kept already, when there are at least as many
        readings as terminals, when this circuit was read by re-solving before (it is read
        again: its responses will serve) and carrying the noise through them costs less than
        a solve (`RESPONSE_PRODUCT_MAX` terminals x cells), or when the I-V is nonlinear."""
        if self.array.params.iv_v0 > 0.0 or count >= len(keys):
            return True
        owner = (circuit.wiring, circuit.g_version)
        if self._responses_of == owner and all(k in self._responses for k in keys):
            return True
        return self._resolved_of == owner and len(keys) * circuit.g.size <= RESPONSE_PRODUCT_MAX

    def resolved_noise(self, circuit: Circuit, op: OperatingPoint, keys: list[str],
                       count: int, interval: float = 0.0, now: float | None = None
                       ) -> np.ndarray:
        """(count, K) read noise of `count` readings of terminals `keys`, each reading the
        whole network solved again with every cell at its conductance of that reading
        (the read stream's draw, ``CrossbarArray.read_noise_currents`` of the conductances:
        g exp(sigma z)) and the sources at their operating-point voltages, less the
        operating point's currents: what the unit responses give, to first order. `keys`
        are terminals not held at a limit (the World gives those no noise); a linear I-V.
        The readings are `interval` seconds apart from `now` (the 1/f part's clock)."""
        owner = (circuit.wiring, circuit.g_version)
        self._resolved_of = owner
        index = {k: i for i, k in enumerate(circuit.states)}
        volts = np.array([op.voltage[k] for k in circuit.states])[None]
        net = circuit.network
        v_end, r_end = net.thevenin(volts)
        g = circuit.g
        base = np.array([op.current[k] for k in circuit.states])
        columns = [index[k] for k in keys]
        result = np.empty((count, len(keys)))
        step = max(1, RESOLVE_CHUNK // g.size)
        for start in range(0, count, step):
            size = min(step, count - start)
            noisy = self.array.read_noise_currents(
                g, size, interval=interval, now=None if now is None else now + start * interval)
            noisy += g
            ends = np.repeat(v_end, size, axis=0)
            sol = self._batch(noisy, ends, r_end, ["op"] * size, [None] * size, cells=False)
            currents = net.terminal_currents(_inflows(sol.i_row, sol.i_col, ends), ends,
                                             np.repeat(volts, size, axis=0))
            result[start:start + size] = currents[:, columns] - base[columns]
        return result

    def noise_weights(self, circuit: Circuit, op: OperatingPoint, keys: list[str]) -> np.ndarray:
        """(K, m*n): d(current of terminal k) / d(current injected across each cell), at the
        operating point: the unit responses' cell voltages (kept with them). For a nonlinear
        I-V, those of the network linearised at the operating point (cells at their slope
        conductance), which carry a small fluctuation exactly to first order."""
        v0 = self.array.params.iv_v0
        if v0 == 0.0:
            found = self.responses(circuit, keys)
            weights = self._weights.get(tuple(keys))
            if weights is None:
                weights = (found[keys[0]].v_cell.reshape(1, -1) if len(keys) == 1 else
                           np.stack([found[k].v_cell.ravel() for k in keys]))
                self._weights[tuple(keys)] = weights
            return weights
        index = {k: i for i, k in enumerate(circuit.states)}
        volts = np.zeros((len(keys), len(index)))
        volts[np.arange(len(keys)), [index[k] for k in keys]] = 1.0
        v_end, r_end = circuit.network.thevenin(volts)
        m = self.rows
        slope = CrossbarSolver(circuit.g * np.cosh(op.v_cell / v0), r_source=r_end[:m],
                               r_sense=r_end[m:], r_wire_row=self.r_wire_row,
                               r_wire_col=self.r_wire_col)
        return slope.solve(v_end[:, :m], v_end[:, m:]).v_cell.reshape(len(keys), -1)

    def cell_currents(self, circuit: Circuit, op: OperatingPoint) -> np.ndarray:
        """Every cell's current at the operating point (A)."""
        return cell_current(circuit.g, op.v_cell, self.array.params.iv_v0)

    # ------------------------------------------------------------------ operating point
    def operating_point(self, circuit: Circuit, responses_for=()) -> OperatingPoint:
        """Solve `circuit` with compliance as physics (module docstring).

        The set changes one terminal at a time within a budget that scales with the terminal
        count; a floating group of limited terminals whose currents cannot cancel releases
        the terminal its voltage reaches first. The unit responses of `responses_for` (noise
        to come) are solved in the same batch as the first evaluation.
        """
        states = circuit.states
        keys = list(states)
        index = {k: i for i, k in enumerate(keys)}
        net = circuit.network
        volts = np.array([s.level if s.func == "V" else 0.0 for s in states.values()], float)
        active: dict[str, tuple[str, float]] = {
            k: ("I", s.level) for k, s in states.items() if s.func == "I"
        }
        # currents come from voltage differences: below this they are rounding noise
        floor = ROUNDING * max(np.abs(volts).max(initial=0.0), 1.0) * net.g.max(initial=0.0)
        newton_steps = 0
        forced: set[str] = set()  # current sources driven past their voltage limit
        budget = max(MIN_ACTIVE_SET_CHANGES, MAX_CHANGES_PER_TERMINAL * len(keys))
        changes = 0
        seen = {_set_signature(active, forced)}
        first = True
        while True:
            if first and responses_for and self.array.params.iv_v0 == 0.0:
                found = self.responses(circuit, responses_for, extra=volts)
                currents, v_cell, v_end, r_end = found[None]
            else:
                currents, v_cell, v_end, r_end = self._evaluate(circuit, volts[None, :], ["op"])
                currents, v_cell, v_end = currents[0], v_cell[0], v_end[0]
            first = False
            free = [k for k in keys if active.get(k, ("",))[0] == "I"]
            if free:
                cols = [index[k] for k in free]
                target = np.array([active[k][1] for k in free])
                residual = target - currents[cols]
                tolerance = TARGET_RTOL * np.abs(target).max() + floor
                if np.abs(residual).max() > tolerance and newton_steps < MAX_NEWTON_STEPS:
                    newton_steps += 1
                    found = self.responses(circuit, free)
                    jac = np.array([[found[u].currents[t] for u in free] for t in cols])
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
                floating = False
                if np.abs(residual).max() > tolerance:
                    found = self.responses(circuit, free)
                    jac = np.array([[found[u].currents[t] for u in free] for t in cols])
                    floating = _float_component(states, free, cols, jac, target, volts, active,
                                                forced)
            else:
                floating = False
            if not floating and not _update_active_set(states, keys, volts, currents, active,
                                                       forced):
                break
            newton_steps = 0
            changes += 1
            signature = _set_signature(active, forced)
            if signature in seen or changes > budget:
                why = "went back to an earlier set"
                if signature not in seen:
                    why = f"took more than {budget} changes"
                raise RuntimeError(
                    f"compliance active set did not settle: {why} "
                    f"({len(active)} of {len(keys)} terminals limited)"
                )
            seen.add(signature)
        compliance = set(forced)  # forced past the voltage limit: the limit is not held
        held = set()
        for k, (kind, target) in active.items():
            if (states[k].func == "V") == (kind == "I"):
                compliance.add(k)
            if kind == "I":
                currents[index[k]] = target
                held.add(k)
        m = self.rows
        voltage = {k: float(volts[index[k]]) for k in keys}
        current = {k: float(currents[index[k]]) for k in keys}
        return OperatingPoint(
            voltage=voltage,
            current=current,
            compliance=compliance,
            rows=(v_end[:m], r_end[:m]),
            cols=(v_end[m:], r_end[m:]),
            held=frozenset(held),
            v_cell=v_cell,
            power=sum(voltage[k] * current[k] for k in voltage),
        )


def _inflows(i_row: np.ndarray, i_col: np.ndarray, v_end: np.ndarray) -> np.ndarray:
    """(B, m + n) current flowing into the array at each line end (rows' inflow, columns'
    outflow reversed); 0 at floating ends (NaN in `v_end`)."""
    return np.where(np.isnan(v_end), 0.0, np.concatenate([i_row, -i_col], axis=1))


def _set_signature(active, forced) -> tuple:
    """The active set as a hashable value: which terminals are limited, and how."""
    return (
        frozenset((k, kind, float(target)) for k, (kind, target) in active.items()),
        frozenset(forced),
    )


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
    if not active and all(states[k].func == "V" for k in keys):  # none at a limit yet
        limits = np.array([states[k].limit_i for k in keys])
        if not (np.abs(currents) / limits > 1 + LIMIT_RTOL).any():
            return False  # (the loop below, for every terminal at once)
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
