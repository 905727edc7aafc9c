"""Bench files: parse and validate a TOML bench description into frozen dataclasses.

A bench file describes one bench once: its instruments, how they are wired to the crossbar, the
chip, the safety limits and the idle mode. The bench layer (which believes the wiring) and the
virtual bench (which simulates it) both read this one description, so they cannot disagree. A
virtual bench adds a ``[sim]`` section with what no real bench can tell (true parasitics, defects,
seed, injected faults); a real bench has no ``[sim]`` section.

This is a leaf module: it imports only the standard library and pyvisa's resource-name parser
(and, for the default read-voltage limit, the switching thresholds of the chip's device preset),
so both the core bench layer and the simulator may import it. Every validation failure raises
:class:`BenchFileError` naming the field, the offending value and what is allowed, before
anything is allocated from the file's figures (a range is checked before it is expanded). Paths
in a bench file (``sim.state_file``) stay inside the bench file's folder.

A virtual bench's state file (``sim.state_file``, or the one the engine keeps beside a run store,
`simulator_source`) is JSON the simulator writes when the bench closes and at exit: what the
instruments were left doing (``terminals``, ``closed``, ``board_lines``), the virtual clock
(``clock``, s), the Unix time it was saved (``saved_at``) and the chip (``chip``: its
`chip_identity` and every cell's state). A bench that opens on an existing state file continues
that chip, its virtual clock advanced by the time that passed since it was saved.

Wiring conventions
------------------
* Crossbar lines are ``row:i`` and ``col:j`` (0-based). Ranges: ``row:0-31``.
* A switch matrix has *inputs* (named by the instrument's own labels: ``A``..``H`` on a 707B,
  ``1``..``10`` on an E5250A with E5252A cards) and *outputs* numbered 1..N across its cards in card
  order (707B: output ``k`` is slot ``(k-1)//12+1``, column ``(k-1)%12+1``; E5250A: card
  ``(k-1)//12+1``, output ``(k-1)%12+1``).
* An instrument terminal is ``<instrument>.<terminal>`` (``smu.a``, ``smu.b`` on a two-channel
  2600B; ``smu.1``, ``smu.2`` on a two-channel B2900; ``smu.1`` on a 2400/2450); ``ground`` is
  the bench ground.
* An SMU may name its output-off mode (``off_mode``: what an idle output holds its lines at, from
  the modes its model offers) and, on a 2400 or 2450, the ``terminals`` (``front`` or ``rear``) the
  bench is cabled to. The bench applies both when it opens and the drivers again after a reset.
* An array board (model ``ARRAYBOARD``, ``rows``/``cols`` line drivers) numbers its channels
  1..rows for its row lines ``R0``.. and rows+1..rows+cols for its column lines ``C0``..; each
  crossbar line may sit on one channel.
"""

from __future__ import annotations

import importlib.resources
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

GROUND = "ground"


class BenchFileError(ValueError):
    """A bench file is malformed; the message names the field, the value and what is allowed."""


@dataclass(frozen=True)
class ModelInfo:
    """What the bench schema must know about an instrument model to validate wiring."""

    kind: str  # "smu", "matrix" or "board"
    terminals: tuple[str, ...] = ()  # SMU terminals
    inputs: tuple[str, ...] = ()  # matrix input labels
    outputs_per_card: int = 0  # matrix outputs per card
    max_cards: int = 0
    max_channels: int = 0  # board: most rows (and most columns) a board may have
    off_modes: tuple[str, ...] = ()  # SMU output-off modes the model offers
    terminal_sides: tuple[str, ...] = ()  # SMU front/rear terminal switch, if any


BOARD_COMMAND_CHARACTERS = 4096
"""Longest command an array board accepts (drivers/array_board.md §1)."""
BOARD_LEVEL_CHARACTERS = 18
"""Longest line level the bench sends a board: 12 significant digits with sign, point and
exponent (``-1.23456789012e-05``); a board has at most as many lines of a kind as one
full-vector command (``VROW v,v,...``) of such levels carries."""
_KEITHLEY_SCPI = {"off_modes": ("normal", "zero", "high_z", "guard"),
                  "terminal_sides": ("front", "rear")}
