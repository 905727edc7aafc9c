"""Keithley 2600B (TSP) driver: exact command/reply conversations on a fake transport."""

import pytest
from xbarlab.drivers.errors import InstrumentError, WrongInstrumentError
from xbarlab.drivers.keithley2600 import Keithley2600

IDN = "Keithley Instruments Inc., Model 2636B, 4308079, 3.2.2"
NONE = "0.00000e+00"


def ok(command):
    return [(command, None), ("print(errorqueue.count)", NONE)]


def connect(idn=IDN):
    return [("*IDN?", idn), ("errorqueue.clear()", None)]


def test_two_channel_and_one_channel_models(expected_protocol):
    with expected_protocol(Keithley2600, connect()) as smu:
        assert sorted(smu.channels) == ["smua", "smub"]
        assert smu.smub.name == "smub"
        assert smu.channel("a") is smu.smua and smu.channel("smub") is smu.smub
    idn = "Keithley Instruments, Model 2601B, 1, 3.0"
    with expected_protocol(Keithley2600, connect(idn)) as smu:
        assert list(smu.channels) == ["smua"]
        with pytest.raises(AttributeError, match="2601B has one channel"):
            _ = smu.smub
        with pytest.raises(ValueError, match="channel = 'b' is not one of the allowed values smua"):
            smu.channel("b")


def test_a_2400_is_refused(fake_resource):
    resource = fake_resource("keithley2600", [("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1")])
    with pytest.raises(WrongInstrumentError, match="expected a Keithley 2600B"):
        Keithley2600(resource)


def test_source_voltage_100nA_limit_is_not_zero(expected_protocol):
    # function, limit and level as one chunk (the level after its limit), one error check
    pairs = connect() + ok("smub.source.func = smub.OUTPUT_DCVOLTS; smub.source.limiti = 1e-07; "
                           "smub.source.levelv = 0.2")
    with expected_protocol(Keithley2600, pairs) as smu:
        smu.smub.source_voltage(0.2, current_limit=100e-9)


def test_source_current(expected_protocol):
    pairs = connect() + ok("smua.source.func = smua.OUTPUT_DCAMPS; smua.source.limitv = 2.0; "
                           "smua.source.leveli = -1e-06")
    with expected_protocol(Keithley2600, pairs) as smu:
        smu.smua.source_current(-1e-6, voltage_limit=2.0)


def test_model_limits(expected_protocol):
    idn = "Keithley Instruments Inc., Model 2602B, 1, 3.0"
    with expected_protocol(Keithley2600, connect(idn)) as smu:
        with pytest.raises(ValueError, match="level = 41.0 V is outside .*-40.0 to 40.0 V"):
            smu.smua.source_voltage(41.0, 1e-3)
        with pytest.raises(ValueError, match="current range = 1e-10 A is outside"):
            smu.smua.set_current_range(1e-10)


def test_tsp_error_carries_code_message_and_command(expected_protocol):
    chunk = ("smua.source.func = smua.OUTPUT_DCVOLTS; smua.source.limiti = 0.001; "
             "smua.source.levelv = 0.1")
    pairs = connect() + [
        (chunk, None),
        ("print(errorqueue.count)", "1.00000e+00"),
        ("print(errorqueue.next())", "-2.22000e+02\tParameter data out of range\t2.00000e+00\t0"),
        ("print(errorqueue.count)", NONE),
    ]
    with expected_protocol(Keithley2600, pairs) as smu, pytest.raises(InstrumentError) as info:
        smu.smua.source_voltage(0.1, 1e-3)
    assert info.value.code == -222
    assert info.value.message == "Parameter data out of range"
    assert info.value.command == chunk  # the message that caused it


def test_settings(expected_protocol):
    pairs = (
        connect()
        + ok("smua.measure.nplc = 0.001")
        + [("print(smua.measure.nplc)", "1.00000e-03")]
        + ok("smua.measure.autorangei = smua.AUTORANGE_ON")
        + [("print(smua.measure.autorangei)", "1.00000e+00")]
        + ok("smua.measure.rangei = 1e-10")
        + [("print(smua.measure.rangei)", "1.00000e-10")]
        + [("print(smua.source.limiti)", "1.00000e-07"), ("print(smua.source.limitv)", "2.0e+01")]
        + ok("smua.source.output = smua.OUTPUT_ON")
        + [("print(smua.source.output)", "1.00000e+00")]
        + ok("smua.source.output = smua.OUTPUT_OFF")
    )
    with expected_protocol(Keithley2600, pairs) as smu:
        channel = smu.smua
        channel.set_nplc(0.001)
        assert channel.nplc == 0.001
        channel.set_current_range(None)
        assert channel.current_autorange is True
        channel.set_current_range(1e-10)
        assert channel.current_range == 1e-10
        assert (channel.current_limit, channel.voltage_limit) == (1e-7, 20.0)
        channel.output_on()
        assert channel.output_enabled()
        channel.output_off()


