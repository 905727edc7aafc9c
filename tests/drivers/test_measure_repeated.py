"""`measure_repeated`: many readings at the present source level in few round trips.

On a 2600B the native way (measure.count readings into the reading buffers by one
`measure.iv`, one printbuffer per buffer fill, measure.count set back to 1 on every path); on
other models list sweeps of the present level (here a 2400). Exact conversations on the fake
transport (every command listed in commands.toml), refusals before anything is sent, the dry-run
recorder, and a run on the virtual bench.
"""

import math

import numpy as np
import pytest
from xbarlab.drivers import keithley2600, smu
from xbarlab.drivers.errors import InstrumentError, UnexpectedReplyError
from xbarlab.drivers.keithley2400 import Keithley2400
from xbarlab.drivers.keithley2600 import Keithley2600

from xbarlab.bench import open_bench
from xbarlab.bench.readings import IoCounter
from xbarlab.dryrun.instruments import POWER_LINE_CYCLE, Recorder, RecordingSMU
from xbarlab.interfaces import SourceMeasureChannel

TSP_IDN = "Keithley Instruments Inc., Model 2636B, 4308079, 3.2.2"
TSP_NONE = "0.00000e+00"
K2400_IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4473504,C34 Sep 21 2016"
SCPI_OK = '0,"No error"'
BUFFER = "smua.nvbuffer1.readings, smua.nvbuffer2.readings, smua.nvbuffer1.statuses"


def tsp_connect():
    return [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)]


def buffer_fill(n, reply, errors=TSP_NONE):
    """What one 2600B buffer fill of `n` readings sends, and the printbuffer `reply`."""
    pairs = [
        (f"smua.measure.count = {n}", None),
        ("smua.nvbuffer1.clear()", None),
        ("smua.nvbuffer2.clear()", None),
        ("smua.measure.iv(smua.nvbuffer1, smua.nvbuffer2)", None),
        ("smua.measure.count = 1", None),
        ("print(errorqueue.count)", errors),
    ]
    if errors == TSP_NONE:
        pairs.append((f"printbuffer(1, {n}, {BUFFER})", reply))
    return pairs


def triples(*points):
    return ", ".join(f"{i:.5e}, {v:.5e}, {s:.5e}" for i, v, s in points)


class _opened:
    """A driver on `resource`, disconnected (not shut down) at the end."""

    def __init__(self, resource):
        self.driver = Keithley2600(resource)

    def __enter__(self):
        return self.driver

    def __exit__(self, *exc):
        self.driver.disconnect()


def test_2636b_takes_the_readings_in_one_buffer_fill(expected_protocol):
    reply = triples((1e-6, 0.2, 0), (1.1e-6, 0.2, 0), (1e-3, 0.19, 64))
    with expected_protocol(Keithley2600, tsp_connect() + buffer_fill(3, reply)) as smu:
        channel = smu.channel("a")
        assert isinstance(channel, SourceMeasureChannel)
        readings = channel.measure_repeated(3)
    assert [(r.voltage, r.current, r.compliance) for r in readings] == [
        (0.2, 1e-6, False), (0.2, 1.1e-6, False), (0.19, 1e-3, True)]


def test_2636b_splits_counts_beyond_one_buffer(expected_protocol, monkeypatch):
    monkeypatch.setattr(keithley2600, "MAX_BUFFER_READINGS", 2)
    pairs = (tsp_connect()
             + buffer_fill(2, triples((1e-6, 0.2, 0), (2e-6, 0.2, 0)))
             + buffer_fill(2, triples((3e-6, 0.2, 0), (4e-6, 0.2, 0)))
             + buffer_fill(1, triples((5e-6, 0.2, 0))))
    with expected_protocol(Keithley2600, pairs) as smu:
        readings = smu.smua.measure_repeated(5)
    assert [r.current for r in readings] == [1e-6, 2e-6, 3e-6, 4e-6, 5e-6]