_OFF_MODES = {"off_modes": ("normal", "zero", "high_z")}
_E5250A_INPUTS = tuple(str(k) for k in range(1, 11))
MODELS: MappingProxyType[str, ModelInfo] = MappingProxyType(
    {
        **{model: ModelInfo("smu", terminals=("1",), **_KEITHLEY_SCPI)
           for model in ("2400", "2401", "2410", "2420", "2425", "2430", "2440", "2450")},
        **{model: ModelInfo("smu", terminals=("a",), **_OFF_MODES)
           for model in ("2601B", "2611B", "2635B")},
        **{model: ModelInfo("smu", terminals=("a", "b"), **_OFF_MODES)
           for model in ("2602B", "2604B", "2612B", "2614B", "2634B", "2636B")},
        **{model: ModelInfo("smu", terminals=("1",), **_OFF_MODES)
           for model in ("B2901A", "B2901B", "B2911A", "B2911B")},
        **{model: ModelInfo("smu", terminals=("1", "2"), **_OFF_MODES)
           for model in ("B2902A", "B2902B", "B2912A", "B2912B")},
        "707B": ModelInfo("matrix", inputs=tuple("ABCDEFGH"), outputs_per_card=12, max_cards=6),
        "708B": ModelInfo("matrix", inputs=tuple("ABCDEFGH"), outputs_per_card=12, max_cards=1),
        "E5250A": ModelInfo("matrix", inputs=_E5250A_INPUTS, outputs_per_card=12, max_cards=4),
        "ARRAYBOARD": ModelInfo("board", max_channels=(BOARD_COMMAND_CHARACTERS - 5)
                                // (BOARD_LEVEL_CHARACTERS + 1)),
    }
)
REFUSED_MODELS: MappingProxyType[str, str] = MappingProxyType({
    model: "the Keithley 2600A series is not supported: its command set differs from the 2600B "
           "the driver is checked against (factory pulse scripts, buffers, defaults); use a "
           "2600B model"
    for model in ("2601A", "2602A", "2611A", "2612A", "2635A", "2636A")
})
"""Models a bench file names that xbarlab refuses, with the reason."""

DEVICE_KINDS = ("passive", "1t1r")
TRIGGER_LINK_MODELS = ("2601B", "2602B", "2611B", "2612B", "2635B", "2636B")
"""2600B models with trigger lines on a DIGITAL I/O port (the 2604B, 2614B and 2634B have
none), the ones ``[wiring] trigger_link`` may join."""
READ_VOLTAGE_FRACTION = 0.5
"""Default ``limits.max_read_voltage``: this fraction of the lowest switching threshold (SET or
|RESET|) of the chip's device preset, so a read never moves a cell."""
PRESETS = ("binary", "analog", "high_r", "binary_sinh")
IDLE_MODES = ("float", "ground")
RELAY_FAULT_KINDS = ("stuck_relay", "stuck_closed")
"""Relay faults: a relay stuck open (``stuck_relay``) or welded closed (``stuck_closed``)."""
FAULT_KINDS = ("timeout", "garbled", "drop", "error", "late", *RELAY_FAULT_KINDS)


class Line(NamedTuple):
    """One crossbar line: ``kind`` is ``"row"`` or ``"col"``, ``index`` is 0-based.

    A named tuple: the bench layer keys its dicts and sets by lines, and a tuple hashes,
    compares and sorts (by kind, then index) in C."""

    kind: str
    index: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.index}"


@dataclass(frozen=True)
class Instrument:
    """One instrument of the bench, as the bench file names it."""

    name: str
    driver: str
    model: str
    address: str
    backend: str
    cards: int = 0  # matrices: installed cards
    rows: int = 0  # boards: row line drivers (channels 1..rows)
    cols: int = 0  # boards: column line drivers (channels rows+1..rows+cols)
    off_mode: str = ""  # SMUs: output-off mode to apply ("" = the instrument's own)
    terminals: str = ""  # 2400/2450: the terminals the bench is cabled to ("" = front)

    @property
    def info(self) -> ModelInfo:
        return MODELS[self.model]

    @property
    def kind(self) -> str:
        return MODELS[self.model].kind

    @property
    def output_count(self) -> int:
        """Matrix outputs (cards x outputs per card) or board channels (rows + cols)."""
        if self.kind == "matrix":
            return self.cards * self.info.outputs_per_card
        return self.rows + self.cols


@dataclass(frozen=True)
class Terminal:
    """An instrument terminal (``smu.a``) or the bench ground (instrument ``""``)."""

    instrument: str
    terminal: str

    @property
    def is_ground(self) -> bool:
        return self.instrument == ""

    def __str__(self) -> str:
        return GROUND if self.is_ground else f"{self.instrument}.{self.terminal}"


@dataclass(frozen=True)
class LinePort:
    """Where a crossbar line lands: a matrix output or a board channel (1-based)."""

    instrument: str
    output: int


