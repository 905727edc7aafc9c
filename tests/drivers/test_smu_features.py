"""The settings every SMU driver offers (output-off mode, terminals, source and voltage ranges,
delays, autozero, filter, timed acquisition, abort), the reply forms the manuals allow, and
sweeps that put the instrument back on every way out: exact conversations on the fake transport
(every command listed in commands.toml), refusals before anything is sent."""

import math

import pytest
from xbarlab.drivers.errors import UnexpectedReplyError
from xbarlab.drivers.keithley2400 import Keithley2400
from xbarlab.drivers.keithley2450 import Keithley2450
from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.keysight_b2900 import KeysightB2900

K2400 = [("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4473504,C34 Sep 21 2016"),
         ("*CLS", None), (":FORM:ELEM VOLT,CURR,STAT", None), (":SYST:ERR?", '0,"No error"'),
         (':SENS:FUNC "VOLT","CURR"', None), (":SYST:ERR?", '0,"No error"')]
K2450 = [("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,04451269,1.7.7b"), ("*LANG?", "SCPI"),
         ("*CLS", None)]
K2600 = [("*IDN?", "Keithley Instruments Inc., Model 2636B, 4308079, 3.2.2"),
         ("errorqueue.clear()", None)]
B2900 = [("*IDN?", "Keysight Technologies,B2912A,MY51141234,3.4.2011.5100"), ("*CLS", None),
         (":FORM:ELEM:SENS VOLT,CURR", None), (":SYST:ERR?", '+0,"No error"'),
         (':SENS1:FUNC "VOLT","CURR"', None), (":SYST:ERR?", '+0,"No error"'),
         (':SENS2:FUNC "VOLT","CURR"', None), (":SYST:ERR?", '+0,"No error"')]
TSP_NONE = "0.00000e+00"


def scpi(*commands, error='0,"No error"'):
    """Each command followed by the error query (no error)."""
    return [pair for command in commands for pair in ((command, None), (":SYST:ERR?", error))]


def b2900(*commands):
    return scpi(*commands, error='+0,"No error"')


def tsp(*commands):
    return [pair for command in commands
            for pair in ((command, None), ("print(errorqueue.count)", TSP_NONE))]


# -- output-off mode and terminals, re-applied after a reset -----------------------------------

def test_2400_off_mode_and_rear_terminals_survive_a_reset(expected_protocol):
    pairs = (K2400 + scpi(":OUTP:SMOD HIMP", ":ROUT:TERM REAR", "*RST",
                          ":FORM:ELEM VOLT,CURR,STAT", ':SENS:FUNC "VOLT","CURR"',
                          ":OUTP:SMOD HIMP", ":ROUT:TERM REAR"))
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.set_output_off_mode("high_z")
        smu.set_terminals("rear")
        smu.reset()


def test_2450_off_mode_and_terminals_survive_a_reset(expected_protocol):
    pairs = K2450 + scpi(":OUTP:SMOD ZERO", ":ROUT:TERM REAR", "*RST", ":OUTP:SMOD ZERO",
                         ":ROUT:TERM REAR", error='0,"No error;0;0 0"')
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.set_output_off_mode("zero")
        smu.set_terminals("rear")
        smu.reset()


# -- over-voltage protection (2400, 2450), programmed from a limit and read back ------------------

@pytest.mark.parametrize(("volts", "level", "reply"), [
    (5.0, "20.0", "+2.000000E+01"),  # below the lowest level: the lowest
    (20.0, "20.0", "+2.000000E+01"), (20.5, "40.0", "+4.000000E+01"),
    (161.0, "210.0", "+2.100000E+02")])  # above 160 V only NONE is at or above
def test_2400_programs_the_lowest_level_at_or_above_the_limit(expected_protocol, volts, level,
                                                               reply):
    pairs = K2400 + scpi(f":SOUR:VOLT:PROT {level}") + [(":SOUR:VOLT:PROT?", reply)]
    with expected_protocol(Keithley2400, pairs) as smu:
        assert smu.protect_voltage(volts) == float(level)


@pytest.mark.parametrize(("volts", "word"), [(0.5, "PROT2"), (5.0, "PROT5"), (5.01, "PROT10"),
                                             (180.0, "PROT180"), (200.0, "NONE")])
