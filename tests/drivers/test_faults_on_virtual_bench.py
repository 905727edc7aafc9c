"""Drivers under injected faults of the virtual bench: a garbled reply is an error, never a wrong
value; a silent or dropped instrument raises; the session is released on every failure path, so
the address can be opened again."""

from __future__ import annotations

import pytest
from pyvisa import constants, errors
from xbarlab.drivers.errors import UnexpectedReplyError, WrongInstrumentError
from xbarlab.drivers.keithley707b import Keithley707B
from xbarlab.drivers.keithley2600 import Keithley2600

SMU, MATRIX = "GPIB0::26::INSTR", "GPIB0::18::INSTR"


@pytest.fixture
def faulty_bench(virtual_bench):
    """faulty_bench(instrument, kind, after) -> ResourceManager of a default bench with a fault."""

    def open_bench(instrument: str, kind: str, after: int):
        fault = f'\n[[sim.faults]]\ninstrument = "{instrument}"\nkind = "{kind}"\nafter = {after}\n'
        return virtual_bench("default", fault)

    return open_bench


def test_garbled_identity_is_refused_and_the_address_stays_free(faulty_bench):
    rm = faulty_bench("smu", "garbled", after=1)
    with pytest.raises(WrongInstrumentError, match="expected a Keithley 2600B"):
        Keithley2600.connect(SMU, rm)
    smu = Keithley2600.connect(SMU, rm)  # reply 2 is intact
    assert smu.model == "2636B"
    smu.disconnect()


def test_garbled_measurement_is_an_error_not_a_value(faulty_bench):
    rm = faulty_bench("smu", "garbled", after=2)  # reply 1 is *IDN?, reply 2 the measurement
    smu = Keithley2600.connect(SMU, rm)
    with pytest.raises((UnexpectedReplyError, ValueError)):
        smu.smua.measure()
    assert smu.smua.measure().compliance in (True, False)  # the next exchange is clean
    smu.disconnect()


def test_silent_instrument_raises_and_the_context_still_releases_the_session(faulty_bench):
    rm = faulty_bench("smu", "timeout", after=2)  # *IDN? and errorqueue.clear() get through
    with pytest.raises(errors.VisaIOError) as info, Keithley2600.connect(SMU, rm) as smu:
        smu.smua.measure()
    assert info.value.error_code == constants.StatusCode.error_timeout
    with pytest.raises(errors.VisaIOError):  # a new session, not the dead one, and still silent
        Keithley2600.connect(SMU, rm)


def test_dropped_matrix_raises_on_the_next_command(faulty_bench):
    rm = faulty_bench("matrix", "drop", after=4)  # connect: *IDN?, clear, rule, error count
    matrix = Keithley707B.connect(MATRIX, rm)
    with pytest.raises(errors.VisaIOError) as info:
        matrix.exclusive_close([matrix.crosspoint(1, 1)])
    assert info.value.error_code == constants.StatusCode.error_connection_lost
    with pytest.raises(errors.VisaIOError):
        matrix.shutdown()
    matrix.disconnect()
