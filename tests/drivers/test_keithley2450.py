"""Keithley 2450 (native SCPI) driver: exact command/reply conversations on a fake transport."""

import pytest
from xbarlab.drivers.errors import InstrumentError, WrongInstrumentError
from xbarlab.drivers.keithley2450 import Keithley2450

IDN = "KEITHLEY INSTRUMENTS,MODEL 2450,04451269,1.7.7b"
NO_ERROR = '0,"No error;0;0 0"'


def ok(command):
    return [(command, None), (":SYST:ERR?", NO_ERROR)]


CONNECT = [("*IDN?", IDN), ("*LANG?", "SCPI"), ("*CLS", None)]
SOURCE_V = (
    ok(":SOUR:FUNC VOLT") + ok(':SENS:FUNC "CURR"') + ok(":SOUR:VOLT:ILIM 1e-07")
    + ok(":SOUR:VOLT 0.2")
)


def test_connect_accepts_older_idn_prefix(expected_protocol):
    pairs = [("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2450,01234567,1.0.0i")] + CONNECT[1:]
    with expected_protocol(Keithley2450, pairs) as smu:
        assert smu.model == "2450"


@pytest.mark.parametrize("language", ["TSP", "SCPI2400"])
def test_other_command_sets_are_refused_with_instructions(fake_resource, language):
    resource = fake_resource("keithley2450", [("*IDN?", IDN), ("*LANG?", language)])
    with pytest.raises(WrongInstrumentError) as info:
        Keithley2450(resource)
    text = str(info.value)
    assert f"found {language!r}" in text and "*LANG SCPI" in text and "power-cycle" in text
    assert resource.closed


def test_a_2400_is_not_a_2450(fake_resource):
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C"
    resource = fake_resource("keithley2450", [("*IDN?", idn)])
    with pytest.raises(WrongInstrumentError, match="MODEL 2450"):
        Keithley2450(resource)


def test_source_voltage_selects_sense_and_sets_limit_first(expected_protocol):
    with expected_protocol(Keithley2450, CONNECT + SOURCE_V) as smu:
        smu.source_voltage(0.2, current_limit=1e-7)


def test_source_current(expected_protocol):
    pairs = CONNECT + ok(":SOUR:FUNC CURR") + ok(':SENS:FUNC "VOLT"') + ok(
        ":SOUR:CURR:VLIM 2.0") + ok(":SOUR:CURR 1e-06")
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.source_current(1e-6, voltage_limit=2.0)


def test_limits_out_of_range_raise_before_writing(expected_protocol):
    with expected_protocol(Keithley2450, CONNECT) as smu:
        with pytest.raises(ValueError, match="current_limit = 1e-10 A is outside .*1e-09 to 1.05"):
            smu.source_voltage(0.2, 1e-10)
        with pytest.raises(ValueError, match="voltage_limit = 0.01 V is outside .*0.02 to 210.0"):
            smu.source_current(1e-6, 0.01)


def test_measure_voltage_source_reads_current_and_trip(expected_protocol):
    pairs = CONNECT + SOURCE_V + [
        (':READ? "defbuffer1",READ,SOUR', "1.000000E-07,2.000000E-01"),
        (":SOUR:VOLT:ILIM:TRIP?", "1"),
    ]
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.source_voltage(0.2, current_limit=1e-7)
        result = smu.measure()
    assert (result.voltage, result.current, result.compliance) == (0.2, 1e-7, True)


def test_measure_asks_the_source_function_when_unknown(expected_protocol):
    pairs = CONNECT + [
        (":SOUR:FUNC?", "CURR"),
        (':READ? "defbuffer1",READ,SOUR', "1.500000E+00,1.000000E-06"),
        (":SOUR:CURR:VLIM:TRIP?", "0"),
    ]
    with expected_protocol(Keithley2450, pairs) as smu:
        result = smu.measure()
    assert (result.voltage, result.current, result.compliance) == (1.5, 1e-6, False)


