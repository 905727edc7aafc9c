"""Exceptions a driver raises, each carrying what a user needs to fix the problem."""

from __future__ import annotations

import contextvars

from pyvisa import constants
from pyvisa.errors import VisaIOError

_last_exchange: contextvars.ContextVar[tuple[str, str, str] | None] = contextvars.ContextVar(
    "last_exchange", default=None)
"""(instrument, command, reply) of the last query answered in this thread, so a reply that
does not parse can be reported with where it came from."""


def remember_exchange(instrument: str, command: str, reply: str) -> None:
    _last_exchange.set((instrument, command, reply))


def last_exchange() -> tuple[str, str, str] | None:
    """(instrument, command, reply) of the last query answered in this thread, or None."""
    return _last_exchange.get()


class InstrumentError(RuntimeError):
    """The instrument reported an error for a command we sent.

    Carries the instrument's own error `code` and `message` and the `command` that caused it.
    """

    def __init__(self, instrument: str, code: int, message: str, command: str):
        self.instrument = instrument
        self.code = code
        self.message = message
        self.command = command
        super().__init__(f"{instrument}: error {code} {message!r} after command {command!r}")


class WrongInstrumentError(RuntimeError):
    """The instrument at an address is not the model (or command set) the driver is for."""

    def __init__(self, address: str, expected: str, found: str, hint: str = ""):
        self.address = address
        self.expected = expected
        self.found = found
        text = f"{address}: expected {expected}, found {found!r}"
        super().__init__(f"{text}. {hint}" if hint else text)


class SessionBusyError(RuntimeError):
    """A second driver was asked to open an address that already has an open driver session."""


class UnexpectedReplyError(RuntimeError):
    """A reply that does not have the format the manual gives for the query."""

    def __init__(self, instrument: str, command: str, reply: str, expected: str):
        self.command = command
        self.reply = reply
        super().__init__(
            f"{instrument}: reply {reply!r} to {command!r} is not {expected}"
        )


class GarbledReplyError(UnexpectedReplyError, ValueError):
    """A reply (or a field of it) that is not the number the manual gives for the query."""


class InstrumentIOError(VisaIOError):
    """A VISA failure (timeout, lost connection) naming the instrument and the command; still a
    `pyvisa.errors.VisaIOError` with its `error_code`."""

    REASONS = {
        constants.StatusCode.error_timeout: "no reply before the timeout",
        constants.StatusCode.error_connection_lost: "connection lost",
    }

    @classmethod
    def of(cls, error: VisaIOError, instrument: str, command: str) -> InstrumentIOError:
        if isinstance(error, InstrumentIOError):
            return error
        made = cls(error.error_code)
        reason = cls.REASONS.get(error.error_code, error.description)
        made.args = (f"{instrument}: {reason} ({error.abbreviation}) after {command!r}",)
        made.instrument, made.command = instrument, command
        return made