def test_buffer_fill_timeout_grows_with_the_count(fake_resource):
    resource = fake_resource("keithley2600", tsp_connect() + buffer_fill(
        4, triples(*[(1e-6, 0.2, 0)] * 4)))
    with _opened(resource) as driver:
        driver.smua.measure_repeated(4)
    # *IDN?; the error query after the fill waits for the readings; the printbuffer does not
    assert resource.read_timeouts == [5000, 5000 + 4 * 500 + 1, 5000]


def test_2636b_single_reading_is_one_measurement(expected_protocol):
    pairs = tsp_connect() + [("print(smua.measure.iv())", "1.00000e-06\t2.00000e-01"),
                             ("print(smua.source.compliance)", "false")]
    with expected_protocol(Keithley2600, pairs) as driver:
        (only,) = driver.smua.measure_repeated(1)
    assert (only.voltage, only.current, only.compliance) == (0.2, 1e-6, False)


@pytest.mark.parametrize(("count", "error", "message"), [
    (0, ValueError, f"count = 0 is outside the allowed range 1 to {smu.MAX_REPEATED_READINGS}"),
    (-1, ValueError, f"count = -1 is outside the allowed range 1 to {smu.MAX_REPEATED_READINGS}"),
    (smu.MAX_REPEATED_READINGS + 1, ValueError,
     f"count = {smu.MAX_REPEATED_READINGS + 1} is outside the allowed range 1 to "
     f"{smu.MAX_REPEATED_READINGS}"),
    (2.5, TypeError, "count must be an integer"),
])
def test_2636b_bad_count_is_refused_before_anything_is_sent(expected_protocol, count, error,
                                                           message):
    with (
        expected_protocol(Keithley2600, tsp_connect()) as driver,
        pytest.raises(error, match=message),
    ):
        driver.smua.measure_repeated(count)


def test_2636b_count_is_back_to_1_when_the_reply_is_malformed(expected_protocol):
    pairs = tsp_connect() + buffer_fill(3, "1.00000e-06, 2.00000e-01")
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(UnexpectedReplyError, match="3 points of 1 I, V, status triples"),
    ):
        smu.smua.measure_repeated(3)
    # the conversation (checked in full) set measure.count back to 1 before the printbuffer


def test_2636b_count_is_back_to_1_when_the_instrument_reports_an_error(expected_protocol):
    pairs = (tsp_connect() + buffer_fill(3, None, errors="1.00000e+00")
             + [("print(errorqueue.next())", "-2.22000e+02\tParameter data out of range\t2\t0"),
                ("print(errorqueue.count)", TSP_NONE)])
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(InstrumentError, match="-222"),
    ):
        smu.smua.measure_repeated(3)


def test_2636b_count_is_set_back_to_1_when_a_write_fails(fake_resource):
    resource = fake_resource("keithley2600", tsp_connect() + [
        ("smua.measure.count = 3", None), ("smua.nvbuffer1.clear()", None),
        ("smua.nvbuffer2.clear()", None), ("smua.measure.count = 1", None)])
    write = resource.write

    def failing(command):
        if command.startswith("smua.measure.iv("):
            raise OSError("bus error")
        write(command)

    resource.write = failing
    with _opened(resource) as driver, pytest.raises(OSError, match="bus error"):
        driver.smua.measure_repeated(3)
    resource.assert_done()


# -- generic path: list sweeps of the present level (Keithley 2400) ---------------------------

def scpi_ok(command):
    return [(command, None), (":SYST:ERR?", SCPI_OK)]


def k2400_connect():
    return ([("*IDN?", K2400_IDN), ("*CLS", None)] + scpi_ok(":FORM:ELEM VOLT,CURR,STAT")
            + scpi_ok(':SENS:FUNC "VOLT","CURR"'))


