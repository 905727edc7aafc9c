"""`open_bench` on the embedded virtual benches: real drivers over pyvisa and `@xbarsim`.

The World behind the virtual instruments is reached only to check what the bench did (true
conductances, final output and relay state), never to produce a measurement.
"""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa

import xbarlab
from xbarlab.bench import open_bench
from xbarlab.safety import LimitError


def world_of(name: str):
    return pyvisa.ResourceManager(f"{name}@xbarsim").visalib.world


def test_ground_scheme_reads_track_the_true_conductances_and_leave_the_bench_safe():
    with xbarlab.open_bench() as bench:
        world = world_of("default")
        mask = np.zeros((32, 32), bool)
        mask[:2, :] = True
        currents = bench.read_map(0.2, scheme="ground", mask=mask)
        truth = world.conductance()[:2]
    error = np.abs(currents[:2] / 0.2 - truth) / truth
    assert error.max() < 0.05  # path and wire resistance plus read noise, nothing else
    assert np.isnan(currents[2:]).all()
    assert not world.terminal("smu.a").output and not world.terminal("smu.b").output
    assert world.closed("matrix") == []


def test_a_refused_pulse_reaches_no_instrument_and_an_exception_still_makes_safe():
    with pytest.raises(LimitError, match="limits.max_voltage"), open_bench() as bench:
        bench.read(0, 0, 0.2)
        before = bench.io.total
        try:
            bench.pulse(0, 0, 7.0, 1e-3)
        finally:
            assert bench.io.total == before
    world = world_of("default")
    assert not world.terminal("smu.a").output and world.closed("matrix") == []


def test_board_mvm_sets_all_rows_in_one_command_and_reads_all_columns_in_one():
    with open_bench("board") as bench:
        world = world_of("board")
        rng = np.random.default_rng(3)
        bench.mvm(rng.uniform(0.0, 0.2, 128))
        assert bench.last_round_trips == 3  # every row, every column (to 0 V), measure
        v = rng.uniform(0.0, 0.2, 128)
        result = bench.mvm(v)
        assert bench.last_round_trips == 2  # columns already at 0 V
        ideal = v @ world.conductance()
    assert np.max(np.abs(result.currents - ideal)) / np.max(ideal) < 0.15  # IR drop only
    assert {world.board_level("board", channel) for channel in range(1, 257)} == {"F"}


def test_an_unknown_driver_is_refused_and_the_sessions_opened_so_far_are_closed(tmp_path):
    from xbarlab.bench import BenchError
    from xbarlab.benchfile import load_bench

    text = load_bench("classic").text.replace('driver = "keithley2450"',
                                              'driver = "keithley9999"')
    path = tmp_path / "typo.toml"
    path.write_text(text)
    with pytest.raises(BenchError, match="driver = 'keithley9999': no module"):
        open_bench(str(path))
    with open_bench("classic") as bench:  # no session was left open at those addresses
        assert bench.read(0, 0, 0.2).current > 0


def test_import_xbarlab_stays_light():
    import subprocess
    import sys

    code = "import sys, xbarlab; print('pyvisa' in sys.modules, callable(xbarlab.open_bench))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("bench_name", ["classic", "default", "keysight"])
def test_reads_after_a_pulse_measure_the_cell_the_pulse_switched(bench_name):
    """A pulse reprograms the pulsing SMU (the 2450 ends it with its output off): the next read
    must set that SMU up again, not trust the bench's record and read 0 A."""
    with xbarlab.open_bench(bench_name) as bench:
        world = world_of(bench_name)
        healthy = np.argwhere(world.array.defect_map() == 0)
        row, col = (int(k) for k in healthy[0])
        width = 1e-3  # the 2450's shortest pulse
        bench.pulse(row, col, 1.3, width, "v/2")
        after = bench.read(row, col, 0.2, "ground")
        truth = world.conductance()[row, col]
    assert truth > 50e-6  # the SET switched the cell to its low-resistance state
    assert abs(after.current / 0.2 - truth) / truth < 0.05


def test_board_pulses_of_both_polarities_switch_their_cells_and_only_half_selected_drift():
    """From the V/2 bias of a SET (+V/2 on every line) to that of a RESET (-V/2): set as two
    full-vector commands, rows then columns, the lines would hold V across every cell between
    them; the bench takes every line idle first."""
    with open_bench("board") as bench:
        world = world_of("board")
        a, b = (tuple(int(k) for k in cell) for cell in
                np.argwhere(world.array.defect_map() == 0)[[0, 200]])
        before = world.conductance().copy()
        for cell, volts in ((a, 1.6), (b, 1.6), (a, -1.6)):
            bench.pulse(*cell, volts, 1e-7, "v/2")
        after = world.conductance()
    assert after[b] > 30 * before[b] and after[a] < 2 * before[a]
    # cells on none of the pulsed lines see 0 V and stay; the half-selected ones (0.8 V)
    # drift a little with every pulse
    apart = np.ones(after.shape, bool)
    apart[[a[0], b[0]], :] = apart[:, [a[1], b[1]]] = False
    assert np.array_equal(after[apart], before[apart])
