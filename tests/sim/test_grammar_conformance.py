"""Grammar conformance: every command the drivers' cited catalogue lists (drivers/commands.toml)
is accepted by the matching simulated model, in the catalogue's order, without a queued error;
malformed and out-of-range commands are rejected with the manual's code."""

from __future__ import annotations

import importlib.resources

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


# Catalogue examples that contradict each other, answered the way the manual says. The board
# examples use a 4 x 4 board (VROW/VCOL with 4 levels), where column C5 does not exist.
CATALOGUE_MISMATCH = {
    ("array_board", "VSET R2=0.1,C5=F"): 'ERR 103,"Line index out of range"',
}


def _expected_rejection(table: str, form: dict) -> bool:
    """Forms the catalogue lists for a sibling model that this model does not have."""
    return table == "keithley2400" and "2430 only" in form["source"]


def test_every_catalogue_table_is_simulated():
    assert set(CATALOG) - {"types"} == set(SIMULATED)


@pytest.mark.parametrize("table", sorted(SIMULATED))
def test_every_catalogue_example_is_accepted(open_bench, table):
    bench, address = SIMULATED[table]
    # the board examples are written for the 4 x 4 board of the protocol's session example
    text = small_board_text(4, 4) if bench == "board" else None
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
        errors_before = device.error_count()
        if (table, example) in CATALOGUE_MISMATCH:
            assert inst.query(example) == CATALOGUE_MISMATCH[(table, example)]
            device.behaviour.clear_status()
            continue
        if "reply" in form:
            reply = inst.query(example)
            assert reply, example
        else:
            inst.write(example)
            assert device._output_buffers == type(device._output_buffers)(), example
        if "errorqueue.next()" in example or example.endswith("ERR?"):
            continue
        assert device.error_count() == errors_before, f"{table}: {example!r} queued an error"


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
