"""Safety guard: limits refused with the limit and value named, compliance read back before an
output goes on, and instruments made safe on every exit path."""

from __future__ import annotations

import math
import os
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.bench import IoCounter
from xbarlab.benchfile import Limits
from xbarlab.dryrun import Recorder, RecordingBoard, RecordingMatrix, RecordingSMU
from xbarlab.interfaces import LineState
from xbarlab.safety import (
    ComplianceReadbackError,
    LimitError,
    SafeShutdown,
    SafetyGuard,
    ShutdownError,
    Terminated,
    signals_held,
)

LIMITS = Limits(max_voltage=5.0, max_compliance=0.01, max_pulse_width=1.0, max_energy=1e-3)


@pytest.fixture
def instruments():
    recorder = Recorder(IoCounter())
    smus = {"smu.a": RecordingSMU("smu.a", recorder), "smu.b": RecordingSMU("smu.b", recorder)}
    matrices = {"matrix": RecordingMatrix("matrix", recorder)}
    boards = {"board": RecordingBoard("board", 4, 4, recorder)}
    for smu in smus.values():
        smu.source_voltage(1.5, 1e-3)
        smu.output_on()
    matrices["matrix"].close(["1:3", "2:7"])
    boards["board"].set_idle_mode(LineState.GROUND)
    boards["board"].set_rows([0.5, LineState.FLOAT, 0.2, 0.0])
    return smus, matrices, boards


def assert_safe(smus, matrices, boards):
    for smu in smus.values():
        assert not smu.output and smu.level == 0.0
    for matrix in matrices.values():
        assert matrix.closed_set == set()
    for board in boards.values():
        assert board.row_levels == [LineState.GROUND] * 4
        assert board.column_levels == [LineState.GROUND] * 4


@settings(derandomize=True, max_examples=200)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_voltage_check_passes_in_range_and_otherwise_names_limit_and_value(volts):
    guard = SafetyGuard(LIMITS)
    if abs(volts) <= 5.0:
        assert guard.check_voltage("level", volts) == volts  # never clipped
    else:
        with pytest.raises(LimitError) as refused:
            guard.check_voltage("level", volts)
        message = str(refused.value)
        assert "limits.max_voltage" in message and f"{volts:.6g}" in message
        assert "nothing was sent" in message


@settings(derandomize=True, max_examples=200)
@given(st.floats(min_value=1e-12, max_value=1.0), st.floats(min_value=1e-9, max_value=2.0),
       st.integers(min_value=1, max_value=1000))
def test_pulse_energy_bound_is_checked_against_max_energy(current_limit, width, count):
    guard = SafetyGuard(LIMITS)
    energy = 2.0 * current_limit * width * count
    if current_limit > 0.01 or width > 1.0 or energy > 1e-3:
        with pytest.raises(LimitError):
            guard.check_pulse("row:0", 2.0, width, current_limit, count)
    else:
        assert guard.check_pulse("row:0", 2.0, width, current_limit, count) == pytest.approx(
            energy)


def test_each_pulse_limit_is_named():
    guard = SafetyGuard(LIMITS)
    for args, limit in (((6.0, 1e-3, 1e-3), "limits.max_voltage"),
                        ((1.0, 2.0, 1e-3), "limits.max_pulse_width"),
                        ((1.0, 1e-3, 0.02), "limits.max_compliance"),
                        ((5.0, 0.5, 1e-2), "limits.max_energy")):
        with pytest.raises(LimitError, match=limit):
            guard.check_pulse("row:0", *args)


@pytest.mark.parametrize("bad", [math.nan, math.inf, "1", None, True])
def test_non_numbers_are_refused_not_coerced(bad):
    with pytest.raises((TypeError, ValueError)):
        SafetyGuard(LIMITS).check_voltage("level", bad)


def test_zero_or_negative_compliance_is_refused():
    with pytest.raises(ValueError, match="compliance is required"):
        SafetyGuard(LIMITS).check_compliance("limit", 0.0)


def test_recording_guard_lists_every_violation_and_passes():
    guard = SafetyGuard(LIMITS, record_violations=True)
    guard.check_voltage("a", 7.0)
    guard.check_compliance("b", 0.5)
    assert [v.limit for v in guard.violations] == ["limits.max_voltage", "limits.max_compliance"]


