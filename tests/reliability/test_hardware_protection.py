"""Item 1, defence in depth: where an SMU has an over-voltage protection of its own (2400
:SOUR:VOLT:PROT, 2450 :SOUR:VOLT:PROT PROTn), the bench programs it from its max_voltage when it
opens and reads it back (the exact conversations: tests/drivers/test_smu_features.py). On the
virtual bench a level sent behind the guard's back (through the raw driver, which the bench
never hands out) does not reach the lines above the protection, in either source function and
after a reset."""

from __future__ import annotations

import pytest
from reliability import set_key, small_text, write_bench
from virtualbenches import world_of

from xbarlab.bench import open_bench


@pytest.mark.parametrize(("instrument", "bound"), [("smu2", 5.0), ("smu1", 20.0)])
def test_behind_the_guard_the_instrument_holds_the_line_at_its_protection(tmp_path, instrument,
                                                                          bound):
    """classic bench (5 V): the 2450 (smu2) gets PROT5, the 2400 (smu1) its lowest, 20 V."""
    path = write_bench(tmp_path, small_text("classic", 3, 3))
    with open_bench(str(path)) as bench:
        world = world_of(path)
        raw = bench._drivers[instrument]  # what the bench never hands out
        key = f"{instrument}.1"
        raw.source_voltage(50.0, 1e-3)
        raw.output_on()
        assert world.terminal(key).level == pytest.approx(bound)
        raw.output_off()
        raw.reset()  # *RST drops the protection: the driver programs it again
        raw.source_current(1e-3, 50.0)  # an open line: the I-source runs up to its bound
        raw.output_on()
        assert abs(raw.measure().voltage) == pytest.approx(bound, rel=1e-3)
        raw.output_off()


def test_a_bench_without_such_instruments_opens_as_before(tmp_path):
    text = set_key(small_text("default", 3, 3), "max_voltage", "4.0", "limits")
    with open_bench(str(write_bench(tmp_path, text))) as bench:
        assert bench.spec.limits.max_voltage == 4.0
