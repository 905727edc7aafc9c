"""What a bench hands out: instrument handles that cannot put more on a line than its limits allow.

`Bench.channels`, `.matrices`, `.boards` and `.drivers` are these handles, never the drivers
themselves. A handle offers the operations of its `xbarlab.interfaces` protocol and nothing else
(no raw `write`/`ask`, no settings, no reset); every operation that can put a level on a line
passes the bench's `SafetyGuard` first and raises `LimitError` before anything is sent. A source's
output goes on only after its level and limit were set through the handle, and a pulse or sweep
runs under the limit set that way. No attribute of a handle can be set.

In a dry run (a guard that records violations) the bench's own checks record every request and
the recording instruments send nothing, so the handles pass requests on unchecked (a violation
is reported once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xbarlab.interfaces import LineState, LinkedPulse, PairedSweep, Reading
from xbarlab.safety import SafetyGuard

VOLT, CURR = "VOLT", "CURR"


class GuardedHandle:
    """Base of the handles: the wrapped object is private, attributes are read-only, and only
    the names in `passed` reach it unchanged (queries and operations that set no level)."""

    passed: frozenset[str] = frozenset()
    kind = "instrument"

    def __init__(self, name: str, inner: Any, guard: SafetyGuard):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_guard", guard)

    @property
    def name(self) -> str:
        return self._name

    def __getattr__(self, attribute: str) -> Any:
        if attribute in type(self).passed:
            return getattr(self._inner, attribute)
        raise AttributeError(
            f"{self._name}: {attribute!r} is not offered by the bench's guarded {self.kind} "
            f"handle (allowed: {', '.join(sorted(self._offered()))})")

    def __setattr__(self, attribute: str, value: Any) -> None:
        raise AttributeError(f"{self._name}: the bench's {self.kind} handle is read-only "
                             f"(cannot set {attribute!r})")

    def __delattr__(self, attribute: str) -> None:
        self.__setattr__(attribute, None)

    def __repr__(self) -> str:
        return f"<guarded {self.kind} {self._name}: {type(self._inner).__name__}>"

    def _offered(self) -> set[str]:
        own = {n for klass in type(self).__mro__ for n in vars(klass) if not n.startswith("_")}
        return (own | set(type(self).passed)) - {"passed", "kind"}

    @property
    def _checking(self) -> bool:
        return not self._guard.record_violations

    def _set(self, attribute: str, value: Any) -> None:
        object.__setattr__(self, attribute, value)


class GuardedChannel(GuardedHandle):
    """An SMU channel as the bench hands it out (see the module docstring)."""

    kind = "SMU channel"
    passed = frozenset({
        "read_current_limit", "set_current_range", "set_nplc", "output_off", "output_enabled",
        "measure", "in_compliance", "measure_repeated", "pulse_capability", "check_pulse",
        "shutdown", "max_sweep_points", "describe",
        # settings that put no level on a line (issue 16's drivers): off mode, terminals,
        # ranges, delays, autozero, filters, timed readings at the present level, abort
        "set_output_off_mode", "output_off_modes", "set_terminals", "set_source_range",
        "set_voltage_range", "set_source_delay", "set_measure_delay", "set_autozero",
        "set_filter", "measure_timed", "abort",
    })

    def __init__(self, name: str, inner: Any, guard: SafetyGuard):
        super().__init__(name, inner, guard)
        self._set("_source", None)  # (function, limit) set through this handle, or None

    def source_voltage(self, level: float, current_limit: float) -> None:
        """Source `level` volts under `current_limit` amperes, both within the bench limits."""
        if self._checking:
            self._guard.check_voltage(f"source level of {self._name}", level)
            self._guard.check_compliance(f"current limit of {self._name}", current_limit)
        self._set("_source", None)
        self._inner.source_voltage(level, current_limit)
        self._set("_source", (VOLT, float(current_limit)))

    def source_current(self, level: float, voltage_limit: float) -> None:
        """Source `level` amperes (|level| <= max_compliance) under `voltage_limit` volts
        (<= max_voltage)."""
        if self._checking:
            self._guard.check_current(f"source current of {self._name}", level)
            self._guard.check_voltage_limit(f"voltage limit of {self._name}", voltage_limit)
        self._set("_source", None)
        self._inner.source_current(level, voltage_limit)
        self._set("_source", (CURR, float(voltage_limit)))

    def output_on(self) -> None:
        """Turn the output on: only after a level and limit were set through the bench."""
        self._sourced("turn the output on")
        self._inner.output_on()

    def sweep(self, levels: Sequence[float], delay: float) -> list:
        """A list sweep of the present source function, every level within the bench limits."""
        function, _ = self._sourced("sweep")
        if self._checking:
            for k, level in enumerate(_sequence(levels, "levels")):
                self._check_level(function, f"sweep level {k} of {self._name}", level)
        return self._inner.sweep(levels, delay)

    def pulse(self, level: float, width: float, count: int = 1,
              period: float | None = None) -> list[Reading] | None:
        """Pulses of the present source function under the limit set through the bench: level,
        width, limit and energy bound checked (`SafetyGuard.check_pulse`); the readings the
        channel took during them (None where it takes none)."""
        self._check_pulse(level, width, count)
        return self._inner.pulse(level, width, count, period)

    def _check_pulse(self, level: float, width: float, count: int) -> None:
        """`PermissionError` before a level and limit were set through the bench; level,
        width, limit and energy bound checked (`SafetyGuard.check_pulse`)."""
        function, limit = self._sourced("pulse")
        if self._checking:
            if function == VOLT:
                self._guard.check_pulse(self._name, level, width, limit, count)
            else:
                self._guard.check_current_pulse(self._name, level, width, limit, count)

    def _check_level(self, function: str, quantity: str, level: float) -> None:
        if function == VOLT:
            self._guard.check_voltage(quantity, level)
        else:
            self._guard.check_current(quantity, level)

    def _sourced(self, action: str) -> tuple[str, float]:
        if self._source is None and self._checking:
            raise PermissionError(
                f"{self._name}: cannot {action} before a level and limit are set through the "
                "bench (source_voltage or source_current)")
        return self._source or (VOLT, self._guard.limits.max_compliance)


class GuardedInstrument(GuardedHandle):
    """A whole instrument (`Bench.drivers`): identity, error queue, snapshot, shutdown, and its
    channels as guarded handles."""

    passed = frozenset({"identity", "model", "address", "describe", "check_errors", "snapshot",
                        "shutdown"})

    def __init__(self, name: str, inner: Any, guard: SafetyGuard,
                 channels: Mapping[str, GuardedChannel]):
        super().__init__(name, inner, guard)
        self._set("_channels", dict(channels))

    @property
    def channels(self) -> Mapping[str, GuardedChannel]:
        """The instrument's channels by bench terminal ("a", "b"; "1", "2"), guarded."""
        return dict(self._channels)


