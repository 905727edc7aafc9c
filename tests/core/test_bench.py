"""The bench over recording instruments built from the embedded bench files: bias schemes,
relay bookkeeping, round trips, limits refused before any command, safe exits."""

from __future__ import annotations

import numpy as np
import pytest
from corehelpers import attach_ohmic_array, small_board_spec

from xbarlab.bench import BenchError, bias_levels
from xbarlab.benchfile import Line, load_bench, parse_bench
from xbarlab.dryrun import RecordingBench, RecordingMatrix
from xbarlab.interfaces import LineState
from xbarlab.safety import LimitError


def line_voltages(recording: RecordingBench) -> dict[Line, float]:
    return {line: volts for line, (volts, _) in recording.ledger.potentials().items()}


def test_ground_scheme_read_map_recovers_every_conductance(default_recording, conductances):
    attach_ohmic_array(default_recording, conductances)
    with default_recording.bench as bench:
        currents = bench.read_map(0.2, scheme="ground")
    np.testing.assert_allclose(currents / 0.2, conductances, rtol=1e-12)


def test_float_read_senses_the_column_and_returns_a_positive_cell_current(
        default_recording, conductances):
    attach_ohmic_array(default_recording, conductances)
    with default_recording.bench as bench:
        reading = bench.read(4, 9, 0.3)
        volts = line_voltages(default_recording)
    assert volts == {Line("row", 4): 0.3, Line("col", 9): 0.0}  # every other line floats
    assert reading.current == pytest.approx(conductances[4, 9] * 0.3, rel=1e-12)
    assert reading.conductance == pytest.approx(conductances[4, 9], rel=1e-12)


def test_v2_read_on_two_smus_shifts_levels_so_unselected_lines_are_grounded(
        default_recording, conductances):
    attach_ohmic_array(default_recording, conductances)
    with default_recording.bench as bench:
        reading = bench.read(2, 5, 0.2, scheme="v/2")
        volts = line_voltages(default_recording)
    assert volts[Line("row", 2)] == pytest.approx(0.1)
    assert volts[Line("col", 5)] == pytest.approx(-0.1)
    others = [v for line, v in volts.items() if line not in (Line("row", 2), Line("col", 5))]
    assert len(others) == 62 and set(others) == {0.0}
    # the column also carries the half-selected cells of column 5, each at V/2
    half = sum(conductances[i, 5] for i in range(32) if i != 2) * 0.1
    assert reading.current == pytest.approx(conductances[2, 5] * 0.2 + half, rel=1e-12)
    np.testing.assert_allclose(default_recording.ledger.max_voltage[2, 5], 0.2)
    assert default_recording.ledger.max_voltage[2, 7] == pytest.approx(0.1)
    assert default_recording.ledger.max_voltage[8, 7] == 0.0


def test_a_scheme_needing_more_sources_than_the_bench_has_is_refused_before_sending():
    recording = RecordingBench(load_bench("classic"))  # two SMUs and a ground input
    with recording.bench as bench:
        before = recording.io.total
        with pytest.raises(BenchError, match="cannot bias the lines.*smu1.1, smu2.1"):
            bench.read(0, 0, 0.2, scheme="v/3")
        assert recording.io.total == before


@pytest.mark.parametrize("operation, limit", [
    (lambda b: b.sweep_point(0, 0, 5.5, "float"), "limits.max_voltage"),
    (lambda b: b.read(0, 0, 0.5), "limits.max_read_voltage"),
    (lambda b: b.read(0, 0, 0.2, current_limit=0.02), "limits.max_compliance"),
    (lambda b: b.pulse(0, 0, 6.0, 1e-3), "limits.max_voltage"),
    (lambda b: b.pulse(0, 0, 2.0, 2.0), "limits.max_pulse_width"),
    (lambda b: b.pulse(0, 0, 4.0, 0.5, current_limit=0.01), "limits.max_energy"),
    (lambda b: b.pulse(1, 1, 2.0, 1e-3, count=600, current_limit=1e-3), "limits.max_energy"),
])
def test_limits_are_refused_before_any_instrument_sees_a_command(operation, limit):
    recording = RecordingBench(load_bench("default"), record_violations=False)
    with recording.bench as bench:
        bench.read(3, 3, 0.2)  # a live state that must not change
        state = ({n: (s.level, s.limit, s.output) for n, s in recording.smus.items()},
                 set(recording.matrices["matrix"].closed_set))
        before = recording.io.total
        with pytest.raises(LimitError, match=limit):
            operation(bench)
        assert recording.io.total == before
        assert state == ({n: (s.level, s.limit, s.output) for n, s in recording.smus.items()},
                         set(recording.matrices["matrix"].closed_set))


