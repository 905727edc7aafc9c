"""Pulses of two channels of one SMU together (`PairedPulse`, the V/2 scheme's pulsed row and
its half-select bias): exact conversations on the fake transport (every command listed in
commands.toml), and on the virtual bench both channels' readings against the World's truth."""

import pytest
import pyvisa
from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.keysight_b2900 import KeysightB2900

from xbarlab.bench import open_bench
from xbarlab.benches import with_sim
from xbarlab.benchfile import Line, load_bench
from xbarlab.interfaces import LinkedPulse, PairedPulse

TSP_IDN = "Keithley Instruments Inc., Model 2636B, 4308079, 3.2.2"
TSP_NONE = "0.00000e+00"
B2900_IDN = "Keysight Technologies,B2902B,MY59000229,5.0.2041.2001"
NO_ERROR = '+0,"No error"'


def tsp_channel_source(ch, level):
    """One channel's part of the trigger-model pulse (DC level 0, its NPLC, the one-point
    list repeated, each point ending idle)."""
    return [
        f"{ch}.source.levelv = 0.0", f"{ch}.measure.nplc = 0.05",
        f"{ch}.nvbuffer1.clear()", f"{ch}.nvbuffer2.clear()", f"{ch}.measure.delay = 0.0",
        f"{ch}.trigger.source.listv({{{level}}})", f"{ch}.trigger.source.limiti = 0.001",
        f"{ch}.trigger.measure.iv({ch}.nvbuffer1, {ch}.nvbuffer2)",
        f"{ch}.trigger.measure.action = {ch}.ENABLE",
        f"{ch}.trigger.endpulse.action = {ch}.SOURCE_IDLE",
        f"{ch}.trigger.endsweep.action = {ch}.SOURCE_IDLE", f"{ch}.trigger.count = 2",
        f"{ch}.trigger.source.action = {ch}.ENABLE",
    ]


def tsp_stimuli(ch):
    return [f"{ch}.trigger.source.stimulus = trigger.timer[1].EVENT_ID",
            f"{ch}.trigger.measure.stimulus = trigger.timer[1].EVENT_ID",
            f"{ch}.trigger.endpulse.stimulus = trigger.timer[2].EVENT_ID"]


TSP_CHUNK = "; ".join([
    *tsp_channel_source("smua", 1.0), *tsp_channel_source("smub", 0.5),
    "trigger.timer[1].delay = 0.005", "trigger.timer[1].count = 1",
    "trigger.timer[1].passthrough = true",
    "trigger.timer[1].stimulus = smua.trigger.ARMED_EVENT_ID",  # the first channel leads
    "trigger.timer[2].delay = 0.001", "trigger.timer[2].count = 1",
    "trigger.timer[2].passthrough = false",
    "trigger.timer[2].stimulus = trigger.timer[1].EVENT_ID",
    *tsp_stimuli("smua"), *tsp_stimuli("smub"),
    "smua.source.output = smua.OUTPUT_ON", "smub.source.output = smub.OUTPUT_ON",
    "smub.trigger.initiate()", "smua.trigger.initiate()",  # the follower armed first
    "waitcomplete()", "delay(0.004)",
])
TSP_RESTORE = "; ".join([
    *(f"{ch}.trigger.{layer}.stimulus = 0" for ch in ("smua", "smub")
      for layer in ("source", "measure", "endpulse")),
    "trigger.timer[1].stimulus = 0", "trigger.timer[2].stimulus = 0",
    "smua.measure.nplc = 1.0", "smua.measure.delay = 0.0", "smua.source.levelv = 0.0",
    "smub.measure.nplc = 1.0", "smub.measure.delay = 0.0", "smub.source.levelv = 0.0",
])


def tsp_asks(ch):
    return [(f"print({ch}.source.levelv)", "0.00000e+00"),
            (f"print({ch}.measure.nplc)", "1.00000e+00"),
            (f"print({ch}.measure.delay)", "0.00000e+00")]