def test_nplc_range(expected_protocol):
    with (
        expected_protocol(Keithley2600, connect()) as smu,
        pytest.raises(ValueError, match="nplc = 30 PLC is outside the allowed range 0.001"),
    ):
        smu.smua.set_nplc(30)


def test_measure_iv_and_compliance(expected_protocol):
    pairs = connect() + [
        ("print(smua.measure.iv())", "1.00000e-07\t1.87000e-01"),
        ("print(smua.source.compliance)", "true"),
    ]
    with expected_protocol(Keithley2600, pairs) as smu:
        result = smu.smua.measure()
    assert (result.voltage, result.current, result.compliance) == (0.187, 1e-7, True)


def test_list_sweep_in_the_trigger_model(expected_protocol):
    pairs = (
        connect()
        + [("print(smua.source.func)", "1.00000e+00"), ("print(smua.source.limiti)", "1e-07")]
        + ok("smua.nvbuffer1.clear()")
        + ok("smua.nvbuffer2.clear()")
        + ok("smua.measure.delay = 0.001")
        + ok("smua.trigger.source.listv({0.0,0.1,0.2})")
        + ok("smua.trigger.source.limiti = 1e-07")
        + ok("smua.trigger.measure.iv(smua.nvbuffer1, smua.nvbuffer2)")
        + ok("smua.trigger.measure.action = smua.ENABLE")
        + ok("smua.trigger.endpulse.action = smua.SOURCE_HOLD")
        + ok("smua.trigger.endsweep.action = smua.SOURCE_IDLE")
        + ok("smua.trigger.count = 3")
        + ok("smua.trigger.source.action = smua.ENABLE")
        + ok("smua.source.output = smua.OUTPUT_ON")
        + [("smua.trigger.initiate()", None), ("waitcomplete()", None)]
        + [("print(errorqueue.count)", NONE)]
        + [(
            "printbuffer(1, 3, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
            "smua.nvbuffer1.statuses)",
            "1.00000e-09, 0.00000e+00, 0.00000e+00, 5.00000e-08, 1.00000e-01, 4.00000e+00, "
            "1.00000e-07, 1.60000e-01, 6.80000e+01",
        )]
    )
    with expected_protocol(Keithley2600, pairs) as smu:
        readings = smu.smua.sweep([0.0, 0.1, 0.2], delay=1e-3)
    assert [r.current for r in readings] == [1e-9, 5e-8, 1e-7]
    assert [r.voltage for r in readings] == [0.0, 0.1, 0.16]
    assert [r.compliance for r in readings] == [False, False, True]


def _sweep_setup(points, end):
    """The per-statement set-up of a sweep's first chunk (each confirmed) ending `end`."""
    return [
        "smua.nvbuffer1.clear()", "smua.nvbuffer2.clear()", "smua.measure.delay = 0.0",
        f"smua.trigger.source.listv({{{points}}})", "smua.trigger.source.limiti = 0.001",
        "smua.trigger.measure.iv(smua.nvbuffer1, smua.nvbuffer2)",
        "smua.trigger.measure.action = smua.ENABLE",
        "smua.trigger.endpulse.action = smua.SOURCE_HOLD",
        f"smua.trigger.endsweep.action = smua.{end}",
        f"smua.trigger.count = {points.count(',') + 1}",
        "smua.trigger.source.action = smua.ENABLE", "smua.source.output = smua.OUTPUT_ON",
    ]


def _start():
    return [("smua.trigger.initiate()", None), ("waitcomplete()", None),
            ("print(errorqueue.count)", NONE)]


def test_a_142_point_sweep_runs_as_two_chunks_into_one_buffer(expected_protocol):
    """The first 100 levels end with the source held at the last one, the next 42 run into the
    same buffers and end idle, as one sweep; one printbuffer of all 142 readings."""
    levels = [k / 100 for k in range(142)]
    first = ",".join(repr(v) if v else "0.0" for v in levels[:100])
    rest = ",".join(repr(v) for v in levels[100:])
    chunk = ("smua.trigger.source.listv({" + rest + "}); smua.trigger.count = 42; "
             "smua.trigger.endsweep.action = smua.SOURCE_IDLE")
    buffer = ("printbuffer(1, 142, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
              "smua.nvbuffer1.statuses)")
    reply = ", ".join(f"{v * 1e-6:.5e}, {v:.5e}, 0.00000e+00" for v in levels)
    pairs = connect() + [("print(smua.source.func)", "1.00000e+00"),
                         ("print(smua.source.limiti)", "1.00000e-03")]
    for statement in _sweep_setup(first, "SOURCE_HOLD"):
        pairs += ok(statement)
    pairs += _start() + ok(chunk) + _start() + [(buffer, reply)]
    with expected_protocol(Keithley2600, pairs) as smu:
        readings = smu.smua.sweep(levels, delay=0)
    assert [r.voltage for r in readings] == pytest.approx(levels)
    assert smu.smua.max_sweep_points == 60000


