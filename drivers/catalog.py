"""The cited command catalogue (`commands.toml`): load it and match strings against it.

Every command a driver can send is listed there with its manual reference and a concrete example;
a driver that sends several commands in one message lists how (`message`: the separator, with its
manual reference and an example), and every unit of such a message is a listed command.
Tests use `DriverCatalog.match` to prove that every string a driver writes is a listed form, and
the virtual bench uses the examples to prove that its grammar accepts what the drivers send.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CATALOG_PATH = Path(__file__).with_name("commands.toml")

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(?P<name>\w+):(?P<type>[^{}]+)\}")


@dataclass(frozen=True)
class CommandForm:
    """One listed command form of one driver."""

    pattern: str
    example: str
    source: str
    evidence: str
    regex: re.Pattern[str]
    reply: str | None = None

    @property
    def is_query(self) -> bool:
        return self.reply is not None


def compile_pattern(pattern: str, types: dict[str, str]) -> re.Pattern[str]:
    """Turn a `{name:type}` pattern into an anchored regex; a repeated name repeats its text."""
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for token in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : token.start()]))
        position = token.end()
        if token.group(0) in ("{{", "}}"):
            parts.append(re.escape(token.group(0)[0]))
            continue
        name, kind = token.group("name"), token.group("type")
        if name in seen:
            parts.append(f"(?P={name})")
            continue
        seen.add(name)
        if kind in types:
            body = types[kind]
        elif "|" in kind or re.fullmatch(r"[\w*]+", kind):
            body = "|".join(re.escape(choice) for choice in kind.split("|"))
        else:
            raise ValueError(f"unknown placeholder type {kind!r} in pattern {pattern!r}")
        parts.append(f"(?P<{name}>{body})")
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts) + r"\Z")


@dataclass(frozen=True)
class MessageForm:
    """How one driver joins several listed commands into one message (its `message` entry)."""

    separator: str
    example: str
    source: str
    evidence: str
    unit_start: str = ""
    """Characters every unit after the first must start with (SCPI: ``:`` or ``*``, full
    headers only), empty for any."""


@dataclass(frozen=True)
class OverflowForm:
    """The reading an SMU returns beyond a fixed range (its `overflow` entry)."""

    value: float
    source: str
    evidence: str


@dataclass(frozen=True)
class DriverCatalog:
    """All listed command forms of one driver, with its manual and terminations."""

    name: str
    manual: str
    read_termination: str
    write_termination: str
    forms: tuple[CommandForm, ...]
    message: MessageForm | None = None
    overflow: OverflowForm | None = None

    def match(self, command: str) -> CommandForm | None:
        """The listed form that `command` is an instance of, or None."""
        for form in self.forms:
            if form.regex.match(command):
                return form
        return None

    def units(self, message: str) -> list[str] | None:
        """The commands of one message as the driver sends it: the message itself when it is
        one listed command, else (where the catalogue lists a `message` form) its units, each
        a listed command; None when it is neither."""
        if self.match(message) is not None:
            return [message]
        if self.message is None:
            return None
        units = message.split(self.message.separator)
        start = self.message.unit_start
        if any(start and not unit.startswith(tuple(start)) for unit in units[1:]):
            return None
        if len(units) < 2 or any(self.match(unit) is None for unit in units):
            return None
        return units

    def match_message(self, message: str) -> list[CommandForm] | None:
        """The listed form of each command of `message` (see `units`), or None."""
        units = self.units(message)
        return None if units is None else [self.match(unit) for unit in units]


@cache
def load_catalog(path: Path = CATALOG_PATH) -> dict[str, DriverCatalog]:
    """Read commands.toml into one `DriverCatalog` per driver name."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    types = data.pop("types")
    catalogs = {}
    for name, table in data.items():
        forms = tuple(
            CommandForm(
                pattern=entry["pattern"],
                example=entry["example"],
                source=entry["source"],
                evidence=entry["evidence"],
                reply=entry.get("reply"),
                regex=compile_pattern(entry["pattern"], types),
            )
            for entry in table["command"]
        )
        message = table.get("message")
        overflow = table.get("overflow")
        catalogs[name] = DriverCatalog(
            name=name,
            manual=table["manual"],
            read_termination=table["read_termination"],
            write_termination=table["write_termination"],
            forms=forms,
            message=None if message is None else MessageForm(
                separator=message["separator"], example=message["example"],
                source=message["source"], evidence=message["evidence"],
                unit_start=message.get("unit_start", "")),
            overflow=None if overflow is None else OverflowForm(
                value=float(overflow["value"]), source=overflow["source"],
                evidence=overflow["evidence"]),
        )
    return catalogs