@dataclass(frozen=True)
class Wiring:
    """Matrix inputs to terminals, and crossbar lines to matrix outputs or board channels."""

    path_resistance: float
    inputs: MappingProxyType[tuple[str, str], Terminal]  # (matrix, input label) -> terminal
    lines: MappingProxyType[Line, LinePort]
    trigger_link: tuple[str, ...] = ()
    """SMU instruments whose DIGITAL I/O ports one cable joins line for line (``[wiring]
    trigger_link``): one of them can start the others' pulses (a V/3 pulse spread over two
    2600Bs)."""


@dataclass(frozen=True)
class Chip:
    """The crossbar: its size, device kind and preset, masked cells, and its identity (what
    calibration records are kept under: ``[chip] id``, else the bench name)."""

    rows: int
    cols: int
    device: str
    preset: str
    masked: tuple[tuple[int, int], ...]
    id: str = ""
    gate_threshold: float = 0.0
    """1T1R chips: the access transistors' threshold voltage (V), from the chip's datasheet."""
    gate_gain: float = 0.0
    """1T1R chips: K of the transistors' saturation current K (V_g - V_t)^2 (A/V^2), from the
    chip's datasheet (long-channel square law)."""

    def gate_for_compliance(self, amperes: float) -> float:
        """The gate voltage at which this chip's access transistors saturate at `amperes`:
        V_t + sqrt(I / K) (compliance set by the gate, as 1T1R arrays are programmed)."""
        return self.gate_threshold + math.sqrt(amperes / self.gate_gain)


@dataclass(frozen=True)
class Limits:
    max_voltage: float
    max_compliance: float
    max_pulse_width: float
    max_energy: float
    max_read_voltage: float = math.inf
    """Largest |V| of a read (read-disturb guard); the bench file's value, else
    READ_VOLTAGE_FRACTION of the chip preset's lowest switching threshold."""
    max_gate_voltage: float = 0.0
    """Largest gate voltage of a 1T1R chip's word lines (V; required for ``device = "1t1r"``,
    0 otherwise): reads open the selected row's gate at it."""


@dataclass(frozen=True)
class Fault:
    """An injected fault of a virtual instrument (see module docstring of the simulator)."""

    instrument: str
    kind: str
    after: int = 0  # timeout/drop/error: commands accepted before; garbled/late: reply number
    input: str = ""  # stuck_relay/stuck_closed: matrix input label
    output: int = 0  # stuck_relay/stuck_closed: matrix output number


@dataclass(frozen=True)
class Sim:
    """What only a virtual bench knows: true parasitics, array realisation, noise, faults."""

    seed: int = 0
    r_wire_row: float = 1.0
    r_wire_col: float = 1.0
    r_path_row: float = 2.0
    r_path_col: float = 2.0
    r_path_spread: float = 0.0  # lognormal sigma of each line's path about r_path_row/col
    defects: bool = True
    stuck_fraction: float | None = None  # share of stuck cells (preset's on:off); None: preset's
    pristine: bool = False
    read_noise: bool = True
    harder_read_noise: bool = False  # read noise growing toward the HRS, half of it 1/f
    instrument_meter: bool = True  # SMU readings through their sheets' error and resolution
    relaxation_spread: float = 0.0  # lognormal sigma of each cell's relaxation time constant
    faults: tuple[Fault, ...] = ()
    state_file: str = ""  # where the simulator keeps its state (module docstring; "" = nowhere)


@dataclass(frozen=True)
class Bench:
    name: str
    description: str
    instruments: MappingProxyType[str, Instrument]
    wiring: Wiring
    chip: Chip
    limits: Limits
    idle: str
    sim: Sim | None
    origin: str = ""
    text: str = field(default="", repr=False)


# ---------------------------------------------------------------- field helpers


