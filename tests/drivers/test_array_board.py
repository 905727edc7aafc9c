"""Array board driver: exact command/reply conversations of the protocol in array_board.md."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xbarlab.drivers.array_board import ArrayBoard
from xbarlab.drivers.errors import InstrumentError, UnexpectedReplyError, WrongInstrumentError

from xbarlab.interfaces import LineState

IDN = "XBARLAB,ARRAYBOARD,SN0001,1.0.0"


def connect(dims="4,4", vlim="1.000000e+01", idle="FLOAT"):
    return [("*IDN?", IDN), ("*CLS", "OK"), ("DIM?", dims), ("VLIM?", vlim),
            ("TINT?", "1.000000e-03"), ("IDLE?", idle)]


def test_connect_reads_dimensions_and_limits(expected_protocol):
    with expected_protocol(ArrayBoard, connect(dims="32,64", idle="GND")) as board:
        assert (board.rows, board.columns) == (32, 64)
        assert board.voltage_limit == 10.0 and board.integration_time == 1e-3
        assert board.idle_state is LineState.GROUND


def test_serial_settings_are_applied_on_serial_resources(fake_resource):
    resource = fake_resource("array_board", connect())
    resource.baud_rate = 9600
    board = ArrayBoard(resource)
    assert (resource.baud_rate, resource.data_bits) == (115200, 8)
    assert (resource.parity.name, resource.stop_bits.name) == ("none", "one")
    assert (resource.read_termination, resource.write_termination) == ("\n", "\n")
    board.disconnect()


def test_other_devices_are_refused(fake_resource):
    resource = fake_resource("array_board", [("*IDN?", "ArC,ONE,1,1")])
    with pytest.raises(WrongInstrumentError, match="XBARLAB,ARRAYBOARD"):
        ArrayBoard(resource)


def test_limits_ranges_and_timing(expected_protocol):
    pairs = connect() + [
        ("VLIM 5.0", "OK"), ("ILIM 1e-07", "OK"), ("ILIM?", "1.000000e-07"),
        ("IRANGE 1e-05", "OK"), ("IRANGE?", "1.000000e-05"), ("IRANGE AUTO", "OK"),
        ("IRANGE?", "AUTO"), ("TINT 0.0001", "OK"),
    ]
    with expected_protocol(ArrayBoard, pairs) as board:
        board.set_voltage_limit(5.0)
        board.set_current_limit(100e-9)
        assert board.current_limit() == 1e-7
        board.set_current_range(1e-5)
        assert board.current_range() == 1e-5
        board.set_current_range(None)
        assert board.current_range() is None
        board.set_integration_time(1e-4)
        assert board.voltage_limit == 5.0 and board.integration_time == 1e-4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.set_voltage_limit(12), "voltage limit = 12 V is outside .*0.001 to 10.0 V"),
        (lambda b: b.set_current_limit(0.1), "current limit = 0.1 A is outside .*1e-07 to 0.01 A"),
        (lambda b: b.set_current_range(2e-6), "current range = 2e-06 A is not one of"),
        (lambda b: b.set_integration_time(2), "integration time = 2 s is outside"),
        (lambda b: b.set_rows([0.0] * 3), "row levels has 3 values; the allowed number is 4 to 4"),
        (lambda b: b.set_rows([0.0, 0.0, 11.0, 0.0]), "row 2 level = 11.0 V is outside"),
        (lambda b: b.set_lines(rows={4: 0.1}), "row = 4 is outside the allowed range 0 to 3"),
        (lambda b: b.set_lines(), "at least one row or column"),
        (lambda b: b.read_one(0, 4, 0.2), "column = 4 is outside"),
        (lambda b: b.pulse(1e-8, rows={0: 1.0}), "pulse width = 1e-08 s is outside"),
        (lambda b: b.pulse(1e-5, columns={1: -10.5}), "C1 pulse = -10.5 V is outside"),
        (lambda b: b.pulse(1e-5, rows={0: 1}, count=2), "pulse period is required"),
        (lambda b: b.pulse(1e-5, rows={0: 1}, count=2, period=1e-5), "pulse period = 1e-05 s"),
        (lambda b: b.pulse(1e-5, rows={0: 1}, count=10001, period=1), "pulse count = 10001"),
        (lambda b: b.pulse(1e-5), "at least one row or column"),
        (lambda b: b.set_idle_mode("F"), "idle state = 'F' is not one of"),
    ],
)
def test_out_of_range_raises_before_writing(expected_protocol, call, message):
    with (
        expected_protocol(ArrayBoard, connect()) as board,
        pytest.raises(ValueError, match=message),
    ):
        call(board)


def test_voltage_limit_is_enforced_from_the_board_value(expected_protocol):
    with (
        expected_protocol(ArrayBoard, connect(vlim="2.000000e+00")) as board,
        pytest.raises(ValueError, match="row 0 level = 2.5 V is outside .*-2.0 to 2.0 V"),
    ):
        board.set_rows([2.5, 0, 0, 0])


def test_set_every_row_and_column_in_one_command(expected_protocol):
    pairs = connect() + [("VROW 0.2,F,G,0.0", "OK"), ("VCOL 0.0,0.0,F,-1e-07", "OK")]
    with expected_protocol(ArrayBoard, pairs) as board:
        board.set_rows([0.2, LineState.FLOAT, LineState.GROUND, 0])
        board.set_columns([0.0, 0.0, LineState.FLOAT, -1e-7])


def test_set_some_lines_float_ground_idle(expected_protocol):
    pairs = connect() + [
        ("VSET R2=0.1,C3=F,C0=G", "OK"), ("FLOAT ALL", "OK"), ("GND ALL", "OK"),
        ("IDLE GND", "OK"),
        ("VROW?", "2.000000e-01,F,G,0.000000e+00"), ("VCOL?", "F,F,F,F"),
    ]
    with expected_protocol(ArrayBoard, pairs) as board:
        board.set_lines(rows={2: 0.1}, columns={3: LineState.FLOAT, 0: LineState.GROUND})
        board.float_all()
        board.ground_all()
        board.set_idle_mode(LineState.GROUND)
        rows, columns = board.line_levels()
    assert rows == [0.2, LineState.FLOAT, LineState.GROUND, 0.0]
    assert columns == [LineState.FLOAT] * 4


def test_measure_all_currents_in_one_command(expected_protocol):
    reply = ("2.000000e-05,9.910000e+37,9.910000e+37,0.000000e+00;"
             "-1.000000e-05,-1.000000e-04,9.900000e+37,9.910000e+37;0000;0100")
    with expected_protocol(ArrayBoard, connect() + [("MEAS:ALL?", reply)]) as board:
        result = board.measure_currents()
    np.testing.assert_array_equal(result.row_currents[[0, 3]], [2e-5, 0.0])
    assert np.isnan(result.row_currents[1]) and np.isnan(result.column_currents[3])
    assert result.column_currents[2] == math.inf  # over range
    assert result.column_currents[1] == -1e-4
    assert result.column_compliance.tolist() == [False, True, False, False]
    assert not result.row_compliance.any()


def test_measure_rows_or_columns_only(expected_protocol):
    pairs = connect() + [
        ("MEAS:ROW?", "2.000000e-05,9.910000e+37,9.910000e+37,0.000000e+00;1000"),
        ("MEAS:COL?", "-1.000000e-05,-1.000000e-05,9.910000e+37,9.910000e+37;0000"),
        ("MEAS:COL?", "-1.000000e-05;0"),
        ("ERR:COUNT?", "0"),
    ]
    with expected_protocol(ArrayBoard, pairs) as board:
        rows, row_flags = board.measure_rows()
        columns, column_flags = board.measure_columns()
        assert rows[0] == 2e-5 and np.isnan(rows[1]) and row_flags.tolist() == [1, 0, 0, 0]
        assert columns[1] == -1e-5 and not column_flags.any()
        with pytest.raises(UnexpectedReplyError, match="4 currents"):
            board.measure_columns()
        assert board.error_count() == 0


def test_measure_reply_with_wrong_shape_is_an_error(expected_protocol):
    with (
        expected_protocol(ArrayBoard, connect() + [("MEAS:ALL?", "1e-05;1e-05;0;0")]) as board,
        pytest.raises(UnexpectedReplyError, match="4 \\+ 4 currents"),
    ):
        board.measure_currents()


def test_read_one(expected_protocol):
    with expected_protocol(ArrayBoard, connect() + [("READ? 1,2,0.2", "4.000000e-05;1")]) as board:
        result = board.read_one(1, 2, 0.2)
    assert (result.voltage, result.current, result.compliance) == (0.2, 4e-5, True)


def test_repeated_measurement_of_some_lines_in_one_command(expected_protocol):
    reply = ("2.000000e-05,-1.000000e-05;2.100000e-05,-1.100000e-05;"
             "1.900000e-05,9.910000e+37;0100;0001")
    with expected_protocol(ArrayBoard, connect() + [("MEAS:REP? 3,R0,C3", reply)]) as board:
        result = board.measure_repeated(3, rows=[0], columns=[3])
    assert (result.rows, result.columns) == ((0,), (3,))
    np.testing.assert_array_equal(result.row_currents[:, 0], [2e-5, 2.1e-5, 1.9e-5])
    assert result.column_currents[:2, 0].tolist() == [-1e-5, -1.1e-5]
    assert np.isnan(result.column_currents[2, 0])  # not measured
    assert result.row_compliance.tolist() == [False, True, False, False]
    assert result.column_compliance.tolist() == [False, False, False, True]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.measure_repeated(0, columns=[1]), "reading count = 0 is outside"),
        (lambda b: b.measure_repeated(10001, columns=[1]), "reading count = 10001"),
        (lambda b: b.measure_repeated(2), "at least one row or column"),
        (lambda b: b.measure_repeated(2, columns=[1, 1]), "twice"),
        (lambda b: b.measure_repeated(2, columns=[4]), "column = 4 is outside"),
        (lambda b: b.read_one_repeated(0, 0, 0.2, 0), "reading count = 0 is outside"),
    ],
)
def test_repeated_measurements_are_checked_before_sending(expected_protocol, call, message):
    with expected_protocol(ArrayBoard, connect()) as board, pytest.raises(ValueError,
                                                                          match=message):
        call(board)


def test_repeated_reply_with_wrong_shape_is_an_error(expected_protocol):
    pairs = connect() + [("MEAS:REP? 2,C1", "1e-05;0000;0000"),
                         ("MEAS:REP? 2,C1", "1e-05,2e-05;1e-05;0000;0000"),
                         ("READ? 1,2,0.2,3", "4.000000e-05,4.000000e-05;0")]
    with expected_protocol(ArrayBoard, pairs) as board:
        with pytest.raises(UnexpectedReplyError, match="2 readings"):
            board.measure_repeated(2, columns=[1])
        with pytest.raises(UnexpectedReplyError, match="1 currents per reading"):
            board.measure_repeated(2, columns=[1])
        with pytest.raises(UnexpectedReplyError, match="3 currents"):
            board.read_one_repeated(1, 2, 0.2, 3)


def test_read_one_repeated(expected_protocol):
    reply = "4.000000e-05,4.100000e-05;1"
    with expected_protocol(ArrayBoard, connect() + [("READ? 1,2,0.2,2", reply)]) as board:
        readings = board.read_one_repeated(1, 2, 0.2, 2)
    assert [(r.voltage, r.current, r.compliance) for r in readings] == [
        (0.2, 4e-5, True), (0.2, 4.1e-5, True)]


def test_single_pulse_and_train(expected_protocol, fake_resource):
    pairs = connect() + [
        ("PULSE 1e-05,R1=1.5,C2=0.0", "OK"),
        ("PTRAIN 1e-05,0.001,10,R1=1.5,C2=0.0", "OK"),
        ("LIMIT?", "0000;0100"),
    ]
    resource = fake_resource("array_board", pairs)
    board = ArrayBoard(resource)
    board.pulse(1e-5, rows={1: 1.5}, columns={2: 0})
    board.pulse(1e-5, rows={1: 1.5}, columns={2: 0}, count=10, period=1e-3)
    rows, columns = board.limit_flags()
    assert columns.tolist() == [False, True, False, False] and not rows.any()
    resource.assert_done()
    assert resource.read_timeouts[-2] >= 2000 + 10  # the train's 10 ms are added to the wait
    board.disconnect()


def test_error_reply_raises_with_code_message_command_and_pops_the_queue(expected_protocol):
    pairs = connect() + [
        ("VROW 0.2,9.0,F,F", 'ERR 200,"Voltage out of range"'),
        ("ERR?", '200,"Voltage out of range"'),
    ]
    with expected_protocol(ArrayBoard, pairs) as board, pytest.raises(InstrumentError) as info:
        board.set_rows([0.2, 9.0, LineState.FLOAT, LineState.FLOAT])
    error = info.value
    assert (error.code, error.message, error.command) == (
        200, "Voltage out of range", "VROW 0.2,9.0,F,F")


def test_unexpected_setter_reply(expected_protocol):
    with (
        expected_protocol(ArrayBoard, connect() + [("FLOAT ALL", "")]) as board,
        pytest.raises(UnexpectedReplyError, match="is not OK"),
    ):
        board.float_all()


def test_error_queue_drain(expected_protocol):
    pairs = connect() + [("ERR?", '100,"Unknown command"'), ("ERR?", '0,"No error"')]
    with (
        expected_protocol(ArrayBoard, pairs) as board,
        pytest.raises(InstrumentError, match="100 'Unknown command'"),
    ):
        board.check_errors("(earlier command)")


def test_command_length_guard(expected_protocol):
    with (
        expected_protocol(ArrayBoard, connect(dims="512,512")) as board,
        pytest.raises(ValueError, match="the board accepts at most 4096"),
    ):
        board.set_rows([0.123456789] * 512)


def test_shutdown_puts_lines_in_idle_state_and_reset(fake_resource):
    pairs = connect(idle="GND") + [("*RST", "OK"), ("IDLE FLOAT", "OK")]
    resource = fake_resource("array_board", pairs)
    with ArrayBoard(resource) as board:
        board.reset()
        assert board.voltage_limit == 10.0
    resource.assert_done()


# fake_resource only hands out the FakeResource class, so it is safe to share between examples
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.floats(min_value=-10, max_value=10), min_size=4, max_size=4))
def test_any_allowed_levels_reach_the_board_exactly(fake_resource, levels):
    written = []

    class Recorder(fake_resource):
        def write(self, command):
            written.append(command)
            if command.startswith("VROW "):
                self.pairs.appendleft((command, "OK"))
            super().write(command)

    board = ArrayBoard(Recorder("array_board", connect()))
    board.set_rows(levels)
    sent = [float(text) for text in written[-1].removeprefix("VROW ").split(",")]
    assert sent == [float(level) for level in levels]
    board.disconnect()


def test_current_limit_and_idle_mode_read_back(expected_protocol):
    pairs = connect() + [("ILIM?", "1.000000e-03"), ("ILIM?", "1.000000e-03"),
                         ("IDLE?", "GND"), ("IDLE?", "bogus")]
    with expected_protocol(ArrayBoard, pairs) as board:
        assert board.read_current_limit() == board.current_limit() == 1e-3
        assert board.idle_mode() is LineState.GROUND
        with pytest.raises(UnexpectedReplyError, match="FLOAT or GND"):
            board.idle_mode()