def test_settings(expected_protocol):
    pairs = (
        CONNECT
        + ok(":SENS:CURR:RANG:AUTO ON")
        + [(":SENS:CURR:RANG:AUTO?", "1")]
        + ok(":SENS:CURR:RANG 1e-08")
        + [(":SENS:CURR:RANG?", "1.000000E-08")]
        + [(":SOUR:FUNC?", "VOLT")]
        + ok(":SENS:CURR:NPLC 10.0")
        + [(":SENS:CURR:NPLC?", "1.000000E+01")]
        + [(":SOUR:VOLT:ILIM?", "1.000000E-07"), (":SOUR:CURR:VLIM?", "2.100000E+01")]
        + ok(":OUTP ON")
        + [(":OUTP?", "1")]
    )
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.set_current_range(None)
        assert smu.current_autorange
        smu.set_current_range(1e-8)
        assert smu.current_range == 1e-8
        smu.set_nplc(10)
        assert smu.current_nplc == 10.0
        assert (smu.current_limit, smu.voltage_limit) == (1e-7, 21.0)
        smu.output_on()
        assert smu.output_enabled()


def test_list_sweep_through_the_buffer(expected_protocol):
    pairs = (
        CONNECT + SOURCE_V  # the limit just set is known: no :SOUR:VOLT:ILIM? before the sweep
        + ok(':TRAC:CLE "defbuffer1"')
        + ok(":SOUR:LIST:VOLT 0.0,0.1,0.2")
        + ok(":SOUR:SWE:VOLT:LIST 1,0.001")
        + ok(":OUTP ON")
        + [(":INIT", None), ("*WAI", None)]
        + [(':TRAC:DATA? 1,3,"defbuffer1",READ,SOUR',
            "1.000000E-09,0.000000E+00,5.000000E-08,1.000000E-01,9.999000E-08,2.000000E-01")]
        + [(":SYST:ERR?", NO_ERROR)]
    )
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.source_voltage(0.2, current_limit=1e-7)
        readings = smu.sweep([0.0, 0.1, 0.2], delay=1e-3)
    assert [r.voltage for r in readings] == [0.0, 0.1, 0.2]
    assert [r.current for r in readings] == [1e-9, 5e-8, 9.999e-8]
    assert [r.compliance for r in readings] == [False, False, True]


def test_long_current_sweep_appends_in_chunks_of_100(expected_protocol):
    from xbarlab.drivers.numbers import format_numbers

    levels = [k * 1e-8 for k in range(250)]
    pairs = (
        CONNECT + [(":SOUR:FUNC?", "CURR"), (":SOUR:CURR:VLIM?", "2.000000E+00")]
        + ok(':TRAC:CLE "defbuffer1"')
        + ok(":SOUR:LIST:CURR " + format_numbers(levels[:100]))
        + ok(":SOUR:LIST:CURR:APP " + format_numbers(levels[100:200]))
        + ok(":SOUR:LIST:CURR:APP " + format_numbers(levels[200:]))
        + ok(":SOUR:SWE:CURR:LIST 1,0.0")
        + ok(":OUTP ON")
        + [(":INIT", None), ("*WAI", None)]
        + [(':TRAC:DATA? 1,250,"defbuffer1",READ,SOUR', ",".join(["1.0E-01,1.0E-08"] * 250))]
        + [(":SYST:ERR?", NO_ERROR)]
    )
    with expected_protocol(Keithley2450, pairs) as smu:
        readings = smu.sweep(levels, delay=0)
    assert len(readings) == 250 and readings[0].voltage == 0.1 and readings[0].current == 1e-8


def test_sweep_delay_between_zero_and_50us_is_refused(expected_protocol):
    with expected_protocol(Keithley2450, CONNECT + SOURCE_V) as smu:
        smu.source_voltage(0.2, current_limit=1e-7)
        with pytest.raises(ValueError, match="delay = 1e-05 s is outside the allowed values 0 or"):
            smu.sweep([0.1], delay=1e-5)


