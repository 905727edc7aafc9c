"""The safety guard: bench limits checked before any command is sent, compliance set and read back
before any output goes on, and a shutdown that runs on every exit path.

Two pieces, used by the bench (`xbarlab.bench`) and by nothing else directly:

* `SafetyGuard` holds the bench file's `[limits]` (max |V|, max compliance, max pulse width, max
  pulse energy) and checks every level, limit and pulse *before* the caller talks to an
  instrument. A refusal raises `LimitError` naming the limit, the value and the allowed range;
  nothing is clipped. In a dry run the guard records each violation instead of raising, so one
  pass reports every limit a protocol would break.
* `SafeShutdown` is a context manager around a session: on normal return, exception,
  KeyboardInterrupt or SIGTERM (a handler that raises `Terminated` is installed for the duration)
  it ramps every SMU to 0 and turns it off, opens every relay and puts every board in its idle
  mode. A failure on one instrument does not stop the others; failures are collected and
  reported. Ctrl-C and SIGTERM arriving *during* the shutdown are held back until it is done.

Units are SI base units: volts, amperes, seconds, joules.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xbarlab.drivers.validators import finite_real
from xbarlab.interfaces import ArrayBoard, SourceMeasureChannel, SwitchMatrix

if TYPE_CHECKING:
    from xbarlab.benchfile import Limits

READBACK_TOLERANCE = 1e-3
"""Relative difference allowed between a compliance asked for and the one read back (instruments
store limits at their own resolution)."""


class LimitError(ValueError):
    """A request exceeds a bench limit; raised before anything is sent to an instrument."""

    def __init__(self, violation: Violation):
        self.violation = violation
        super().__init__(violation.describe() + "; nothing was sent")


class ComplianceReadbackError(RuntimeError):
    """An instrument reports a compliance other than the one set; its output stays off."""


class ShutdownError(RuntimeError):
    """One or more instruments could not be made safe; `failures` lists (instrument, error)."""

    def __init__(self, failures: list[tuple[str, BaseException]]):
        self.failures = failures
        lines = "; ".join(f"{name}: {type(err).__name__}: {err}" for name, err in failures)
        super().__init__(f"shutdown incomplete on {len(failures)} instrument(s): {lines}")


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM inside `SafeShutdown`.

    A `SystemExit` with code 143 (128 + SIGTERM), so an uncaught one ends the process the way the
    signal would have, after every `finally` and context exit has run.
    """

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


@dataclass(frozen=True)
class Violation:
    """One request that breaks one bench limit."""

    limit: str  # the bench-file field, e.g. "limits.max_voltage"
    quantity: str  # what was asked, e.g. "pulse voltage on row:3"
    value: float
    allowed: float
    unit: str

    def describe(self) -> str:
        return (
            f"{self.quantity} = {self.value:.6g} {self.unit} exceeds {self.limit} = "
            f"{self.allowed:.6g} {self.unit} (allowed: magnitude <= {self.allowed:.6g} "
            f"{self.unit})"
        )


