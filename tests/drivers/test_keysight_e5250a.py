"""Keysight E5250A switch-mainframe driver: exact command/reply conversations."""

import pytest
from xbarlab.drivers.errors import InstrumentError, UnexpectedReplyError, WrongInstrumentError
from xbarlab.drivers.keysight_e5250a import KeysightE5250A

IDN = "Agilent Technologies,E5250A,0,B.01.03"
NO_ERROR = '+0,"No error"'


def ok(command):
    return [(command, None), (":SYST:ERR?", NO_ERROR)]


CONNECT = [("*IDN?", IDN), ("*CLS", None)] + ok(":ROUT:CONN:RULE ALL,FREE") + ok(
    ":ROUT:CONN:SEQ ALL,BBM")


def test_connect_sets_free_rule_and_break_before_make(expected_protocol):
    with expected_protocol(KeysightE5250A, CONNECT) as matrix:
        assert matrix.cards == (1,)
    with pytest.raises(ValueError, match="cards = 5 is outside the allowed range 1 to 4"):
        KeysightE5250A(None, cards=5)


def test_b2200_is_refused(fake_resource):
    resource = fake_resource("keysight_e5250a", [("*IDN?", "AGILENT TECHNOLOGIES,B2200A,0,A")])
    with pytest.raises(WrongInstrumentError, match="E5250A"):
        KeysightE5250A(resource)


def test_crosspoint_numbers_outputs_across_the_cards(expected_protocol):
    with expected_protocol(KeysightE5250A, CONNECT, cards=2) as matrix:
        assert matrix.crosspoint(1, 3) == "10103"
        assert matrix.crosspoint(2, 17) == "20205"
        assert matrix.crosspoint(10, 24) == "21012"
        with pytest.raises(ValueError, match="output_port = 25 is outside .* 1 to 24"):
            matrix.crosspoint(1, 25)
        with pytest.raises(ValueError, match="input_port = 11"):
            matrix.crosspoint(11, 1)
        with pytest.raises(ValueError, match="channel = '30101' is not a channel name"):
            matrix.open("30101")


def test_close_reads_back_every_card_first(expected_protocol):
    pairs = CONNECT + [(":ROUT:CLOS:CARD? 1", "(@10101)"), (":ROUT:CLOS:CARD? 2", "(@)")] + ok(
        ":ROUT:CLOS (@10202,20303)")
    with expected_protocol(KeysightE5250A, pairs, cards=2) as matrix:
        matrix.close(["10202", "20303"])


def test_closed_parses_channel_lists(expected_protocol):
    pairs = CONNECT + [(":ROUT:CLOS:CARD? 1", "(@10101,10202)"), (":ROUT:CLOS:CARD? 1", "(@)"),
                       (":ROUT:CLOS:CARD? 1", "10101")]
    with expected_protocol(KeysightE5250A, pairs) as matrix:
        assert matrix.closed() == {"10101", "10202"}
        assert matrix.closed() == frozenset()
        with pytest.raises(UnexpectedReplyError, match="'10101'.* is not a channel list"):
            matrix.closed()


@pytest.mark.parametrize(("reply", "closed"), [
    ("", set()),                                   # an empty line: nothing closed
    ("(@)", set()),                                # the empty channel list
    ("(@ )", set()),
    ("(@10101, 10202)", {"10101", "10202"}),       # spaces after the separators
    ("(@10101:10103)", {"10101", "10102", "10103"}),  # a range of outputs
    ("(@10101:10202,10305)", {"10101", "10102", "10201", "10202", "10305"}),  # inputs x outputs
])
def test_closed_reads_every_channel_list_form_of_the_manual(expected_protocol, reply, closed):
    """Channel lists as the User's Guide (Ed. 9 p. 5-6) writes them; an empty card's reply,
    which the manual does not show, read as an empty list whether it is "(@)" or empty."""
    with expected_protocol(KeysightE5250A, CONNECT + [(":ROUT:CLOS:CARD? 1", reply)]) as matrix:
        assert matrix.closed() == closed


@pytest.mark.parametrize("reply", ["10101", "(@1010)", "(@10101:20101)", "(@10101,)", "0"])
def test_closed_refuses_what_is_no_channel_list(expected_protocol, reply):
    with (
        expected_protocol(KeysightE5250A, CONNECT + [(":ROUT:CLOS:CARD? 1", reply)]) as matrix,
        pytest.raises(UnexpectedReplyError, match="is not a channel list"),
    ):
        matrix.closed()


def test_second_source_on_an_output_is_refused(expected_protocol):
    pairs = CONNECT + [(":ROUT:CLOS:CARD? 1", "(@10105)")]
    with (
        expected_protocol(KeysightE5250A, pairs) as matrix,
        pytest.raises(ValueError, match="closing 10205 would join two inputs"),
    ):
        matrix.close("10205")


def test_exclusive_close_opens_the_cards_first(expected_protocol):
    pairs = CONNECT + ok(":ROUT:OPEN:CARD ALL") + ok(":ROUT:CLOS (@10101,10212)") + ok(
        ":ROUT:OPEN (@10101)")
    with expected_protocol(KeysightE5250A, pairs) as matrix:
        matrix.exclusive_close(["10101", "10212"])
        matrix.open("10101")


def test_forbidden_is_software_only(expected_protocol):
    with expected_protocol(KeysightE5250A, CONNECT) as matrix:
        matrix.set_forbidden(["10101"])
        with pytest.raises(ValueError, match="10101 are forbidden"):
            matrix.exclusive_close(["10101", "10202"])
        assert matrix.forbidden() == {"10101"}


def test_sequence_and_errors(expected_protocol):
    pairs = CONNECT + ok(":ROUT:CONN:SEQ ALL,NSEQ") + [
        (":ROUT:OPEN:CARD ALL", None),
        (":SYST:ERR?", '-241,"Hardware missing"'),
        (":SYST:ERR?", NO_ERROR),
    ]
    with expected_protocol(KeysightE5250A, pairs) as matrix:
        matrix.set_break_before_make(False)
        with pytest.raises(InstrumentError, match="-241 'Hardware missing'"):
            matrix.shutdown()


def test_invalid_channel_names(expected_protocol):
    with expected_protocol(KeysightE5250A, CONNECT) as matrix:
        for bad in ["1011", "01101", "20101", "11101", "10100", "10113", "(@10101)"]:
            with pytest.raises(ValueError, match="is not a channel name"):
                matrix.open(bad)
        with pytest.raises(ValueError, match="channels is empty"):
            matrix.close([])


def test_reset(expected_protocol):
    pairs = CONNECT + ok("*RST") + ok(":ROUT:CONN:RULE ALL,FREE") + ok(":ROUT:CONN:SEQ ALL,BBM")
    with expected_protocol(KeysightE5250A, pairs) as matrix:
        matrix.reset()
