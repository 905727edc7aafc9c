"""Fake transport for exact (write, reply) driver tests, in the style of PyMeasure's
`expected_protocol`: the test lists every command the driver must write, in order, with the reply
the instrument gives to queries. Every written command must also be a form listed in
drivers/commands.toml for that driver (or a message of such commands, joined as that driver's
`message` entry there says). And `virtual_bench`, a fresh virtual bench per test for
the drivers' runs on simulated instruments.
"""

from __future__ import annotations

import importlib.resources
import itertools
from collections import deque
from contextlib import contextmanager

import pytest
import pyvisa
from xbarlab.drivers.catalog import load_catalog
from xbarlab.sim_instruments import XbarSimVisaLibrary

_names = itertools.count()


class FakeResource:
    """A message-based resource that replays an exact conversation and checks each write."""

    def __init__(self, catalog_name: str, pairs, resource_name: str | None = None):
        self.catalog = load_catalog()[catalog_name]
        self.pairs = deque(pairs)
        self.replies: deque[str] = deque()
        self.resource_name = resource_name or f"FAKE{next(_names)}::INSTR"
        self.timeout = 2000
        self.read_termination = None
        self.write_termination = None
        self.closed = False
        self.read_timeouts: list[int] = []
        self.attributes: dict[str, object] = {}

    def write(self, command: str) -> None:
        assert self.catalog.units(command) is not None, (
            f"{command!r} is not listed in commands.toml [{self.catalog.name}] (nor a message "
            "of listed commands joined as its `message` entry says)"
        )
        assert self.pairs, f"unexpected write {command!r}: the conversation is over"
        expected, reply = self.pairs.popleft()
        assert command == expected, f"wrote {command!r}, expected {expected!r}"
        if reply is not None:
            self.replies.append(reply)

    def read(self) -> str:
        assert self.replies, "read with no reply pending"
        self.read_timeouts.append(self.timeout)
        return self.replies.popleft()

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        assert not self.pairs, f"commands never written: {list(self.pairs)}"
        assert not self.replies, f"replies never read: {list(self.replies)}"


@contextmanager
def _expected_protocol(driver_class, pairs, **options):
    resource = FakeResource(driver_class.catalog_name, pairs)
    driver = driver_class(resource, **options)
    try:
        yield driver
        resource.assert_done()
    finally:
        driver.disconnect()


@pytest.fixture
def expected_protocol():
    """`with expected_protocol(Driver, [(write, reply_or_None), ...]) as driver:` runs the body
    against the exact conversation and checks that all of it happened."""
    return _expected_protocol


@pytest.fixture
def fake_resource():
    """The `FakeResource` class, for tests that build the transport themselves."""
    return FakeResource


@pytest.fixture
def virtual_bench(tmp_path):
    """virtual_bench(name, extra="") -> a ResourceManager on a fresh copy of the embedded bench
    `name`, with bench-file text `extra` (faults, for instance) appended; closed after the test."""
    managers = []

    def open_bench(name: str, extra: str = ""):
        text = importlib.resources.files("xbarlab.benches").joinpath(f"{name}.toml").read_text()
        path = tmp_path / f"{name}-{len(managers)}.toml"
        path.write_text(text + extra)
        manager = pyvisa.ResourceManager(XbarSimVisaLibrary.fresh(str(path)))
        managers.append(manager)
        return manager

    yield open_bench
    for manager in managers:
        manager.close()
