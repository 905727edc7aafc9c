"""Keithley 2400-series driver: exact command/reply conversations on a fake transport."""

import math

import pytest
from xbarlab.drivers.errors import InstrumentError, WrongInstrumentError
from xbarlab.drivers.keithley2400 import Keithley2400

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4473504,C34 Sep 21 2016"
IDN_2430 = "KEITHLEY INSTRUMENTS INC.,MODEL 2430,1248014,C30   Mar 17 2006 09:29:29/A02  /K/J"
NO_ERROR = '0,"No error"'


def ok(command):
    return [(command, None), (":SYST:ERR?", NO_ERROR)]


def connect(idn=IDN):
    return [("*IDN?", idn), ("*CLS", None)] + ok(":FORM:ELEM VOLT,CURR,STAT") + ok(
        ':SENS:FUNC "VOLT","CURR"'
    )


def test_connect_checks_identity_and_sets_reading_elements(expected_protocol):
    with expected_protocol(Keithley2400, connect()) as smu:
        assert smu.model == "2400"
        assert smu.limits.max_voltage == 210.0


def test_connect_refuses_another_instrument(fake_resource):
    resource = fake_resource("keithley2400", [("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,1,1")])
    with pytest.raises(WrongInstrumentError, match="expected a Keithley 2400-series.*MODEL 2450"):
        Keithley2400(resource)
    assert resource.closed


def test_terminations_and_timeout_are_explicit(fake_resource):
    resource = fake_resource("keithley2400", connect())
    smu = Keithley2400(resource)
    assert (resource.read_termination, resource.write_termination) == ("\n", "\n")
    assert resource.timeout == 5000
    smu.disconnect()


