"""The virtual 2636B's buffered measurement: `smuX.measure.count` readings at the present
source level into the reading buffers, as one batched model call with a read-noise draw per
reading; out-of-range counts refused with the data error and no effect."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import count_solves, open_instrument

COUNT = 2000
LEVEL = 0.2
DATA_ERROR = "-2.22000e+02"


def routed_2636b(rm):
    """smua at LEVEL on row 3, smub at 0 V on column 44 (through the 707B), outputs on."""
    smu = open_instrument(rm, "GPIB0::26::INSTR")
    open_instrument(rm, "GPIB0::18::INSTR").write('channel.close("1A04,4B08")')
    for line in ("format.asciiprecision = 16", "smua.source.limiti = 1e-3",
                 f"smua.source.levelv = {LEVEL}", "smua.source.output = smua.OUTPUT_ON",
                 "smub.source.output = smub.OUTPUT_ON"):
        smu.write(line)
    return smu


def fill(smu, count=COUNT):
    smu.write(f"smua.measure.count = {count}")
    smu.write("smua.nvbuffer1.clear()")
    smu.write("smua.nvbuffer2.clear()")
    smu.write("smua.measure.iv(smua.nvbuffer1, smua.nvbuffer2)")
    reply = smu.query(f"printbuffer(1, {count}, smua.nvbuffer1.readings, "
                      "smua.nvbuffer2.readings, smua.nvbuffer1.statuses)")
    return np.array([float(x) for x in reply.split(", ")]).reshape(count, 3)


def test_quiet_buffer_equals_a_quiet_read(open_bench):
    rm, lib = open_bench("default", read_noise="false")
    smu = routed_2636b(rm)
    quiet = float(smu.query("print(smua.measure.i())"))
    clock = lib.world.clock
    buffer = fill(smu)
    assert lib.world.clock == pytest.approx(clock + COUNT / 50)  # one NPLC each at 50 Hz
    assert quiet > 1e-7
    assert np.allclose(buffer[:, 0], quiet, rtol=1e-9, atol=0)
    assert buffer[:, 0].mean() == pytest.approx(quiet, rel=1e-9)
    assert np.all(buffer[:, 1] == LEVEL) and np.all(buffer[:, 2] == 0)
    assert float(smu.query("print(smua.nvbuffer1.n)")) == COUNT


def test_noisy_buffer_is_one_solve_with_the_spread_of_spot_reads(open_bench, monkeypatch):
    rm, lib = open_bench("default")  # read noise on, as the bench ships
    smu = routed_2636b(rm)
    calls = count_solves(monkeypatch)
    currents = fill(smu)[:, 0]
    assert calls == [1]  # the driven line's response: the operating point and the sensitivity
    # a draw per reading (readings fall on the range's resolution, so some coincide; one
    # draw for the buffer would give a single value)
    assert len(set(currents)) > COUNT / 2
    spot = np.array([float(smu.query("print(smua.measure.i())")) for _ in range(300)])
    assert 0.8 < currents.std() / spot.std() < 1.25
    scale = np.hypot(currents.std() / np.sqrt(COUNT), spot.std() / np.sqrt(spot.size))
    assert abs(currents.mean() - spot.mean()) < 5 * scale


def test_statuses_carry_the_compliance_bit(open_bench):
    rm, _ = open_bench("default", read_noise="false")
    smu = routed_2636b(rm)
    smu.write("smua.source.limiti = 1e-9")
    buffer = fill(smu, 50)
    assert np.all(buffer[:, 2] == 64)
    assert np.allclose(np.abs(buffer[:, 0]), 1e-9, rtol=1e-3)


def test_measure_i_into_one_buffer_takes_count_readings(open_bench):
    rm, _ = open_bench("default", read_noise="false")
    smu = routed_2636b(rm)
    smu.write("smua.measure.count = 30")
    smu.write("smua.nvbuffer1.clear()")
    smu.write("smua.measure.i(smua.nvbuffer1)")
    assert float(smu.query("print(smua.nvbuffer1.n)")) == 30


@pytest.mark.parametrize("bad", ["0", "-5", "60001", "2.5"])
def test_out_of_range_count_is_the_data_error_and_changes_nothing(open_bench, bad):
    rm, _ = open_bench("default", read_noise="false")
    smu = routed_2636b(rm)
    smu.write("smua.measure.count = 7")
    smu.write(f"smua.measure.count = {bad}")
    assert float(smu.query("print(errorqueue.count)")) == 1
    assert smu.query("print(errorqueue.next())").split("\t")[0] == DATA_ERROR
    assert float(smu.query("print(smua.measure.count)")) == 7
    smu.write("smua.nvbuffer1.clear()")
    smu.write("smua.measure.i(smua.nvbuffer1)")
    assert float(smu.query("print(smua.nvbuffer1.n)")) == 7

