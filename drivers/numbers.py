"""Numbers as instrument text, without losing value.

Public drivers have sent a 100 nA compliance as `0.000000` (fixed-point `%f`), which an instrument
reads as zero. xbarlab writes every number as Python's shortest round-trip representation of the
float (`repr`): `1e-07`, `0.2`, `-1.5`, `100.0`. It is exact by construction (parsing the text gives
back the same float) and every SCPI and TSP parser reads it.
"""

from __future__ import annotations

import math
import numbers

from .errors import GarbledReplyError, last_exchange


def format_number(value: float) -> str:
    """The shortest text that reads back as exactly `value` (finite real numbers only)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"cannot send a non-finite number to an instrument: {value!r}")
    if number == 0.0:
        return "0.0"  # never "-0.0"
    return repr(number)


def format_integer(value: int) -> str:
    """Decimal text of an integer count (bools and non-integral values are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected an integer, got {value!r}")
    return str(int(value))


def format_numbers(values, separator: str = ",") -> str:
    """Several numbers joined by `separator`, each written by `format_number`."""
    return separator.join(format_number(value) for value in values)


def parse_number(text: str) -> float:
    """A number from instrument text (`+1.234000E-06`, `1.00000e+00`; `9.91e37` is kept as is).

    Anything else (a garbled or truncated reply) raises `GarbledReplyError` (a `ValueError`)
    naming the instrument, the command and the reply of the last exchange in this thread (the
    one being parsed), else quoting the text."""
    try:
        return float(text.strip())
    except ValueError:
        exchange = last_exchange()
        if exchange is None:
            raise ValueError(f"instrument reply {text!r} is not a number") from None
        instrument, command, reply = exchange
        shown = reply if len(reply) <= 80 else reply[:77] + "..."
        raise GarbledReplyError(instrument, command, shown,
                                f"a number (field {text.strip()[:20]!r})") from None


def parse_bool(text: str) -> bool:
    """A boolean from instrument text, in every form the manuals allow for one: ``1``/``0``
    (SCPI NR1), any other number (SCPI <Boolean>: rounded to an integer, non-zero is true;
    ``1.0`` and TSP's ``1.00000e+00`` alike), ``ON``/``OFF`` and TSP's ``true``/``false``.

    Anything else raises `ValueError` quoting the text."""
    word = text.strip()
    if word.upper() in ("ON", "TRUE"):
        return True
    if word.upper() in ("OFF", "FALSE"):
        return False
    try:
        return round(float(word)) != 0
    except ValueError:
        raise ValueError(f"instrument reply {text!r} is not a boolean (1/0, ON/OFF, "
                         "true/false or a number)") from None