def test_source_voltage_sets_limit_before_level_and_100nA_is_exact(expected_protocol):
    pairs = (
        connect()
        + ok(":SOUR:FUNC VOLT")
        + ok(":SOUR:VOLT:MODE FIX")
        + ok(":SENS:CURR:PROT 1e-07")
        + ok(":SOUR:VOLT:LEV 0.2")
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.source_voltage(0.2, current_limit=100e-9)


def test_source_current_sets_voltage_compliance(expected_protocol):
    pairs = (
        connect()
        + ok(":SOUR:FUNC CURR")
        + ok(":SOUR:CURR:MODE FIX")
        + ok(":SENS:VOLT:PROT 2.0")
        + ok(":SOUR:CURR:LEV -1e-06")
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.source_current(-1e-6, voltage_limit=2)


@pytest.mark.parametrize(
    ("level", "limit", "message"),
    [
        (211.0, 1e-3, r"level = 211.0 V is outside the allowed range -210.0 to 210.0 V"),
        (1.0, 2.0, r"current_limit = 2.0 A is outside the allowed range 1e-09 to 1.05 A"),
        (1.0, 0.0, r"current_limit = 0.0 A"),
        (math.nan, 1e-3, r"level must be finite"),
    ],
)
def test_out_of_range_source_raises_before_writing(expected_protocol, level, limit, message):
    smu_context = expected_protocol(Keithley2400, connect())
    with smu_context as smu, pytest.raises(ValueError, match=message):
        smu.source_voltage(level, limit)


def test_2401_has_a_lower_voltage_limit(expected_protocol):
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 2401,1,C34"
    with expected_protocol(Keithley2400, connect(idn)) as smu, pytest.raises(
        ValueError, match="outside the allowed range -21.0 to 21.0 V"
    ):
        smu.source_voltage(25.0, 1e-3)


def test_instrument_error_carries_code_message_and_command(expected_protocol):
    pairs = connect() + [
        (":SOUR:FUNC VOLT", None),
        (":SYST:ERR?", '-221,"Settings conflict"'),
        (":SYST:ERR?", '-113,"Undefined header"'),
        (":SYST:ERR?", NO_ERROR),
    ]
    with expected_protocol(Keithley2400, pairs) as smu, pytest.raises(InstrumentError) as info:
        smu.source_voltage(0.1, 1e-3)
    error = info.value
    assert (error.code, error.command) == (-221, ":SOUR:FUNC VOLT")
    assert "Settings conflict" in error.message and "-113" in error.message


def test_measure_parses_elements_and_compliance_bit(expected_protocol):
    pairs = connect() + [
        (":READ?", "+2.000000E-01,+1.234000E-06,+1.946000E+04"),
        (":READ?", "+1.500000E+00,+1.000000E-07,+1.946800E+04"),
    ]
    with expected_protocol(Keithley2400, pairs) as smu:
        first = smu.measure()
        second = smu.measure()
    assert (first.voltage, first.current, first.compliance) == (0.2, 1.234e-6, False)
    assert (second.current, second.compliance) == (1e-7, True)  # 19468 has bit 3 set


def test_settings_get_and_set(expected_protocol):
    pairs = (
        connect()
        + ok(":SENS:CURR:NPLC 0.01")
        + [(":SENS:CURR:NPLC?", "+1.000000E-02")]
        + ok(":SENS:CURR:RANG:AUTO ON")
        + [(":SENS:CURR:RANG:AUTO?", "1")]
        + ok(":SENS:CURR:RANG 1e-06")
        + [(":SENS:CURR:RANG?", "+1.050000E-06")]
        + [(":SENS:CURR:PROT?", "+1.050000E-04"), (":SENS:VOLT:PROT?", "+2.100000E+01")]
        + ok(":OUTP ON")
        + [(":OUTP?", "1")]
        + ok(":OUTP OFF")
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.set_nplc(0.01)
        assert smu.nplc == 0.01
        smu.set_current_range(None)
        assert smu.current_autorange is True
        smu.set_current_range(1e-6)
        assert smu.current_range == 1.05e-6
        assert (smu.current_limit, smu.voltage_limit) == (1.05e-4, 21.0)
        smu.output_on()
        assert smu.output_enabled()
        smu.output_off()


def test_nplc_out_of_range_raises_naming_field(expected_protocol):
    with expected_protocol(Keithley2400, connect()) as smu:
        with pytest.raises(ValueError, match=r"nplc = 11 PLC is outside the allowed range 0.01"):
            smu.set_nplc(11)
        with pytest.raises(ValueError, match="current range"):
            smu.set_current_range(1e-9)


def test_list_sweep_is_one_read(expected_protocol):
    pairs = (
        connect()
        + [(":SOUR:FUNC?", "VOLT")]
        + ok(":SOUR:VOLT:MODE LIST")
        + ok(":SOUR:LIST:VOLT 0.0,0.1,0.2")
        + ok(":SOUR:DEL 0.001")
        + ok(":TRIG:COUN 3")
        + ok(":OUTP ON")
        + [
            (
                ":READ?",
                "+0.000000E+00,+1.000000E-09,+1.946000E+04,"
                "+1.000000E-01,+1.000000E-06,+1.946000E+04,"
                "+2.000000E-01,+1.000000E-05,+1.946800E+04",
            )
        ]
        + ok(":TRIG:COUN 1")
        + ok(":SOUR:VOLT:MODE FIX")
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        readings = smu.sweep([0.0, 0.1, 0.2], delay=0.001)
    assert [r.voltage for r in readings] == [0.0, 0.1, 0.2]
    assert [r.compliance for r in readings] == [False, False, True]


def test_long_sweep_is_split_into_append_commands(expected_protocol):
    levels = [k * 0.001 for k in range(150)]
    from xbarlab.drivers.numbers import format_numbers

    pairs = (
        connect()
        + [(":SOUR:FUNC?", "VOLT")]
        + ok(":SOUR:VOLT:MODE LIST")
        + ok(":SOUR:LIST:VOLT " + format_numbers(levels[:100]))
        + ok(":SOUR:LIST:VOLT:APP " + format_numbers(levels[100:]))
        + ok(":SOUR:DEL 0.0")
        + ok(":TRIG:COUN 150")
        + ok(":OUTP ON")
        + [(":READ?", ",".join(["+1.0E-01,+1.0E-06,+0.0E+00"] * 150))]
        + ok(":TRIG:COUN 1")
        + ok(":SOUR:VOLT:MODE FIX")
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        assert len(smu.sweep(levels, delay=0)) == 150


def test_sweep_level_out_of_range_raises_before_configuring(expected_protocol):
    pairs = connect() + [(":SOUR:FUNC?", "CURR")]
    with (
        expected_protocol(Keithley2400, pairs) as smu,
        pytest.raises(ValueError, match="sweep level = 2.0 A"),
    ):
        smu.sweep([0.0, 2.0], delay=0)


def test_sweep_timeout_grows_with_the_sweep(expected_protocol, fake_resource):
    resource = fake_resource(
        "keithley2400",
        connect()
        + [(":SOUR:FUNC?", "VOLT")]
        + ok(":SOUR:VOLT:MODE LIST")
        + ok(":SOUR:LIST:VOLT 0.1,0.2")
        + ok(":SOUR:DEL 1.0")
        + ok(":TRIG:COUN 2")
        + ok(":OUTP ON")
        + [(":READ?", "+1E-01,+1E-06,+0E+00,+2E-01,+2E-06,+0E+00")]
        + ok(":TRIG:COUN 1")
        + ok(":SOUR:VOLT:MODE FIX"),
    )
    smu = Keithley2400(resource)
    smu.sweep([0.1, 0.2], delay=1.0)
    assert max(resource.read_timeouts) >= 5000 + 2000
    assert resource.timeout == 5000
    smu.disconnect()


def test_pulse_is_not_supported_on_a_2400(expected_protocol):
    with (
        expected_protocol(Keithley2400, connect()) as smu,
        pytest.raises(NotImplementedError, match="2400 has no pulse mode.*2430"),
    ):
        smu.pulse(1.0, 1e-3)


def test_2430_pulse_train_returns_to_dc_at_the_old_level(expected_protocol):
    pairs = (
        connect(IDN_2430)
        + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV?", "+0.000000E+00")]
        + ok(":SOUR:FUNC:SHAP PULS")
        + ok(":SOUR:VOLT:LEV 1.5")
        + ok(":SOUR:PULS:WIDT 0.001")
        + ok(":SOUR:PULS:DEL 0.004")
        + ok(":TRIG:COUN 2")
        + ok(":OUTP ON")
        + [(":READ?", "+1.5E+00,+1.0E-04,+0.0E+00,+1.5E+00,+1.0E-04,+0.0E+00")]
        + ok(":SOUR:VOLT:LEV 0.0")
        + ok(":TRIG:COUN 1")
        + ok(":SOUR:FUNC:SHAP DC")
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.pulse(1.5, width=1e-3, count=2, period=5e-3)


def test_2430_pulse_width_outside_mode_limits_raises(expected_protocol):
    pairs = connect(IDN_2430) + [(":SOUR:FUNC?", "VOLT")]
    with (
        expected_protocol(Keithley2400, pairs) as smu,
        pytest.raises(ValueError, match=r"pulse width = 1e-05 s is outside .*0.00015 to 0.005"),
    ):
        smu.pulse(1.0, 1e-5)


def test_shutdown_ramps_to_zero_then_output_off(expected_protocol):
    pairs = (
        connect()
        + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV?", "+1.200000E+00")]
        + ok(":SOUR:VOLT:LEV 0.8")
        + ok(":SOUR:VOLT:LEV 0.4")
        + ok(":SOUR:VOLT:LEV 0.0")
        + ok(":OUTP OFF")
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.shutdown()


def test_shutdown_turns_output_off_even_if_ramp_fails(expected_protocol):
    pairs = (
        connect()
        + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:LEV?", "+4.000000E-01")]
        + [(":SOUR:VOLT:LEV 0.0", None), (":SYST:ERR?", '-200,"Execution error"')]
        + [(":SYST:ERR?", NO_ERROR)]
        + ok(":OUTP OFF")
    )
    with expected_protocol(Keithley2400, pairs) as smu, pytest.raises(InstrumentError):
        smu.shutdown()


def test_context_manager_shuts_down_and_closes(fake_resource):
    resource = fake_resource(
        "keithley2400",
        connect()
        + [(":SOUR:FUNC?", "CURR"), (":SOUR:CURR:LEV?", "+0.000000E+00")]
        + ok(":OUTP OFF"),
    )
    with Keithley2400(resource):
        pass
    resource.assert_done()
    assert resource.closed


def test_reset(expected_protocol):
    pairs = connect() + ok("*RST") + ok(":FORM:ELEM VOLT,CURR,STAT") + ok(
        ':SENS:FUNC "VOLT","CURR"'
    )
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.reset()


def test_pulse_capability_is_known_without_asking_the_instrument(expected_protocol):
    with expected_protocol(Keithley2400, connect()) as smu:
        assert smu.pulse_capability() is None
        with pytest.raises(NotImplementedError, match="2400 has no pulse mode"):
            smu.check_pulse(1.0, 1e-3)
    with expected_protocol(Keithley2400, connect(IDN_2430)) as smu:
        capability = smu.pulse_capability()
        assert (capability.min_width, capability.max_width) == (1.5e-4, 5e-3)
        assert (capability.max_count, capability.max_voltage) == (2500, 105.0)
        assert capability.longest_period(1e-3) == 1e-3 + 9999.999
        assert smu.check_pulse(2.0, 1e-3, 3, 2e-3) == (2.0, 1e-3, 3, 2e-3)
        with pytest.raises(ValueError, match=r"pulse width = 1e-05 s is outside .*0.00015"):
            smu.check_pulse(1.0, 1e-5)
        with pytest.raises(ValueError, match=r"pulse level = 200.0 V is outside"):
            smu.check_pulse(200.0, 1e-3)


def test_current_limit_read_back(expected_protocol):
    pairs = connect() + [(":SENS:CURR:PROT?", "+1.000000E-04")]
    with expected_protocol(Keithley2400, pairs) as smu:
        assert smu.read_current_limit() == 1e-4
