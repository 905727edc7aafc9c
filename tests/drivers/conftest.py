"""Exact (write, reply) driver tests through `xbarlab.drivers.testing` (the tools a driver
author outside xbarlab uses too): the test lists every command the driver must write, in order,
with the reply the instrument gives to queries, and every written command must be a form listed
in drivers/commands.toml for that driver. And `virtual_bench`, a fresh virtual bench per test for
the drivers' runs on simulated instruments.
"""

from __future__ import annotations

import importlib.resources

import pytest
import pyvisa
from xbarlab.drivers.testing import FakeResource
from xbarlab.drivers.testing import expected_protocol as _expected_protocol
from xbarlab.sim_instruments import XbarSimVisaLibrary


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
