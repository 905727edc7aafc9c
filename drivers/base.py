"""What every xbarlab driver shares: one session per address, one I/O lock, explicit terminations
and timeouts, the identity check at connect, error-queue checks after configuration, and a context
manager that shuts the instrument down safely on every exit path.

A driver takes an already-open pyvisa message-based resource (or an address and a resource
manager through `connect`). It only ever calls the resource's `write`, `read`, `timeout`,
`read_termination`, `write_termination`, `resource_name` and `close`, so any transport with those
works (tests use a fake).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from pyvisa.errors import VisaIOError

from .errors import (
    InstrumentError,
    InstrumentIOError,
    SessionBusyError,
    WrongInstrumentError,
    remember_exchange,
)
from .numbers import parse_number
from .properties import settings_snapshot

_sessions: weakref.WeakValueDictionary[tuple[int, str], Instrument] = weakref.WeakValueDictionary()
"""Open drivers by (VISA library, address): one session per instrument. Separate virtual benches
have separate libraries, so their equal addresses are different instruments. Weak, as QCoDeS
keeps its instruments: a driver dropped without `disconnect` frees its address when it is
collected."""
_sessions_lock = threading.Lock()


def instrument_logger(address: str) -> logging.Logger:
    """The logger of the instrument at `address` (``xbarlab.instruments.<address>``, dots
    written ``_``): every write and read at DEBUG, errors at WARNING (``xbarlab --log FILE``)."""
    return logging.getLogger(f"xbarlab.instruments.{address.replace('.', '_')}")


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
        self.log = instrument_logger(self.address)
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
        """Send one command (no reply expected). A VISA failure raises `InstrumentIOError`
        naming this instrument and the command."""
        with self._lock:
            self.log.debug("write %r", command)
            try:
                self._resource.write(command)
            except VisaIOError as error:
                raise InstrumentIOError.of(error, self.describe(), command) from error

    def ask(self, command: str, extra_seconds: float = 0.0) -> str:
        """Send a query and return its reply line; `extra_seconds` lengthens the timeout for
        commands that take time on the instrument (sweeps, pulse trains).

        A query cut between its write and its read (a timeout, Ctrl-C, SIGTERM) leaves a reply
        that may still arrive: the session is cleared (`clear_session`) before the error goes
        on, so the next query never reads a stale reply. The reply is remembered as the last
        exchange, so a reply that does not parse is reported with this instrument and
        command (`xbarlab.drivers.numbers.parse_number`)."""
        with self._lock:
            self.write(command)
            try:
                reply = self._read(extra_seconds)
            except BaseException as error:
                self.log.warning("no reply to %r: %r", command, error)
                self.clear_session()
                if isinstance(error, VisaIOError):
                    raise InstrumentIOError.of(error, self.describe(), command) from error
                raise
            self.log.debug("read %r", reply)
            remember_exchange(self.describe(), command, reply)
            return reply

    def _read(self, extra_seconds: float) -> str:
        if extra_seconds <= 0:
            return self._resource.read()
        normal = self._resource.timeout
        self._resource.timeout = normal + int(extra_seconds * 1000) + 1
        try:
            return self._resource.read()
        finally:
            self._resource.timeout = normal

    def clear_session(self) -> None:
        """Device clear (IEEE 488.2 / viClear: the instrument's output queue and the session's
        buffers emptied) and forget every remembered setting; after any interrupted or
        timed-out query. A session that cannot be cleared (connection lost) is left as is:
        its next command fails on its own."""
        self.forget_settings()
        clear = getattr(self._resource, "clear", None)
        if clear is None:
            return
        with contextlib.suppress(Exception):  # the error being reported is the one that matters
            clear()

    def configure(self, command: str) -> None:
        """Send a configuration command, then read the error queue: an error raises
        `InstrumentError` carrying the instrument's code and message and this command."""
        with self._lock:
            self.write(command)
            self.check_errors(command)

    message_separator: ClassVar[str | None] = None
    """How this instrument's manual joins several commands into one message (None: it does
    not; each command is a message of its own). Listed with its manual section under
    `message` in commands.toml."""

    def message(self, commands: Sequence[str]) -> str:
        """`commands` as one message, in order (`message_separator`)."""
        if self.message_separator is None:
            raise NotImplementedError(f"{self.describe()}: one command per message")
        return self.message_separator.join(commands)

    def configure_all(self, commands: Sequence[str], extra_seconds: float = 0.0) -> None:
        """Send `commands` in order as one message (one command per message where the
        instrument has no way to join them), then read the error queue once: an error raises
        `InstrumentError` naming the whole message. `extra_seconds` as for `check_errors`."""
        commands = list(commands)
        with self._lock:
            if self.message_separator is None or len(commands) == 1:
                for command in commands:
                    self.write(command)
                    self.check_errors(command, extra_seconds)
                return
            message = self.message(commands)
            self.write(message)
            self.check_errors(message, extra_seconds)

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
            self._raise_errors(errors, command)

    def _raise_errors(self, errors: list[tuple[int, str]], command: str) -> None:
        """Forget every setting this driver remembers (`forget_settings`), then raise the first
        error of `errors`, naming `command` and listing the others."""
        self.forget_settings()
        code, message = errors[0]
        if len(errors) > 1:
            message += " (also: " + "; ".join(f"{c} {m}" for c, m in errors[1:]) + ")"
        self.log.warning("error %s after %r: %s", code, command, message)
        raise InstrumentError(self.describe(), code, message, command)

    def forget_settings(self) -> None:
        """Drop whatever this driver remembers having set (on an error, a reset, an interrupted
        operation): from now on it asks or sets again instead of trusting it."""
        forget = getattr(self, "_forget", None)
        if forget is not None:
            forget()
        for channel in getattr(self, "channels", {}).values():
            channel_forget = getattr(channel, "_forget", None)
            if channel_forget is not None:
                channel_forget()

    max_errors_drained: ClassVar[int] = 32

    def _next_error(self, extra_seconds: float = 0.0) -> tuple[int, str]:
        """Remove and return the oldest error-queue entry; code 0 when the queue is empty."""
        raise NotImplementedError

    def describe(self) -> str:
        """`<driver> at <address>` for messages."""
        return f"{type(self).__name__} at {self.address}"

    # -- snapshot ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The instrument's settings as it reports them now, with units: every readable
        `Setting` of the driver and, for a multi-channel instrument, of each channel
        (``{"channels": {name: {...}}}``), each with the state its `_snapshot_state` adds
        (source function, level and output; relays closed; line levels). Queries only."""
        with self._lock:
            shot: dict[str, Any] = settings_snapshot(self)
            channels = getattr(self, "channels", None)
            if channels:
                shot["channels"] = {str(name): settings_snapshot(channel)
                                    for name, channel in channels.items()}
        return shot

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
    """`:SYST:ERR?` error queue of SCPI instruments: replies `<code>,"<message>"`. Several
    commands go in one program message, joined by `;` (IEEE 488.2 §7.4); every unit the drivers
    send starts at the root (`:`) or is a common command (`*`)."""

    error_query: ClassVar[str] = ":SYST:ERR?"
    message_separator: ClassVar[str | None] = ";"

    def ask_checked(self, commands: Sequence[str], extra_seconds: float = 0.0) -> list[str]:
        """Send `commands` and the error query as one program message, in order; the replies of
        the queries among `commands` (one each, as the instrument joins them with `;`). The
        error query runs after every other unit, so an error any of them queued raises
        `InstrumentError` naming the message (the rest of the queue drained)."""
        commands = list(commands)
        message = self.message([*commands, self.error_query])
        queries = sum(1 for command in commands if command.split(" ", 1)[0].endswith("?"))
        with self._lock:
            reply = self.ask(message, extra_seconds).strip()
            parts = reply.split(";", queries)
            if len(parts) != queries + 1:
                raise ValueError(f"{self.describe()}: reply {reply!r} to {message!r} has "
                                 f"{len(parts)} parts, expected {queries + 1}")
            code, text = self._parse_error(parts[-1].strip())
            if code != 0:
                errors = [(code, text)]
                for _ in range(self.max_errors_drained - 1):
                    code, text = self._next_error()
                    if code == 0:
                        break
                    errors.append((code, text))
                self._raise_errors(errors, message)
        return parts[:-1]

    def _next_error(self, extra_seconds: float = 0.0) -> tuple[int, str]:
        return self._parse_error(self.ask(self.error_query, extra_seconds).strip())

    def _parse_error(self, reply: str) -> tuple[int, str]:
        code_text, _, message = reply.partition(",")
        try:
            code = int(float(code_text))
        except ValueError as exc:
            raise ValueError(
                f"{self.describe()}: error queue reply {reply!r} is not <code>,\"<message>\""
            ) from exc
        return code, message.strip().strip('"')


class TspErrorQueue:
    """TSP `errorqueue` of Keithley 2600B and 707B/708B: count, then TAB-separated entries.
    One message is one TSP chunk: several statements go in it separated by `; ` (Lua chunk
    syntax), and a run-time error stops the chunk at that statement."""

    message_separator: ClassVar[str | None] = "; "

    def _next_error(self, extra_seconds: float = 0.0) -> tuple[int, str]:
        count = int(parse_number(self.ask("print(errorqueue.count)", extra_seconds)))
        if count == 0:
            return 0, ""
        fields = self.ask("print(errorqueue.next())").strip().split("\t")
        return int(parse_number(fields[0])), fields[1] if len(fields) > 1 else ""