def test_2450_programs_the_lowest_level_word_at_or_above_the_limit(expected_protocol, volts,
                                                                    word):
    pairs = K2450 + [(f":SOUR:VOLT:PROT {word}", None), (":SYST:ERR?", '0,"No error;0;0 0"'),
                     (":SOUR:VOLT:PROT?", word)]
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.protect_voltage(volts)


def test_a_protection_read_back_otherwise_is_an_error_naming_it(expected_protocol):
    pairs = K2450 + [(":SOUR:VOLT:PROT PROT5", None), (":SYST:ERR?", '0,"No error;0;0 0"'),
                     (":SOUR:VOLT:PROT?", "NONE")]
    with expected_protocol(Keithley2450, pairs) as smu, \
            pytest.raises(UnexpectedReplyError, match=r"'NONE' to ':SOUR:VOLT:PROT\?'.*5 V"):
        smu.protect_voltage(5.0)


def test_a_reset_programs_the_protection_again(expected_protocol):
    pairs = (K2400 + scpi(":SOUR:VOLT:PROT 20.0") + [(":SOUR:VOLT:PROT?", "+2.000000E+01")]
             + scpi("*RST", ":FORM:ELEM VOLT,CURR,STAT", ':SENS:FUNC "VOLT","CURR"',
                    ":SOUR:VOLT:PROT 20.0"))
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.protect_voltage(3.0)
        smu.reset()


def test_a_protection_above_every_level_is_refused_before_anything_is_sent(expected_protocol):
    with expected_protocol(Keithley2450, K2450) as smu, \
            pytest.raises(ValueError, match="voltage protection = 211.0 V is outside"):
        smu.protect_voltage(211.0)


def test_2636b_off_mode_per_channel_survives_a_reset(expected_protocol):
    pairs = K2600 + tsp("smub.source.offmode = smub.OUTPUT_HIGH_Z", "reset()",
                        "smub.source.offmode = smub.OUTPUT_HIGH_Z")
    with expected_protocol(Keithley2600, pairs) as smu:
        smu.smub.set_output_off_mode("high_z")
        smu.reset()


def test_b2900_off_mode_survives_a_reset(expected_protocol):
    pairs = B2900 + b2900(":OUTP2:OFF:MODE ZERO", "*RST", ":FORM:ELEM:SENS VOLT,CURR",
                          ':SENS1:FUNC "VOLT","CURR"', ':SENS2:FUNC "VOLT","CURR"',
                          ":OUTP2:OFF:MODE ZERO")
    with expected_protocol(KeysightB2900, pairs) as smu:
        smu.channel(2).set_output_off_mode("zero")
        smu.reset()


@pytest.mark.parametrize(("driver", "pairs", "mode", "allowed"), [
    (Keithley2600, K2600, "guard", "normal, zero, high_z"),
    (KeysightB2900, B2900, "guard", "normal, zero, high_z"),
    (Keithley2400, K2400, "floating", "normal, zero, high_z, guard"),
])
def test_an_off_mode_the_model_lacks_is_refused_before_sending(expected_protocol, driver, pairs,
                                                                mode, allowed):
    with expected_protocol(driver, pairs) as smu:
        channel = next(iter(smu.channels.values())) if hasattr(smu, "channels") else smu
        with pytest.raises(ValueError, match=f"output-off mode = '{mode}' is not one of the "
                                             f"allowed values {allowed}"):
            channel.set_output_off_mode(mode)


def test_terminals_only_on_models_that_have_them(expected_protocol):
    with (
        expected_protocol(Keithley2600, K2600) as smu,
        pytest.raises(NotImplementedError, match="no front/rear terminal switch"),
    ):
        smu.smua.set_terminals("rear")
    with (
        expected_protocol(Keithley2400, K2400) as smu,
        pytest.raises(ValueError, match="terminals = 'back' is not one of the allowed values "
                                        "'front', 'rear'"),
    ):
        smu.set_terminals("back")


# -- ranges, delays, autozero, filter ---------------------------------------------------------

