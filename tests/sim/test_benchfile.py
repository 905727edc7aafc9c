"""Bench-file schema: the embedded benches load; every mistake names field, value and rule."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simhelpers import embedded_text, tomllib

from xbarlab.benchfile import (
    BenchFileError,
    Line,
    LinePort,
    embedded_bench_names,
    load_bench,
    parse_bench,
)


def test_embedded_benches_load():
    names = embedded_bench_names()
    assert "default" in names
    for name in names:
        bench = load_bench(name)
        assert bench.name == name
        assert bench.sim is not None


def test_default_bench_wiring():
    bench = load_bench()
    assert bench.instruments["smu"].address == "GPIB0::26::INSTR"
    assert bench.instruments["smu2"].address == "GPIB0::27::INSTR"
    assert bench.instruments["smu2"].model == "2636B"
    inputs = {label: str(bench.wiring.inputs[("matrix", label)]) for label in "ABCD"}
    assert inputs == {"A": "smu.a", "B": "smu.b", "C": "smu2.a", "D": "smu2.b"}
    assert bench.instruments["matrix"].output_count == 72
    assert bench.wiring.lines[Line("row", 0)] == LinePort("matrix", 1)
    assert bench.wiring.lines[Line("col", 31)] == LinePort("matrix", 68)
    assert str(bench.wiring.inputs[("matrix", "H")]) == "ground"
    assert (bench.chip.rows, bench.chip.cols, bench.chip.preset) == (32, 32, "binary")
    assert bench.wiring.trigger_link == ("smu", "smu2")
    assert load_bench("keysight").wiring.trigger_link == ()


def test_file_path_and_unknown_name(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(embedded_text("default"))
    assert load_bench(path).origin == str(path)
    with pytest.raises(BenchFileError, match="not an embedded bench"):
        load_bench("no_such_bench")


def _mutate(old: str, new: str) -> str:
    text = embedded_text("default")
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "old,new,pattern",
    [
        ("max_voltage = 5.0", "max_voltage = 500.0", r"limits\.max_voltage = 500\.0.*<= 210"),
        ("max_voltage = 5.0", 'max_voltage = "5"', r"limits\.max_voltage = '5'.*a float"),
        ("rows = 32", "rows = 32\ncolour = 1", r"chip\.colour = 1.*one of the keys"),
        (
            'outputs = "37-68"',
            'outputs = "30-61"',
            r"wiring\.lines\[1\]\.outputs = 30.*not already wired to row:29",
        ),
        ('lines = "col:0-31"', 'lines = "row:0-31"', r"lines = 'row:0'.*each line wired once"),
        ('B = "smu.b"\n', "", r"wiring\.inputs = 'smu\.b'.*every SMU terminal wired"),
        (
            'A = "smu.a"',
            'A = "smu.c"',
            r"inputs\.matrix\.A = 'smu\.c'.*'ground' or an SMU terminal",
        ),
        (
            'A = "smu.a"',
            'A = "smu.b"',
            r"inputs\.matrix\.B = 'smu\.b'.*not already on matrix input A",
        ),
        ('outputs = "1-32"', 'outputs = "1-31"', r"outputs = '1-31'.*32 outputs"),
        ('outputs = "37-68"', 'outputs = "60-91"', r"outputs = '60-91'.*1\.\.72"),
        ("cards = 6", "cards = 7", r"cards = 7.*from 1 to 6"),
        ('model = "707B"', 'model = "9999"', r"model = '9999'.*one of"),
        ("seed = 2026", "seed = -1", r"sim\.seed = -1"),
        ("seed = 2026", "seed = 2026\nstuck_fraction = 1.5",
         r"sim\.stuck_fraction = 1\.5: expected a number >= 0 and <= 1"),
        ("defects = true", "defects = false\nstuck_fraction = 0.1",
         r"sim\.stuck_fraction = 0\.1: expected no stuck fraction with defects = false"),
        ('mode = "ground"', 'mode = "hover"', r"idle\.mode = 'hover'"),
        ("masked = []", "masked = [[40, 1]]", r"chip\.masked = \[40, 1\]"),
        (
            'address = "GPIB0::18::INSTR"',
            'address = "GPIB0::26::INSTR"',
            r"address.*not used by smu",
        ),
        ('model = "2636B"', 'model = "2636A"',
         r"instruments\.smu\.model = '2636A': expected another model: the Keithley 2600A "
         r"series is not supported"),
        ('model = "2636B"', 'model = "2636B"\noff_mode = "guard"',
         r"instruments\.smu\.off_mode = 'guard': expected one of normal, zero, high_z"),
        ('model = "2636B"', 'model = "2636B"\nterminals = "rear"',
         r"instruments\.smu\.terminals = 'rear': expected no 'terminals' key on a 2636B"),
        ('model = "707B"', 'model = "707B"\noff_mode = "zero"',
         r"instruments\.matrix\.off_mode = 'zero': expected no 'off_mode' key on a 707B"),
        ("seed = 2026", "seed = 2026\nr_path_spread = 1.5",
         r"sim\.r_path_spread = 1\.5: expected a number >= 0 and <= 1"),
        ("masked = []", 'masked = []\nid = "chip 7!"', r"chip\.id = 'chip 7!': expected a name"),
        ('trigger_link = ["smu", "smu2"]', 'trigger_link = ["smu", "matrix"]',
         r"wiring\.trigger_link = 'matrix': expected an SMU with trigger lines on a DIGITAL"),
        ('trigger_link = ["smu", "smu2"]', 'trigger_link = ["smu"]',
         r"wiring\.trigger_link = \['smu'\]: expected a list of two or more different"),
    ],
)
def test_mistakes_name_field_value_and_rule(old, new, pattern):
    with pytest.raises(BenchFileError, match=pattern):
        parse_bench(_mutate(old, new), "test.toml")


def test_faults_are_validated():
    base = embedded_text("default")
    ok = (
        base
        + '[[sim.faults]]\ninstrument = "matrix"\nkind = "stuck_relay"\ninput = "A"\noutput = 3\n'
    )
    assert parse_bench(ok).sim.faults[0].output == 3
    bad = (
        base + '[[sim.faults]]\ninstrument = "smu"\nkind = "stuck_relay"\ninput = "A"\noutput = 3\n'
    )
    with pytest.raises(BenchFileError, match=r"sim\.faults\[0\]\.instrument = 'smu'.*a matrix"):
        parse_bench(bad)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-3, 40), max_size=3),
)
KEYS = [
    line.split("=")[0].strip()
    for line in embedded_text("default").splitlines()
    if "=" in line and not line.lstrip().startswith("#")
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), scalars), min_size=1, max_size=4))
def test_fuzzed_bench_loads_or_raises_bench_file_error(edits):
    """Any value in any field: the file loads, or BenchFileError says what is wrong."""
    text = embedded_text("default")
    for key, value in edits:
        lines = text.splitlines()
        for n, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[n] = f"{key} = {_toml_value(value)}"
                break
        text = "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        with pytest.raises(BenchFileError, match="not valid TOML"):
            parse_bench(text)
        return
    try:
        parse_bench(text, "fuzz.toml")
    except BenchFileError as exc:
        assert str(exc).startswith("bench file fuzz.toml: ")


def test_every_model_the_drivers_support_is_accepted_with_its_terminals():
    """Each driver's model table, in a bench file: the 2600B and B2900 models with their own
    channels (a single-channel model wires one terminal), the 708B with one card."""
    from xbarlab.drivers import keithley2400, keithley2600, keysight_b2900

    from xbarlab.benchfile import MODELS

    for model in keithley2400.MODELS:
        assert MODELS[model].terminals == ("1",) and "guard" in MODELS[model].off_modes
    for model, spec in keithley2600.MODELS.items():
        assert MODELS[model].terminals == tuple(name[-1] for name in spec.channels)
    for model, spec in keysight_b2900.MODELS.items():
        for suffix in "AB":
            assert MODELS[model + suffix].terminals == tuple(str(n) for n in spec.channels)
    assert MODELS["708B"].max_cards == 1 and MODELS["2450"].terminal_sides == ("front", "rear")


def test_off_mode_and_terminals_are_read():
    text = embedded_text("classic").replace(
        'model = "2400"', 'model = "2400"\nterminals = "rear"\noff_mode = "high_z"')
    smu = parse_bench(text, "classic.toml").instruments["smu1"]
    assert (smu.terminals, smu.off_mode) == ("rear", "high_z")
    assert parse_bench(embedded_text("classic"), "c.toml").instruments["smu1"].off_mode == ""


def test_chip_id_defaults_to_the_bench_name():
    assert load_bench("default").chip.id == "default"
    assert parse_bench(_mutate("masked = []", 'masked = []\nid = "wafer3:die12"'),
                       "test.toml").chip.id == "wafer3:die12"