class SafetyGuard:
    """Checks requests against the bench limits; raises `LimitError` (or records, in a dry run).

    `limits` has the bench file's fields `max_voltage`, `max_compliance`, `max_pulse_width` and
    `max_energy`. With `record_violations=True` (dry runs) each violation is appended to
    `violations` and the check passes, so the rest of the protocol can be inspected too.
    """

    __slots__ = ("_limits", "_record_violations", "violations")

    def __init__(self, limits: Limits, record_violations: bool = False):
        object.__setattr__(self, "_limits", limits)
        object.__setattr__(self, "_record_violations", bool(record_violations))
        object.__setattr__(self, "violations", [])

    def __setattr__(self, attribute: str, value: Any) -> None:
        raise AttributeError(f"a SafetyGuard is fixed when it is made (cannot set {attribute!r}); "
                             "the limits come from the bench file")

    @property
    def limits(self) -> Limits:
        """The bench file's `[limits]` this guard checks against (read-only)."""
        return self._limits

    @property
    def record_violations(self) -> bool:
        """True in a dry run: violations are recorded instead of raised (read-only)."""
        return self._record_violations

    # -- checks ----------------------------------------------------------------------------

    def check_voltage(self, quantity: str, volts: float) -> float:
        """A line or source voltage: |V| <= max_voltage."""
        return self._check(quantity, volts, "limits.max_voltage", self.limits.max_voltage, "V")

    def check_voltages(self, what: str, levels: Mapping[Any, float]) -> None:
        """`check_voltage` of every level, named ``"<what> on <where>"`` by its key: each
        distinct value once, and only when one breaks the limit each place in turn (so the
        error, or the recorded violations, name the places as the one-by-one checks do)."""
        allowed = self.limits.max_voltage
        if all(type(v) is float and abs(v) <= allowed for v in set(levels.values())):
            return
        for where, volts in levels.items():
            self.check_voltage(f"{what} on {where}", volts)

    def check_read_voltage(self, quantity: str, volts: float) -> float:
        """A read across a cell (read-disturb guard): |V| <= max_read_voltage, which defaults
        below the chip's lowest switching threshold."""
        return self._check(quantity, volts, "limits.max_read_voltage",
                           self.limits.max_read_voltage, "V")

    def check_gate_voltage(self, quantity: str, volts: float) -> float:
        """A 1T1R word line's gate voltage: |V| <= max_gate_voltage."""
        return self._check(quantity, volts, "limits.max_gate_voltage",
                           self.limits.max_gate_voltage, "V")

    def check_compliance(self, quantity: str, amperes: float) -> float:
        """A current limit: 0 < I <= max_compliance."""
        value = finite_real(quantity, amperes)
        if value <= 0:
            raise ValueError(f"{quantity} = {value!r} A must be > 0 (a compliance is required)")
        return self._check(
            quantity, value, "limits.max_compliance", self.limits.max_compliance, "A"
        )

    def check_current(self, quantity: str, amperes: float) -> float:
        """A source current (either sign): |I| <= max_compliance."""
        return self._check(
            quantity, amperes, "limits.max_compliance", self.limits.max_compliance, "A"
        )

    def check_voltage_limit(self, quantity: str, volts: float) -> float:
        """A voltage limit (compliance of a current source, a board's clamp): 0 < V <=
        max_voltage."""
        value = finite_real(quantity, volts)
        if value <= 0:
            raise ValueError(f"{quantity} = {value!r} V must be > 0 (a limit is required)")
        return self.check_voltage(quantity, value)

    def check_current_pulse(
        self, where: str, amperes: float, width: float, voltage_limit: float, count: int = 1
    ) -> float:
        """A current pulse (train): |I|, width, the voltage limit and the energy bound
        |I| x voltage_limit x width x count, as `check_pulse` does for voltage pulses."""
        amperes = self.check_current(f"pulse current on {where}", amperes)
        width = self._check_width(where, width)
        voltage_limit = self.check_voltage_limit(f"pulse voltage limit on {where}",
                                                 voltage_limit)
        count = _pulse_count(where, count)
        energy = abs(amperes) * voltage_limit * width * count
        return self.check_energy(f"pulse energy bound |I|*V_limit*width*count on {where}", energy)

    def _check_width(self, where: str, width: float) -> float:
        width = finite_real(f"pulse width on {where}", width)
        if width <= 0:
            raise ValueError(f"pulse width on {where} = {width!r} s must be > 0")
        return self._check(
            f"pulse width on {where}", width, "limits.max_pulse_width",
            self.limits.max_pulse_width, "s",
        )

    def check_pulse(
        self, where: str, volts: float, width: float, current_limit: float, count: int = 1
    ) -> float:
        """A pulse (train) of `count` pulses of `width` s at `volts` under `current_limit`.

        Checks |V|, the width, the compliance and the worst-case energy of the whole operation,
        |V| x current_limit x width x count (the most the source can deliver), against
        `max_energy`. Returns that energy bound in joules.
        """
        volts = self.check_voltage(f"pulse voltage on {where}", volts)
        width = self._check_width(where, width)
        current_limit = self.check_compliance(f"pulse compliance on {where}", current_limit)
        count = _pulse_count(where, count)
        energy = abs(volts) * current_limit * width * count
        return self.check_energy(f"pulse energy bound |V|*I_limit*width*count on {where}", energy)

    def check_energy(self, quantity: str, joules: float) -> float:
        """The energy bound of one whole operation (several pulsed lines): <= max_energy."""
        return self._check(quantity, joules, "limits.max_energy", self.limits.max_energy, "J")

    def _check(self, quantity: str, value: float, limit: str, allowed: float, unit: str) -> float:
        value = finite_real(quantity, value)
        if abs(value) > allowed:
            violation = Violation(limit, quantity, value, allowed, unit)
            if not self.record_violations:
                raise LimitError(violation)
            self.violations.append(violation)
        return value

    # -- guarded instrument actions ---------------------------------------------------------

    def source_voltage(
        self, name: str, channel: SourceMeasureChannel, level: float, current_limit: float
    ) -> float:
        """Check, then set `level` volts with `current_limit`, then read the limit back.

        Returns the compliance the instrument reports. Raises `ComplianceReadbackError` (after
        turning the output off) when it is not the one asked for.
        """
        self.check_voltage(f"source level of {name}", level)
        self.check_compliance(f"current limit of {name}", current_limit)
        channel.source_voltage(level, current_limit)
        return self.verify_current_limit(name, channel, current_limit)

    def verify_current_limit(
        self, name: str, channel: SourceMeasureChannel, expected: float
    ) -> float:
        """Read the channel's current limit back; it must match `expected` and the bench limit."""
        reported = read_back_current_limit(name, channel)
        mismatch = abs(reported - expected) > READBACK_TOLERANCE * expected
        if mismatch or reported > self.limits.max_compliance * (1 + READBACK_TOLERANCE):
            channel.output_off()
            raise ComplianceReadbackError(
                f"{name} reports current limit {reported:.6g} A after {expected:.6g} A was set "
                f"(limits.max_compliance = {self.limits.max_compliance:.6g} A); output kept off"
            )
        return reported


