"""The drivers' new settings against the virtual bench (strict grammars): timed acquisitions
paced by the virtual clock, the averaging filter's noise reduction, terminals the bench is
cabled to, overflow values as the simulated instruments send them, long 2600B sweeps in
chunks, both B2900 channels at once, the 2450's ramp, the 2430's pulses, and models beyond the
embedded benches' (2601B, 2602B, B2901A, 708B). The World is looked at only to check."""

from __future__ import annotations

import importlib.resources
import math

import numpy as np
import pytest
import pyvisa
from xbarlab.drivers.keithley707b import Keithley707B
from xbarlab.drivers.keithley2400 import Keithley2400
from xbarlab.drivers.keithley2450 import Keithley2450
from xbarlab.drivers.keithley2600 import Keithley2600
from xbarlab.drivers.keysight_b2900 import KeysightB2900
from xbarlab.sim_instruments import XbarSimVisaLibrary

from xbarlab.bench import open_bench


def bench_text(name: str, *replacements: tuple[str, str], noise: bool = False) -> str:
    text = importlib.resources.files("xbarlab.benches").joinpath(f"{name}.toml").read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text if noise else text.replace("read_noise = true", "read_noise = false")


@pytest.fixture
def virtual(tmp_path):
    """virtual(text) -> (ResourceManager, World) of a fresh virtual bench from bench-file text."""
    managers = []

    def open_text(text: str, name: str = "bench"):
        path = tmp_path / f"{name}-{len(managers)}.toml"
        path.write_text(text)
        library = XbarSimVisaLibrary.fresh(str(path))
        managers.append(pyvisa.ResourceManager(library))
        return managers[-1], library.world

    yield open_text
    for manager in managers:
        manager.close()


TIMED = [  # bench, driver, address, channel name (None: the driver is the channel)
    ("default", Keithley2600, "GPIB0::26::INSTR", "a"),
    ("keysight", KeysightB2900, "GPIB0::23::INSTR", 1),
    ("classic", Keithley2400, "GPIB0::25::INSTR", None),
    ("classic", Keithley2450, "GPIB0::24::INSTR", None),
]


@pytest.mark.parametrize(("bench", "driver", "address", "name"), TIMED)
def test_timed_acquisition_is_paced_by_the_instrument_timer(virtual, bench, driver, address,
                                                            name):
    rm, world = virtual(bench_text(bench))
    with driver.connect(address, rm) as smu:
        channel = smu if name is None else smu.channel(name)
        channel.source_voltage(0.1, current_limit=1e-3)
        channel.output_on()
        start = world.clock
        readings = channel.measure_timed(5, 0.5)
        elapsed = world.clock - start
    assert len(readings) == 5 and all(r.voltage == pytest.approx(0.1) for r in readings)
    assert 4 * 0.5 <= elapsed <= 5 * 0.5 + 0.1  # four intervals between five readings
    assert readings[-1].timestamp - readings[0].timestamp == pytest.approx(2.0)


def _cell(world, rm):
    """Row 0 on smu.a, column 0 on smu.b of `default` (relays closed)."""
    Keithley707B.connect("GPIB0::18::INSTR", rm).close(["1A01", "4B01"])


def test_the_averaging_filter_reduces_read_noise_by_the_root_of_its_count(virtual):
    rm, world = virtual(bench_text("default", noise=True))
    _cell(world, rm)
    with Keithley2600.connect("GPIB0::26::INSTR", rm) as smu:
        smu.smua.source_voltage(0.2, current_limit=1e-3)
        smu.smub.source_voltage(0.0, current_limit=1e-3)
        smu.smua.output_on()
        smu.smub.output_on()
        plain = np.std([r.current for r in smu.smub.measure_repeated(400)])
        smu.smub.set_filter(16)
        start = world.clock
        filtered = [r.current for r in smu.smub.measure_repeated(100)]
        per_reading = (world.clock - start) / 100
    assert np.std(filtered) / plain == pytest.approx(1 / 4, rel=0.3)  # 1/sqrt(16)
    assert per_reading == pytest.approx(16 / 50)  # 16 conversions of 1 NPLC at 50 Hz