def test_a_sweep_beyond_one_buffer_is_refused_before_configuring(expected_protocol):
    pairs = connect() + [("print(smua.source.func)", "1.00000e+00")]
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(ValueError, match="levels has 60001 values; the allowed number is 1 to "
                                        "60000"),
    ):
        smu.smua.sweep([0.1] * 60001, delay=0)


def test_a_2600a_is_refused_with_the_reason(fake_resource):
    resource = fake_resource("keithley2600", [
        ("*IDN?", "Keithley Instruments Inc., Model 2636A, 1234, 2.2.1")])
    with pytest.raises(WrongInstrumentError, match="2600A series is refused: .*use a 2600B"):
        Keithley2600(resource)
    assert resource.closed


def _pulse_statements(ch, unit, level, limit_unit, limit, width, period, count, timer_count,
                      nplc_pulse):
    return [
        f"{ch}.source.level{unit} = 0.0", f"{ch}.measure.nplc = {nplc_pulse}",
        f"{ch}.nvbuffer1.clear()", f"{ch}.nvbuffer2.clear()", f"{ch}.measure.delay = 0.0",
        f"{ch}.trigger.source.list{unit}({{{level}}})",
        f"{ch}.trigger.source.limit{limit_unit} = {limit}",
        f"{ch}.trigger.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)",
        f"{ch}.trigger.measure.action = {ch}.ENABLE",
        f"{ch}.trigger.endpulse.action = {ch}.SOURCE_IDLE",
        f"{ch}.trigger.endsweep.action = {ch}.SOURCE_IDLE", f"{ch}.trigger.count = {count}",
        f"{ch}.trigger.source.action = {ch}.ENABLE", f"trigger.timer[1].delay = {period}",
        f"trigger.timer[1].count = {timer_count}", "trigger.timer[1].passthrough = true",
        f"trigger.timer[1].stimulus = {ch}.trigger.ARMED_EVENT_ID",
        f"trigger.timer[2].delay = {width}", "trigger.timer[2].count = 1",
        "trigger.timer[2].passthrough = false",
        "trigger.timer[2].stimulus = trigger.timer[1].EVENT_ID",
        f"{ch}.trigger.source.stimulus = trigger.timer[1].EVENT_ID",
        f"{ch}.trigger.measure.stimulus = trigger.timer[1].EVENT_ID",
        f"{ch}.trigger.endpulse.stimulus = trigger.timer[2].EVENT_ID",
        f"{ch}.source.output = {ch}.OUTPUT_ON", f"{ch}.trigger.initiate()", "waitcomplete()",
        f"delay({period - width:g})",
    ]


def _restore(ch, unit, nplc, delay, previous):
    return [f"{ch}.trigger.source.stimulus = 0", f"{ch}.trigger.measure.stimulus = 0",
            f"{ch}.trigger.endpulse.stimulus = 0", "trigger.timer[1].stimulus = 0",
            "trigger.timer[2].stimulus = 0", f"{ch}.measure.nplc = {nplc}",
            f"{ch}.measure.delay = {delay}", f"{ch}.source.level{unit} = {previous}"]


def test_pulse_train_is_measured_over_each_pulse(expected_protocol):
    """Trigger-model pulses (timer 1 paces them, timer 2 ends each), each measured while it
    lasts: NPLC = width x line frequency (1 ms at 50 Hz: 0.05 PLC), no measure delay; one
    chunk, one printbuffer of I, V and status per pulse; stimuli, NPLC, delay and level put
    back."""
    pairs = connect() + [
        ("print(smub.source.func)", "1.00000e+00"), ("print(smub.source.levelv)", "2.00000e-01"),
        ("print(smub.measure.nplc)", "1.00000e+00"), ("print(smub.measure.delay)", "-1.0e+00"),
        ("print(localnode.linefreq)", "5.00000e+01"), ("print(smub.source.limiti)", "1.0e-03"),
        ("; ".join(_pulse_statements("smub", "v", 1.5, "i", 0.001, 0.001, 0.005, 3, 2, 0.05)),
         None), ("print(errorqueue.count)", NONE),
        ("; ".join(_restore("smub", "v", 1.0, -1.0, 0.2)), None),
        ("print(errorqueue.count)", NONE),
        ("printbuffer(1, 3, smub.nvbuffer1.readings, smub.nvbuffer2.readings, "
         "smub.nvbuffer1.statuses)", "1.0e-04, 1.5e+00, 0.0e+00, 2.0e-04, 1.5e+00, 0.0e+00, "
         "1.0e-03, 1.4e+00, 6.4e+01"),
    ]
    with expected_protocol(Keithley2600, pairs) as smu:
        readings = smu.smub.pulse(1.5, width=1e-3, count=3, period=5e-3)
    assert [(r.voltage, r.current, r.compliance) for r in readings] == [
        (1.5, 1e-4, False), (1.5, 2e-4, False), (1.4, 1e-3, True)]


