"""Test a driver the way xbarlab's own drivers are tested, without hardware.

Two tools, for anyone writing a driver for another instrument (PyMeasure ships its
`expected_protocol` in the package for the same reason):

* `expected_protocol(Driver, [(write, reply_or_None), ...], catalog=...)`: the driver runs against
  a `FakeResource` that replays an exact conversation. Every string the driver writes must be the
  next expected one *and* an instance of a command form its catalogue lists (a TOML table in the
  layout of drivers/commands.toml: pattern, example, reply, source, evidence), so a test cannot
  pass on a command nobody looked up in the manual.
* `catalog_problems(catalog)`: the catalogue check: every example is an instance of its own
  pattern, every form cites a source and an evidence grade, ``*IDN?`` is listed, terminations are
  given, and a `message` entry's example is listed commands joined as it says. An empty list
  means the catalogue is well formed.

A catalogue is a `DriverCatalog`: ``load_catalog(path)[table]`` for your own TOML file, or the
name of one of xbarlab's tables. See drivers/README.md ("Testing a new driver").
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .catalog import DriverCatalog, load_catalog

EVIDENCE_GRADES = frozenset({"M", "HW", "V", "D", "U", "X"})
"""Evidence grades a catalogue entry may carry (drivers/commands.toml explains each)."""

_names = itertools.count()


def resolve_catalog(catalog: DriverCatalog | str) -> DriverCatalog:
    """`catalog` itself, or xbarlab's catalogue table of that name."""
    if isinstance(catalog, DriverCatalog):
        return catalog
    tables = load_catalog()
    if catalog not in tables:
        raise KeyError(f"catalog = {catalog!r} is not a table of drivers/commands.toml; "
                       f"allowed: {', '.join(sorted(tables))}, or a DriverCatalog of your own "
                       "(load_catalog(path)[table])")
    return tables[catalog]


class FakeResource:
    """A message-based pyvisa resource that replays an exact conversation and refuses any write
    that is not the next expected one or not a form listed in its catalogue."""

    def __init__(self, catalog: DriverCatalog | str, pairs: Iterable[tuple[str, str | None]],
                 resource_name: str | None = None):
        self.catalog = resolve_catalog(catalog)
        self.pairs = deque(pairs)
        self.replies: deque[str] = deque()
        self.resource_name = resource_name or f"FAKE{next(_names)}::INSTR"
        self.timeout = 2000
        self.read_termination: str | None = None
        self.write_termination: str | None = None
        self.closed = False
        self.read_timeouts: list[int] = []
        self.attributes: dict[str, object] = {}

    def write(self, command: str) -> None:
        if self.catalog.units(command) is None:
            raise AssertionError(
                f"{command!r} is not listed in the catalogue [{self.catalog.name}] (nor a "
                "message of listed commands joined as its `message` entry says)")
        if not self.pairs:
            raise AssertionError(f"unexpected write {command!r}: the conversation is over")
        expected, reply = self.pairs.popleft()
        if command != expected:
            raise AssertionError(f"wrote {command!r}, expected {expected!r}")
        if reply is not None:
            self.replies.append(reply)

    def read(self) -> str:
        if not self.replies:
            raise AssertionError("read with no reply pending")
        self.read_timeouts.append(self.timeout)
        return self.replies.popleft()

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        """Every expected command was written and every reply read."""
        if self.pairs:
            raise AssertionError(f"commands never written: {list(self.pairs)}")
        if self.replies:
            raise AssertionError(f"replies never read: {list(self.replies)}")


@contextmanager
def expected_protocol(driver_class: type, pairs: Iterable[tuple[str, str | None]], *,
                      catalog: DriverCatalog | str | None = None, **options: Any
                      ) -> Iterator[Any]:
    """``with expected_protocol(Driver, [(write, reply), ...]) as driver:`` runs the body against
    the exact conversation (the driver's connect conversation first: ``*IDN?`` and whatever its
    `_connected` sends) and checks afterwards that all of it happened. `catalog` defaults to
    xbarlab's table named by the driver's `catalog_name`; `options` go to the driver."""
    resource = FakeResource(catalog if catalog is not None else driver_class.catalog_name, pairs)
    driver = driver_class(resource, **options)
    try:
        yield driver
        resource.assert_done()
    finally:
        driver.disconnect()


def catalog_problems(catalog: DriverCatalog | str) -> list[str]:
    """What is wrong with a driver's catalogue, one line each (empty: well formed)."""
    catalog = resolve_catalog(catalog)
    problems = []
    for form in catalog.forms:
        if not form.regex.match(form.example):
            problems.append(f"{form.pattern!r}: example {form.example!r} is not an instance")
        if not form.source.strip():
            problems.append(f"{form.pattern!r}: no source (manual and section)")
        if form.evidence not in EVIDENCE_GRADES:
            problems.append(f"{form.pattern!r}: evidence {form.evidence!r}; allowed: "
                            f"{', '.join(sorted(EVIDENCE_GRADES))}")
    if catalog.match("*IDN?") is None:
        problems.append("*IDN? is not listed (every driver checks the identity at connect)")
    if not catalog.read_termination or not catalog.write_termination:
        problems.append("read_termination and write_termination must be given")
    message = catalog.message
    if message is not None:
        units = catalog.units(message.example)
        if units is None or len(units) < 2 or message.separator.join(units) != message.example:
            problems.append(f"message example {message.example!r} is not two or more listed "
                            f"commands joined by {message.separator!r}")
        if not message.source.strip() or message.evidence not in EVIDENCE_GRADES:
            problems.append("message: no source or evidence grade")
    return problems


def catalog_file(path: str | Path, table: str) -> DriverCatalog:
    """Table `table` of a catalogue TOML file of your own (the layout of commands.toml)."""
    tables = load_catalog(Path(path))
    if table not in tables:
        raise KeyError(f"table = {table!r} is not in {path}; allowed: {', '.join(tables)}")
    return tables[table]


__all__ = ["EVIDENCE_GRADES", "FakeResource", "catalog_file", "catalog_problems",
           "expected_protocol", "load_catalog", "resolve_catalog"]
