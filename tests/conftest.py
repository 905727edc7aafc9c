"""Project-wide pytest options: opt-in tests against a real instrument.

    pytest tests/drivers --visa-address GPIB0::24::INSTR --driver keithley2400

runs the hardware tests for that driver at that address; without the options they are skipped.
Property-based tests draw their examples derandomized (the same ones on every run, on every
machine), so the suite is deterministic; a test asks for more examples where it needs them.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("xbarlab", derandomize=True)
settings.load_profile("xbarlab")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xbarlab hardware")
    group.addoption("--visa-address", default=None, help="VISA address of a real instrument")
    group.addoption(
        "--driver",
        default=None,
        help="driver of the instrument at --visa-address (a commands.toml table name)",
    )
    group.addoption(
        "--visa-library", default="", help="pyvisa backend for the hardware tests (default: system)"
    )


@pytest.fixture
def hardware(request: pytest.FixtureRequest):
    """(address, driver name, visa library) of the real instrument, or skip the test."""
    address = request.config.getoption("--visa-address")
    driver = request.config.getoption("--driver")
    if not address or not driver:
        pytest.skip("hardware test: give --visa-address ADDR --driver NAME to run it")
    return address, driver, request.config.getoption("--visa-library")
