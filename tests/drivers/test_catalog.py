"""The command catalogue is well formed: every example is an instance of its own pattern."""

import pytest
from xbarlab.drivers.catalog import compile_pattern, load_catalog
from xbarlab.drivers.testing import catalog_problems

CATALOG = load_catalog()


@pytest.mark.parametrize("driver", sorted(CATALOG))
def test_every_table_passes_the_catalogue_check(driver):
    # examples are instances of their patterns, forms cite a source and grade, *IDN? is listed
    assert catalog_problems(CATALOG[driver]) == []
    catalog = CATALOG[driver]
    assert catalog.read_termination == "\n" and catalog.write_termination == "\n"


def test_repeated_placeholder_must_repeat_the_same_text():
    regex = compile_pattern("{ch:smua|smub}.x = {ch:smua|smub}.Y", {})
    assert regex.match("smua.x = smua.Y")
    assert not regex.match("smua.x = smub.Y")


def test_literal_braces_and_numbers():
    types = {"numbers": r"[0-9.,]+"}
    regex = compile_pattern("f({{{values:numbers}}})", types)
    assert regex.match("f({0.1,0.2})")
    assert not regex.match("f(0.1,0.2)")


def test_unknown_type_is_rejected():
    with pytest.raises(ValueError, match="unknown placeholder type"):
        compile_pattern("X {a:no such type}", {})


def test_number_type_rejects_zero_padded_garbage():
    board = CATALOG["array_board"]
    assert board.match("VLIM 5.0") is not None
    assert board.match("VLIM five") is None
    assert board.match("VLIM 5.0 ") is None


def test_the_fake_transport_refuses_uncatalogued_commands(fake_resource):
    resource = fake_resource("keithley2400", [(":*RST", None)])
    with pytest.raises(AssertionError, match="not listed in the catalogue"):
        resource.write(":*RST")


def test_the_fake_transport_refuses_commands_out_of_order(fake_resource):
    resource = fake_resource("keithley2400", [("*CLS", None)])
    with pytest.raises(AssertionError, match="wrote '\\*RST', expected '\\*CLS'"):
        resource.write("*RST")


MESSAGE_DRIVERS = sorted(name for name, catalog in CATALOG.items() if catalog.message)


def test_the_drivers_that_join_commands_list_how():
    assert MESSAGE_DRIVERS == ["keithley2600", "keithley707b", "keysight_b2900"]


def test_a_message_of_listed_commands_is_accepted_and_anything_else_refused():
    tsp, scpi = CATALOG["keithley2600"], CATALOG["keysight_b2900"]
    assert tsp.units("smua.nvbuffer1.clear(); smub.nvbuffer1.clear()") == [
        "smua.nvbuffer1.clear()", "smub.nvbuffer1.clear()"]
    assert tsp.units("smua.nvbuffer1.clear(); smua.bogus()") is None
    assert tsp.units("smua.nvbuffer1.clear();smub.nvbuffer1.clear()") is None  # not as cited
    assert scpi.units(":OUTP1 ON;:INIT (@1,2);*OPC?") == [":OUTP1 ON", ":INIT (@1,2)", "*OPC?"]
    assert scpi.units(":SOUR1:VOLT:MODE LIST;:SOUR1:LIST:VOLT 0.1") is not None
    # a unit without the root colon would continue the path: the drivers never send one
    assert scpi.units(":SOUR1:VOLT:MODE LIST;LIST:VOLT 0.1") is None
    assert scpi.units(":OUTP1 ON;;:OUTP2 ON") is None
    assert CATALOG["keithley2400"].units(":OUTP ON;:OUTP OFF") is None  # no message entry


def test_the_fake_transport_refuses_a_message_with_an_uncatalogued_unit(fake_resource):
    resource = fake_resource("keysight_b2900", [(":OUTP1 ON;:SYST:RSEN ON", None)])
    with pytest.raises(AssertionError, match="not listed in the catalogue"):
        resource.write(":OUTP1 ON;:SYST:RSEN ON")