def tsp_two_channel_pulse(chunk, restore, reply):
    """The conversation of a pulse of smua at 1 V and smub at 0.5 V (2 pulses): connect, the
    function, level, NPLC, delay and limit asks, `chunk` and `restore` each with its error
    check, one printbuffer answered with `reply`."""
    return [
        ("*IDN?", TSP_IDN), ("errorqueue.clear()", None),
        ("print(smua.source.func)", "1.00000e+00"), ("print(smub.source.func)", "1.00000e+00"),
        *tsp_asks("smua"), ("print(localnode.linefreq)", "5.00000e+01"),
        ("print(smua.source.limiti)", "1.0e-03"),
        *tsp_asks("smub"), ("print(smub.source.limiti)", "1.0e-03"),
        (chunk, None), ("print(errorqueue.count)", TSP_NONE),
        (restore, None), ("print(errorqueue.count)", TSP_NONE),
        ("printbuffer(1, 2, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
         "smua.nvbuffer1.statuses, smub.nvbuffer1.readings, smub.nvbuffer2.readings, "
         "smub.nvbuffer1.statuses)", reply),
    ]


def test_2636b_pulses_both_channels_on_one_pair_of_timers(expected_protocol):
    """Both channels' layers on timer 1 (start) and timer 2 (end), timer 1 started by the
    first channel's ARMED event, the second channel initiated first; one chunk, one error
    check, the restore, one printbuffer of both channels."""
    pairs = tsp_two_channel_pulse(TSP_CHUNK, TSP_RESTORE,
                                  "1.0e-04, 1.0e+00, 0.0e+00, 2.0e-05, 5.0e-01, 0.0e+00, "
                                  "1.0e-03, 9.0e-01, 6.4e+01, 3.0e-05, 5.0e-01, 0.0e+00")
    with expected_protocol(Keithley2600, pairs) as smu:
        assert isinstance(smu, PairedPulse)
        first, second = smu.pulse_pair("a", 1.0, "b", 0.5, width=1e-3, count=2, period=5e-3)
    assert [(r.voltage, r.current, r.compliance) for r in first] == [
        (1.0, 1e-4, False), (0.9, 1e-3, True)]
    assert [(r.voltage, r.current) for r in second] == [(0.5, 2e-5), (0.5, 3e-5)]


def test_2636b_pair_of_one_channel_is_refused(expected_protocol):
    pairs = [("*IDN?", TSP_IDN), ("errorqueue.clear()", None)]
    with (
        expected_protocol(Keithley2600, pairs) as smu,
        pytest.raises(ValueError, match="allowed two different channels"),
    ):
        smu.pulse_pair("a", 1.0, "a", 0.5, width=1e-3)


def b2900_ok(command):
    return [(command, None), (":SYST:ERR?", NO_ERROR)]


def b2900_setup(n, level):
    return (
        [(f":SOUR{n}:VOLT?", "+0.000000E+00"), (f":SENS{n}:CURR:NPLC?", "+1.000000E+00"),
         (f":TRIG{n}:ACQ:DEL?", "+0.000000E+00")]
        + b2900_ok(f":SOUR{n}:VOLT 0.0") + b2900_ok(f":SOUR{n}:FUNC:SHAP PULS")
        + b2900_ok(f":SOUR{n}:VOLT:TRIG {level}") + b2900_ok(f":SOUR{n}:PULS:DEL 0.0")
        + b2900_ok(f":SOUR{n}:PULS:WIDT 0.0001") + b2900_ok(f":SENS{n}:CURR:APER 0.0001")
        + b2900_ok(f":TRIG{n}:ACQ:DEL 0.0") + b2900_ok(f":TRIG{n}:SOUR TIM")
        + b2900_ok(f":TRIG{n}:TIM 0.001") + b2900_ok(f":TRIG{n}:COUN 2")
        + b2900_ok(f":OUTP{n} ON"))


def b2900_put_back(n):
    return (b2900_ok(f":SOUR{n}:FUNC:SHAP DC") + b2900_ok(f":TRIG{n}:COUN 1")
            + b2900_ok(f":TRIG{n}:SOUR AINT") + b2900_ok(f":TRIG{n}:ACQ:DEL 0.0")
            + b2900_ok(f":SENS{n}:CURR:NPLC 1.0") + b2900_ok(f":SOUR{n}:VOLT 0.0"))


