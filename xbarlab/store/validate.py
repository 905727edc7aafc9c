"""Validators for everything the run store accepts.

They raise ``ValueError`` (wrong value) or ``TypeError`` (wrong kind) with a message that names
the field, the value and what is allowed. They never clip or coerce a bad value into a good one:
a store that silently changed a measurement would be worse than one that refuses it.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any

import numpy as np

from xbarlab.store.records import OPERATIONS

_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def check_int(field: str, value: Any, minimum: int = 0, limit: int | None = None) -> int:
    """Return ``value`` as int if it is an integer with ``minimum <= value < limit``."""
    if type(value) is not int and (  # the ABC check is slow; a plain int needs none
            isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{field} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum or (limit is not None and value >= limit):
        allowed = f"{minimum} <= {field}" + (f" < {limit}" if limit is not None else "")
        raise ValueError(f"{field} = {value} is out of range; allowed: {allowed}")
    return value


def check_real(field: str, value: Any) -> float:
    """Return ``value`` as float if it is a real number (NaN and infinities are kept as is)."""
    if type(value) is float:  # the ABC check is slow; a plain float needs none
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def check_optional_real(field: str, value: Any) -> float | None:
    """Like :func:`check_real`, but ``None`` (not measured) passes through."""
    return None if value is None else check_real(field, value)


def check_finite(field: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite real number."""
    number = check_real(field, value)
    if not math.isfinite(number):
        raise ValueError(f"{field} = {number!r} is not allowed; allowed: a finite number")
    return number


def check_pulse_width(value: Any) -> float | None:
    """A pulse width is ``None`` (no pulse) or a finite duration in seconds, ``>= 0``."""
    if value is None:
        return None
    width = check_finite("pulse_width", value)
    if width < 0:
        raise ValueError(f"pulse_width = {width!r} is out of range; allowed: >= 0 seconds or None")
    return width


def check_bool(field: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (or numpy bool); integers are refused, not guessed."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{field} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_operation(value: Any) -> str:
    """An operation is one of :data:`OPERATIONS`."""
    if value not in OPERATIONS:
        raise ValueError(f"operation = {value!r} is not known; allowed: {', '.join(OPERATIONS)}")
    return value


def check_name(field: str, value: Any) -> str:
    """Names (protocols, maps) are 1-64 characters of letters, digits, ``_``, ``.`` and ``-``.

    They become HDF5 group names and parts of file names, so nothing else is allowed.
    """
    if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{field} = {value!r} is not allowed; allowed: 1-64 characters from "
            "letters, digits, '_', '.', '-'"
        )
    return value


def check_checkpoint_key(value: Any) -> str:
    """Checkpoint keys are non-empty strings (any characters; they stay inside the database)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"checkpoint key = {value!r} is not allowed; allowed: a non-empty string")
    return value


def check_shape(value: Any) -> tuple[int, int] | None:
    """A run's array shape is ``None`` (unknown) or ``(rows, cols)`` of positive integers."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"shape = {value!r} is not allowed; allowed: (rows, cols) or None")
    return (check_int("shape[0]", value[0], minimum=1), check_int("shape[1]", value[1], minimum=1))


def check_map(name: str, data: Any, shape: tuple[int, int] | None) -> np.ndarray:
    """Return ``data`` as a C-ordered float64 (m, n) array; ``shape``, if known, must match.

    Non-finite entries (NaN for masked cells) are kept.
    """
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"map {name!r} must hold real numbers, got dtype {array.dtype}; "
            "allowed: bool, integer or float arrays"
        )
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"map {name!r} has shape {array.shape}; allowed: a non-empty 2-D (rows, cols) array"
        )
    if shape is not None and array.shape != shape:
        raise ValueError(
            f"map {name!r} has shape {array.shape}; allowed: the run's array shape {shape}"
        )
    return np.ascontiguousarray(array, dtype="<f8")


def to_json(field: str, value: Any) -> str:
    """Serialise ``value`` to strict JSON (numpy scalars and arrays become numbers and lists).

    NaN and infinities are refused: they are not JSON, and a parameter should never be one.
    """
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, default=_numpy_to_python)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{field} cannot be stored: {error}; allowed: JSON values (dict, list, str, "
            "int, finite float, bool, None, numpy scalars and arrays)"
        ) from None


def _numpy_to_python(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serialisable")