def test_2400_ranges_delays_autozero_and_filter(expected_protocol):
    pairs = K2400 + scpi(
        ":SOUR:VOLT:RANG 2.0", ":SOUR:CURR:RANG:AUTO ON", ":SENS:VOLT:RANG 20.0",
        ":SENS:VOLT:RANG:AUTO ON", ":SOUR:DEL:AUTO OFF", ":SOUR:DEL 0.01", ":SOUR:DEL:AUTO ON",
        ":SYST:AZER ONCE", ":SENS:AVER:TCON MOV", ":SENS:AVER:COUN 10", ":SENS:AVER ON",
        ":SENS:AVER OFF")
    with expected_protocol(Keithley2400, pairs) as smu:
        smu.set_source_range(2.0)
        smu.set_source_range(None, "CURR")
        smu.set_voltage_range(20.0)
        smu.set_voltage_range(None)
        smu.set_source_delay(0.01)
        smu.set_source_delay(None)
        smu.set_autozero("once")
        smu.set_filter(10, "moving")
        smu.set_filter(1)
        with pytest.raises(NotImplementedError, match="no measure delay of its own"):
            smu.set_measure_delay(0.01)


def test_2450_settings_go_to_both_functions(expected_protocol):
    pairs = K2450 + scpi(
        ":SOUR:CURR:RANG 1e-05", ":SOUR:VOLT:RANG:AUTO ON", ":SENS:VOLT:RANG 2.0",
        ":SOUR:VOLT:DEL:AUTO OFF", ":SOUR:VOLT:DEL 0.001", ":SOUR:CURR:DEL:AUTO OFF",
        ":SOUR:CURR:DEL 0.001", ":SENS:CURR:AZER OFF", ":SENS:VOLT:AZER OFF",
        ":SENS:AZER:ONCE", ":SENS:CURR:AVER:TCON REP", ":SENS:CURR:AVER:COUN 5",
        ":SENS:CURR:AVER ON", ":SENS:VOLT:AVER:TCON REP", ":SENS:VOLT:AVER:COUN 5",
        ":SENS:VOLT:AVER ON", error='0,"No error;0;0 0"')
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.set_source_range(1e-5, "CURR")
        smu.set_source_range(None)
        smu.set_voltage_range(2.0)
        smu.set_source_delay(0.001)
        smu.set_autozero("off")
        smu.set_autozero("once")
        smu.set_filter(5)


def test_2636b_ranges_delays_autozero_filter_and_the_auto_measure_delay(expected_protocol):
    pairs = K2600 + tsp(
        "smua.source.rangev = 2.0", "smua.source.autorangei = smua.AUTORANGE_ON",
        "smua.measure.rangev = 20.0", "smua.measure.autorangev = smua.AUTORANGE_ON",
        "smua.source.delay = 0.002", "smua.source.delay = smua.DELAY_AUTO",
        "smua.measure.delay = 0.005", "smua.measure.delay = smua.DELAY_AUTO",
        "smua.measure.autozero = smua.AUTOZERO_OFF",
        "smua.measure.filter.type = smua.FILTER_MOVING_AVG; smua.measure.filter.count = 20; "
        "smua.measure.filter.enable = smua.FILTER_ON",
        "smua.measure.filter.enable = smua.FILTER_OFF")
    with expected_protocol(Keithley2600, pairs) as smu:
        channel = smu.smua
        channel.set_source_range(2.0)
        channel.set_source_range(None, "CURR")
        channel.set_voltage_range(20.0)
        channel.set_voltage_range(None)
        channel.set_source_delay(0.002)
        channel.set_source_delay(None)
        channel.set_measure_delay(0.005)
        channel.set_measure_delay(None)
        channel.set_autozero("off")
        channel.set_filter(20, "moving")
        channel.set_filter(1)


def test_b2900_ranges_and_trigger_delays(expected_protocol):
    pairs = B2900 + b2900(":SOUR1:VOLT:RANG:AUTO OFF", ":SOUR1:VOLT:RANG 20.0",
                          ":SENS2:VOLT:RANG:AUTO ON", ":TRIG1:TRAN:DEL 0.001",
                          ":TRIG1:ACQ:DEL 0.002")
    with expected_protocol(KeysightB2900, pairs) as smu:
        channel = smu.channel(1)
        channel.set_source_range(20.0)
        smu.channel(2).set_voltage_range(None)
        channel.set_source_delay(0.001)
        channel.set_measure_delay(0.002)
        with pytest.raises(NotImplementedError, match="no automatic setting"):
            channel.set_measure_delay(None)
        with pytest.raises(NotImplementedError, match="no averaging filter"):
            channel.set_filter(4)
        with pytest.raises(NotImplementedError, match="no autozero setting"):
            channel.set_autozero("once")


