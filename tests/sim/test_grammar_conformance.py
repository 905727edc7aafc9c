"""Grammar conformance: every command the drivers' cited catalogue lists (drivers/commands.toml)
is accepted by the matching simulated model, in the catalogue's order, without a queued error;
malformed and out-of-range commands are rejected with the manual's code."""

from __future__ import annotations

import importlib.resources
import re

import pytest
from simhelpers import open_instrument, small_board_text, tomllib
from xbarlab.sim_instruments import UnknownCommand

CATALOG = tomllib.loads(
    importlib.resources.files("xbarlab.drivers").joinpath("commands.toml").read_text()
)

# catalogue table -> (embedded bench, address of that model on it)
SIMULATED = {
    "keithley2600": ("default", "GPIB0::26::INSTR"),
    "keithley707b": ("default", "GPIB0::18::INSTR"),
    "keithley2400": ("classic", "GPIB0::25::INSTR"),
    "keithley2450": ("classic", "GPIB0::24::INSTR"),
    "keysight_b2900": ("keysight", "GPIB0::23::INSTR"),
    "keysight_e5250a": ("keysight", "GPIB0::22::INSTR"),
    "array_board": ("board", "ASRL1::INSTR"),
}


# example -> catalogued commands run just before it, for examples that read what a sweep of
# the other channel left (the catalogue's own examples set up one channel only)
CONTEXT = {
    "printbuffer(1, 1, smua.nvbuffer1.readings, smua.nvbuffer2.readings, smua.nvbuffer1.statuses, "
    "smub.nvbuffer1.readings, smub.nvbuffer2.readings, smub.nvbuffer1.statuses)": [
        "smub.trigger.source.listv({0.0})", "smub.trigger.count = 1",
        "smub.trigger.measure.iv(smub.nvbuffer1, smub.nvbuffer2)", "smub.trigger.initiate()",
    ],
    ":INIT (@1,2)": [":TRIG2:SOUR TIM", ":TRIG2:TIM 0.01", ":TRIG2:COUN 3"],
}


def _expected_rejection(table: str, form: dict) -> bool:
    """Forms the catalogue lists for a sibling model that this model does not have."""
    return table == "keithley2400" and "2430 only" in form["source"]


def test_every_catalogue_table_is_simulated():
    assert set(CATALOG) - {"types"} == set(SIMULATED)


@pytest.mark.parametrize("table", sorted(SIMULATED))
def test_every_catalogue_example_is_accepted(open_bench, table):
    bench, address = SIMULATED[table]
    # the board examples are written for the board their DIM? example answers for
    text = small_board_text(*board_size()) if bench == "board" else None
    rm, lib = open_bench(bench, text=text, read_noise="false")
    spec = CATALOG[table]
    inst = open_instrument(rm, address, spec["write_termination"])
    inst.read_termination = spec["read_termination"]
    device = lib.devices[address]
    for form in spec["command"]:
        example = form["example"]
        if _expected_rejection(table, form):
            with pytest.raises(UnknownCommand):
                inst.write(example)
            device.clear_errors()
            continue
        for command in CONTEXT.get(example, ()):
            inst.write(command)
        errors_before = device.error_count()
        if "reply" in form:
            reply = inst.query(example)
            assert reply, example
        else:
            inst.write(example)
            assert device._output_buffers == type(device._output_buffers)(), example
        if "errorqueue.next()" in example or example.endswith("ERR?"):
            continue
        assert device.error_count() == errors_before, f"{table}: {example!r} queued an error"


def board_forms() -> dict[str, dict]:
    """The board's catalogue entries by header."""
    return {form["pattern"].split(" ")[0]: form for form in CATALOG["array_board"]["command"]}


def board_size() -> tuple[int, int]:
    """(rows, cols) of the board the catalogue's ``DIM?`` example replies for."""
    rows, cols = board_forms()["DIM?"]["reply"].split(",")
    return int(rows), int(cols)


def test_board_examples_describe_one_board():
    """DIM?, every level list, every reply list and every line index agree on one size."""
    forms = board_forms()
    rows, cols = board_size()
    sizes = {
        "VROW": (forms["VROW"]["example"].split(" ")[1].split(","), rows),
        "VCOL": (forms["VCOL"]["example"].split(" ")[1].split(","), cols),
        "VROW?": (forms["VROW?"]["reply"].split(","), rows),
        "VCOL?": (forms["VCOL?"]["reply"].split(","), cols),
        "MEAS:ROW?": (forms["MEAS:ROW?"]["reply"].split(";")[0].split(","), rows),
        "MEAS:COL?": (forms["MEAS:COL?"]["reply"].split(";")[0].split(","), cols),
    }
    for name, (values, size) in sizes.items():
        assert len(values) == size, name
    row_i, col_i, row_f, col_f = forms["MEAS:ALL?"]["reply"].split(";")
    assert (len(row_i.split(",")), len(col_i.split(",")), len(row_f), len(col_f)) == (
        rows, cols, rows, cols
    )
    row_flags, col_flags = forms["LIMIT?"]["reply"].split(";")
    assert (len(row_flags), len(col_flags)) == (rows, cols)
    for form in forms.values():
        for kind, index in re.findall(r"\b([RC])(\d+)=", form["example"]):
            assert int(index) < (rows if kind == "R" else cols), form["example"]
    for form in CATALOG["array_board"]["command"]:
        if form["pattern"].startswith("READ?"):
            read_row, read_col = form["example"].split(" ")[1].split(",")[:2]
            assert int(read_row) < rows and int(read_col) < cols, form["example"]
    count, *lines = forms["MEAS:REP?"]["example"].split(" ")[1].split(",")
    assert all(int(line[1:]) < (rows if line[0] == "R" else cols) for line in lines)
    *readings, row_f, col_f = forms["MEAS:REP?"]["reply"].split(";")
    assert [len(r.split(",")) for r in readings] == [len(lines)] * int(count)
    assert (len(row_f), len(col_f)) == (rows, cols)


REJECTED = [
    # (table, command, error code text expected at the head of the queue)
    ("keithley2600", "smua.source.levelv = 201", "-2.22000e+02"),
    ("keithley2600", "smua.source.limiti = 0", "-2.22000e+02"),
    ("keithley2600", "smua.measure.nplc = 30", "-2.22000e+02"),
    ("keithley2600", "smua.trigger.source.listv({0.1,300})", "-2.22000e+02"),
    ("keithley2600", "smuc.source.levelv = 1", "-2.85000e+02"),
    ("keithley2600", "SMUA.SOURCE.LEVELV = 1", "-2.85000e+02"),
    ("keithley707b", 'channel.close("1A13")', "1.11500e+03"),
    ("keithley707b", 'channel.close("1I01")', "1.11500e+03"),
    ("keithley707b", 'channel.close("1A01"', "-2.85000e+02"),
    ("keithley707b", "channel.close(1A01)", "-2.85000e+02"),
]


@pytest.mark.parametrize("table,command,code", REJECTED)
def test_malformed_or_out_of_range_is_rejected_with_the_right_code(
    open_bench, table, command, code
):
    bench, address = SIMULATED[table]
    rm, lib = open_bench(bench)
    inst = open_instrument(rm, address)
    device = lib.devices[address]
    if code.startswith("-2.85") or code.startswith("-113"):
        with pytest.raises(UnknownCommand, match=r"at " + address.replace(":", r"\:")):
            inst.write(command)
    else:
        inst.write(command)
    assert device.error_count() == 1
    first = device._error_queues[next(iter(device._error_queues))].value.decode()
    assert first.startswith(code), (command, first)
