"""What every xbarlab driver shares: one session per address, one I/O lock, explicit terminations
and timeouts, the identity check at connect, error-queue checks after configuration, and a context
manager that shuts the instrument down safely on every exit path.

A driver takes an already-open pyvisa message-based resource (or an address and a resource
manager through `connect`). It only ever calls the resource's `write`, `read`, `timeout`,
`read_termination`, `write_termination`, `resource_name` and `close`, so any transport with those
works (tests use a fake).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from .errors import InstrumentError, SessionBusyError, WrongInstrumentError

_sessions: dict[tuple[int, str], Instrument] = {}
"""Open drivers by (VISA library, address): one session per instrument. Separate virtual benches
have separate libraries, so their equal addresses are different instruments."""
_sessions_lock = threading.Lock()


def _session_key(visa_owner: Any, address: str) -> tuple[int, str]:
    return id(getattr(visa_owner, "visalib", None)), address


class Instrument:
    """Base class of all drivers. Subclasses set the class attributes and `_next_error`."""

    catalog_name: ClassVar[str]
    """Key of this driver's table in commands.toml."""
    read_termination: ClassVar[str] = "\n"
    write_termination: ClassVar[str] = "\n"
    timeout_ms: ClassVar[int] = 5000
    identity_pattern: ClassVar[re.Pattern[str]]
    """Searched in the `*IDN?` reply; its first group is the model."""
    expected_identity: ClassVar[str]
    """What `identity_pattern` means, for the error message."""

    def __init__(self, resource: Any):
        self.address = str(resource.resource_name)
        self._session_key = _session_key(resource, self.address)
        with _sessions_lock:
            if self._session_key in _sessions:
                raise SessionBusyError(
                    f"{self.address} already has an open "
                    f"{type(_sessions[self._session_key]).__name__} session; use that driver "
                    "(or disconnect it first)"
                )
            _sessions[self._session_key] = self
        self._resource = resource
        self._lock = threading.RLock()
        self.command_fields: dict[str, str] = {}
        try:
            resource.read_termination = self.read_termination
            resource.write_termination = self.write_termination
            resource.timeout = self.timeout_ms
            self._prepare_resource(resource)
            self.identity = self.ask("*IDN?").strip()
            match = self.identity_pattern.search(self.identity)
            if match is None:
                raise WrongInstrumentError(self.address, self.expected_identity, self.identity)
            self.model = match.group(1)
            self._connected()
        except BaseException:
            self._release()
            raise

    @classmethod
    def connect(cls, address: str, resource_manager: Any = None, **options: Any) -> Instrument:
        """The driver for `address`: this driver's open session there if any, else a new one.

        `resource_manager` defaults to `pyvisa.ResourceManager()` (the system VISA); pass
        `pyvisa.ResourceManager("@xbarsim")` for the virtual bench.
        """
        if resource_manager is None:
            import pyvisa

            resource_manager = pyvisa.ResourceManager()
        with _sessions_lock:
            existing = _sessions.get(_session_key(resource_manager, address))
        if existing is not None:
            if type(existing) is not cls:
                raise SessionBusyError(
                    f"{address} is open as {type(existing).__name__}, not {cls.__name__}"
                )
            return existing
        return cls(resource_manager.open_resource(address), **options)

    def _prepare_resource(self, resource: Any) -> None:
        """Transport settings beyond terminations and timeout, before the first query (override)."""

    def _connected(self) -> None:
        """Model-specific checks and setup right after the identity check (override)."""

    # -- I/O -------------------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the I/O lock for commands that must not interleave with another thread's."""
        with self._lock:
            yield

    def write(self, command: str) -> None:
        """Send one command (no reply expected)."""
        with self._lock:
            self._resource.write(command)

    def ask(self, command: str, extra_seconds: float = 0.0) -> str:
        """Send a query and return its reply line; `extra_seconds` lengthens the timeout for
        commands that take time on the instrument (sweeps, pulse trains)."""
        with self._lock:
            self._resource.write(command)
            if extra_seconds <= 0:
                return self._resource.read()
            normal = self._resource.timeout
            self._resource.timeout = normal + int(extra_seconds * 1000) + 1
            try:
                return self._resource.read()
            finally:
                self._resource.timeout = normal

    def configure(self, command: str) -> None:
        """Send a configuration command, then read the error queue: an error raises
        `InstrumentError` carrying the instrument's code and message and this command."""
        with self._lock:
            self.write(command)
            self.check_errors(command)

    def check_errors(self, command: str, extra_seconds: float = 0.0) -> None:
        """Drain the error queue; raise for the first error, naming `command` as its cause.

        `extra_seconds` lengthens the timeout of the first error query, for when the instrument
        answers it only after a running operation (a sweep behind `*WAI`) has finished.
        """
        errors = []
        with self._lock:
            for attempt in range(self.max_errors_drained):
                code, message = self._next_error(extra_seconds if attempt == 0 else 0.0)
                if code == 0:
                    break
                errors.append((code, message))
        if errors:
            code, message = errors[0]
            if len(errors) > 1:
                message += " (also: " + "; ".join(f"{c} {m}" for c, m in errors[1:]) + ")"
            raise InstrumentError(self.describe(), code, message, command)

    max_errors_drained: ClassVar[int] = 32

    def _next_error(self, extra_seconds: float = 0.0) -> tuple[int, str]:
        """Remove and return the oldest error-queue entry; code 0 when the queue is empty."""
        raise NotImplementedError

    def describe(self) -> str:
        """`<driver> at <address>` for messages."""
        return f"{type(self).__name__} at {self.address}"

    # -- life cycle ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Leave the instrument safe: sources ramped to 0 and off, relays open (override)."""

    def disconnect(self) -> None:
        """Close the session without shutting down (the context manager shuts down first)."""
        self._release()

    def _release(self) -> None:
        with _sessions_lock:
            if _sessions.get(self._session_key) is self:
                del _sessions[self._session_key]
        self._resource.close()

    def __enter__(self) -> Instrument:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.shutdown()
        finally:
            self.disconnect()


class ScpiErrorQueue:
    """`:SYST:ERR?` error queue of SCPI instruments: replies `<code>,"<message>"`."""

    error_query: ClassVar[str] = ":SYST:ERR?"

    def _next_error(self, extra_seconds: float = 0.0) -> tuple[int, str]:
        reply = self.ask(self.error_query, extra_seconds).strip()
        code_text, _, message = reply.partition(",")
        try:
            code = int(float(code_text))
        except ValueError as exc:
            raise ValueError(
                f"{self.describe()}: error queue reply {reply!r} is not <code>,\"<message>\""
            ) from exc
        return code, message.strip().strip('"')


class TspErrorQueue:
    """TSP `errorqueue` of Keithley 2600B and 707B/708B: count, then TAB-separated entries."""

    def _next_error(self, extra_seconds: float = 0.0) -> tuple[int, str]:
        count = int(float(self.ask("print(errorqueue.count)", extra_seconds)))
        if count == 0:
            return 0, ""
        fields = self.ask("print(errorqueue.next())").strip().split("\t")
        return int(float(fields[0])), fields[1] if len(fields) > 1 else ""