class _Fields:
    """Typed access to one TOML table that remembers its dotted path for error messages."""

    def __init__(self, origin: str, path: str, table: Any, allowed: tuple[str, ...]):
        self.origin, self.path = origin, path
        if not isinstance(table, dict):
            self.fail(path, table, "a table")
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            key = unknown[0]
            self.fail(self.dotted(key), table[key], f"one of the keys {', '.join(allowed)}")
        self.table = table

    def dotted(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, where: str, value: Any, allowed: str) -> None:
        raise BenchFileError(f"bench file {self.origin}: {where} = {value!r}: expected {allowed}")

    def get(self, key: str, kind: type, default: Any = ..., *, required: bool = False) -> Any:
        if key not in self.table:
            if required or default is ...:
                raise BenchFileError(
                    f"bench file {self.origin}: {self.dotted(key)} is missing: "
                    f"a {kind.__name__} is required"
                )
            return default
        value = self.table[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            self.fail(self.dotted(key), value, f"a {kind.__name__}")
        return value

    def number(self, key: str, lo: float, hi: float, default: Any = ..., *, open_lo=False):
        value = self.get(key, float, default)
        bad = not math.isfinite(value) or value > hi or (value <= lo if open_lo else value < lo)
        if bad:
            low = f"> {lo:g}" if open_lo else f">= {lo:g}"
            self.fail(self.dotted(key), value, f"a number {low} and <= {hi:g}")
        return value

    def integer(self, key: str, lo: int, hi: int, default: Any = ...) -> int:
        value = self.get(key, int, default)
        if not lo <= value <= hi:
            self.fail(self.dotted(key), value, f"an integer from {lo} to {hi}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in allowed:
            self.fail(self.dotted(key), value, f"one of {', '.join(allowed)}")
        return value


_LINE_RANGE = re.compile(r"^(row|col):(\d{1,12})(?:-(\d{1,12}))?$")
_INT_RANGE = re.compile(r"^(\d{1,12})(?:-(\d{1,12}))?$")


def _expand_lines(f: _Fields, key: str, text: Any, chip: Chip) -> list[Line]:
    """The lines of ``row:3`` or ``col:0-31``, each checked to be a line of `chip` before the
    range is expanded."""
    m = _LINE_RANGE.match(text) if isinstance(text, str) else None
    if not m:
        f.fail(f.dotted(key), text, "a line or line range like 'row:3' or 'col:0-31'")
    lo, hi = int(m[2]), int(m[3] if m[3] is not None else m[2])
    if hi < lo:
        f.fail(f.dotted(key), text, "a range whose end is not below its start")
    size = chip.rows if m[1] == "row" else chip.cols
    if hi >= size:
        f.fail(f.dotted(key), text, f"lines of the {chip.rows}x{chip.cols} chip "
                                    f"({m[1]}:0-{size - 1})")
    return [Line(m[1], i) for i in range(lo, hi + 1)]


def _expand_ints(f: _Fields, key: str, value: Any, most: int) -> list[int]:
    """The outputs of ``5`` or ``'1-32'``, each checked to be 1..`most` before the range is
    expanded."""
    if isinstance(value, int) and not isinstance(value, bool):
        lo = hi = value
    else:
        m = _INT_RANGE.match(value) if isinstance(value, str) else None
        if not m:
            f.fail(f.dotted(key), value, "an output number or range like 5 or '1-32'")
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
    if hi < lo:
        f.fail(f.dotted(key), value, "a range whose end is not below its start")
    if lo < 1 or hi > most:
        f.fail(f.dotted(key), value, f"outputs 1..{most}")
    return list(range(lo, hi + 1))


# ---------------------------------------------------------------- sections


def _parse_instruments(origin: str, table: Any) -> dict[str, Instrument]:
    top = _Fields(origin, "instruments", table, tuple(table) if isinstance(table, dict) else ())
    if not top.table:
        top.fail("instruments", table, "at least one [instruments.<name>] table")
    result = {}
    addresses: dict[str, str] = {}
    for name, sub in top.table.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == GROUND:
            top.fail(f"instruments.{name}", name, "a name of letters, digits and _ (not 'ground')")
        f = _Fields(
            origin,
            f"instruments.{name}",
            sub,
            ("driver", "model", "address", "backend", "cards", "rows", "cols", "off_mode",
             "terminals"),
        )
        refused = f.table.get("model")
        if isinstance(refused, str) and refused in REFUSED_MODELS:
            f.fail(f.dotted("model"), refused, f"another model: {REFUSED_MODELS[refused]}")
        model = f.choice("model", tuple(MODELS))
        info = MODELS[model]
        driver = f.get("driver", str)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", driver):
            f.fail(f.dotted("driver"), driver, "a dotted Python name")
        address = f.get("address", str)
        canonical = _canonical_address(f, address)
        if canonical in addresses:
            f.fail(f.dotted("address"), address,
                   f"an address not used by {addresses[canonical]} (both are {canonical})")
        addresses[canonical] = name
        backend = f.get("backend", str, "")
        if backend and not backend.startswith("@") and "@" not in backend:
            f.fail(f.dotted("backend"), backend, "a pyvisa backend spec like '@xbarsim' or '@py'")
        cards = rows = cols = 0
        if info.kind == "matrix":
            cards = f.integer("cards", 1, info.max_cards, info.max_cards)
        elif "cards" in f.table:
            f.fail(f.dotted("cards"), f.table["cards"], "no 'cards' key on a non-matrix")
        if info.kind == "board":
            rows = f.integer("rows", 1, info.max_channels)
            cols = f.integer("cols", 1, info.max_channels)
        else:
            for key in ("rows", "cols"):
                if key in f.table:
                    f.fail(f.dotted(key), f.table[key], f"no '{key}' key on a non-board")
        off_mode, terminals = _smu_settings(f, info)
        result[name] = Instrument(name, driver, model, address, backend, cards, rows, cols,
                                  off_mode, terminals)
    return result


def _canonical_address(f: _Fields, address: str) -> str:
    """The canonical VISA resource name of `address`, as a key for duplicates: pyvisa's parser
    on the upper-cased name (VISA resource names are case-insensitive; the parser is not), so
    ``gpib0::26::instr``, ``GPIB::26::INSTR`` and ``GPIB0::26`` are all ``GPIB0::26::INSTR``."""
    from pyvisa import rname

    try:
        return rname.to_canonical_name(address.upper())
    except (rname.InvalidResourceName, ValueError, TypeError):
        f.fail(f.dotted("address"), address, "a VISA resource name like 'GPIB0::26::INSTR'")
        raise AssertionError from None  # unreachable: fail raises


def _smu_settings(f: _Fields, info: ModelInfo) -> tuple[str, str]:
    """(off_mode, terminals) of one instrument table: only on the SMUs that have them."""
    settings = []
    for key, allowed in (("off_mode", info.off_modes), ("terminals", info.terminal_sides)):
        if key in f.table and not allowed:
            f.fail(f.dotted(key), f.table[key], f"no '{key}' key on a {f.table['model']} "
                                                "(it has no such setting)")
        settings.append(f.choice(key, allowed, "") if key in f.table else "")
    return settings[0], settings[1]


def _parse_terminal(f: _Fields, key: str, text: Any, insts: dict[str, Instrument]) -> Terminal:
    if text == GROUND:
        return Terminal("", "")
    if isinstance(text, str) and "." in text:
        inst, term = text.split(".", 1)
        if inst in insts and insts[inst].kind == "smu" and term in insts[inst].info.terminals:
            return Terminal(inst, term)
    smu_terms = [f"{n}.{t}" for n, i in insts.items() if i.kind == "smu" for t in i.info.terminals]
    f.fail(f.dotted(key), text, f"'ground' or an SMU terminal ({', '.join(smu_terms) or 'none'})")
    raise AssertionError  # unreachable: fail raises


def _parse_wiring(origin: str, table: Any, insts: dict[str, Instrument], chip: Chip) -> Wiring:
    f = _Fields(origin, "wiring", table, ("path_resistance", "inputs", "lines", "trigger_link"))
    path_r = f.number("path_resistance", 0.0, 1e6, 0.0)
    link = f.table.get("trigger_link", [])
    if not (isinstance(link, list) and all(isinstance(n, str) for n in link)
            and len(set(link)) == len(link) and len(link) != 1):
        f.fail("wiring.trigger_link", link, "a list of two or more different instrument names")
    for name in link:
        if name not in insts or insts[name].model not in TRIGGER_LINK_MODELS:
            f.fail("wiring.trigger_link", name, "an SMU with trigger lines on a DIGITAL I/O port "
                   f"(models {', '.join(TRIGGER_LINK_MODELS)})")
    inputs: dict[tuple[str, str], Terminal] = {}
    owners: dict[Terminal, tuple[str, str]] = {}
    in_table = f.table.get("inputs", {})
    fin = _Fields(
        origin, "wiring.inputs", in_table, tuple(in_table) if isinstance(in_table, dict) else ()
    )
    for matrix, sub in fin.table.items():
        if matrix not in insts or insts[matrix].kind != "matrix":
            fin.fail(f"wiring.inputs.{matrix}", sub, "a table named after a matrix instrument")
        labels = insts[matrix].info.inputs
        fm = _Fields(origin, f"wiring.inputs.{matrix}", sub, labels)
        for label, text in fm.table.items():
            term = _parse_terminal(fm, label, text, insts)
            if not term.is_ground and term in owners:
                other = owners[term]
                fm.fail(
                    fm.dotted(label), text, f"a terminal not already on {other[0]} input {other[1]}"
                )
            owners[term] = (matrix, label)
            inputs[(matrix, label)] = term

    lines: dict[Line, LinePort] = {}
    used: dict[tuple[str, int], Line] = {}
    groups = f.table.get("lines", [])
    if not isinstance(groups, list):
        f.fail("wiring.lines", groups, "an array of [[wiring.lines]] tables")
    for k, group in enumerate(groups):
        g = _Fields(origin, f"wiring.lines[{k}]", group, ("lines", "instrument", "outputs"))
        inst_name = g.get("instrument", str)
        if inst_name not in insts or insts[inst_name].kind not in ("matrix", "board"):
            g.fail(g.dotted("instrument"), inst_name, "the name of a matrix or board instrument")
        inst = insts[inst_name]
        group_lines = _expand_lines(g, "lines", g.table.get("lines"), chip)
        outputs = _expand_ints(g, "outputs", g.table.get("outputs"), inst.output_count)
        if len(outputs) != len(group_lines):
            g.fail(
                g.dotted("outputs"), g.table["outputs"], f"{len(group_lines)} outputs, one per line"
            )
        for line, out in zip(group_lines, outputs, strict=True):
            if line in lines:
                g.fail(
                    g.dotted("lines"), str(line), "each line wired once (two terminals on one line)"
                )
            if (inst_name, out) in used:
                g.fail(
                    g.dotted("outputs"),
                    out,
                    f"an output not already wired to {used[(inst_name, out)]}",
                )
            lines[line] = LinePort(inst_name, out)
            used[(inst_name, out)] = line

    for name, inst in insts.items():
        if inst.kind == "smu":
            for term in inst.info.terminals:
                if Terminal(name, term) not in owners:
                    f.fail(
                        "wiring.inputs",
                        f"{name}.{term}",
                        "every SMU terminal wired to a matrix input",
                    )
        if inst.kind == "matrix" and not any(m == name for m, _ in inputs):
            f.fail("wiring.inputs", name, "every matrix with at least one wired input")
    for kind, size in (("row", chip.rows), ("col", chip.cols)):
        missing = [k for k in range(size) if Line(kind, k) not in lines]
        if missing:
            shown = ", ".join(f"{kind}:{k}" for k in missing[:4]) + (
                f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            f.fail("wiring.lines", shown, f"every line of the {chip.rows}x{chip.cols} chip "
                                          "wired (a [[wiring.lines]] group for each)")
    return Wiring(path_r, MappingProxyType(inputs), MappingProxyType(dict(sorted(lines.items()))),
                  tuple(link))


def _parse_chip(origin: str, table: Any, default_id: str) -> Chip:
    f = _Fields(origin, "chip", table, ("rows", "cols", "device", "preset", "masked", "id",
                                        "gate_threshold", "gate_gain"))
    rows = f.integer("rows", 1, 4096)
    cols = f.integer("cols", 1, 4096)
    device = f.choice("device", DEVICE_KINDS, "passive")
    transistor = {}
    for key, lo, hi in (("gate_threshold", 0.0, 5.0), ("gate_gain", 0.0, 1.0)):
        if device == "1t1r":
            transistor[key] = f.number(key, lo, hi, open_lo=key == "gate_gain")
        elif key in f.table:
            f.fail(f.dotted(key), f.table[key], 'nothing: only a chip with device = "1t1r" '
                                                "has access transistors")
    preset = f.choice("preset", PRESETS, "binary")
    masked_raw = f.get("masked", list, [])
    masked = []
    for cell in masked_raw:
        ok = (
            isinstance(cell, list)
            and len(cell) == 2
            and all(isinstance(c, int) and not isinstance(c, bool) for c in cell)
            and 0 <= cell[0] < rows
            and 0 <= cell[1] < cols
        )
        if not ok:
            f.fail("chip.masked", cell, f"cells [i, j] with 0 <= i < {rows} and 0 <= j < {cols}")
        masked.append((cell[0], cell[1]))
    chip_id = f.get("id", str, default_id)
    if "id" in f.table and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", chip_id):
        f.fail(f.dotted("id"), chip_id, "a name of letters, digits and _ . : - (up to 128)")
    return Chip(rows, cols, device, preset, tuple(sorted(set(masked))), chip_id, **transistor)


def _parse_limits(origin: str, table: Any, chip: Chip) -> Limits:
    f = _Fields(origin, "limits", table, ("max_voltage", "max_compliance", "max_pulse_width",
                                          "max_energy", "max_read_voltage",
                                          "max_gate_voltage"))
    max_voltage = f.number("max_voltage", 0.0, 210.0, open_lo=True)
    if "max_read_voltage" in f.table:
        read = f.number("max_read_voltage", 0.0, max_voltage, open_lo=True)
    else:
        read = min(max_voltage, READ_VOLTAGE_FRACTION * _lowest_threshold(chip.preset))
    return Limits(
        max_voltage=max_voltage,
        max_compliance=f.number("max_compliance", 0.0, 1.05, open_lo=True),
        max_pulse_width=f.number("max_pulse_width", 0.0, 100.0, open_lo=True),
        max_energy=f.number("max_energy", 0.0, 10.0, open_lo=True),
        max_read_voltage=read,
        **_gate_limit(f, chip),
    )


def _gate_limit(f: _Fields, chip: Chip) -> dict[str, float]:
    """``max_gate_voltage``: required for a 1T1R chip (above its transistors' threshold), not
    allowed for a chip without gates."""
    if chip.device == "1t1r":
        return {"max_gate_voltage": f.number("max_gate_voltage", chip.gate_threshold, 20.0,
                                             open_lo=True)}
    if "max_gate_voltage" in f.table:
        f.fail(f.dotted("max_gate_voltage"), f.table["max_gate_voltage"],
               'nothing: only a chip with device = "1t1r" has gates')
    return {}


def _lowest_threshold(preset: str) -> float:
    """The lowest switching threshold (SET or |RESET|, volts) of device preset `preset`."""
    from xbarlab.physics.presets import preset as device_preset

    params = device_preset(preset)
    return min(params.v_set, -params.v_reset)


def _parse_faults(origin: str, raw: Any, insts: dict[str, Instrument], wiring: Wiring):
    if not isinstance(raw, list):
        raise BenchFileError(
            f"bench file {origin}: sim.faults = {raw!r}: expected an array of tables"
        )
    faults = []
    for k, item in enumerate(raw):
        f = _Fields(
            origin, f"sim.faults[{k}]", item, ("instrument", "kind", "after", "input", "output")
        )
        inst = f.get("instrument", str)
        if inst not in insts:
            f.fail(f.dotted("instrument"), inst, f"one of the instruments {', '.join(insts)}")
        kind = f.choice("kind", FAULT_KINDS)
        if kind in RELAY_FAULT_KINDS:
            if insts[inst].kind != "matrix":
                f.fail(f.dotted("instrument"), inst, f"a matrix for a {kind} fault")
            label = f.choice("input", insts[inst].info.inputs)
            out = f.integer("output", 1, insts[inst].output_count)
            faults.append(Fault(inst, kind, input=label, output=out))
        else:
            for key in ("input", "output"):
                if key in f.table:
                    f.fail(f.dotted(key), f.table[key], f"no '{key}' key on a {kind} fault")
            faults.append(Fault(inst, kind, after=f.integer("after", 0, 10**9)))
    return tuple(faults)


def _parse_sim(origin: str, table: Any, insts: dict[str, Instrument], wiring: Wiring) -> Sim:
    f = _Fields(
        origin,
        "sim",
        table,
        (
            "seed",
            "r_wire_row",
            "r_wire_col",
            "r_path_row",
            "r_path_col",
            "r_path_spread",
            "defects",
            "stuck_fraction",
            "pristine",
            "read_noise",
            "harder_read_noise",
            "instrument_meter",
            "relaxation_spread",
            "faults",
            "state_file",
        ),
    )
    stuck_fraction = f.number("stuck_fraction", 0.0, 1.0) if "stuck_fraction" in f.table else None
    if stuck_fraction is not None and not f.get("defects", bool, True):
        f.fail(f.dotted("stuck_fraction"), stuck_fraction, "no stuck fraction with defects = false")
    return Sim(
        seed=f.integer("seed", 0, 2**63 - 1, 0),
        r_wire_row=f.number("r_wire_row", 0.0, 1e6, 1.0),
        r_wire_col=f.number("r_wire_col", 0.0, 1e6, 1.0),
        r_path_row=f.number("r_path_row", 0.0, 1e6, 2.0),
        r_path_col=f.number("r_path_col", 0.0, 1e6, 2.0),
        r_path_spread=f.number("r_path_spread", 0.0, 1.0, 0.0),
        defects=f.get("defects", bool, True),
        stuck_fraction=stuck_fraction,
        pristine=f.get("pristine", bool, False),
        read_noise=f.get("read_noise", bool, True),
        harder_read_noise=f.get("harder_read_noise", bool, False),
        instrument_meter=f.get("instrument_meter", bool, True),
        relaxation_spread=f.number("relaxation_spread", 0.0, 5.0, 0.0),
        faults=_parse_faults(origin, f.table.get("faults", []), insts, wiring),
        state_file=_state_file(f, origin),
    )


def _state_file(f: _Fields, origin: str) -> str:
    """``sim.state_file``: a path relative to the bench file's folder that stays inside it
    (a bench given as text has the working directory as its folder)."""
    text = f.get("state_file", str, "")
    if not text:
        return ""
    folder = Path(origin).parent if not origin.startswith(("embedded:", "<")) else Path(".")
    allowed = f"a file path inside the bench file's folder {folder.resolve()}"
    if "\0" in text or Path(text).is_absolute():
        f.fail(f.dotted("state_file"), text, allowed)
    path = folder / text
    if not path.resolve().is_relative_to(folder.resolve()):
        f.fail(f.dotted("state_file"), text, allowed)
    return str(path)


# ---------------------------------------------------------------- public API


def parse_bench(text: str, origin: str = "<string>") -> Bench:
    """Parse and validate bench-file TOML text; raise BenchFileError on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BenchFileError(f"bench file {origin}: not valid TOML: {exc}") from None
    top = _Fields(
        origin, "", data, ("bench", "instruments", "wiring", "chip", "limits", "idle", "sim")
    )
    head = _Fields(origin, "bench", data.get("bench", {}), ("name", "description"))
    name = head.get("name", str, Path(origin).stem)
    description = head.get("description", str, "")
    for section in ("instruments", "wiring", "chip", "limits"):
        if section not in data:
            top.fail(section, None, f"a [{section}] section")
    insts = _parse_instruments(origin, data["instruments"])
    chip = _parse_chip(origin, data["chip"], name)
    wiring = _parse_wiring(origin, data["wiring"], insts, chip)
    limits = _parse_limits(origin, data["limits"], chip)
    idle = _Fields(origin, "idle", data.get("idle", {}), ("mode",)).choice(
        "mode", IDLE_MODES, "float"
    )
    if (
        idle == "ground"
        and not any(t.is_ground for t in wiring.inputs.values())
        and not any(i.kind == "board" for i in insts.values())
    ):
        top.fail("idle.mode", idle, "'float' unless a matrix input is wired to ground")
    sim = _parse_sim(origin, data["sim"], insts, wiring) if "sim" in data else None
    return Bench(
        name, description, MappingProxyType(insts), wiring, chip, limits, idle, sim, origin, text
    )


def embedded_bench_names() -> tuple[str, ...]:
    """Names of the bench files shipped inside the package (``default``, ``board`` ...)."""
    folder = importlib.resources.files("xbarlab.benches")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


def load_bench(source: str | Path | None = None) -> Bench:
    """Load a bench file by path, or an embedded bench by name (``None`` means ``default``)."""
    if source is None:
        source = "default"
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BenchFileError(f"bench file {source}: cannot be read: {exc}") from None
        except UnicodeDecodeError as exc:
            raise BenchFileError(f"bench file {source}: byte {exc.start} is not UTF-8 text "
                                 "(a bench file is UTF-8 TOML)") from None
        return parse_bench(text, str(path))
    names = embedded_bench_names()
    if str(source) not in names:
        raise BenchFileError(
            f"bench file {source!r}: no such file and not an embedded bench ({', '.join(names)})"
        )
    resource = importlib.resources.files("xbarlab.benches").joinpath(f"{source}.toml")
    return parse_bench(resource.read_text(encoding="utf-8"), f"embedded:{source}")


CHIP_STATE_SEPARATOR = "|state="
"""Joins a bench source and the state file of its virtual chip in an ``@xbarsim`` library path,
``analog|state=/data/chips/analog-1a2b3c4d5e6f.json@xbarsim`` (`simulator_source`)."""


def simulator_source(source: str, state_file: str | Path = "") -> str:
    """The ``@xbarsim`` library path (before the ``@``) of bench `source` (a bench file path or
    an embedded bench's name) whose chip is kept in `state_file` ("" = the bench file's own
    ``sim.state_file``, or none)."""
    return f"{source}{CHIP_STATE_SEPARATOR}{state_file}" if str(state_file) else source


def split_simulator_source(text: str) -> tuple[str, str]:
    """(bench source, state file or "") of an ``@xbarsim`` library path (`simulator_source`)."""
    source, _, state_file = text.partition(CHIP_STATE_SEPARATOR)
    return source, state_file


def chip_identity(bench: Bench) -> dict[str, Any]:
    """What makes the virtual chip of `bench` the chip it is: its size, device and preset, and
    the ``[sim]`` seed, wires, defects and forming state it is drawn with. Two benches with the
    same identity have the same fresh chip; a kept chip state fits only a bench of its identity
    (a spread of relaxation time constants, when there is one, is part of it)."""
    chip, sim = bench.chip, bench.sim or Sim()
    return {"rows": chip.rows, "cols": chip.cols, "device": chip.device, "preset": chip.preset,
            "seed": sim.seed, "r_wire_row": sim.r_wire_row, "r_wire_col": sim.r_wire_col,
            "defects": sim.defects, "pristine": sim.pristine,
            **({"relaxation_spread": sim.relaxation_spread} if sim.relaxation_spread else {})}
