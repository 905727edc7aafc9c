"""Driver base behaviour: one session per address, one I/O lock, interface conformance."""

import gc
import threading
import time

import pytest
from xbarlab.drivers.array_board import ArrayBoard
from xbarlab.drivers.base import Instrument
from xbarlab.drivers.errors import SessionBusyError
from xbarlab.drivers.keithley707b import Keithley707B
from xbarlab.drivers.keithley2400 import Keithley2400
from xbarlab.drivers.keithley2450 import Keithley2450
from xbarlab.drivers.keithley2600 import Keithley2600, Keithley2600Channel
from xbarlab.drivers.keysight_b2900 import KeysightB2900, KeysightB2900Channel
from xbarlab.drivers.keysight_e5250a import KeysightE5250A

from xbarlab.interfaces import ArrayBoard as ArrayBoardInterface
from xbarlab.interfaces import SourceMeasureChannel, SwitchMatrix

IDN_2400 = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C34"
CONNECT_2400 = [("*IDN?", IDN_2400), ("*CLS", None),
                (":FORM:ELEM VOLT,CURR,STAT", None), (":SYST:ERR?", '0,"No error"'),
                (':SENS:FUNC "VOLT","CURR"', None), (":SYST:ERR?", '0,"No error"')]


def test_one_session_per_address(fake_resource):
    first = fake_resource("keithley2400", CONNECT_2400, resource_name="GPIB0::24::INSTR")
    smu = Keithley2400(first)
    second = fake_resource("keithley2400", [], resource_name="GPIB0::24::INSTR")
    with pytest.raises(SessionBusyError, match="GPIB0::24::INSTR already has an open Keithley2400"):
        Keithley2400(second)
    smu.disconnect()
    assert first.closed
    again = Keithley2400(fake_resource("keithley2400", CONNECT_2400,
                                       resource_name="GPIB0::24::INSTR"))
    again.disconnect()


def test_a_driver_dropped_without_disconnect_frees_its_address(fake_resource):
    smu = Keithley2400(fake_resource("keithley2400", CONNECT_2400,
                                     resource_name="GPIB0::23::INSTR"))
    del smu
    gc.collect()
    again = Keithley2400(fake_resource("keithley2400", CONNECT_2400,
                                       resource_name="GPIB0::23::INSTR"))
    again.disconnect()


def test_same_address_on_separate_visa_libraries_are_separate_sessions(fake_resource):
    first = fake_resource("keithley2400", CONNECT_2400, resource_name="GPIB0::5::INSTR")
    second = fake_resource("keithley2400", CONNECT_2400, resource_name="GPIB0::5::INSTR")
    first.visalib, second.visalib = object(), object()  # e.g. two virtual benches
    one, two = Keithley2400(first), Keithley2400(second)
    one.disconnect()
    two.disconnect()


class _Manager:
    """Stands in for a pyvisa ResourceManager, counting the resources it opens."""

    def __init__(self, factory):
        self.factory = factory
        self.opened = 0

    def open_resource(self, address):
        self.opened += 1
        return self.factory(address)


def test_connect_reuses_the_open_session_and_refuses_another_driver(fake_resource):
    manager = _Manager(lambda address: fake_resource("keithley2400", CONNECT_2400, address))
    smu = Keithley2400.connect("GPIB0::7::INSTR", manager)
    assert Keithley2400.connect("GPIB0::7::INSTR", manager) is smu
    assert manager.opened == 1
    with pytest.raises(SessionBusyError, match="open as Keithley2400, not Keithley2450"):
        Keithley2450.connect("GPIB0::7::INSTR", manager)
    smu.disconnect()


def test_failed_identity_frees_the_address(fake_resource):
    wrong = fake_resource("keithley2400", [("*IDN?", "nothing")], resource_name="GPIB0::9::INSTR")
    with pytest.raises(Exception, match="expected a Keithley 2400"):
        Keithley2400(wrong)
    Keithley2400(fake_resource("keithley2400", CONNECT_2400, "GPIB0::9::INSTR")).disconnect()


class _StrictAlternation:
    """A transport that fails if a second write arrives before the reply to the first is read."""

    resource_name = "TCPIP::lock::INSTR"

    def __init__(self):
        self.pending = None
        self.timeout = 0
        self.read_termination = self.write_termination = None
        self.interleaved = False

    def write(self, command):
        if self.pending is not None:
            self.interleaved = True
        if command.endswith("?"):
            self.pending = command
        time.sleep(1e-5)  # give other threads the chance to interleave, as real I/O does

    def read(self):
        command, self.pending = self.pending, None
        if command == "*IDN?":
            return "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C"
        return '0,"No error"' if command == ":SYST:ERR?" else "+1.0E-01,+1.0E-06,+0.0E+00"

    def close(self):
        pass


def test_one_io_lock_keeps_query_pairs_together():
    transport = _StrictAlternation()
    smu = Keithley2400(transport)

    def work():
        for _ in range(200):
            assert smu.measure().current == 1e-6

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not transport.interleaved
    smu.disconnect()


def _missing(cls, interface):
    return [name for name in dir(interface) if not name.startswith("_") and not hasattr(cls, name)]


def test_drivers_satisfy_the_interfaces():
    for cls in (Keithley2400, Keithley2450, Keithley2600Channel, KeysightB2900Channel):
        assert _missing(cls, SourceMeasureChannel) == [], cls
    for cls in (Keithley707B, KeysightE5250A):
        assert _missing(cls, SwitchMatrix) == [], cls
    assert _missing(ArrayBoard, ArrayBoardInterface) == []
    for cls in (Keithley2400, Keithley2450, Keithley2600, KeysightB2900, Keithley707B,
                KeysightE5250A, ArrayBoard):
        assert issubclass(cls, Instrument)
        assert cls.read_termination == cls.write_termination == "\n"
        assert cls.timeout_ms > 0


def test_context_manager_closes_even_when_shutdown_fails(fake_resource):
    resource = fake_resource("keithley2400", CONNECT_2400 + [(":SOUR:FUNC?", "bogus"),
                                                             (":OUTP OFF", None),
                                                             (":SYST:ERR?", '0,"No error"')])
    with pytest.raises(Exception, match="VOLT or CURR"), Keithley2400(resource):
        pass
    assert resource.closed