def test_repeated_reads_resend_nothing_and_round_trips_are_counted(default_recording):
    with default_recording.bench as bench:
        bench.read(3, 5)
        first = bench.last_round_trips
        bench.read(3, 5)
        assert bench.last_round_trips == 2  # only the measurements: sense, and driver's limit
        bench.read(3, 6)
        assert bench.last_round_trips == 4  # open col 5, close col 6, measure both
        assert bench.round_trips()["read"] == {"calls": 3, "round_trips": first + 6}
    calls = default_recording.recorder.calls
    assert calls["matrix.close"] == 2 and calls["matrix.open"] == 1


def test_relays_never_switch_a_line_carrying_a_nonzero_source_level():
    recording = RecordingBench(load_bench("default"))
    ledger = recording.ledger
    switched_live = []

    def checked(method):
        def switch(channels, *known_closed):
            for channel in channels:
                input_port, output = RecordingMatrix.ports(channel)
                terminal = ledger.terminal_at("matrix", input_port)
                if terminal != "ground":
                    smu = recording.smus[terminal]
                    if smu.output and smu.level != 0.0:
                        switched_live.append((channel, smu.level))
            method(channels, *known_closed)
        return switch

    matrix = recording.matrices["matrix"]
    matrix.open = checked(matrix.open)
    close = checked(matrix.close)
    matrix.close = lambda channels, known_closed=None: close(channels, known_closed)
    with recording.bench as bench:
        for row in range(3):
            for col in range(3):
                bench.read(row, col, 0.2, scheme="v/2")
                bench.pulse(row, col, 2.0, 1e-3, scheme="v/2")
                bench.read(row, col, 0.2, scheme="float")
    assert switched_live == []


def test_v2_pulse_on_a_matrix_bench_pulses_the_row_and_its_bias_together(default_recording):
    """V/2: the pulsed row on smu.a and every unselected line on smu.b, the other channel of
    the same 2636B, pulse together from 0 V (every line at 0 V between pulses, the selected
    column on ground); the energy bound is both channels'."""
    pulses = []
    pair = default_recording.pairs["smu"]
    pair.pulse_pair = lambda first, first_level, second, second_level, width, count=1, \
        period=None: pulses.append((line_voltages(default_recording), first, first_level,
                                    second, second_level, width, count)) or (None, None)
    with default_recording.bench as bench:
        energy = bench.pulse(6, 2, 2.0, 1e-4, scheme="v/2", count=2, current_limit=1e-3)
        assert bench.last_pulse_energy is None  # the recording channels measure nothing
    volts, *pulse = pulses[0]
    assert pulse == ["a", 2.0, "b", 1.0, 1e-4, 2]
    assert set(volts.values()) == {0.0}  # the pulse's base: every line at 0 V
    assert energy == pytest.approx((2.0 + 1.0) * 1e-3 * 1e-4 * 2)


def test_v3_pulse_on_the_default_bench_runs_on_both_cabled_smus(default_recording):
    """V/3 on `default`: the pulsed row on smu.a and V/3 on smu.b pulse together, 2V/3 on
    smu2.a is armed on the trigger cable first and pulses with them; every line at 0 V around
    the pulse; the energy bound is all three channels'."""
    calls = []
    for name in ("smu", "smu2"):
        pair = default_recording.pairs[name]
        for method in ("arm_linked_pulse", "pulse_linked", "linked_readings"):
            inner = getattr(pair, method)

            def logged(*args, _inner=inner, _call=f"{name}.{method}", **kwargs):
                calls.append((_call, args[:1], set(line_voltages(default_recording).values())))
                return _inner(*args, **kwargs)

            setattr(pair, method, logged)
    with default_recording.bench as bench:
        energy = bench.pulse(6, 2, 3.0, 1e-4, scheme="v/3", count=2, current_limit=1e-3)
    assert [(call, args) for call, args, _ in calls] == [
        ("smu2.arm_linked_pulse", ({"a": 2.0},)), ("smu.pulse_linked", ({"a": 3.0, "b": 1.0},)),
        ("smu2.linked_readings", ())]
    assert all(volts == {0.0} for _, _, volts in calls)
    assert energy == pytest.approx((3.0 + 1.0 + 2.0) * 1e-3 * 1e-4 * 2)


