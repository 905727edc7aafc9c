"""Numbers reach the instrument unchanged in value; validators raise, naming field and range."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xbarlab.drivers.catalog import load_catalog
from xbarlab.drivers.numbers import format_integer, format_number, format_numbers
from xbarlab.drivers.validators import InRange, IntegerInRange, Magnitude, OneOf, OneOfNumbers

magnitudes = st.floats(min_value=1e-12, max_value=1e3, allow_nan=False, allow_infinity=False)
signed = st.builds(lambda m, negative: -m if negative else m, magnitudes, st.booleans())


@settings(max_examples=400, deadline=None)
@given(signed)
def test_every_value_from_1e_12_to_1e3_round_trips_exactly(value):
    text = format_number(value)
    assert float(text) == value
    assert float(text) != 0.0


@settings(max_examples=200, deadline=None)
@given(signed)
def test_formatted_numbers_match_the_catalogue_number_grammar(value):
    board = load_catalog()["array_board"]
    assert board.match(f"VLIM {format_number(value)}") is not None


@pytest.mark.parametrize(
    ("value", "text"),
    [(100e-9, "1e-07"), (1e-12, "1e-12"), (0.2, "0.2"), (-1.5, "-1.5"), (1000, "1000.0"),
     (0.0, "0.0"), (-0.0, "0.0"), (1.05e-4, "0.000105")],
)
def test_known_values(value, text):
    assert format_number(value) == text


def test_numpy_scalars_format_as_plain_numbers():
    np = pytest.importorskip("numpy")
    assert format_number(np.float64(1e-7)) == "1e-07"
    assert format_number(np.float32(0.5)) == "0.5"
    assert format_integer(np.int64(7)) == "7"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(bad):
    with pytest.raises(ValueError, match="non-finite"):
        format_number(bad)


@pytest.mark.parametrize("bad", [True, "0.1", None])
def test_non_numbers_are_refused(bad):
    with pytest.raises(TypeError):
        format_number(bad)
    with pytest.raises(TypeError):
        format_integer(bad)


def test_integers_and_lists():
    assert format_integer(2500) == "2500"
    with pytest.raises(TypeError):
        format_integer(2.0)
    assert format_numbers([0.0, 1e-7, -2.5]) == "0.0,1e-07,-2.5"


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False))
def test_in_range_accepts_inside_and_raises_outside_never_clips(value):
    check = InRange(-10.0, 10.0, "V")
    if -10.0 <= value <= 10.0:
        assert check("level", value) == value
    else:
        with pytest.raises(ValueError, match=r"level = .* V is outside the allowed range -10.0 to"):
            check("level", value)


def test_limits_are_inclusive():
    assert Magnitude(210.0, "V")("level", -210.0) == -210.0
    assert InRange(1e-9, 1.05, "A")("limit", 1e-9) == 1e-9


def test_other_validators():
    assert IntegerInRange(1, 3)("count", 3) == 3
    with pytest.raises(ValueError, match="count = 4 is outside the allowed range 1 to 3"):
        IntegerInRange(1, 3)("count", 4)
    with pytest.raises(TypeError, match="count must be an integer"):
        IntegerInRange(1, 3)("count", 2.0)
    assert OneOf(("ON", "OFF"))("state", "ON") == "ON"
    with pytest.raises(ValueError, match="state = 'on' is not one of the allowed values"):
        OneOf(("ON", "OFF"))("state", "on")
    assert OneOfNumbers((1e-6, 1e-5))("range", 1.0000000000001e-6) == 1e-6
    with pytest.raises(ValueError, match="range = 2e-06 A is not one of"):
        OneOfNumbers((1e-6, 1e-5), "A")("range", 2e-6)
    with pytest.raises(TypeError, match="level must be a real number"):
        InRange(0, 1)("level", "0.5")
