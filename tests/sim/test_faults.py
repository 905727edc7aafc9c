"""Faults injected from the bench file: timeouts, dropped connections, garbled replies, relays
that do not close. None of them sleeps: a timeout is reported at once."""

from __future__ import annotations

import time

import pytest
from pyvisa import constants, errors
from simhelpers import open_instrument


def fault(instrument: str, kind: str, **fields) -> str:
    body = "".join(f"{key} = {value!r}\n".replace("'", '"') for key, value in fields.items())
    return f'\n[[sim.faults]]\ninstrument = "{instrument}"\nkind = "{kind}"\n{body}'


def test_timeout_after_n_commands(open_bench):
    """The read waits out the session's timeout in virtual time, not in real time."""
    rm, lib = open_bench("default", extra=fault("smu", "timeout", after=2))
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    smu.timeout = 3000
    assert smu.query("*IDN?").startswith("Keithley")  # command 1 (write) + reply
    smu.write("smua.source.levelv = 0.1")  # command 2
    lib.world.advance(1e-9)  # the physics kernels loaded before the clock is read
    clock = lib.world.clock
    start = time.monotonic()
    with pytest.raises(errors.VisaIOError) as info:
        smu.query("*IDN?")  # command 3: the instrument has gone silent
    assert info.value.error_code == constants.StatusCode.error_timeout
    assert time.monotonic() - start < 0.5
    assert lib.world.clock - clock == pytest.approx(3.0)


def test_dropped_connection(open_bench):
    rm, _ = open_bench("default", extra=fault("matrix", "drop", after=1))
    matrix = open_instrument(rm, "GPIB0::18::INSTR")
    matrix.write('channel.close("1A01")')
    with pytest.raises(errors.VisaIOError) as info:
        matrix.write('channel.open("allslots")')
    assert info.value.error_code == constants.StatusCode.error_connection_lost
    with pytest.raises(errors.VisaIOError):
        matrix.query("*IDN?")


def test_garbled_reply(open_bench):
    rm, _ = open_bench("default", extra=fault("smu", "garbled", after=2))
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    good = smu.query("*IDN?")
    garbled = smu.query("*IDN?")
    assert garbled != good and len(garbled) == len(good)
    assert smu.query("*IDN?") == good


def test_stuck_relay_reports_closed_but_conducts_nothing(open_bench):
    rm, lib = open_bench(
        "default", read_noise="false", extra=fault("matrix", "stuck_relay", input="A", output=1)
    )
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    matrix = open_instrument(rm, "GPIB0::18::INSTR")
    matrix.write('channel.close("1A01,4B01")')  # row 0 (stuck) and column 0
    assert matrix.query('print(channel.getclose("allslots"))') == "1A01;4B01"
    smu.write("smua.source.levelv = 0.2")
    smu.write("smua.source.output = smua.OUTPUT_ON")
    smu.write("smub.source.output = smub.OUTPUT_ON")
    assert float(smu.query("print(smua.measure.i())")) == 0.0
    matrix.write('channel.close("1A02")')  # row 1 closes normally
    assert float(smu.query("print(smua.measure.i())")) > 0.0