def test_b2902_pulses_both_channels_on_one_init(expected_protocol):
    """Each channel set up as for a pulse of its own, then one `:INIT (@1,2)`, `*OPC?`, one
    fetch per channel and both put back to DC."""
    source = []
    for n in (1, 2):
        source += [(f":SOUR{n}:FUNC:MODE VOLT;:SOUR{n}:VOLT:MODE FIX;:SENS{n}:CURR:PROT 0.001"
                    ";:SYST:ERR?", NO_ERROR), (f":SOUR{n}:VOLT 0.0;:SYST:ERR?", NO_ERROR)]
    pairs = (
        [("*IDN?", B2900_IDN), ("*CLS", None)] + b2900_ok(":FORM:ELEM:SENS VOLT,CURR")
        + b2900_ok(':SENS1:FUNC "VOLT","CURR"') + b2900_ok(':SENS2:FUNC "VOLT","CURR"')
        + source + b2900_setup(1, 1.0) + b2900_setup(2, 0.5) + b2900_ok(":INIT (@1,2)")
        + [("*OPC?", "1"),
           (":FETC:ARR? (@1)", "+1.000000E+00,+1.000000E-04,+1.000000E+00,+2.000000E-04"),
           (":FETC:ARR? (@2)", "+5.000000E-01,+3.000000E-05,+5.000000E-01,+4.000000E-05")]
        + b2900_put_back(1) + b2900_put_back(2)
    )
    with expected_protocol(KeysightB2900, pairs) as smu:
        assert isinstance(smu, PairedPulse)
        for n in (1, 2):
            smu.channel(n).source_voltage(0.0, current_limit=1e-3)
        first, second = smu.pulse_pair(1, 1.0, 2, 0.5, width=1e-4, count=2, period=1e-3)
    assert [(r.voltage, r.current) for r in first] == [(1.0, 1e-4), (1.0, 2e-4)]
    assert [(r.voltage, r.current) for r in second] == [(0.5, 3e-5), (0.5, 4e-5)]


@pytest.mark.parametrize(("bench", "driver", "channels"), [
    ("default", Keithley2600, ("a", "b")), ("keysight", KeysightB2900, (1, 2))])
def test_on_the_virtual_bench_each_channel_reads_what_it_delivered(bench, driver, channels,
                                                                   tmp_path):
    """Both channels on lines of the chip through the matrix, pulsed together: the energy
    their readings give (V x I x width summed over both) is what the World says the sources
    delivered (no read noise), and each channel's voltage is its pulse level."""
    path = tmp_path / f"{bench}.toml"
    path.write_text(with_sim(load_bench(bench).text, read_noise=False))
    with open_bench(str(path)) as opened:
        world = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world
        name = "smu"
        first, second = (f"{name}.{c}" for c in channels)
        opened._apply({first: (0.0, frozenset([Line("row", 0)])),
                       second: (0.0, frozenset([Line("col", 0)]))}, 1e-3)
        before = world.energy
        a, b = opened.drivers[name].pulse_pair(str(channels[0]), 1.0, str(channels[1]), 0.5,
                                               width=1e-4, count=3, period=3e-4)
        delivered = world.energy - before
    assert [r.voltage for r in a] == pytest.approx([1.0] * 3, rel=1e-4)
    assert [r.voltage for r in b] == pytest.approx([0.5] * 3, rel=1e-4)
    measured = sum(r.voltage * r.current for r in [*a, *b]) * 1e-4
    assert measured == pytest.approx(delivered, rel=1e-5)


def test_2636b_armed_on_a_trigger_line_pulses_on_its_edges(expected_protocol):
    """The follower of a linked pulse: its channel's source and measure layers and timer 2 on
    digital I/O line 1's input trigger (falling edges), initiated to wait; later, waitcomplete,
    everything put back (the line to bypass), one printbuffer."""
    arm = "; ".join([
        *tsp_channel_source("smua", 0.5), "digio.trigger[1].clear()",
        "digio.trigger[1].mode = digio.TRIG_FALLING", "trigger.timer[2].delay = 0.001",
        "trigger.timer[2].count = 1", "trigger.timer[2].passthrough = false",
        "trigger.timer[2].stimulus = digio.trigger[1].EVENT_ID",
        "smua.trigger.source.stimulus = digio.trigger[1].EVENT_ID",
        "smua.trigger.measure.stimulus = digio.trigger[1].EVENT_ID",
        "smua.trigger.endpulse.stimulus = trigger.timer[2].EVENT_ID",
        "smua.source.output = smua.OUTPUT_ON", "smua.trigger.initiate()"])
    back = ["smua.trigger.source.stimulus = 0", "smua.trigger.measure.stimulus = 0",
            "smua.trigger.endpulse.stimulus = 0", "trigger.timer[2].stimulus = 0",
            "digio.trigger[1].stimulus = 0", "digio.trigger[1].mode = digio.TRIG_BYPASS",
            "smua.measure.nplc = 1.0", "smua.measure.delay = 0.0", "smua.source.levelv = 0.0"]
    pairs = [
        ("*IDN?", TSP_IDN), ("errorqueue.clear()", None),
        ("print(smua.source.func)", "1.00000e+00"), *tsp_asks("smua"),
        ("print(localnode.linefreq)", "5.00000e+01"), ("print(smua.source.limiti)", "1.0e-03"),
        (arm, None), ("print(errorqueue.count)", TSP_NONE),
        ("; ".join(["waitcomplete()", *back]), None), ("print(errorqueue.count)", TSP_NONE),
        ("printbuffer(1, 2, smua.nvbuffer1.readings, smua.nvbuffer2.readings, "
         "smua.nvbuffer1.statuses)", "2.0e-05, 5.0e-01, 0.0e+00, 3.0e-05, 5.0e-01, 0.0e+00"),
    ]
    with expected_protocol(Keithley2600, pairs) as smu:
        smu.arm_linked_pulse({"a": 0.5}, width=1e-3, count=2, trigger_line=1)
        with pytest.raises(RuntimeError, match="armed already"):
            smu.arm_linked_pulse({"a": 0.5}, width=1e-3, count=2)
        got = smu.linked_readings()
    assert [(r.voltage, r.current) for r in got["a"]] == [(0.5, 2e-5), (0.5, 3e-5)]