@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.set_source_range(300.0), r"source range = 300.0 V is outside the allowed "
                                          r"range 0.2 to 210.0 V"),
    (lambda c: c.set_source_range(1e-9, "CURR"), r"source range = 1e-09 A is outside"),
    (lambda c: c.set_voltage_range(0.01), r"voltage range = 0.01 V is outside"),
    (lambda c: c.set_source_delay(-1.0), r"source delay = -1.0 s is outside"),
    (lambda c: c.set_filter(101), r"filter count = 101 is outside the allowed range 1 to 100"),
    (lambda c: c.set_filter(3, "median"), r"filter type = 'median' is not one of"),
    (lambda c: c.set_autozero("always"), r"autozero = 'always' is not one of the allowed "
                                         r"values off, once, auto"),
    (lambda c: c.measure_timed(2501, 1.0), r"count = 2501 is outside the allowed range 1 to "
                                           r"2500"),
    (lambda c: c.measure_timed(10, 1e-4), r"interval = 0.0001 s is outside"),
])
def test_settings_out_of_range_are_refused_before_sending(expected_protocol, call, message):
    with expected_protocol(Keithley2400, K2400) as smu, pytest.raises(ValueError, match=message):
        call(smu)


# -- timed acquisition on the trigger timer, abort ---------------------------------------------

def test_2400_timed_acquisition_on_the_arm_timer(expected_protocol):
    pairs = K2400 + scpi(":ARM:SOUR TIM", ":ARM:TIM 0.5", ":ARM:COUN 3", ":TRIG:COUN 1") + [
        (":READ?", "+2.0E-01,+1.0E-06,+0,+2.0E-01,+1.1E-06,+0,+2.0E-01,+1.2E-06,+0")
    ] + scpi(":ARM:SOUR IMM", ":ARM:COUN 1")
    with expected_protocol(Keithley2400, pairs) as smu:
        readings = smu.measure_timed(3, 0.5)
    assert [r.current for r in readings] == [1.0e-6, 1.1e-6, 1.2e-6]
    steps = [b.timestamp - a.timestamp for a, b in zip(readings[:-1], readings[1:], strict=True)]
    assert steps == pytest.approx([0.5, 0.5])


def test_2400_interrupted_timed_acquisition_is_aborted_and_put_back(expected_protocol):
    pairs = K2400 + scpi(":ARM:SOUR TIM", ":ARM:TIM 0.5", ":ARM:COUN 3", ":TRIG:COUN 1") + [
        (":READ?", None)] + scpi(":ABOR", ":ARM:SOUR IMM", ":ARM:COUN 1")
    with expected_protocol(Keithley2400, pairs) as smu:
        interrupt_reply_to(smu._resource, ":READ?")
        with pytest.raises(KeyboardInterrupt):
            smu.measure_timed(3, 0.5)


def interrupt_reply_to(resource, query):
    """Make `resource` raise KeyboardInterrupt (Ctrl-C) while waiting for the reply to
    `query`, the first time it is sent."""
    write, read, sent = resource.write, resource.read, []

    def recording_write(command):
        sent.append(command)
        write(command)

    def interrupted_read():
        if sent[-1] == query and sent.count(query) == 1:
            sent.append("")  # once
            raise KeyboardInterrupt
        return read()

    resource.write, resource.read = recording_write, interrupted_read


def test_2400_interrupted_sweep_leaves_fixed_mode_and_one_trigger(expected_protocol):
    pairs = K2400 + [(":SOUR:FUNC?", "VOLT")] + scpi(
        ":SOUR:VOLT:MODE LIST", ":SOUR:LIST:VOLT 0.1,0.2", ":SOUR:DEL 0.0", ":TRIG:COUN 2",
        ":OUTP ON") + [(":READ?", None)] + scpi(":ABOR", ":TRIG:COUN 1", ":SOUR:VOLT:MODE FIX")
    with expected_protocol(Keithley2400, pairs) as smu:
        interrupt_reply_to(smu._resource, ":READ?")
        with pytest.raises(KeyboardInterrupt):
            smu.sweep([0.1, 0.2], 0.0)