def test_compliance_is_read_back_and_a_mismatch_keeps_the_output_off():
    recorder = Recorder(IoCounter())

    class RoundingSMU(RecordingSMU):
        @property
        def current_limit(self):
            return 10 * self.limit  # an instrument that stored another limit

    smu = RoundingSMU("smu.a", recorder)
    smu.output = True
    with pytest.raises(ComplianceReadbackError, match="reports current limit 0.01 A"):
        SafetyGuard(LIMITS).source_voltage("smu.a", smu, 1.0, 1e-3)
    assert not smu.output


def test_a_channel_that_cannot_report_its_compliance_is_refused():
    class Blind:
        def source_voltage(self, level, limit):
            pass

        def output_off(self):
            pass

    with pytest.raises(ComplianceReadbackError, match="cannot report its current limit"):
        SafetyGuard(LIMITS).source_voltage("smu.x", Blind(), 1.0, 1e-3)


def test_normal_exit_leaves_everything_safe(instruments):
    with SafeShutdown(*instruments):
        pass
    assert_safe(*instruments)


def test_exception_exit_leaves_everything_safe_and_propagates(instruments):
    with pytest.raises(ZeroDivisionError), SafeShutdown(*instruments):
        raise ZeroDivisionError("a protocol bug")
    assert_safe(*instruments)


def test_keyboard_interrupt_leaves_everything_safe(instruments):
    with pytest.raises(KeyboardInterrupt), SafeShutdown(*instruments):
        raise KeyboardInterrupt
    assert_safe(*instruments)


def test_sigterm_raises_terminated_makes_safe_and_restores_the_handler(instruments):
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as stopped, SafeShutdown(*instruments):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10**6):  # the handler runs at the next bytecode boundary
            pass
    assert stopped.value.code == 143
    assert_safe(*instruments)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_one_failing_instrument_does_not_stop_the_others(instruments):
    smus, matrices, boards = instruments

    def broken():
        raise OSError("GPIB timeout")

    smus["smu.a"].shutdown = broken
    with pytest.raises(ShutdownError, match="smu.a: OSError: GPIB timeout") as failed, \
            SafeShutdown(smus, matrices, boards):
        pass
    assert [name for name, _ in failed.value.failures] == ["smu.a", "smu.a"]  # + verify: still on
    assert not smus["smu.b"].output and matrices["matrix"].closed_set == set()
    assert boards["board"].row_levels == [LineState.GROUND] * 4


def test_shutdown_failure_is_attached_to_the_exception_in_flight(instruments):
    smus, matrices, boards = instruments
    matrices["matrix"].shutdown = lambda: (_ for _ in ()).throw(OSError("relay card"))
    with pytest.raises(RuntimeError, match="protocol broke") as raised, \
            SafeShutdown(smus, matrices, boards):
        raise RuntimeError("protocol broke")
    assert raised.value.shutdown_failures[0][0] == "matrix"
    assert not smus["smu.a"].output


def test_ctrl_c_during_shutdown_is_held_until_every_instrument_is_safe(instruments):
    smus, matrices, boards = instruments
    original = smus["smu.a"].shutdown

    def shutdown_and_get_interrupted():
        original()
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**6):
            pass

    smus["smu.a"].shutdown = shutdown_and_get_interrupted
    with pytest.raises(KeyboardInterrupt), SafeShutdown(smus, matrices, boards):
        pass
    assert_safe(smus, matrices, boards)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt),
                                             (signal.SIGTERM, Terminated)])
def test_a_held_step_finishes_before_the_signal_is_delivered(signum, raised):
    steps = []
    with pytest.raises(raised), signals_held():
        steps.append("measured")
        os.kill(os.getpid(), signum)
        for _ in range(10**6):
            pass
        steps.append("stored")
    assert steps == ["measured", "stored"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_shutdown_verification_reads_the_board_lines_back(instruments):
    smus, matrices, boards = instruments
    board = boards["board"]
    board.shutdown = lambda: board.set_columns([LineState.GROUND] * 4)  # rows are left driven
    guard = SafeShutdown(smus, matrices, boards)
    with pytest.raises(ShutdownError, match="board lines R0, R1, R2, R3 not in the idle mode "
                                            "GROUND after shutdown"), guard:
        pass
    assert [name for name, _ in guard.failures] == ["board"]


def test_current_limit_read_back_uses_read_current_limit(instruments):
    smus, _, boards = instruments
    guard = SafetyGuard(LIMITS)
    assert guard.verify_current_limit("smu.a", smus["smu.a"], 1e-3) == 1e-3
    assert guard.verify_current_limit("board", boards["board"], 1e-3) == 1e-3
    with pytest.raises(ComplianceReadbackError, match="no read_current_limit"):
        guard.verify_current_limit("bare", object(), 1e-3)
