"""The protocol registry and the conversion of ``--set key=value`` to protocol parameters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.bench.protocols import (
    ProtocolParameterError,
    UnknownProtocolError,
    available_protocols,
    get_protocol,
    parse_settings,
    register_protocol,
)


def example(bench, run, progress, width: float = 1e-6, count: int = 3, verify: bool = True,
            scheme: str = "v/2"):
    return {}


def test_values_convert_to_the_type_of_each_default():
    params = parse_settings(example, ["width=2e-6", "count=5", "verify=off", "scheme=v/3"])
    assert params == {"width": 2e-6, "count": 5, "verify": False, "scheme": "v/3"}
    assert type(params["width"]) is float and type(params["count"]) is int


@settings(derandomize=True, max_examples=200)
@given(st.text(max_size=30))
def test_any_setting_converts_or_raises_a_clear_error(text):
    try:
        params = parse_settings(example, [text])
    except ProtocolParameterError as error:
        assert "--set" in str(error)
    else:
        key = text.partition("=")[0].strip()
        assert set(params) == {key}


def test_a_count_refuses_a_fraction():
    with pytest.raises(ProtocolParameterError, match="count=1.5: allowed a number \\(int\\)"):
        parse_settings(example, ["count=1.5"])


def test_registration_checks_the_signature():
    with pytest.raises(TypeError, match="must take \\(bench, run, progress"):
        register_protocol("bad")(lambda bench, progress: None)
    with pytest.raises(TypeError, match="parameter 'level' needs a default"):
        register_protocol("bad")(lambda bench, run, progress, level: None)


def test_read_map_is_available_and_unknown_names_list_the_available():
    assert "read-map" in available_protocols()
    with pytest.raises(UnknownProtocolError, match="available: .*read-map"):
        get_protocol("read-mapp")
