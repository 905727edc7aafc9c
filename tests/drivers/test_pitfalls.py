"""Defects seen in public drivers (instruments.md §10), as negative tests against ours."""

import re

import pytest
from xbarlab.drivers.catalog import load_catalog
from xbarlab.drivers.errors import UnexpectedReplyError
from xbarlab.drivers.keithley707b import Keithley707B
from xbarlab.drivers.keithley2400 import Keithley2400
from xbarlab.drivers.keithley2450 import Keithley2450
from xbarlab.drivers.keithley2600 import Keithley2600, Keithley2600Channel
from xbarlab.drivers.keysight_b2900 import KeysightB2900Channel
from xbarlab.drivers.keysight_e5250a import KeysightE5250A
from xbarlab.drivers.properties import Setting

CATALOG = load_catalog()


@pytest.mark.parametrize("driver", ["keithley2400", "keithley2450", "keysight_b2900"])
def test_no_colon_before_common_commands(driver):
    """QCoDeS sends `:*RST` and PyMeasure `:*CLS`; common commands have no colon."""
    for form in CATALOG[driver].forms:
        assert not form.example.startswith(":*"), form.example
    assert CATALOG[driver].match(":*RST") is None
    assert CATALOG[driver].match(":*CLS") is None


def test_2450_never_sends_scpi2400_buffer_commands():
    """PyMeasure's 2450 driver needs SCPI2400 emulation (`:TRAC:FEED`, `:CALC3`)."""
    scpi2400 = (":TRAC:FEED SENS", ":TRAC:FEED:CONT NEXT", ":CALC3:FORM MEAN", ":FORM:ELEM READ")
    for command in scpi2400:
        assert CATALOG["keithley2450"].match(command) is None


def test_2600_never_measures_to_configure():
    """PyMeasure 'configures' TSP by writing `smua.measure.v()`, which measures and discards."""
    for form in CATALOG["keithley2600"].forms:
        bare = re.fullmatch(r"smu[ab]\.measure\.(i|v|iv|r)\(\)", form.example)
        assert bare is None, form.example


def test_tsp_events_are_not_hard_coded():
    """Trigger event IDs are firmware constants: a stimulus is 0 (none) or a named
    ``*_EVENT_ID`` constant that the instrument resolves itself, never an event number."""
    stimuli = [f.pattern for f in CATALOG["keithley2600"].forms if "stimulus" in f.pattern]
    assert stimuli
    for pattern in stimuli:
        value = pattern.split(" = ", 1)[1]
        assert value == "0" or value.rstrip("}").endswith("EVENT_ID"), pattern
    assert CATALOG["keithley2600"].match("smub.trigger.source.stimulus = 46") is None


def test_2400_reply_must_have_exactly_the_configured_elements(expected_protocol):
    """`:MEAS:CURR?`/`:READ?` return every :FORM:ELEM field; five fields would be misread."""
    connect = [("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1,C"), ("*CLS", None),
               (":FORM:ELEM VOLT,CURR,STAT", None), (":SYST:ERR?", '0,"No error"'),
               (':SENS:FUNC "VOLT","CURR"', None), (":SYST:ERR?", '0,"No error"')]
    pairs = connect + [(":READ?", "+2.0E-01,+1.0E-06,+9.91E+37,+7.4E+03,+1.9E+04")]
    with (
        expected_protocol(Keithley2400, pairs) as smu,
        pytest.raises(UnexpectedReplyError, match="V,I,STATUS"),
    ):
        smu.measure()


def test_b2900_queries_always_name_their_channel():
    """A B2900 query without `(@n)` silently means channel 1."""
    for form in CATALOG["keysight_b2900"].forms:
        if form.pattern.startswith((":MEAS", ":FETC", ":INIT")):
            assert "(@" in form.pattern, form.pattern


def test_707b_nil_is_an_empty_closed_set_not_a_channel(expected_protocol):
    """`getclose` replies the text `nil` when nothing is closed."""
    idn = "Keithley Instruments Inc., Model 707B, 1, 1.0"
    pairs = [("*IDN?", idn), ("errorqueue.clear()", None),
             ("channel.connectrule = channel.BREAK_BEFORE_MAKE", None),
             ("print(errorqueue.count)", "0.00000e+00"),
             ('print(channel.getclose("allslots"))', "nil")]
    with expected_protocol(Keithley707B, pairs) as matrix:
        assert "nil" not in matrix.closed()


def test_e5250a_exclusive_close_does_not_rely_on_accumulating_closes(expected_protocol):
    """Closes accumulate on the E5250A; an exclusive close must open the cards first."""
    no_error = (":SYST:ERR?", '+0,"No error"')
    pairs = [("*IDN?", "Agilent Technologies,E5250A,0,B.01.03"), ("*CLS", None),
             (":ROUT:CONN:RULE ALL,FREE", None), no_error,
             (":ROUT:CONN:SEQ ALL,BBM", None), no_error,
             (":ROUT:OPEN:CARD ALL", None), no_error,
             (":ROUT:CLOS (@10101)", None), no_error]
    with expected_protocol(KeysightE5250A, pairs) as matrix:
        matrix.exclusive_close("10101")


def test_idn_prefix_changes_with_firmware_are_accepted(expected_protocol):
    for idn in ("KEITHLEY INSTRUMENTS INC.,MODEL 2450,01234567,1.0.0i",
                "KEITHLEY INSTRUMENTS,MODEL 2450,04451269,1.7.7b"):
        with expected_protocol(Keithley2450, [("*IDN?", idn), ("*LANG?", "SCPI"), ("*CLS", None)]):
            pass
    for idn in ("Keithley Instruments Inc., Model 2636B, 1, 3.2.2",
                "Keithley Instruments, Model 2636B, 1, 4.0.4"):
        with expected_protocol(Keithley2600, [("*IDN?", idn), ("errorqueue.clear()", None)]):
            pass


def _settings():
    classes = [Keithley2400, Keithley2450, Keithley2600Channel, KeysightB2900Channel]
    for cls in classes:
        for name, value in vars(cls).items():
            if isinstance(value, Setting):
                yield cls.__name__, name, value


@pytest.mark.parametrize(("owner", "name", "setting"), list(_settings()))
def test_get_and_set_address_the_same_setting(owner, name, setting):
    """QCoDeS' 2400 `volt_range` reads `SENS:VOLT:RANG?` but sets `SOUR:VOLT:RANG`."""
    assert setting.__doc__.strip(), (owner, name)
    if setting.get_command is None or setting.set_command is None:
        return
    if setting.get_command.startswith("print("):
        assert setting.get_command == "print(" + setting.set_command.split(" = ")[0] + ")"
    else:
        assert setting.get_command == setting.set_command.split(" ")[0] + "?"
