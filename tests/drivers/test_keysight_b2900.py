"""Keysight B2900 driver: exact command/reply conversations on a fake transport."""

import pytest
from xbarlab.drivers.errors import InstrumentError, WrongInstrumentError
from xbarlab.drivers.keysight_b2900 import KeysightB2900

IDN = "Keysight Technologies,B2912A,MY51141234,3.4.2011.5100"
NO_ERROR = '+0,"No error"'


def ok(command):
    return [(command, None), (":SYST:ERR?", NO_ERROR)]


def connect(idn=IDN, channels=(1, 2)):
    pairs = [("*IDN?", idn), ("*CLS", None)] + ok(":FORM:ELEM:SENS VOLT,CURR")
    for n in channels:
        pairs += ok(f':SENS{n}:FUNC "VOLT","CURR"')
    return pairs


def checked(message, reply=NO_ERROR):
    """A program message ending with the error query, and its reply."""
    return [(message + ";:SYST:ERR?", reply)]


# function, fixed mode and limit in one message, the level in the next once that reported no error
SOURCE_V2 = checked(":SOUR2:FUNC:MODE VOLT;:SOUR2:VOLT:MODE FIX;:SENS2:CURR:PROT 1e-07") + checked(
    ":SOUR2:VOLT 0.2")


def test_models_and_channels(expected_protocol):
    with expected_protocol(KeysightB2900, connect()) as smu:
        assert smu.model == "B2912" and sorted(smu.channels) == [1, 2]
        assert smu.channel("2") is smu.channel(2)
    idn = "Agilent Technologies,B2901A,MY1,2.0"
    with (
        expected_protocol(KeysightB2900, connect(idn, (1,))) as smu,
        pytest.raises(ValueError, match="channel = 2 is not one of the allowed values 1"),
    ):
        smu.channel(2)


def test_other_instrument_refused(fake_resource):
    resource = fake_resource("keysight_b2900", [("*IDN?", "Keysight Technologies,B2961A,1,1")])
    with pytest.raises(WrongInstrumentError, match="expected a Keysight B2900"):
        KeysightB2900(resource)


def test_source_voltage_puts_the_channel_in_every_header(expected_protocol):
    with expected_protocol(KeysightB2900, connect() + SOURCE_V2) as smu:
        smu.channel(2).source_voltage(0.2, current_limit=1e-7)


