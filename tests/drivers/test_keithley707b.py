"""Keithley 707B/708B switching-matrix driver: exact command/reply conversations."""

import pytest
from xbarlab.drivers.errors import InstrumentError, WrongInstrumentError
from xbarlab.drivers.keithley707b import Keithley707B

IDN = "Keithley Instruments Inc., Model 707B, 04088796, 1.7.0a"
NONE = "0.00000e+00"


def ok(command):
    return [(command, None), ("print(errorqueue.count)", NONE)]


def connect(idn=IDN):
    return [("*IDN?", idn), ("errorqueue.clear()", None)] + ok(
        "channel.connectrule = channel.BREAK_BEFORE_MAKE"
    )


GETCLOSE = 'print(channel.getclose("allslots"))'


def test_connect_sets_break_before_make(expected_protocol):
    with expected_protocol(Keithley707B, connect()) as matrix:
        assert matrix.model == "707B" and matrix.slots == 6


def test_2636b_is_not_a_matrix(fake_resource):
    resource = fake_resource("keithley707b", [("*IDN?", "Keithley Instruments Inc., Model 2636B")])
    with pytest.raises(WrongInstrumentError, match="707B or 708B"):
        Keithley707B(resource)


def test_crosspoint_numbers_outputs_across_the_cards(expected_protocol):
    with expected_protocol(Keithley707B, connect()) as matrix:
        assert matrix.crosspoint(1, 3) == "1A03"
        assert matrix.crosspoint(2, 13) == "2B01"
        assert matrix.crosspoint(2, 37) == "4B01"
        assert matrix.crosspoint(8, 72) == "6H12"
        with pytest.raises(ValueError, match="output_port = 73 is outside the allowed range 1 to"):
            matrix.crosspoint(1, 73)
        with pytest.raises(ValueError, match="input_port = 9 is outside"):
            matrix.crosspoint(9, 1)
    with expected_protocol(Keithley707B, connect(), cards=3) as matrix:
        assert matrix.crosspoint(1, 36) == "3A12"
        with pytest.raises(ValueError, match="output_port = 37 is outside .* 1 to 36"):
            matrix.crosspoint(1, 37)
        with pytest.raises(ValueError, match="channel = '4A01' is not a channel name"):
            matrix.open("4A01")
    idn = "Keithley Instruments Inc., Model 708B, 1, 1.0"
    with expected_protocol(Keithley707B, connect(idn)) as matrix:
        with pytest.raises(ValueError, match="output_port = 13 is outside .* 1 to 12"):
            matrix.crosspoint(1, 13)
        with pytest.raises(ValueError, match="channel = '2A01' is not a channel name"):
            matrix.open("2A01")



def test_more_cards_than_slots_is_refused(fake_resource):
    resource = fake_resource("keithley707b", [("*IDN?", IDN)])
    with pytest.raises(ValueError, match="cards = 7 is outside the allowed range 1 to 6"):
        Keithley707B(resource, cards=7)
    assert resource.closed


def test_closed_set_with_nil_when_nothing_is_closed(expected_protocol):
    pairs = connect() + [(GETCLOSE, "nil"), (GETCLOSE, "1A01;1C03")]
    with expected_protocol(Keithley707B, pairs) as matrix:
        assert matrix.closed() == frozenset()
        assert matrix.closed() == {"1A01", "1C03"}


def test_close_adds_after_reading_back_what_is_closed(expected_protocol):
    pairs = connect() + [(GETCLOSE, "1A01")] + ok('channel.close("1B02,1C03")')
    with expected_protocol(Keithley707B, pairs) as matrix:
        matrix.close(["1B02", "1C03"])


def test_two_inputs_on_one_output_are_refused_before_writing(expected_protocol):
    pairs = connect() + [(GETCLOSE, "1A03")]
    with expected_protocol(Keithley707B, pairs) as matrix:
        with pytest.raises(ValueError, match="closing 1B03 would join two inputs on one output"):
            matrix.close("1B03")
        with pytest.raises(ValueError, match="two sources on one line"):
            matrix.exclusive_close(["1A05", "1B05"])


def test_exclusive_close_open_and_open_all(expected_protocol):
    pairs = (
        connect()
        + ok('channel.exclusiveclose("1A01,1C03")')
        + ok('channel.open("1A01")')
        + ok('channel.open("allslots")')
    )
    with expected_protocol(Keithley707B, pairs) as matrix:
        matrix.exclusive_close(["1A01", "1C03"])
        matrix.open(["1A01"])
        matrix.open_all()


def test_forbidden_channels_set_in_hardware_and_refused_in_software(expected_protocol):
    pairs = (
        connect()
        + ok('channel.clearforbidden("allslots")')
        + ok('channel.setforbidden("1A01,1H12")')
        + ok('channel.clearforbidden("allslots")')
    )
    with expected_protocol(Keithley707B, pairs) as matrix:
        matrix.set_forbidden(["1H12", "1A01"])
        assert matrix.forbidden() == {"1A01", "1H12"}
        with pytest.raises(ValueError, match="channels 1A01 are forbidden"):
            matrix.exclusive_close(["1A01"])
        matrix.set_forbidden([])
        assert matrix.forbidden() == frozenset()