def test_2636b_leading_a_linked_pulse_drives_its_trigger_line_from_timer_1(expected_protocol):
    """The leader: its pulse as `pulse_pair` sends it, plus line 1 as an output trigger on
    timer 1's event before the start, and the line back to bypass afterwards."""
    chunk = TSP_CHUNK.replace(
        "smub.source.output = smub.OUTPUT_ON; ",
        "smub.source.output = smub.OUTPUT_ON; digio.trigger[1].mode = digio.TRIG_FALLING; "
        "digio.trigger[1].stimulus = trigger.timer[1].EVENT_ID; ")
    restore = TSP_RESTORE.replace(
        "trigger.timer[2].stimulus = 0; ",
        "trigger.timer[2].stimulus = 0; digio.trigger[1].stimulus = 0; "
        "digio.trigger[1].mode = digio.TRIG_BYPASS; ")
    pairs = tsp_two_channel_pulse(chunk, restore,
                                  "1.0e-04, 1.0e+00, 0.0e+00, 2.0e-05, 5.0e-01, 0.0e+00, "
                                  "1.0e-04, 1.0e+00, 0.0e+00, 3.0e-05, 5.0e-01, 0.0e+00")
    with expected_protocol(Keithley2600, pairs) as smu:
        assert isinstance(smu, LinkedPulse)
        got = smu.pulse_linked({"a": 1.0, "b": 0.5}, width=1e-3, count=2, period=5e-3,
                               trigger_line=1)
    assert [r.current for r in got["b"]] == [2e-5, 3e-5]


def test_on_the_virtual_bench_a_linked_pulse_runs_on_both_instruments(tmp_path):
    """smu.a pulses row 0, smu2.a (armed on the cable's line 1) pulses column 0 with it: each
    reads its own level during every pulse, and V x I x width of both is what the World says
    the sources delivered; the second instrument's pulses come only from the first's."""
    path = tmp_path / "default.toml"
    path.write_text(with_sim(load_bench("default").text, read_noise=False))
    with open_bench(str(path)) as opened:
        world = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world
        opened._apply({"smu.a": (0.0, frozenset([Line("row", 0)])),
                       "smu2.a": (0.0, frozenset([Line("col", 0)]))}, 1e-3)
        before = world.energy
        opened.drivers["smu2"].arm_linked_pulse({"a": -0.5}, width=1e-4, count=3)
        lead = opened.drivers["smu"].pulse_linked({"a": 1.0}, width=1e-4, count=3,
                                                  period=3e-4)["a"]
        follow = opened.drivers["smu2"].linked_readings()["a"]
        delivered = world.energy - before
    assert [r.voltage for r in lead] == pytest.approx([1.0] * 3, rel=1e-4)
    assert [r.voltage for r in follow] == pytest.approx([-0.5] * 3, rel=1e-4)
    assert sum(r.current for r in lead) == pytest.approx(-sum(r.current for r in follow),
                                                         rel=1e-3)  # the one cell between
    measured = sum(r.voltage * r.current for r in [*lead, *follow]) * 1e-4
    assert measured == pytest.approx(delivered, rel=1e-5)