def test_board_v3_pulse_biases_every_line_then_pulses_the_selected_pair():
    recording = RecordingBench(small_board_spec())
    board = recording.boards["board"]
    seen = []
    board.pulse = lambda width, rows=None, columns=None, count=1, period=None: seen.append(
        (dict(rows), dict(columns), width, list(board.row_levels), list(board.column_levels)))
    with recording.bench as bench:
        bench.pulse(1, 2, 3.0, 1e-5, scheme="v/3")
    rows, cols, width, dc_rows, dc_cols = seen[0]
    assert (rows, cols, width) == ({1: 3.0}, {2: 0.0}, 1e-5)
    assert dc_rows == [1.0] * 4 and dc_cols == [2.0] * 4  # every cell at -V/3 around the pulse
    assert board_idle(board)  # and back to idle right after


def test_board_float_read_is_one_round_trip_and_mvm_two(conductances):
    recording = RecordingBench(small_board_spec())
    g = conductances[:4, :4]
    attach_ohmic_array(recording, g)
    with recording.bench as bench:
        reading = bench.read(2, 3, 0.2)
        assert bench.last_round_trips == 1
        assert reading.current == pytest.approx(g[2, 3] * 0.2)
        v = np.array([0.1, 0.0, -0.2, 0.15])
        result = bench.mvm(v)
        assert bench.last_round_trips == 2  # set the lines, measure every current
        np.testing.assert_allclose(result.currents, v @ g, rtol=1e-12)
        bench.mvm(v)
        assert bench.last_round_trips == 1  # lines already set
        reading = bench.read(1, 1, 0.2, scheme="ground")
        assert reading.current == pytest.approx(g[1, 1] * 0.2, rel=1e-12)
    assert board_idle(recording.boards["board"])


@pytest.mark.parametrize("scheme", ["float", "ground", "v/3"])
def test_board_repeated_reads_are_one_round_trip(conductances, scheme):
    recording = RecordingBench(small_board_spec())
    g = conductances[:4, :4]
    attach_ohmic_array(recording, g)
    with recording.bench as bench:
        single = bench.read(2, 3, 0.2, scheme=scheme)  # the bias state is set
        readings = bench.read_repeated(2, 3, 0.2, scheme, count=8)
        assert bench.last_round_trips == 1
        assert [r.current for r in readings] == [single.current] * 8
        rows = bench.read_row_repeated(1, 0.2, count=5)
        assert bench.last_round_trips == 2  # the new row's levels, then all its readings
        np.testing.assert_allclose([[r.current for r in row] for row in rows],
                                   np.tile(g[1] * 0.2, (5, 1)), rtol=1e-12)


def board_idle(board) -> bool:
    return set(board.row_levels) | set(board.column_levels) == {board.idle_state}


def test_mvm_needs_a_board(default_recording):
    with default_recording.bench as bench, pytest.raises(BenchError, match="no array board"):
        bench.mvm(np.zeros(32))