def test_2450_failed_pulse_train_is_aborted_and_its_level_put_back(expected_protocol):
    error = '0,"No error;0;0 0"'
    failure = [(":SYST:ERR?", '-225,"Out of memory;1;0 0"'), (":SYST:ERR?", error)]
    pairs = K2450 + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "2.000000E-01")] + scpi(
        ':TRIG:LOAD "Empty"', ":SOUR:VOLT 1.5", ":TRIG:BLOC:SOUR:STAT 1,ON",
        ":TRIG:BLOC:DEL:CONS 2,0.001", ":TRIG:BLOC:SOUR:STAT 3,OFF",
        ":TRIG:BLOC:DEL:CONS 4,0.0", ":TRIG:BLOC:BRAN:COUN 5,2,1", error=error) + [
        (":INIT", None), ("*WAI", None)] + failure + scpi(":ABOR", ":SOUR:VOLT 0.2",
                                                          error=error)
    with expected_protocol(Keithley2450, pairs) as smu, pytest.raises(Exception,
                                                                       match="Out of memory"):
        smu.pulse(1.5, 1e-3, count=2)


def test_2450_timed_acquisition_waits_on_trigger_timer_1(expected_protocol):
    blocks = [':TRAC:CLE "defbuffer1"', ':TRIG:LOAD "Empty"', ":TRIG:TIM1:DEL 0.1",
              ":TRIG:TIM1:COUN 2", ":TRIG:TIM1:STAR:STIM NOT1", ":TRIG:TIM1:STAT ON",
              ":TRIG:BLOC:NOT 1,1", ":TRIG:BLOC:MEAS 2", ":TRIG:BLOC:WAIT 3,TIM1",
              ":TRIG:BLOC:BRAN:COUN 4,2,2"]
    error = '0,"No error;0;0 0"'
    pairs = K2450 + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT:ILIM?", "1.000000E-03")] + scpi(
        *blocks, error=error) + [(":INIT", None), ("*WAI", None),
                                 (':TRAC:DATA? 1,2,"defbuffer1",READ,SOUR',
                                  "1.0E-06,2.0E-01,1.0E-03,2.0E-01"),
                                 (":SYST:ERR?", error)] + scpi(":TRIG:TIM1:STAT OFF",
                                                                error=error)
    with expected_protocol(Keithley2450, pairs) as smu:
        first, second = smu.measure_timed(2, 0.1)
    assert (first.current, first.compliance, second.compliance) == (1e-6, False, True)


def test_2636b_timed_acquisition_paces_the_measure_layer_on_timer_1(expected_protocol):
    chunk = "; ".join([
        "smua.nvbuffer1.clear()", "smua.nvbuffer2.clear()", "trigger.timer[1].delay = 2.0",
        "trigger.timer[1].count = 2", "trigger.timer[1].passthrough = true",
        "trigger.timer[1].stimulus = smua.trigger.ARMED_EVENT_ID",
        "smua.trigger.source.action = smua.DISABLE",
        "smua.trigger.measure.iv(smua.nvbuffer1, smua.nvbuffer2)",
        "smua.trigger.measure.action = smua.ENABLE",
        "smua.trigger.measure.stimulus = trigger.timer[1].EVENT_ID", "smua.trigger.count = 3",
        "smua.trigger.initiate()", "waitcomplete()"])
    restore = "smua.trigger.measure.stimulus = 0; trigger.timer[1].stimulus = 0"
    buffer = ("printbuffer(1, 3, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
              "smua.nvbuffer1.statuses)")
    reply = ("1.0e-06, 2.0e-01, 0.0e+00, 9.9e+37, 2.0e-01, 0.0e+00, 1.2e-06, 2.0e-01, "
             "0.0e+00")
    pairs = K2600 + tsp(chunk, restore) + [(buffer, reply)]
    with expected_protocol(Keithley2600, pairs) as smu:
        readings = smu.smua.measure_timed(3, 2.0)
    assert readings[0].current == 1e-6 and readings[2].current == 1.2e-6
    assert math.isnan(readings[1].current) and readings[1].overflow
    assert readings[2].timestamp - readings[0].timestamp == pytest.approx(4.0)