def test_a_new_level_under_the_limit_it_set_is_one_message(expected_protocol):
    """Same function and limit as last set (no error, reset or output-off since): function,
    fixed mode and level in one message, the limit not sent again; after an output-off the
    limit is sent again."""
    pairs = (
        connect() + SOURCE_V2
        + checked(":SOUR2:FUNC:MODE VOLT;:SOUR2:VOLT:MODE FIX;:SOUR2:VOLT 0.3")
        + checked(":SOUR2:FUNC:MODE VOLT;:SOUR2:VOLT:MODE FIX;:SENS2:CURR:PROT 2e-07")
        + checked(":SOUR2:VOLT 0.3")
        + ok(":OUTP2 OFF") + SOURCE_V2
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        channel = smu.channel(2)
        channel.source_voltage(0.2, current_limit=1e-7)
        channel.source_voltage(0.3, current_limit=1e-7)
        channel.source_voltage(0.3, current_limit=2e-7)  # a new limit: before the level
        channel.output_off()
        channel.source_voltage(0.2, current_limit=1e-7)


def test_source_current(expected_protocol):
    pairs = connect() + checked(":SOUR1:FUNC:MODE CURR;:SOUR1:CURR:MODE FIX;:SENS1:VOLT:PROT 2.0") \
        + checked(":SOUR1:CURR 1e-06")
    with expected_protocol(KeysightB2900, pairs) as smu:
        smu.channel(1).source_current(1e-6, voltage_limit=2.0)


def test_measure_names_its_channel_in_the_query(expected_protocol):
    pairs = connect() + SOURCE_V2 + [
        (":MEAS? (@2)", "+2.000000E-01,+1.000000E-07"),
        (":SENS2:CURR:PROT:TRIP?", "1"),
    ]
    with expected_protocol(KeysightB2900, pairs) as smu:
        channel = smu.channel(2)
        channel.source_voltage(0.2, current_limit=1e-7)
        result = channel.measure()
    assert (result.voltage, result.current, result.compliance) == (0.2, 1e-7, True)


def test_settings(expected_protocol):
    pairs = (
        connect()
        + ok(":SENS1:CURR:NPLC 0.00048")
        + [(":SENS1:CURR:NPLC?", "+4.800000E-04")]
        + ok(":SENS1:CURR:RANG:AUTO ON")
        + [(":SENS1:CURR:RANG:AUTO?", "1")]
        + ok(":SENS1:CURR:RANG:AUTO OFF")
        + ok(":SENS1:CURR:RANG 1e-08")
        + [(":SENS1:CURR:RANG?", "+1.000000E-08")]
        + [(":SENS1:CURR:PROT?", "+1.000000E-07"), (":SENS1:VOLT:PROT?", "+2.000000E+00")]
        + ok(":OUTP1 ON")
        + [(":OUTP1?", "1")]
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        channel = smu.channel(1)
        channel.set_nplc(4.8e-4)
        assert channel.nplc == 4.8e-4
        channel.set_current_range(None)
        assert channel.current_autorange
        channel.set_current_range(1e-8)
        assert channel.current_range == 1e-8
        assert (channel.current_limit, channel.voltage_limit) == (1e-7, 2.0)
        channel.output_on()
        assert channel.output_enabled()


def test_b2901_lowest_range_is_100nA(expected_protocol):
    idn = "Keysight Technologies,B2901B,MY1,5.0"
    with (
        expected_protocol(KeysightB2900, connect(idn, (1,))) as smu,
        pytest.raises(ValueError, match="current range = 1e-08 A is outside .*1e-07 to 3.03"),
    ):
        smu.channel(1).set_current_range(1e-8)


def test_list_sweep_on_the_timer(expected_protocol):
    pairs = (
        connect() + SOURCE_V2  # the limit just set is known: no :SENS2:CURR:PROT? before the sweep
        + ok(":SOUR2:VOLT:MODE LIST")
        + ok(":SOUR2:LIST:VOLT 0.0,0.1,0.2")
        + ok(":TRIG2:SOUR TIM")
        + ok(":TRIG2:TIM 0.01")
        + ok(":TRIG2:COUN 3")
        + ok(":OUTP2 ON")
        + ok(":INIT (@2)")
        + [("*OPC?", "1")]
        + [(":FETC:ARR? (@2)", "+0.0E+00,+1.0E-09,+1.0E-01,+5.0E-08,+1.6E-01,+1.0E-07")]
        + ok(":TRIG2:COUN 1")
        + ok(":TRIG2:SOUR AINT")
        + ok(":SOUR2:VOLT:MODE FIX")
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        channel = smu.channel(2)
        channel.source_voltage(0.2, current_limit=1e-7)
        readings = channel.sweep([0.0, 0.1, 0.2], delay=0.01)
    assert [r.voltage for r in readings] == [0.0, 0.1, 0.16]
    assert [r.compliance for r in readings] == [False, False, True]


def test_sweep_without_delay_uses_automatic_trigger(expected_protocol):
    pairs = (
        connect() + [(":SOUR1:FUNC:MODE?", "CURR"), (":SENS1:VOLT:PROT?", "+2.0E+00")]
        + ok(":SOUR1:CURR:MODE LIST")
        + ok(":SOUR1:LIST:CURR 1e-06")
        + ok(":TRIG1:SOUR AINT")
        + ok(":TRIG1:COUN 1")
        + ok(":OUTP1 ON")
        + ok(":INIT (@1)")
        + [("*OPC?", "1"), (":FETC:ARR? (@1)", "+2.0E+00,+1.0E-06")]
        + ok(":TRIG1:COUN 1")
        + ok(":TRIG1:SOUR AINT")
        + ok(":SOUR1:CURR:MODE FIX")
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        (result,) = smu.channel(1).sweep([1e-6], delay=0)
    assert (result.voltage, result.compliance) == (2.0, True)


def test_long_sweep_appends_in_chunks_of_100(expected_protocol):
    from xbarlab.drivers.numbers import format_numbers

    levels = [k * 0.01 for k in range(120)]
    pairs = (
        connect() + [(":SOUR1:FUNC:MODE?", "VOLT"), (":SENS1:CURR:PROT?", "+1.0E-03")]
        + ok(":SOUR1:VOLT:MODE LIST")
        + ok(":SOUR1:LIST:VOLT " + format_numbers(levels[:100]))
        + ok(":SOUR1:LIST:VOLT:APP " + format_numbers(levels[100:]))
        + ok(":TRIG1:SOUR AINT")
        + ok(":TRIG1:COUN 120")
        + ok(":OUTP1 ON")
        + ok(":INIT (@1)")
        + [("*OPC?", "1"), (":FETC:ARR? (@1)", ",".join(["+1.0E-01,+1.0E-06"] * 120))]
        + ok(":TRIG1:COUN 1")
        + ok(":TRIG1:SOUR AINT")
        + ok(":SOUR1:VOLT:MODE FIX")
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        assert len(smu.channel(1).sweep(levels, delay=0)) == 120


def test_pulse_train_is_measured_over_each_pulse(expected_protocol):
    """Each pulse is measured while it lasts: the aperture spans the pulse (acquire delay 0),
    V and I of every pulse come back from :FETC:ARR?, and NPLC and the acquire delay are put
    back afterwards."""
    pairs = (
        connect() + SOURCE_V2
        + [(":SOUR2:VOLT?", "+2.000000E-01"), (":SENS2:CURR:NPLC?", "+1.000000E+00"),
           (":TRIG2:ACQ:DEL?", "+1.000000E-03")]
        + ok(":SOUR2:VOLT 0.0")
        + ok(":SOUR2:FUNC:SHAP PULS")
        + ok(":SOUR2:VOLT:TRIG 1.5")
        + ok(":SOUR2:PULS:DEL 0.0")
        + ok(":SOUR2:PULS:WIDT 0.0001")
        + ok(":SENS2:CURR:APER 0.0001")
        + ok(":TRIG2:ACQ:DEL 0.0")
        + ok(":TRIG2:SOUR TIM")
        + ok(":TRIG2:TIM 0.001")
        + ok(":TRIG2:COUN 2")
        + ok(":OUTP2 ON")
        + ok(":INIT (@2)")
        + [("*OPC?", "1"),
           (":FETC:ARR? (@2)", "+1.500000E+00,+2.000000E-08,+1.500000E+00,+1.000000E-07")]
        + ok(":SOUR2:FUNC:SHAP DC")
        + ok(":TRIG2:COUN 1")
        + ok(":TRIG2:SOUR AINT")
        + ok(":TRIG2:ACQ:DEL 0.001")
        + ok(":SENS2:CURR:NPLC 1.0")
        + ok(":SOUR2:VOLT 0.2")
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        channel = smu.channel(2)
        channel.source_voltage(0.2, current_limit=1e-7)
        readings = channel.pulse(1.5, width=1e-4, count=2, period=1e-3)
    assert [(r.voltage, r.current) for r in readings] == [(1.5, 2e-8), (1.5, 1e-7)]
    assert [r.compliance for r in readings] == [False, True]  # the second at the 100 nA limit


def test_pulse_width_limits_depend_on_model(expected_protocol):
    idn = "Keysight Technologies,B2902A,MY1,3.0"
    pairs = connect(idn) + [(":SOUR1:FUNC:MODE?", "VOLT")]
    with (
        expected_protocol(KeysightB2900, pairs) as smu,
        pytest.raises(ValueError, match="pulse width = 2e-05 s is outside .*5e-05 to 100.0"),
    ):
        smu.channel(1).pulse(1.0, width=2e-5)


def test_error_names_the_command(expected_protocol):
    pairs = connect() + [(":OUTP1 ON", None), (":SYST:ERR?", '+802,"Output relay interlock"'),
                         (":SYST:ERR?", NO_ERROR)]
    with (
        expected_protocol(KeysightB2900, pairs) as smu,
        pytest.raises(InstrumentError, match="802 'Output relay interlock' after command ':OUTP1"),
    ):
        smu.channel(1).output_on()


def test_shutdown_every_channel(expected_protocol):
    pairs = (
        connect()
        + [(":SOUR1:FUNC:MODE?", "VOLT"), (":SOUR1:VOLT?", "+3.000000E-01")]
        + ok(":SOUR1:VOLT 0.0") + ok(":OUTP1 OFF")
        + [(":SOUR2:FUNC:MODE?", "CURR"), (":SOUR2:CURR?", "+1.500000E-03")]
        + ok(":SOUR2:CURR 0.00075") + ok(":SOUR2:CURR 0.0") + ok(":OUTP2 OFF")
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        smu.shutdown()


def test_reset(expected_protocol):
    pairs = connect() + ok("*RST") + ok(":FORM:ELEM:SENS VOLT,CURR") + ok(
        ':SENS1:FUNC "VOLT","CURR"') + ok(':SENS2:FUNC "VOLT","CURR"')
    with expected_protocol(KeysightB2900, pairs) as smu:
        smu.reset()


def test_an_interrupted_sweep_forgets_function_and_limit(expected_protocol):
    """Ctrl-C while waiting for the sweep: the limit just set is not trusted afterwards."""
    pairs = (
        connect() + SOURCE_V2 + ok(":SOUR2:VOLT:MODE LIST") + ok(":SOUR2:LIST:VOLT 0.1")
        + ok(":TRIG2:SOUR AINT") + ok(":TRIG2:COUN 1") + ok(":OUTP2 ON") + ok(":INIT (@2)")
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        channel = smu.channel(2)
        channel.source_voltage(0.2, current_limit=1e-7)
        assert channel._known_limit == ("VOLT", 1e-7)
        ask = smu.ask

        def interrupted(command, *args, **kwargs):
            if command == "*OPC?":
                raise KeyboardInterrupt
            return ask(command, *args, **kwargs)

        smu.ask = interrupted
        with pytest.raises(KeyboardInterrupt):
            channel.sweep([0.1], delay=0)
        assert channel._known_limit is None and channel._function is None