def test_a_2400_reads_the_crossbar_only_at_the_terminals_the_bench_is_cabled_to(virtual,
                                                                               tmp_path):
    text = bench_text("classic", ('model = "2400"', 'model = "2400"\nterminals = "rear"'))
    path = tmp_path / "classic-rear.toml"
    path.write_text(text)
    with open_bench(str(path)) as bench:  # the bench selects the rear terminals as it opens
        cabled = bench.read(0, 0, 0.2, scheme="ground")
        smu = bench._drivers["smu1"]  # the driver itself: its reset is not a bench operation
        smu.reset()  # *RST selects the front terminals; the driver selects the rear again
        forget_sources(bench)  # the reset turned the output off behind the bench's back
        again = bench.read(0, 0, 0.2, scheme="ground")
        smu.write(":ROUT:TERM FRON")  # behind the driver's back: the lines lose the SMU
        smu.check_errors(":ROUT:TERM FRON")
        lost = bench.read(0, 0, 0.2, scheme="ground")
    assert cabled.current > 1e-7 and again.current == pytest.approx(cabled.current, rel=1e-3)
    assert math.isnan(lost.current)  # an open circuit where a cell must be: never 0 S
    assert "matrix input for smu1.1 to col:0" in lost.unreachable


def forget_sources(bench) -> None:
    """Make `bench` set every level, limit and output again (its record is stale)."""
    bench._sources = {name: type(state)(lines=state.lines)
                      for name, state in bench._sources.items()}


def test_overflow_values_as_the_simulated_instruments_send_them(virtual):
    """A 2400 voltage beyond its fixed 0.2 V range (9.91e37) and a B2900 current below its
    fixed 100 nA range (-9.9e37) both come back NaN with the overflow flag."""
    rm, world = virtual(bench_text("classic"))
    with Keithley2400.connect("GPIB0::25::INSTR", rm) as smu:
        smu.source_current(1e-6, voltage_limit=2.0)  # into an open circuit
        smu.set_voltage_range(0.2)
        smu.output_on()
        reading = smu.measure()
    # no current flows into nothing: the source holds its 2 V limit (compliance), beyond 0.2 V
    assert math.isnan(reading.voltage) and reading.overflow and reading.compliance
    rm, world = virtual(bench_text("keysight"))
    from xbarlab.drivers.keysight_e5250a import KeysightE5250A

    KeysightE5250A.connect("GPIB0::22::INSTR", rm, cards=3).close(["10101", "20205"])
    with KeysightB2900.connect("GPIB0::23::INSTR", rm) as smu:
        row, col = smu.channel(1), smu.channel(2)
        row.source_voltage(-0.5, current_limit=1e-3)
        col.source_voltage(0.0, current_limit=1e-3)
        row.set_current_range(1e-7)
        row.output_on()
        col.output_on()
        reading = row.measure()
        assert world.measure("smu.1")[1] < -1.05e-7  # the truth: beyond the range
    assert math.isnan(reading.current) and reading.overflow and reading.voltage == -0.5


def test_a_142_point_2600b_sweep_in_chunks_is_one_sweep(virtual):
    rm, world = virtual(bench_text("default"))
    _cell(world, rm)
    levels = [0.2 * k / 141 for k in range(142)]
    with Keithley2600.connect("GPIB0::26::INSTR", rm) as smu:
        smu.smub.source_voltage(0.0, current_limit=1e-3)
        smu.smub.output_on()
        smu.smua.source_voltage(0.05, current_limit=1e-3)
        smu.smua.output_on()
        conductance = smu.smua.measure().current / 0.05
        readings = smu.smua.sweep(levels, delay=0.0)
        after = world.terminal("smu.a").level
    assert [r.voltage for r in readings] == pytest.approx(levels, rel=1e-5, abs=1e-9)
    assert [r.current for r in readings] == pytest.approx(
        [conductance * v for v in levels], rel=1e-5, abs=1e-15)
    assert after == 0.05  # idle again at the DC level, as after one sweep