def test_b2900_timed_acquisition_runs_the_acquire_trigger_alone(expected_protocol):
    pairs = B2900 + [(":SOUR1:FUNC:MODE?", "VOLT"), (":SENS1:CURR:PROT?", "+1.000000E-03"),
                     (":TRIG1:ACQ:SOUR TIM;:TRIG1:ACQ:TIM 0.01;:TRIG1:ACQ:COUN 2;:SYST:ERR?",
                      '+0,"No error"'),
                     (":INIT:ACQ (@1);*OPC?;:FETC:ARR? (@1);:SYST:ERR?",
                      '1;+2.0E-01,+1.0E-06,+2.0E-01,+1.1E-06;+0,"No error"'),
                     (":TRIG1:ACQ:COUN 1;:TRIG1:ACQ:SOUR AINT;:SYST:ERR?", '+0,"No error"')]
    with expected_protocol(KeysightB2900, pairs) as smu:
        readings = smu.channel(1).measure_timed(2, 0.01)
    assert [r.current for r in readings] == [1.0e-6, 1.1e-6]


@pytest.mark.parametrize(("driver", "pairs", "abort"), [
    (Keithley2400, K2400, scpi(":ABOR")),
    (Keithley2450, K2450, scpi(":ABOR", error='0,"No error;0;0 0"')),
    (Keithley2600, K2600, tsp("smua.abort()")),
    (KeysightB2900, B2900, b2900(":ABOR (@1)")),
])
def test_abort(expected_protocol, driver, pairs, abort):
    with expected_protocol(driver, pairs + abort) as smu:
        channel = next(iter(smu.channels.values())) if hasattr(smu, "channels") else smu
        channel.abort()


# -- both B2900 channels at once -----------------------------------------------------------------

def test_b2900_measures_both_channels_together(expected_protocol):
    pairs = B2900 + [(":SOUR1:FUNC:MODE?", "VOLT"), (":SOUR2:FUNC:MODE?", "CURR"),
                     (":MEAS? (@1,2);:SENS1:CURR:PROT:TRIP?;:SENS2:VOLT:PROT:TRIP?;:SYST:ERR?",
                      "+2.0E-01,+1.0E-06,+2.1E+00,-9.9E+37;0;1;+0,\"No error\"")]
    with expected_protocol(KeysightB2900, pairs) as smu:
        first, second = smu.measure_channels()
    assert (first.voltage, first.current, first.compliance, first.overflow) == (
        0.2, 1e-6, False, False)
    assert second.voltage == 2.1 and math.isnan(second.current)
    assert second.overflow and second.compliance


def test_a_one_channel_b2900_has_nothing_to_pair(expected_protocol):
    pairs = [("*IDN?", "Agilent Technologies,B2901A,MY1,2.0"), ("*CLS", None)] + b2900(
        ":FORM:ELEM:SENS VOLT,CURR", ':SENS1:FUNC "VOLT","CURR"')
    with expected_protocol(KeysightB2900, pairs) as smu, pytest.raises(
            NotImplementedError, match="B2901 has one channel"):
        smu.measure_channels()


# -- reply forms the manuals allow ---------------------------------------------------------------

@pytest.mark.parametrize(("reply", "enabled"), [("1", True), ("1.0", True), ("+1", True),
                                                 ("0", False), ("0.0", False), ("ON", True)])
def test_b2900_reads_numeric_and_word_booleans(expected_protocol, reply, enabled):
    pairs = B2900 + [(":OUTP1?", reply), (":SENS1:CURR:RANG:AUTO?", reply)]
    with expected_protocol(KeysightB2900, pairs) as smu:
        assert smu.channel(1).output_enabled() is enabled
        assert smu.channel(1).current_autorange is enabled


def test_a_reply_that_is_no_boolean_raises_naming_it(expected_protocol):
    with expected_protocol(KeysightB2900, B2900 + [(":OUTP1?", "maybe")]) as smu, pytest.raises(
            ValueError, match="'maybe' is not a boolean"):
        smu.channel(1).output_enabled()


