"""Property tests over every SMU driver: a level or limit inside the model's range reaches the
instrument exactly; one outside raises, naming the field, before anything is written."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xbarlab.drivers.catalog import load_catalog
from xbarlab.drivers.keithley2400 import Keithley2400
from xbarlab.drivers.keithley2450 import Keithley2450
from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.keysight_b2900 import KeysightB2900


class PermissiveInstrument:
    """Accepts any catalogued command, answers identity and empty-error-queue queries."""

    def __init__(self, catalog_name: str, replies: dict[str, str]):
        self.catalog = load_catalog()[catalog_name]
        self.replies = replies
        self.resource_name = f"PROPERTY::{catalog_name}::INSTR"
        self.timeout = 0
        self.read_termination = self.write_termination = None
        self.written: list[str] = []
        self.pending: list[str] = []

    def write(self, command: str) -> None:
        units = self.catalog.units(command)  # one command, or a message of several
        assert units is not None, command
        self.written += units
        replies = [self.replies[unit] for unit in units if unit in self.replies]
        if replies:
            self.pending.append(";".join(replies))

    def read(self) -> str:
        return self.pending.pop(0)

    def close(self) -> None:
        pass


SCPI_OK = {":SYST:ERR?": '0,"No error"'}
TSP_OK = {"print(errorqueue.count)": "0.00000e+00"}
CASES = {
    "2400": (Keithley2400, "keithley2400",
             {"*IDN?": "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C", **SCPI_OK}, lambda d: d),
    "2450": (Keithley2450, "keithley2450",
             {"*IDN?": "KEITHLEY INSTRUMENTS,MODEL 2450,1,1", "*LANG?": "SCPI", **SCPI_OK},
             lambda d: d),
    "2636B": (Keithley2600, "keithley2600",
              {"*IDN?": "Keithley Instruments Inc., Model 2636B, 1, 1", **TSP_OK},
              lambda d: d.smub),
    "B2912A": (KeysightB2900, "keysight_b2900",
               {"*IDN?": "Keysight Technologies,B2912A,1,1", **SCPI_OK},
               lambda d: d.channel(2)),
}


def _channel(model):
    cls, name, replies, pick = CASES[model]
    resource = PermissiveInstrument(name, replies)
    driver = cls(resource)
    return driver, pick(driver), resource


def _settings_written(resource, start: int = 0) -> list[str]:
    """Commands that set something (queries and error-queue reads left out)."""
    return [c for c in resource.written[start:] if c not in resource.replies and "?" not in c]


def _sent_numbers(command: str) -> float:
    return float(command.replace("=", " ").split()[-1])


@pytest.mark.parametrize("model", sorted(CASES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.floats(min_value=-2.0, max_value=2.0), limit_scale=st.floats(0.0, 1.5))
def test_voltage_source_level_and_limit(model, scale, limit_scale):
    driver, channel, resource = _channel(model)
    try:
        limits = channel.limits
        level = scale * limits.max_voltage
        current_limit = limit_scale * limits.max_current
        before = len(resource.written)
        inside = abs(level) <= limits.max_voltage and (
            limits.min_current_limit <= current_limit <= limits.max_current
        )
        if inside:
            channel.source_voltage(level, current_limit)
            settings_sent = _settings_written(resource, before)
            assert _sent_numbers(settings_sent[-1]) == level
            assert _sent_numbers(settings_sent[-2]) == current_limit
        else:
            with pytest.raises(ValueError, match=r"(level|current_limit) = .* outside"):
                channel.source_voltage(level, current_limit)
            assert resource.written[before:] == []
    finally:
        driver.disconnect()


@pytest.mark.parametrize("model", sorted(CASES))
@settings(max_examples=40, deadline=None)
@given(exponent=st.floats(min_value=-12.0, max_value=0.5))
def test_small_current_limits_are_never_zeroed(model, exponent):
    driver, channel, resource = _channel(model)
    try:
        limit = 10.0 ** exponent
        if channel.limits.min_current_limit <= limit <= channel.limits.max_current:
            channel.source_voltage(0.1, limit)
            sent = _settings_written(resource)[-2]
            assert _sent_numbers(sent) == limit
        else:
            with pytest.raises(ValueError, match="current_limit"):
                channel.source_voltage(0.1, limit)
    finally:
        driver.disconnect()
