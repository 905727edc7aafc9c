"""Every grammar still loads in stock pyvisa-sim (``@sim``), where computed values fall back
to the YAML defaults: the files stay plain pyvisa-sim and can be reviewed on their own."""

from __future__ import annotations

import importlib.resources

import pytest
import pyvisa
import yaml

GRAMMARS = sorted(
    p.name
    for p in importlib.resources.files("xbarlab.sim_instruments.grammars").iterdir()
    if p.name.endswith(".yaml")
)


@pytest.mark.parametrize("filename", GRAMMARS)
def test_grammar_loads_in_stock_sim(filename):
    path = importlib.resources.files("xbarlab.sim_instruments.grammars").joinpath(filename)
    data = yaml.load(path.read_text(), Loader=yaml.BaseLoader)
    rm = pyvisa.ResourceManager(f"{path}@sim")
    try:
        for address, resource in data["resources"].items():
            device = data["devices"][resource["device"]]
            eom = next(iter(device["eom"].values()))
            term = eom["q"].encode().decode("unicode_escape")
            inst = rm.open_resource(address, read_termination=term, write_termination=term)
            idn = next(d["r"] for d in device["dialogues"] if d["q"] == "*IDN?")
            assert inst.query("*IDN?") == idn
            # every computed getter answers with its YAML default in stock @sim
            for ch_id, prop in _properties(device):
                if "compute" in prop and "getter" in prop:
                    query = prop["getter"]["q"].replace("{ch_id}", ch_id)
                    fmt = prop["getter"]["r"]
                    assert inst.query(query) == fmt.format(_typed(prop)), query
            inst.close()
    finally:
        rm.close()


def _properties(device):
    """(channel id, property) pairs: device-level ones with id "", channel ones per first id."""
    for prop in device.get("properties", {}).values():
        yield "", prop
    for group in device.get("channels", {}).values():
        for prop in group.get("properties", {}).values():
            yield group["ids"][0], prop


def _typed(prop):
    kind = {"int": int, "float": float, "str": str}[prop["specs"]["type"]]
    return kind(prop["default"])
