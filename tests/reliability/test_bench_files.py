"""Items 7, 8 and 13 at parse time: sizes checked before anything is expanded, partial wiring,
over-long board commands and duplicate VISA addresses refused, paths kept inside the bench
file's folder; and a hypothesis test over bench-file mutations that only ever gets a
`BenchFileError` (or a valid bench), within 1 s and 200 MB each."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import embedded_text, small_text, write_bench

from xbarlab.benchfile import BenchFileError, load_bench, parse_bench

DEFAULT = small_text("default")
BOARD = small_text("board")


@pytest.mark.parametrize("old, new, pattern", [
    ('lines = "row:0-3"', 'lines = "row:0-99999999"', r"row:0-99999999.*lines of the 4x4 chip"),
    ('outputs = "1-4"', 'outputs = "1-99999999999"', r"outputs 1\.\.72"),
    ('lines = "row:0-3"', 'lines = "row:0-' + "9" * 5000 + '"', r"a line or line range"),
    ('lines = "row:0-3"\ninstrument = "matrix"\noutputs = "1-4"',
     'lines = "row:0-2"\ninstrument = "matrix"\noutputs = "1-3"',
     r"wiring\.lines = 'row:3'.*every line of the 4x4 chip wired"),
    ('address = "GPIB0::18::INSTR"', 'address = "gpib0::26::instr"',
     r"not used by smu \(both are GPIB0::26::INSTR\)"),
    ('address = "GPIB0::18::INSTR"', 'address = "GPIB::26::INSTR"', r"not used by smu"),
    ('address = "GPIB0::18::INSTR"', 'address = "GPIB0::26"', r"not used by smu"),
    ('address = "GPIB0::18::INSTR"', 'address = "GPIB0::"', r"GPIB0::.*VISA resource"),
])
def test_a_mistake_is_refused_before_anything_is_expanded(old, new, pattern):
    assert old in DEFAULT
    started = time.perf_counter()
    with pytest.raises(BenchFileError, match=pattern):
        parse_bench(DEFAULT.replace(old, new, 1), "test.toml")
    assert time.perf_counter() - started < 1.0


def test_a_board_too_large_for_one_command_is_refused():
    """A 1024-line board would need a VROW command of 1024 levels: 4100 characters even at
    '0.0' each, against the board's 4096."""
    text = embedded_text("board").replace("rows = 128\ncols = 128", "rows = 1024\ncols = 1024")
    with pytest.raises(BenchFileError, match=r"rows = 1024: expected an integer from 1 to 215"):
        parse_bench(text, "board.toml")


def test_state_file_stays_in_the_bench_folder(tmp_path):
    for path in ("/tmp/elsewhere.json", "../outside.json", "a/../../outside.json"):
        text = DEFAULT.replace("[sim]\n", f'[sim]\nstate_file = "{path}"\n')
        with pytest.raises(BenchFileError, match="inside the bench file's folder"):
            load_bench(write_bench(tmp_path, text))
    text = DEFAULT.replace("[sim]\n", '[sim]\nstate_file = "runs/final.json"\n')
    spec = load_bench(write_bench(tmp_path, text))
    assert spec.sim.state_file == str(tmp_path / "runs" / "final.json")


def test_a_file_that_is_not_utf8_is_a_bench_file_error(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(DEFAULT.replace("Two Keithley", "Zw\xf6lf Keithley").encode("latin-1"))
    with pytest.raises(BenchFileError, match="not UTF-8"):
        load_bench(path)


def test_the_read_voltage_limit_defaults_below_the_lowest_switching_threshold():
    from xbarlab.physics.presets import preset

    for text in (DEFAULT, embedded_text("analog")):
        spec = parse_bench(text, "t.toml")
        device = preset(spec.chip.preset)
        assert spec.limits.max_read_voltage < min(device.v_set, -device.v_reset)
    spec = parse_bench(DEFAULT.replace("max_energy", "max_read_voltage = 0.3\nmax_energy"))
    assert spec.limits.max_read_voltage == 0.3
    with pytest.raises(BenchFileError, match="max_read_voltage = 6.0.*<= 5"):
        parse_bench(DEFAULT.replace("max_energy", "max_read_voltage = 6.0\nmax_energy"))


# ---------------------------------------------------------------- mutations

ODD_ADDRESSES = ["gpib0::26::instr", "GPIB::26::INSTR", "::", "GPIB0::", "TCPIP::[::1]::INSTR",
                 "ASRL/dev/ttyUSB0::INSTR", "GPIB0::26::INSTR\x00", "USB::0x1::0x2::3::INSTR",
                 "é::1::INSTR", "GPIB0::99999999999999999999::INSTR", ""]
HUGE = ["99999999", "9" * 40, "-1", "1e308", "nan", "inf", "0", "4096", "18446744073709551616"]


@st.composite
def mutated(draw) -> bytes:
    """A bench file with a few mutations: huge ranges and numbers, partial wiring, odd
    addresses, deleted lines, and bytes that are not UTF-8."""
    text = draw(st.sampled_from([DEFAULT, BOARD]))
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        k = draw(st.integers(0, len(lines) - 1))
        line = lines[k]
        choice = draw(st.integers(0, 5))
        if choice == 0 and "-" in line and '"' in line:  # a huge or odd range
            head = line[: line.rindex("-") + 1]
            lines[k] = head + draw(st.sampled_from(HUGE)) + '"'
        elif choice == 1 and "=" in line:  # a huge or odd number
            lines[k] = line.split("=")[0] + "= " + draw(st.sampled_from(HUGE))
        elif choice == 2 and line.startswith("address"):
            lines[k] = f'address = "{draw(st.sampled_from(ODD_ADDRESSES))}"'
        elif choice == 3:
            del lines[k]
        elif choice == 4 and line.startswith("lines ="):  # partial wiring
            lines[k] = line.replace("0-3", "0-1")
        else:
            lines[k] = line + draw(st.text(max_size=8))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


load_bench("default")  # warm: pyvisa's resource-name parser and the presets imported once


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_mutated_bench_files_give_only_bench_file_errors(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("mutated") / "bench.toml"
    path.write_bytes(data)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        load_bench(path)
    except BenchFileError:
        pass
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 200e6