def test_read_map_skips_the_chips_masked_cells_a_user_mask_and_done_cells():
    text = load_bench("default").text.replace("masked = []", "masked = [[0, 1], [2, 2]]")
    recording = RecordingBench(parse_bench(text, "masked.toml"))
    mask = np.zeros((32, 32), bool)
    mask[:3, :3] = True
    with recording.bench as bench:
        cells = bench.map_cells(mask, skip={(0, 0)})
    assert cells == [(0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]


def test_every_exit_path_leaves_outputs_off_relays_open_board_idle(conductances):
    for spec in (load_bench("default"), small_board_spec()):
        recording = RecordingBench(spec)
        with pytest.raises(RuntimeError), recording.bench as bench:
            bench.read(1, 1, 0.2, scheme="ground")
            raise RuntimeError("protocol failed")
        assert not any(smu.output for smu in recording.smus.values())
        assert all(not m.closed_set for m in recording.matrices.values())
        assert all(board_idle(b) for b in recording.boards.values())


def test_bias_levels_of_each_scheme():
    levels = bias_levels("v/3", 0, 1, 3.0, 2, 2)
    assert levels == {Line("row", 0): 3.0, Line("row", 1): 1.0,
                      Line("col", 0): 2.0, Line("col", 1): 0.0}
    assert bias_levels("float", 0, 0, 1.0, 1, 2)[Line("col", 1)] is None
    with pytest.raises(ValueError, match="scheme = 'v/4'"):
        bias_levels("v/4", 0, 0, 1.0, 1, 1)


def test_board_idle_mode_follows_the_bench_file():
    recording = RecordingBench(small_board_spec())
    with recording.bench:
        assert recording.boards["board"].idle_state == LineState.FLOAT


def test_board_ground_read_map_reads_a_whole_row_per_measurement(conductances):
    recording = RecordingBench(small_board_spec())
    g = conductances[:4, :4]
    attach_ohmic_array(recording, g)
    with recording.bench as bench:
        currents = bench.read_map(0.2, scheme="ground")
        trips = bench.round_trips()
    np.testing.assert_allclose(currents / 0.2, g, rtol=1e-12)
    assert trips == {"read_row": {"calls": 4, "round_trips": 8}}  # set lines + measure per row


def test_chip_lines_reach_the_board_lines_the_wiring_names(conductances):
    spec = small_board_spec(board_size=8, row_offset=4)  # chip rows on board R4..R7
    assert spec.instruments["board"].rows == 8 and spec.chip.rows == 4
    recording = RecordingBench(spec)
    g = conductances[:4, :4]
    attach_ohmic_array(recording, g)
    board = recording.boards["board"]
    with recording.bench as bench:
        np.testing.assert_allclose(bench.read_map(0.2, scheme="ground") / 0.2, g, rtol=1e-12)
        assert bench.read(1, 2, 0.2).current == pytest.approx(g[1, 2] * 0.2)
        v = np.array([0.1, 0.0, -0.2, 0.15])
        np.testing.assert_allclose(bench.mvm(v).currents, v @ g, rtol=1e-12)
        assert board.row_levels[:4] == [LineState.FLOAT] * 4  # not wired: idle
        assert board.row_levels[4:] == [0.1, 0.0, -0.2, 0.15]


def test_idle_turns_sources_off_and_opens_relays_and_is_free_when_already_idle(
        default_recording):
    with default_recording.bench as bench:
        bench.read(2, 2, 0.2, scheme="ground")
        bench.idle()
        assert not any(smu.output for smu in default_recording.smus.values())
        assert default_recording.matrices["matrix"].closed_set == set()
        bench.idle()
        assert bench.last_round_trips == 0
        bench.read(2, 2, 0.2)  # and the bench knows to set everything up again
        assert default_recording.smus["smu.a"].output or default_recording.smus["smu.b"].output


def test_self_test_passes_every_relay_and_finds_one_stuck_open(default_recording, conductances):
    attach_ohmic_array(default_recording, conductances)
    matrix = default_recording.matrices["matrix"]
    close = matrix.close
    matrix.close = lambda channels, known_closed=None: close(  # B to col:3 stays open
        [c for c in channels if c != "2:40"], known_closed)
    with default_recording.bench as bench:
        results = bench.self_test()
    failed = [(item, detail) for item, ok, detail in results if not ok]
    # each SMU terminal isolated, then inputs A to D (four SMU terminals) and H (ground)
    assert len(results) == 4 + 5 * 64
    assert failed == [("matrix input for smu.b to col:3 (output 40)",
                       "matrix: 2:40 recorded but not closed")]
    assert not any(smu.output for smu in default_recording.smus.values())
    assert matrix.closed_set == set()


def test_a_driving_source_at_its_limit_flags_the_reading(default_recording, conductances):
    attach_ohmic_array(default_recording, conductances)
    row_current = conductances[5].sum() * 0.2  # the whole row is biased in the ground scheme
    assert conductances[5, 7] * 0.2 < 1e-4 < row_current
    with default_recording.bench as bench:
        assert bench.read(5, 7, 0.2, scheme="ground", current_limit=1e-4).compliance
        assert not bench.read(5, 7, 0.2, scheme="ground", current_limit=1e-2).compliance


def test_board_row_driver_at_its_limit_flags_mvm_and_row_reads(conductances):
    recording = RecordingBench(small_board_spec())
    g = conductances[:4, :4]
    attach_ohmic_array(recording, g)
    with recording.bench as bench:
        v = np.array([0.2, 0.0, 0.0, 0.0])
        tight = g[0].sum() * 0.2 * 0.99  # row 0 delivers just more than this
        result = bench.mvm(v, current_limit=tight)
        assert result.row_compliance.tolist() == [True, False, False, False]
        readings = bench.read_row(0, 0.2, current_limit=tight)
        assert all(r.compliance for r in readings)
        assert not any(r.compliance for r in bench.read_row(1, 0.2, current_limit=tight))


def test_a_pulse_goes_to_an_smu_that_can_pulse_and_is_checked_before_any_bias():
    recording = RecordingBench(load_bench("classic"))  # a 2400 (no pulse mode) and a 2450
    assert recording.smus["smu1.1"].pulse_capability() is None
    assert recording.smus["smu2.1"].pulse_capability().min_width == 1e-3
    pulsed_by = []
    recording.smus["smu2.1"].pulse = lambda level, width, count=1, period=None: pulsed_by.append(
        (level, {line: v for line, v in line_voltages(recording).items() if v}))
    with recording.bench as bench:
        bench.pulse(2, 3, 1.5, 1e-3, scheme="v/2")
        bench.pulse(4, 4, 1.5, 1e-3, scheme="float")
        assert bench.round_trips()["pulse"]["calls"] == 2
        before = recording.io.total
        with pytest.raises(ValueError, match="smu2.1 cannot pulse row:0 so: pulse width = "
                                             "0.0005 s is outside .*0.001"):
            bench.pulse(0, 0, 1.5, 5e-4, scheme="v/2")  # the 2450's shortest is 1 ms
        assert recording.io.total == before  # not even the V/2 bias was sent
        recording.smus["smu2.1"].capability = None
        with pytest.raises(BenchError, match="no SMU free for row:0 can pulse"):
            bench.pulse(0, 0, 1.5, 1e-3, scheme="float")
    level, biased = pulsed_by[0]
    assert level == 1.5 and set(biased.values()) == {0.75}  # V/2 on every unselected line
    assert len(biased) == 30 and Line("row", 2) not in biased and Line("col", 3) not in biased


def test_crosspoints_the_wiring_does_not_use_are_forbidden(default_recording):
    matrix = default_recording.matrices["matrix"]
    # 707B: inputs A..H, six 12-output cards; wired: A-D, H on outputs 1-32 and 37-68
    allowed = {f"{i}:{o}" for i in (1, 2, 3, 4, 8) for o in [*range(1, 33), *range(37, 69)]}
    everything = {f"{i}:{o}" for i in range(1, 9) for o in range(1, 73)}
    assert matrix.forbidden() == frozenset(everything - allowed)
    with default_recording.bench, pytest.raises(ValueError, match="forbidden"):
        matrix.close(["5:5"])  # input E: nothing wired there


def test_recording_matrix_refuses_two_inputs_on_one_output_like_the_drivers(default_recording):
    matrix = default_recording.matrices["matrix"]
    matrix.close(["1:3"])
    with pytest.raises(ValueError, match="would join inputs 1 and 8 on output 3"):
        matrix.close(["8:3"])  # smu.a (A) and ground (H) on row:2


def test_closes_use_the_bench_record_and_a_map_ends_by_verifying_it(default_recording):
    matrix = default_recording.matrices["matrix"]
    with default_recording.bench as bench:
        bench.read(0, 0, 0.2, scheme="ground")
        calls = dict(default_recording.recorder.calls)
        bench.read(0, 1, 0.2, scheme="ground")
        assert default_recording.recorder.calls["matrix.closed"] == calls.get("matrix.closed", 0)
        assert bench.last_round_trips == 4  # open, close, two measurements
        matrix.closed_set.add("2:72")  # a relay the bench did not close (unwired output)
        with pytest.raises(BenchError, match="matrix: 2:72 closed but not recorded"):
            list(bench.iter_read_map(0.2, "ground", mask=np.eye(32, dtype=bool)))
