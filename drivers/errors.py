"""Exceptions a driver raises, each carrying what a user needs to fix the problem."""

from __future__ import annotations


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