def _pulse_count(where: str, count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"pulse count on {where} = {count!r} must be an integer >= 1")
    return int(count)


def read_back_current_limit(name: str, channel: Any) -> float:
    """The current limit `channel` (an SMU channel or an array board) reports from the
    instrument, through `read_current_limit()`. A channel that cannot report it is refused:
    its output never goes on."""
    read = getattr(channel, "read_current_limit", None)
    if read is None:
        raise ComplianceReadbackError(
            f"{name} ({type(channel).__name__}) cannot report its current limit "
            "(no read_current_limit); refusing to turn its output on"
        )
    return finite_real(f"current limit reported by {name}", read())


# ------------------------------------------------------------------------ shutdown


class SafeShutdown:
    """Leave every instrument safe on every way out of a `with` block.

    On exit: every SMU channel is shut down (ramped to 0, output off), then every matrix opens
    all relays (never switching live lines), then every board goes to its idle mode. With
    `verify=True` the outputs, relays and board lines are then read back (every board line must
    be in the idle mode the board reports). A failure on one instrument is
    collected and the others are still made safe; the failures are raised as `ShutdownError`
    when the block itself ended normally, and attached to the block's exception otherwise
    (`shutdown_failures` attribute, and a note on Python >= 3.11).

    In the main thread, a SIGTERM handler raising `Terminated` is installed for the block and
    the previous one restored after. While shutting down, SIGINT and SIGTERM are deferred and
    re-delivered (as KeyboardInterrupt / `Terminated`) once every instrument is safe.
    """

    def __init__(
        self,
        smus: Mapping[str, SourceMeasureChannel] | None = None,
        matrices: Mapping[str, SwitchMatrix] | None = None,
        boards: Mapping[str, ArrayBoard] | None = None,
        verify: bool = True,
    ):
        self.smus = dict(smus or {})
        self.matrices = dict(matrices or {})
        self.boards = dict(boards or {})
        self.verify = verify
        self.failures: list[tuple[str, BaseException]] = []
        self._previous_sigterm: Any = None
        self._installed = False

    def __enter__(self) -> SafeShutdown:
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
            self._installed = True
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            with signals_held(redeliver=False) as pending:
                self.failures = self.shutdown()
        finally:
            if self._installed:
                signal.signal(signal.SIGTERM, self._previous_sigterm)
                self._installed = False
        if self.failures:
            error = ShutdownError(self.failures)
            if exc is None:
                raise error
            exc.shutdown_failures = self.failures
            if hasattr(exc, "add_note"):
                exc.add_note(str(error))
            else:  # pragma: no cover - Python 3.10
                print(f"xbarlab: {error}", file=sys.stderr)
        if pending and exc is None:
            raise KeyboardInterrupt() if pending[0] == signal.SIGINT else Terminated()
        return False

    def shutdown(self) -> list[tuple[str, BaseException]]:
        """Make every instrument safe now; return the (instrument, error) failures."""
        failures: list[tuple[str, BaseException]] = []

        def attempt(name: str, action: Callable[[], None]) -> None:
            try:
                action()
            except Exception as error:  # one instrument's failure must not stop the others
                failures.append((name, error))

        for name, channel in self.smus.items():
            attempt(name, channel.shutdown)
        for name, matrix in self.matrices.items():
            attempt(name, matrix.shutdown)
        for name, board in self.boards.items():
            attempt(name, board.shutdown)
        if self.verify:
            for name, channel in self.smus.items():
                attempt(name, lambda c=channel, n=name: _expect(not c.output_enabled(),
                                                                f"{n} output still on"))
            for name, matrix in self.matrices.items():
                attempt(name, lambda m=matrix, n=name: _expect(not m.closed(),
                                                               f"{n} relays still closed"))
            for name, board in self.boards.items():
                attempt(name, lambda b=board, n=name: _expect_idle(n, b))
        return failures


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message + " after shutdown")


def _expect_idle(name: str, board: ArrayBoard) -> None:
    """Every line of `board` reads back in the idle mode the board reports."""
    idle = board.idle_mode()
    rows, columns = board.line_levels()
    busy = [f"R{k}" for k, level in enumerate(rows) if level != idle]
    busy += [f"C{k}" for k, level in enumerate(columns) if level != idle]
    shown = ", ".join(busy[:8]) + (f" and {len(busy) - 8} more" if len(busy) > 8 else "")
    _expect(not busy, f"{name} lines {shown} not in the idle mode {idle.name}")


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def signals_held(redeliver: bool = True) -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM while the body runs (main thread only); yield what arrived.

    For a step that must not be cut in half, such as taking a reading and committing it to the
    run store. With `redeliver`, the first signal held is raised after the body (as
    KeyboardInterrupt or `Terminated`) unless the body raised.
    """
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    previous = {sig: signal.signal(sig, lambda s, f: pending.append(s))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield pending
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if redeliver and pending:
        raise KeyboardInterrupt() if pending[0] == signal.SIGINT else Terminated()