def test_connect_rule(expected_protocol):
    pairs = connect() + ok("channel.connectrule = channel.OFF") + ok(
        "channel.connectrule = channel.BREAK_BEFORE_MAKE")
    with expected_protocol(Keithley707B, pairs) as matrix:
        matrix.set_break_before_make(False)
        matrix.set_break_before_make(True)


def test_instrument_error(expected_protocol):
    pairs = connect() + [
        ('channel.open("1A01")', None),
        ("print(errorqueue.count)", "1.00000e+00"),
        ("print(errorqueue.next())", "1.11500e+03\tParameter error\t2.00000e+00\t0.00000e+00"),
        ("print(errorqueue.count)", NONE),
    ]
    with (
        expected_protocol(Keithley707B, pairs) as matrix,
        pytest.raises(InstrumentError) as info,
    ):
        matrix.open("1A01")
    assert (info.value.code, info.value.message) == (1115, "Parameter error")


def test_shutdown_opens_everything_and_context_manager(fake_resource):
    resource = fake_resource("keithley707b", connect() + ok('channel.open("allslots")'))
    with Keithley707B(resource) as matrix:
        assert matrix.model == "707B"
    resource.assert_done()
    assert resource.closed


def test_reset(expected_protocol):
    pairs = connect() + ok("reset()") + ok("channel.connectrule = channel.BREAK_BEFORE_MAKE")
    with expected_protocol(Keithley707B, pairs) as matrix:
        matrix.reset()


def test_close_against_a_known_closed_set_reads_nothing_back(expected_protocol):
    pairs = connect() + ok('channel.close("1B02")')
    with expected_protocol(Keithley707B, pairs) as matrix:
        matrix.close(["1B02"], known_closed=["1A01"])
        with pytest.raises(ValueError, match="closing 1B01 would join two inputs on one output"):
            matrix.close("1B01", known_closed={"1A01"})  # refused before anything is sent
        with pytest.raises(ValueError, match="channel = 'bogus' is not a channel name"):
            matrix.close("1C03", known_closed=["bogus"])


def test_reroute_opens_then_closes_in_one_chunk_checked_before_anything_is_sent(
        expected_protocol):
    pairs = (connect() + ok('channel.open("1A01,1H02"); channel.close("1A02,1H01")')
             + ok('channel.open("1A02")') + ok('channel.close("1A03")')
             + [(GETCLOSE, "1H01;1A03")] + ok('channel.open("1A03"); channel.close("1B03")'))
    with expected_protocol(Keithley707B, pairs) as matrix:
        matrix.reroute(["1A01", "1H02"], ["1A02", "1H01"], known_closed=["1H03"])
        with pytest.raises(ValueError, match="closing 1B03 would join two inputs on one output"):
            matrix.reroute([], ["1B03"], known_closed=["1A03"])  # refused: nothing sent
        matrix.reroute(["1A02"], [], known_closed=[])  # only what is given
        matrix.reroute([], ["1A03"], known_closed=["1H01"])
        matrix.reroute(["1A03"], ["1B03"])  # no record: read back, less what opens first


def joins_two_inputs(channels) -> bool:
    """Independently: whether two of `channels` (707B names) put two rows on one column."""
    rows_of: dict[str, set[str]] = {}
    for name in channels:
        rows_of.setdefault(name[0] + name[2:], set()).add(name[1])
    return any(len(rows) > 1 for rows in rows_of.values())


def test_closes_against_known_sets_that_change_a_few_channels_at_a_time(expected_protocol):
    """A bench moves one or two relays of many per reroute: each close is checked against the
    whole closed set however it changed since the last (grown, shrunk, a conflict inside
    it), as `joins_two_inputs` judges it, with nothing sent when it is refused."""
    grounded = [f"1H{k:02d}" for k in range(1, 13)]
    steps = []  # (known closed, channel closed, refused)
    for k in range(1, 12):  # a sense line walks along the outputs, the rest on ground
        known = [c for c in grounded if c != f"1H{k:02d}"]
        steps.append((known, f"1A{k:02d}", False))
        steps.append((known, f"1B{k + 1:02d}", True))  # onto a grounded output
    steps.append((grounded + ["1A05"], "1C07", True))  # the known set conflicts, one away
    steps.append((grounded[:3] + ["1C01"], "1D05", True))  # and many away
    steps.append((grounded[3:], "1C02", False))  # after it, a consistent set again
    pairs = connect()
    for known, channel, refused in steps:
        assert joins_two_inputs([*known, channel]) == refused
        if not refused:
            pairs += ok(f'channel.close("{channel}")')
    with expected_protocol(Keithley707B, pairs) as matrix:
        for known, channel, refused in steps:
            if refused:
                with pytest.raises(ValueError, match="would join two inputs on one output"):
                    matrix.close(channel, known_closed=known)
            else:
                matrix.close(channel, known_closed=known)