def test_both_b2900_channels_read_at_once_agree_with_each_alone(virtual):
    rm, world = virtual(bench_text("keysight"))
    from xbarlab.drivers.keysight_e5250a import KeysightE5250A

    KeysightE5250A.connect("GPIB0::22::INSTR", rm, cards=3).close(["10101", "20205"])
    with KeysightB2900.connect("GPIB0::23::INSTR", rm) as smu:
        smu.channel(1).source_voltage(0.2, current_limit=1e-3)
        smu.channel(2).source_voltage(0.0, current_limit=1e-3)
        smu.channel(1).output_on()
        smu.channel(2).output_on()
        first, second = smu.measure_channels()
        alone = smu.channel(2).measure()
    assert first.current == pytest.approx(-second.current, rel=1e-5)  # Kirchhoff
    assert second.current == pytest.approx(alone.current, rel=1e-5)


def test_the_2450_ramps_down_in_one_instrument_sweep(virtual):
    rm, world = virtual(bench_text("classic"))
    with Keithley2450.connect("GPIB0::24::INSTR", rm) as smu:
        smu.source_voltage(1.5, current_limit=1e-3)
        smu.output_on()
        start = world.clock
        smu.shutdown()
        elapsed = world.clock - start
    assert world.terminal("smu2.1").level == 0.0 and not world.terminal("smu2.1").output
    assert elapsed == pytest.approx(4 / 50)  # 1.5, 1.0, 0.5, 0.0: one NPLC each


def test_the_2430_pulses_in_its_pulse_mode(virtual):
    rm, world = virtual(bench_text("classic", ('model = "2400"', 'model = "2430"')))
    with Keithley2400.connect("GPIB0::25::INSTR", rm) as smu:
        assert smu.model == "2430"
        smu.source_voltage(0.0, current_limit=1e-3)
        start = world.clock
        smu.pulse(0.5, width=1e-3, count=3, period=5e-3)
        assert world.clock - start == pytest.approx(3 * 5e-3)
        assert smu.ask(":SOUR:VOLT:LEV?").strip() == "+0.000000E+00"


SMALL = """
[bench]
name = "small"
[instruments.smu]
driver = "keithley2600"
model = "{smu}"
address = "GPIB0::26::INSTR"
backend = "@xbarsim"
[instruments.smu2]
driver = "{driver2}"
model = "{smu2}"
address = "GPIB0::23::INSTR"
backend = "@xbarsim"
[instruments.matrix]
driver = "keithley707b"
model = "708B"
address = "GPIB0::18::INSTR"
backend = "@xbarsim"
[wiring]
path_resistance = 2.0
[wiring.inputs.matrix]
{inputs}
H = "ground"
[[wiring.lines]]
lines = "row:0-3"
instrument = "matrix"
outputs = "1-4"
[[wiring.lines]]
lines = "col:0-3"
instrument = "matrix"
outputs = "5-8"
[chip]
rows = 4
cols = 4
[limits]
max_voltage = 5.0
max_compliance = 0.01
max_pulse_width = 1.0
max_energy = 1e-3
[sim]
seed = 5
read_noise = false
"""


@pytest.mark.parametrize(("smu", "smu2", "driver2", "inputs"), [
    ("2602B", "B2912A", "keysight_b2900",
     'A = "smu.a"\nB = "smu.b"\nC = "smu2.1"\nD = "smu2.2"'),
    ("2601B", "B2901A", "keysight_b2900", 'A = "smu.a"\nB = "smu2.1"'),
])
def test_benches_of_other_models_open_and_read_as_the_circuit_says(tmp_path, smu, smu2,
                                                                   driver2, inputs):
    path = tmp_path / f"{smu}.toml"
    path.write_text(SMALL.format(smu=smu, smu2=smu2, driver2=driver2, inputs=inputs))
    with open_bench(str(path)) as bench:
        assert bench.drivers["smu"].model == smu and bench.drivers["matrix"].model == "708B"
        assert bench.drivers["smu2"].model == smu2[:5]
        reading = bench.read(1, 2, 0.2, scheme="ground")
        truth = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world.conductance()[1, 2]
    assert reading.current / 0.2 == pytest.approx(truth, rel=0.01)