def test_current_pulse_without_period(expected_protocol):
    """A current pulse, measured the same way; no period: off for one width (period 2 ms)."""
    pairs = connect() + [
        ("print(smua.source.func)", "0.00000e+00"), ("print(smua.source.leveli)", "0.0e+00"),
        ("print(smua.measure.nplc)", "1.00000e+00"), ("print(smua.measure.delay)", "0.0e+00"),
        ("print(localnode.linefreq)", "6.00000e+01"), ("print(smua.source.limitv)", "2.0e+01"),
        ("; ".join(_pulse_statements("smua", "i", 1e-05, "v", 20.0, 0.001, 0.002, 1, 1, 0.06)),
         None), ("print(errorqueue.count)", NONE),
        ("; ".join(_restore("smua", "i", 1.0, 0.0, 0.0)), None),
        ("print(errorqueue.count)", NONE),
        ("printbuffer(1, 1, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
         "smua.nvbuffer1.statuses)", "1.0e-05, 2.5e+00, 0.0e+00"),
    ]
    with expected_protocol(Keithley2600, pairs) as smu:
        (reading,) = smu.smua.pulse(1e-5, width=1e-3)
    assert (reading.voltage, reading.current) == (2.5, 1e-5)


def test_pulse_level_out_of_range(expected_protocol):
    pairs = connect() + [("print(smua.source.func)", "0.00000e+00")]
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(ValueError, match="pulse level = 2.0 A"),
    ):
        smu.smua.pulse(2.0, width=1e-3)


def test_shutdown_ramps_both_channels(expected_protocol):
    pairs = (
        connect()
        + [("print(smua.source.func)", "1.00000e+00"), ("print(smua.source.levelv)", "1.0e+00")]
        + ok("smua.source.levelv = 0.5")
        + ok("smua.source.levelv = 0.0")
        + ok("smua.source.output = smua.OUTPUT_OFF")
        + [("print(smub.source.func)", "0.00000e+00"), ("print(smub.source.leveli)", "0.0e+00")]
        + ok("smub.source.output = smub.OUTPUT_OFF")
    )
    with expected_protocol(Keithley2600, pairs) as smu:
        smu.shutdown()


def test_shutdown_tries_every_channel_then_raises(expected_protocol):
    pairs = (
        connect()
        + [("print(smua.source.func)", "1.00000e+00"), ("print(smua.source.levelv)", "0.0e+00")]
        + [("smua.source.output = smua.OUTPUT_OFF", None)]
        + [("print(errorqueue.count)", "1.0e+00"), ("print(errorqueue.next())", "-1\tfail\t2\t0")]
        + [("print(errorqueue.count)", NONE)]
        + [("print(smub.source.func)", "1.00000e+00"), ("print(smub.source.levelv)", "0.0e+00")]
        + ok("smub.source.output = smub.OUTPUT_OFF")
    )
    with expected_protocol(Keithley2600, pairs) as smu, pytest.raises(InstrumentError):
        smu.shutdown()


def test_reset(expected_protocol):
    with expected_protocol(Keithley2600, connect() + ok("reset()")) as smu:
        smu.reset()


def test_pulse_capability_and_current_limit_read_back(expected_protocol):
    pairs = connect() + [("print(smub.source.limiti)", "1.00000e-03")]
    with expected_protocol(Keithley2600, pairs) as smu:
        capability = smu.smua.pulse_capability()
        assert (capability.min_width, capability.max_count, capability.max_voltage) == (
            1e-4, 10000, 200.0)
        assert smu.smub.check_pulse(1.0, 1e-3, 2, 3e-3) == (1.0, 1e-3, 2, 3e-3)
        with pytest.raises(ValueError, match="pulse period = 0.0005 s is outside"):
            smu.smub.check_pulse(1.0, 1e-3, 2, 5e-4)
        assert smu.smub.read_current_limit() == 1e-3


def test_compliance_state_without_a_measurement(expected_protocol):
    pairs = connect() + [("print(smua.source.compliance)", "true"),
                         ("print(smub.source.compliance)", "false")]
    with expected_protocol(Keithley2600, pairs) as smu:
        assert smu.smua.in_compliance() and not smu.smub.in_compliance()