# -- the 2450's ramp, in the instrument -----------------------------------------------------------

def test_2450_shutdown_ramps_in_one_instrument_sweep(expected_protocol):
    error = '0,"No error;0;0 0"'
    pairs = K2450 + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "1.500000E+00"),
                     (":OUTP?", "1")] + scpi(":SOUR:SWE:VOLT:LIN 1.5,0.0,4,0.0",
                                              error=error) + [
        (":INIT", None), ("*WAI", None), (":SYST:ERR?", error)] + scpi(
        ":SOUR:VOLT 0.0", ":OUTP OFF", error=error)
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.shutdown()


def test_2450_ramp_with_the_output_off_sets_the_level(expected_protocol):
    error = '0,"No error;0;0 0"'
    pairs = K2450 + [(":SOUR:FUNC?", "VOLT"), (":SOUR:VOLT?", "0.000000E+00"),
                     (":OUTP?", "0")] + scpi(":SOUR:VOLT 2.0", error=error)
    with expected_protocol(Keithley2450, pairs) as smu:
        smu.ramp_to(2.0)


# -- overflow: the instrument's overflow value is NaN with the flag -------------------------------

def _overflow(catalog_name: str) -> float:
    from xbarlab.drivers.catalog import load_catalog

    return load_catalog()[catalog_name].overflow.value


def _overflow_conversation(driver, text):
    """The pairs of one `measure()` on channel 1/a whose current reply is `text`."""
    if driver is Keithley2400:
        return K2400 + [(":READ?", f"+2.000000E-01,{text},+0.000000E+00")]
    if driver is Keithley2450:
        return K2450 + [(":SOUR:FUNC?", "VOLT"), (':READ? "defbuffer1",READ,SOUR',
                                                  f"{text},2.000000E-01"),
                        (":SOUR:VOLT:ILIM:TRIP?", "0")]
    if driver is Keithley2600:
        return K2600 + [("print(smua.measure.iv())", f"{text}\t2.00000e-01"),
                        ("print(smua.source.compliance)", "false")]
    return B2900 + [(":SOUR1:FUNC:MODE?", "VOLT"), (":MEAS? (@1)", f"+2.000000E-01,{text}"),
                    (":SENS1:CURR:PROT:TRIP?", "0")]


@pytest.mark.parametrize("driver", [Keithley2400, Keithley2450, Keithley2600, KeysightB2900])
@pytest.mark.parametrize("sign", [1, -1])
def test_each_smu_reads_its_overflow_value_as_nan_with_the_flag(expected_protocol, driver, sign):
    """The catalogue's cited overflow value (either sign) is NaN with `overflow`, the other
    quantity of the reading is kept; a value just below it is a number."""
    value = sign * _overflow(driver.catalog_name)
    with expected_protocol(driver, _overflow_conversation(driver, f"{value:.6E}")) as smu:
        channel = next(iter(smu.channels.values())) if hasattr(smu, "channels") else smu
        reading = channel.measure()
    assert math.isnan(reading.current) and reading.overflow
    assert reading.voltage == pytest.approx(0.2) and not reading.compliance
    below = 0.99 * _overflow(driver.catalog_name)
    with expected_protocol(driver, _overflow_conversation(driver, f"{below:.6E}")) as smu:
        channel = next(iter(smu.channels.values())) if hasattr(smu, "channels") else smu
        reading = channel.measure()
    assert reading.current == pytest.approx(below) and not reading.overflow


def test_the_2400_overflow_is_its_manual_value():
    """The 2400 returns 9.91E+37 (User's Manual ch. 7), the others SCPI infinity 9.9E+37."""
    from xbarlab.drivers.keithley2600 import Keithley2600Channel
    from xbarlab.drivers.keysight_b2900 import KeysightB2900Channel

    assert Keithley2400.overflow_value == _overflow("keithley2400") == 9.91e37
    for channel, table in ((Keithley2450, "keithley2450"), (Keithley2600Channel, "keithley2600"),
                           (KeysightB2900Channel, "keysight_b2900")):
        assert channel.overflow_value == _overflow(table) == 9.9e37