class GuardedPairedInstrument(GuardedInstrument):
    """An instrument that sweeps and pulses two channels together
    (`xbarlab.interfaces.PairedSweep`, `xbarlab.interfaces.PairedPulse`)."""

    def pulse_pair(self, first: str, first_level: float, second: str, second_level: float,
                   width: float, count: int = 1, period: float | None = None):
        """Pulses of two channels together, each under the function and limit set through
        the bench, each checked as `GuardedChannel.pulse` checks one."""
        for terminal, level in ((first, first_level), (second, second_level)):
            self._own(terminal)._check_pulse(level, width, count)
        return self._inner.pulse_pair(first, first_level, second, second_level, width, count,
                                      period)

    def _own(self, terminal: str) -> GuardedChannel:
        channel = self._channels.get(str(terminal))
        if channel is None:
            raise ValueError(f"{self._name}: channel {terminal!r} is not one of the bench's "
                             f"terminals ({', '.join(self._channels)})")
        return channel

    def sweep_pair(self, first: str, first_levels: Sequence[float], second: str,
                   second_levels: Sequence[float], delay: float):
        """Lockstep list sweeps of two channels, each set up through the bench first, every
        level of both within the bench limits."""
        for terminal, levels in ((first, first_levels), (second, second_levels)):
            channel = self._own(terminal)
            function, _ = channel._sourced("sweep")
            if self._checking:
                for k, level in enumerate(_sequence(levels, "levels")):
                    channel._check_level(function, f"sweep level {k} of {channel.name}", level)
        return self._inner.sweep_pair(first, first_levels, second, second_levels, delay)