def k2400_sweep(levels, reply):
    return ([(":SOUR:FUNC?", "VOLT")] + scpi_ok(":SOUR:VOLT:MODE LIST")
            + scpi_ok(f":SOUR:LIST:VOLT {levels}") + scpi_ok(":SOUR:DEL 0.0")
            + scpi_ok(f":TRIG:COUN {levels.count(',') + 1}") + scpi_ok(":OUTP ON")
            + [(":READ?", reply)] + scpi_ok(":TRIG:COUN 1") + scpi_ok(":SOUR:VOLT:MODE FIX"))


def test_2400_takes_list_sweeps_of_the_present_level(expected_protocol, monkeypatch):
    monkeypatch.setattr(Keithley2400, "max_sweep_points", 2)
    pairs = (k2400_connect() + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV?", "+2.000000E-01")]
             + k2400_sweep("0.2,0.2", "+2.0E-01,+1.0E-06,+0.0E+00,+2.0E-01,+2.0E-06,+0.0E+00")
             + k2400_sweep("0.2", "+2.0E-01,+1.0E-03,+8.0E+00"))
    with expected_protocol(Keithley2400, pairs) as driver:
        readings = driver.measure_repeated(3)
    assert [(r.voltage, r.current, r.compliance) for r in readings] == [
        (0.2, 1e-6, False), (0.2, 2e-6, False), (0.2, 1e-3, True)]


def test_2400_single_reading_is_one_measurement(expected_protocol):
    pairs = k2400_connect() + [(":READ?", "+2.0E-01,+1.0E-06,+0.0E+00")]
    with expected_protocol(Keithley2400, pairs) as driver:
        (only,) = driver.measure_repeated(1)
    assert (only.voltage, only.current) == (0.2, 1e-6)


def test_2400_bad_count_is_refused_before_anything_is_sent(expected_protocol):
    with (
        expected_protocol(Keithley2400, k2400_connect()) as driver,
        pytest.raises(ValueError, match="count = 0 is outside the allowed range 1 to"),
    ):
        driver.measure_repeated(0)


# -- dry run ----------------------------------------------------------------------------------

def test_recording_smu_logs_every_reading_with_its_integration_time():
    recorder = Recorder(IoCounter())
    channel = RecordingSMU("smu.a", recorder)
    channel.source_voltage(0.2, 1e-6)
    channel.set_nplc(2.0)
    before = recorder.duration
    readings = channel.measure_repeated(4)
    assert len(readings) == 4 and all(r.voltage == 0.2 and math.isnan(r.current)
                                      for r in readings)
    assert recorder.calls["smu.a.measure"] == 4
    from xbarlab.dryrun.instruments import ROUND_TRIP
    assert recorder.duration - before == pytest.approx(4 * (ROUND_TRIP["smu"]
                                                            + 2.0 * POWER_LINE_CYCLE))
    with pytest.raises(ValueError, match="count = 0 is outside the allowed range"):
        channel.measure_repeated(0)


# -- on the virtual bench ---------------------------------------------------------------------

def test_2636b_measure_repeated_on_the_virtual_bench(virtual_bench):
    rm = virtual_bench("default")
    with Keithley2600.connect("GPIB0::26::INSTR", rm) as driver:
        channel = driver.smua
        channel.source_voltage(0.2, current_limit=1e-3)
        channel.output_on()
        readings = channel.measure_repeated(250)
        assert len(readings) == 250
        assert all(r.voltage == pytest.approx(0.2) and not r.compliance for r in readings)
        assert float(driver.ask("print(smua.measure.count)")) == 1.0


def test_bench_repeated_read_takes_at_most_ten_round_trips():
    with open_bench("default") as bench:
        bench.read_repeated(3, 5, 0.2, "v/3", 2)  # relays and sources set here
        readings = bench.read_repeated(3, 5, 0.2, "v/3", 5000)
        assert len(readings) == 5000
        assert bench.last_round_trips <= 10
        currents = np.array([r.current for r in readings])
        assert currents.std() > 1e-4 * abs(currents.mean())  # a read-noise draw per reading
