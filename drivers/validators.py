"""Strict validators: a value outside what the instrument allows raises, naming the field and the
allowed range. Nothing is ever clipped or rounded into range; the caller must decide.

A validator is a callable `(field, value) -> value`. Drivers call them before writing anything,
so an out-of-range request never reaches the instrument.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass


def finite_real(field: str, value: object) -> float:
    """`value` as a float if it is a finite real number (not a bool); else raise naming `field`."""
    if type(value) is float and math.isfinite(value):  # the common case, without the ABC check
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{field} must be a real number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{field} must be finite, got {value!r}")
    return number


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


@dataclass(frozen=True)
class InRange:
    """A real number within [low, high] (inclusive)."""

    low: float
    high: float
    unit: str = ""

    def __call__(self, field: str, value: object) -> float:
        number = finite_real(field, value)
        if not self.low <= number <= self.high:
            raise ValueError(
                f"{field} = {value!r}{_unit(self.unit)} is outside the allowed range "
                f"{self.low!r} to {self.high!r}{_unit(self.unit)}"
            )
        return number


@dataclass(frozen=True)
class ZeroOrInRange:
    """Exactly 0, or a real number within [low, high] (delays that are off or at least `low`)."""

    low: float
    high: float
    unit: str = ""

    def __call__(self, field: str, value: object) -> float:
        number = finite_real(field, value)
        if number != 0.0 and not self.low <= number <= self.high:
            raise ValueError(
                f"{field} = {value!r}{_unit(self.unit)} is outside the allowed values 0 or "
                f"{self.low!r} to {self.high!r}{_unit(self.unit)}"
            )
        return number


@dataclass(frozen=True)
class Magnitude:
    """A real number whose magnitude is at most `high` (zero included)."""

    high: float
    unit: str = ""

    def __call__(self, field: str, value: object) -> float:
        number = finite_real(field, value)
        if not -self.high <= number <= self.high:
            raise ValueError(
                f"{field} = {value!r}{_unit(self.unit)} is outside the allowed range "
                f"{-self.high!r} to {self.high!r}{_unit(self.unit)}"
            )
        return number


@dataclass(frozen=True)
class IntegerInRange:
    """An integer within [low, high] (bools and non-integral numbers are refused)."""

    low: int
    high: int

    def __call__(self, field: str, value: object) -> int:
        value = integer(field, value)
        if not self.low <= value <= self.high:
            raise ValueError(
                f"{field} = {value!r} is outside the allowed range {self.low} to {self.high}"
            )
        return int(value)


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    choices: tuple

    def __call__(self, field: str, value: object) -> object:
        if value not in self.choices:
            allowed = ", ".join(repr(choice) for choice in self.choices)
            raise ValueError(f"{field} = {value!r} is not one of the allowed values {allowed}")
        return value


@dataclass(frozen=True)
class OneOfNumbers:
    """One of a fixed set of numbers, compared with a relative tolerance (ranges like 1e-6)."""

    choices: tuple[float, ...]
    unit: str = ""
    rel_tol: float = 1e-9

    def __call__(self, field: str, value: object) -> float:
        number = finite_real(field, value)
        for choice in self.choices:
            if math.isclose(number, choice, rel_tol=self.rel_tol):
                return choice
        allowed = ", ".join(repr(choice) for choice in self.choices)
        raise ValueError(
            f"{field} = {value!r}{_unit(self.unit)} is not one of the allowed values {allowed}"
        )


def check_count(field: str, values: Iterable, low: int, high: int) -> list:
    """The values as a list, refusing a list whose length is outside [low, high]."""
    items = list(values)
    if not low <= len(items) <= high:
        raise ValueError(
            f"{field} has {len(items)} values; the allowed number is {low} to {high}"
        )
    return items


def integer(field: str, value: object) -> int:
    """`value` as an int if it is an integer (bools and non-integral numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{field} must be an integer, got {value!r}")
    return int(value)