class GuardedLinkedInstrument(GuardedPairedInstrument):
    """An instrument whose pulses start another's over a trigger cable, or start on its
    (`xbarlab.interfaces.LinkedPulse`)."""

    def pulse_linked(self, levels: Mapping[str, float], width: float, count: int = 1,
                     period: float | None = None, trigger_line: int = 1):
        """Pulses of the channels of `levels`, each checked as `GuardedChannel.pulse` checks
        one."""
        for terminal, level in levels.items():
            self._own(terminal)._check_pulse(level, width, count)
        return self._inner.pulse_linked(levels, width, count, period, trigger_line)

    def arm_linked_pulse(self, levels: Mapping[str, float], width: float, count: int = 1,
                         trigger_line: int = 1) -> None:
        """Channels armed to pulse on a trigger line, each pulse checked as
        `GuardedChannel.pulse` checks one."""
        for terminal, level in levels.items():
            self._own(terminal)._check_pulse(level, width, count)
        self._inner.arm_linked_pulse(levels, width, count, trigger_line)

    def linked_readings(self):
        return self._inner.linked_readings()

    def disarm_linked_pulse(self) -> None:
        self._inner.disarm_linked_pulse()


class GuardedMatrix(GuardedInstrument):
    """A switch matrix (`xbarlab.interfaces.SwitchMatrix`): relays only, no raw commands."""

    kind = "matrix"
    passed = GuardedInstrument.passed | frozenset({
        "crosspoint", "close", "open", "reroute", "exclusive_close", "open_all", "closed",
        "set_forbidden",
        "forbidden", "set_break_before_make",
    })

    def __init__(self, name: str, inner: Any, guard: SafetyGuard):
        super().__init__(name, inner, guard, {})


