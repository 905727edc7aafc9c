"""Opt-in checks against a real instrument:

    pytest tests/drivers/test_with_hardware.py --visa-address GPIB0::26::INSTR --driver keithley2600

Skipped unless both options are given. They only read state, check the error queue, and end with
the driver's safe shutdown (sources ramped to 0 and off, relays open, board lines idle), so they
are safe to run with a device connected.
"""

from __future__ import annotations

import importlib

import pytest
from xbarlab.drivers.catalog import load_catalog


def _driver_class(name: str):
    if name not in load_catalog():
        raise pytest.UsageError(f"--driver {name!r} is not one of {', '.join(load_catalog())}")
    module = importlib.import_module(f"xbarlab.drivers.{name}")
    return next(
        value for value in vars(module).values()
        if isinstance(value, type) and getattr(value, "catalog_name", None) == name
        and value.__module__ == module.__name__
    )


@pytest.fixture
def instrument(hardware):
    import pyvisa

    address, name, library = hardware
    manager = pyvisa.ResourceManager(library) if library else pyvisa.ResourceManager()
    driver = _driver_class(name)(manager.open_resource(address))
    with driver:
        yield driver
    manager.close()


def test_identity_and_empty_error_queue(instrument):
    assert instrument.identity
    assert instrument.model
    instrument.check_errors("(connect)")


def test_state_reads_back(instrument):
    if hasattr(instrument, "closed"):
        assert isinstance(instrument.closed(), frozenset)
    elif hasattr(instrument, "line_levels"):
        rows, columns = instrument.line_levels()
        assert (len(rows), len(columns)) == (instrument.rows, instrument.columns)
    else:
        channels = getattr(instrument, "channels", {None: instrument})
        for channel in channels.values():
            assert channel.source_function() in ("VOLT", "CURR")
            assert isinstance(channel.output_enabled(), bool)
    instrument.check_errors("(state queries)")