def test_sweep_error_names_init(expected_protocol):
    pairs = (
        CONNECT + SOURCE_V  # the limit just set is known: no :SOUR:VOLT:ILIM? before the sweep
        + ok(':TRAC:CLE "defbuffer1"')
        + ok(":SOUR:LIST:VOLT 0.1")
        + ok(":SOUR:SWE:VOLT:LIST 1,0.0")
        + ok(":OUTP ON")
        + [(":INIT", None), ("*WAI", None)]
        + [(':TRAC:DATA? 1,1,"defbuffer1",READ,SOUR', "1.0E-09,1.0E-01")]
        + [(":SYST:ERR?", '-285,"Trigger model error"'), (":SYST:ERR?", NO_ERROR)]
    )
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.source_voltage(0.2, current_limit=1e-7)
        with pytest.raises(InstrumentError, match="-285.*':INIT'"):
            smu.sweep([0.1], delay=0)


def test_pulse_train_in_the_trigger_model(expected_protocol, fake_resource):
    pairs = (
        CONNECT + SOURCE_V
        + [(":SOUR:VOLT?", "2.000000E-01")]
        + ok(':TRIG:LOAD "Empty"')
        + ok(":SOUR:VOLT 1.5")
        + ok(":TRIG:BLOC:SOUR:STAT 1,ON")
        + ok(":TRIG:BLOC:DEL:CONS 2,0.002")
        + ok(":TRIG:BLOC:SOUR:STAT 3,OFF")
        + ok(":TRIG:BLOC:DEL:CONS 4,0.008")
        + ok(":TRIG:BLOC:BRAN:COUN 5,10,1")
        + [(":INIT", None), ("*WAI", None), (":SYST:ERR?", NO_ERROR)]
        + ok(":SOUR:VOLT 0.2")
    )
    resource = fake_resource("keithley2450", pairs)
    smu = Keithley2450(resource)
    smu.source_voltage(0.2, current_limit=1e-7)
    smu.pulse(1.5, width=2e-3, count=10, period=1e-2)
    resource.assert_done()
    assert max(resource.read_timeouts) >= 5000 + 100  # the wait covers ten 10 ms periods
    smu.disconnect()


def test_pulse_shorter_than_the_trigger_model_can_make_is_refused(expected_protocol):
    with expected_protocol(Keithley2450, CONNECT + SOURCE_V) as smu:
        smu.source_voltage(0.2, current_limit=1e-7)
        with pytest.raises(ValueError, match="pulse width = 0.0001 s is outside"):
            smu.pulse(1.0, width=1e-4)
        with pytest.raises(ValueError, match="pulse period = 0.001 s"):
            smu.pulse(1.0, width=2e-3, count=2, period=1e-3)


def test_shutdown(expected_protocol):
    pairs = CONNECT + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "-5.000000E-01")] + ok(
        ":SOUR:VOLT 0.0") + ok(":OUTP OFF")
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.shutdown()


def test_reset(expected_protocol):
    with expected_protocol(Keithley2450, CONNECT + ok("*RST")) as smu:
        smu.reset()


def test_pulses_shorter_than_1ms_are_refused_before_anything_is_sent(expected_protocol):
    with expected_protocol(Keithley2450, CONNECT) as smu:
        assert smu.pulse_capability().min_width == 1e-3
        with pytest.raises(ValueError, match=r"pulse width = 0.0005 s is outside .*0.001"):
            smu.check_pulse(1.0, 5e-4)
        with pytest.raises(ValueError, match="pulse count = 0 is outside"):
            smu.check_pulse(1.0, 1e-3, count=0)
        with pytest.raises(ValueError, match=r"pulse level = 1.5 A is outside .*1.05 A"):
            smu.check_pulse(1.5, 1e-3, function="CURR")


def test_compliance_state_without_a_measurement(expected_protocol):
    pairs = CONNECT + [(":SOUR:FUNC?", "CURR"), (":SOUR:CURR:VLIM:TRIP?", "1")]
    with expected_protocol(Keithley2450, pairs) as smu:
        assert smu.in_compliance()