class GuardedBoard(GuardedInstrument):
    """An array board (`xbarlab.interfaces.ArrayBoard`): every line level, limit and pulse
    within the bench limits."""

    kind = "board"
    passed = GuardedInstrument.passed | frozenset({
        "rows", "columns", "read_current_limit", "line_levels", "idle_mode", "float_all",
        "ground_all", "measure_currents", "set_idle_mode", "set_current_range",
        "set_integration_time", "measure_rows", "measure_columns", "measure_repeated",
        "limit_flags", "error_count", "pulse_energy", "gate",
    })

    def __init__(self, name: str, inner: Any, guard: SafetyGuard):
        super().__init__(name, inner, guard, {})
        self._set("_current_limit", None)

    def set_voltage_limit(self, volts: float) -> None:
        """The board's own voltage limit: at most the bench's max_voltage."""
        if self._checking:
            self._guard.check_voltage_limit(f"voltage limit of {self._name}", volts)
        self._inner.set_voltage_limit(volts)

    def set_current_limit(self, amperes: float) -> None:
        if self._checking:
            self._guard.check_compliance(f"current limit of {self._name}", amperes)
        self._set("_current_limit", None)
        self._inner.set_current_limit(amperes)
        self._set("_current_limit", float(amperes))

    def set_rows(self, levels: Sequence[Any]) -> None:
        self._check_levels("R", dict(enumerate(_sequence(levels, "levels"))))
        self._inner.set_rows(levels)

    def set_columns(self, levels: Sequence[Any]) -> None:
        self._check_levels("C", dict(enumerate(_sequence(levels, "levels"))))
        self._inner.set_columns(levels)

    def set_lines(self, rows: Mapping[int, Any] | None = None,
                  columns: Mapping[int, Any] | None = None) -> None:
        self._check_levels("R", rows or {})
        self._check_levels("C", columns or {})
        self._inner.set_lines(rows=rows, columns=columns)

    def read_one(self, row: int, column: int, voltage: float):
        if self._checking:
            self._guard.check_voltage(f"read level on {self._name} R{row}", voltage)
        return self._inner.read_one(row, column, voltage)

    def read_one_repeated(self, row: int, column: int, voltage: float, count: int):
        """`read_one` `count` times under one state (one exchange), its level checked."""
        if self._checking:
            self._guard.check_voltage(f"read level on {self._name} R{row}", voltage)
        return self._inner.read_one_repeated(row, column, voltage, count)

    def pulse(self, width: float, rows: Mapping[int, float] | None = None,
              columns: Mapping[int, float] | None = None, count: int = 1,
              period: float | None = None) -> None:
        """Pulses under the current limit set through the bench, each pulsed line checked."""
        if self._checking:
            if self._current_limit is None:
                raise PermissionError(f"{self._name}: cannot pulse before a current limit is "
                                      "set through the bench (set_current_limit)")
            for prefix, lines in (("R", rows or {}), ("C", columns or {})):
                for index, volts in lines.items():
                    self._guard.check_pulse(f"{self._name} {prefix}{index}", volts, width,
                                            self._current_limit, count)
        self._inner.pulse(width, rows=rows, columns=columns, count=count, period=period)

    def set_gate(self, row: int, volts: float) -> None:
        """One word line's gate voltage, within the bench's max_gate_voltage."""
        if self._checking:
            self._guard.check_gate_voltage(f"gate of {self._name} R{row}", volts)
        self._inner.set_gate(row, volts)

    def set_all_gates(self, volts: float) -> None:
        """Every word line's gate voltage, within the bench's max_gate_voltage."""
        if self._checking:
            self._guard.check_gate_voltage(f"gates of {self._name}", volts)
        self._inner.set_all_gates(volts)

    def _check_levels(self, prefix: str, levels: Mapping[int, Any]) -> None:
        if not self._checking:
            return
        allowed = self._guard.limits.max_voltage
        if all(type(v) is float and abs(v) <= allowed for v in set(levels.values())
               if not isinstance(v, LineState)):
            return  # every distinct level within the limit: nothing to name
        for index, level in levels.items():
            if not isinstance(level, LineState):
                self._guard.check_voltage(f"level of {self._name} {prefix}{index}", level)


def _sequence(values: Any, field: str) -> list:
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{field} = {values!r}: allowed a sequence of numbers")
    return list(values)


def guard_instruments(guard: SafetyGuard, channels: Mapping[str, Any],
                      matrices: Mapping[str, Any], boards: Mapping[str, Any],
                      drivers: Mapping[str, Any]):
    """The handles of a bench's instruments: (channels, matrices, boards, drivers), each a
    mapping of names to guarded handles; a driver's channels are the handles of its
    terminals."""
    guarded_channels = {name: GuardedChannel(name, channel, guard)
                        for name, channel in channels.items()}
    guarded_matrices = {name: GuardedMatrix(name, matrix, guard)
                        for name, matrix in matrices.items()}
    guarded_boards = {name: GuardedBoard(name, board, guard) for name, board in boards.items()}
    guarded_drivers: dict[str, GuardedHandle] = {}
    for name, driver in drivers.items():
        if name in guarded_matrices:
            guarded_drivers[name] = guarded_matrices[name]
        elif name in guarded_boards:
            guarded_drivers[name] = guarded_boards[name]
        else:
            own = {key.rsplit(".", 1)[1]: handle for key, handle in guarded_channels.items()
                   if key.rsplit(".", 1)[0] == name}
            cls = (GuardedLinkedInstrument if isinstance(driver, LinkedPulse)
                   else GuardedPairedInstrument if isinstance(driver, PairedSweep)
                   else GuardedInstrument)
            guarded_drivers[name] = cls(name, driver, guard, own)
    return guarded_channels, guarded_matrices, guarded_boards, guarded_drivers
