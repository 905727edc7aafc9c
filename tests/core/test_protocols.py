"""The protocol registry and declared parameters: registration, ``--set`` conversion, checks."""

from __future__ import annotations

from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.benchfile import load_bench
from xbarlab.params import Param, ParameterError
from xbarlab.registry import (
    UnknownProtocolError,
    available_protocols,
    get_protocol,
    register_protocol,
)

DEFAULT = load_bench("default")


@register_protocol("example")
def example(bench, run, progress, *,
            width: Annotated[float, Param("pulse width", unit="s", above=0.0,
                                          maximum="limits.max_pulse_width")] = 1e-6,
            count: Annotated[int, Param("pulses", minimum=1, maximum=100)] = 3,
            verify: Annotated[bool, Param("read after each pulse")] = True,
            scheme: Annotated[str, Param("bias", choices=("v/2", "v/3"))] = "v/2"):
    """An example protocol."""
    return {}


def test_values_convert_to_the_kind_of_each_declaration():
    params = example.parse_settings(["width=2e-6", "count=5", "verify=off", "scheme=v/3"])
    assert params == {"width": 2e-6, "count": 5, "verify": False, "scheme": "v/3"}
    assert type(params["width"]) is float and type(params["count"]) is int
    assert example.resolve({}, DEFAULT) == {"width": 1e-6, "count": 3, "verify": True,
                                           "scheme": "v/2"}


@settings(derandomize=True, max_examples=200)
@given(st.text(max_size=30))
def test_any_setting_converts_or_raises_one_line_naming_it(text):
    try:
        params = example.parse_settings([text])
    except ParameterError as error:
        assert "\n" not in str(error)
        assert "--set" in str(error) or "allowed" in str(error)
    else:
        key = text.partition("=")[0].strip()
        assert set(params) == {key}


def test_a_count_refuses_a_fraction_and_a_bound_names_the_bench_quantity():
    with pytest.raises(ParameterError, match="count = '1.5': allowed an integer >= 1"):
        example.parse_settings(["count=1.5"])
    with pytest.raises(ParameterError, match=r"width = 2.0 s: allowed a number > 0 s and <= "
                                             r"limits.max_pulse_width \(1 s\)"):
        example.resolve({"width": 2.0}, DEFAULT)


def test_a_typo_suggests_the_closest_parameter():
    with pytest.raises(ParameterError, match="'widht' is not a parameter of example "
                                             r"\(did you mean width\?\); allowed: width"):
        example.parse_settings(["widht=1e-6"])


def test_registration_checks_the_signature_and_the_declarations():
    with pytest.raises(TypeError, match="must take \\(bench, run, progress"):
        register_protocol("bad")(lambda bench, progress: None)

    def undeclared(bench, run, progress, level: float = 1.0):
        """No declaration."""

    with pytest.raises(TypeError, match="parameter 'level' needs one declaration"):
        register_protocol("bad")(undeclared)

    def no_default(bench, run, progress, level: Annotated[float, Param("level")]):
        """No default."""

    with pytest.raises(TypeError, match="parameter 'level' needs a default"):
        register_protocol("bad")(no_default)

    def bad_default(bench, run, progress,
                    level: Annotated[float, Param("level", maximum=1.0)] = 2.0):
        """A default its own declaration refuses."""

    with pytest.raises(TypeError, match="the default of 'level' is refused"):
        register_protocol("bad")(bad_default)


def test_built_in_protocols_come_from_the_entry_points():
    protocols = available_protocols()
    assert {"read-map", "iv-sweep", "forming", "write-verify", "program-efficient",
            "retention", "endurance"} <= set(protocols)
    assert all(protocol.name == name for name, protocol in protocols.items())
    with pytest.raises(UnknownProtocolError, match="available: .*read-map"):
        get_protocol("read-mapp")
