"""A recorded conversation replays as an exact-pair test of the same driver."""

import ast

from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.recorder import RecordingResource

IDN = "Keithley Instruments Inc., Model 2636B, 4308079, 3.2.2"
CONVERSATION = [
    ("*IDN?", IDN),
    ("errorqueue.clear()", None),
    ("print(smua.measure.iv())", "1.00000e-07\t2.00000e-01"),
    ("print(smua.source.compliance)", "false"),
]


def test_recording_then_replaying(fake_resource, expected_protocol):
    recorder = RecordingResource(fake_resource("keithley2600", CONVERSATION))
    smu = Keithley2600(recorder)
    first = smu.smua.measure()
    smu.disconnect()
    assert recorder.pairs == CONVERSATION
    assert recorder.read_termination == "\n"  # settings pass through to the instrument
    pairs = ast.literal_eval(recorder.as_test_pairs())
    with expected_protocol(Keithley2600, pairs) as replay:
        again = replay.smua.measure()
    assert (again.voltage, again.current, again.compliance) == (
        first.voltage, first.current, first.compliance)


def test_a_reply_without_its_own_command_is_kept(fake_resource):
    resource = fake_resource("keithley2600", [("*IDN?", "a\nb")])
    recorder = RecordingResource(resource)
    resource.replies.append("extra")
    recorder.write("*IDN?")
    assert recorder.read() == "extra"
    assert recorder.read() == "a\nb"
    assert recorder.pairs == [("*IDN?", "extra"), (None, "a\nb")]
