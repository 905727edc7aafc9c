"""Declared protocol parameters: one declaration gives conversion, validation, help and a JSON
description.

A protocol declares each parameter once, in its signature, as PyMeasure declares
``FloatParameter(units=, minimum=, maximum=)`` and QCoDeS ``unit=`` and ``vals=``::

    def read_map(bench, run, progress, *,
                 v_read: Annotated[float, Param("read voltage", unit="V", nonzero=True,
                                                minimum="-limits.max_voltage",
                                                maximum="limits.max_voltage")] = 0.2,
                 ...)

The annotation's type (``int``, ``float``, ``bool`` or ``str``) is the parameter's kind, the
default is the signature's, and `Param` holds the rest: unit, bounds, choices and one line of
help. From that declaration come the ``--set key=value`` conversion (`from_text`), the check
of every value before any instrument is opened (`resolve`), ``xbarlab run NAME --help``
(`help_lines`) and a JSON description for tools (`describe`).

Bounds are numbers, or names resolved when the parameters are checked: another parameter's
name (``"g_low"``), or a quantity of the bench file (``"chip.rows"``, ``"limits.max_voltage"``),
optionally negated or scaled (``"-limits.max_voltage"``, ``"2*hold_width"``). So
``rows <= chip.rows`` and ``g_high >= g_low`` are declared, not coded, and the help says so.

Numbers are checked with the strict validators of `xbarlab.drivers.validators` (the ones the
drivers and the safety guard use): never clipped, NaN and infinities refused, bools are not
numbers. Every refusal is a `ParameterError` of one line that names the parameter, the value
(with its unit) and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xbarlab.drivers.validators import finite_real, integer

KINDS = (bool, int, float, str)
"""The kinds a parameter may have (what ``--set`` can convert text to)."""

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")

Bound = float | int | str | None
_BOUND = re.compile(r"^(?P<sign>-)?(?:(?P<scale>[0-9.eE+-]+)\*)?(?P<name>[A-Za-z_][\w.]*)$")


class ParameterError(ValueError):
    """A parameter value (or name) that a protocol does not accept; one line, nothing sent."""


@dataclass(frozen=True)
class Param:
    """What a parameter is besides its kind and default (see the module docstring).

    `minimum`/`maximum` are inclusive bounds, `above`/`below` exclusive ones. `choices` lists
    the allowed strings; with `multiple`, a value may name several of them joined by ``,``
    (each at most once). `zero` allows 0 besides the range and says what it means ("the whole
    chip", "off"); `nonzero` refuses 0 inside the range. `check(value, bench)` is a further
    check for what bounds cannot say (a cell list's syntax, a file's content): it raises
    ValueError with the allowed values, and the message is prefixed with the parameter.
    """

    help: str
    unit: str = ""
    minimum: Bound = None
    maximum: Bound = None
    above: Bound = None
    below: Bound = None
    choices: tuple[str, ...] = ()
    multiple: bool = False
    zero: str = ""
    nonzero: bool = False
    check: Callable[[Any, Any], None] | None = None


@dataclass(frozen=True)
class Declared:
    """One declared parameter of a protocol: its name, kind, default and `Param`."""

    name: str
    kind: type
    default: Any
    param: Param

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (bounds as declared: numbers or names)."""
        p = self.param
        entry: dict[str, Any] = {"name": self.name, "type": self.kind.__name__,
                                 "default": self.default, "unit": p.unit, "help": p.help}
        for key in ("minimum", "maximum", "above", "below"):
            if getattr(p, key) is not None:
                entry[key] = getattr(p, key)
        if p.choices:
            entry["choices"] = list(p.choices)
            entry["multiple"] = p.multiple
        if p.zero:
            entry["zero"] = p.zero
        if p.nonzero:
            entry["nonzero"] = True
        return entry

    def allowed(self, values: Mapping[str, Any] | None = None, spec: Any = None) -> str:
        """What the parameter allows, in words, with its unit (for help and errors); with
        `values` (and `spec`), each named bound is followed by its value."""
        p = self.param
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            if p.choices:
                joined = ", ".join(p.choices)
                return (f"one or more of {joined} joined by ',', each at most once"
                        if p.multiple else f"one of {joined}")
            return "text"

        def bound(key: str, relation: str) -> str:
            given = getattr(p, key)
            if given is None:
                return ""
            if not isinstance(given, str):
                number = f"{given}" if isinstance(given, int) else f"{given:g}"
                return f"{relation} {number}{self.unit_suffix}"
            limit = None if values is None else _resolved(given, values, spec)
            shown = "" if limit is None else f" ({limit:g}{self.unit_suffix})"
            return f"{relation} {given}{shown}"

        low = bound("minimum", ">=") or bound("above", ">")
        high = bound("maximum", "<=") or bound("below", "<")
        text = "an integer" if self.kind is int else "a number"
        ends = [end for end in (low, high) if end]
        if ends:
            text += " " + " and ".join(ends)
        if p.nonzero:
            text += ", not 0"
        if p.zero:
            text = f"0 ({p.zero}) or {text}"
        return text

    @property
    def unit_suffix(self) -> str:
        return f" {self.param.unit}" if self.param.unit else ""


# ------------------------------------------------------------------------ declaration


def declared_parameters(function: Callable[..., Any], reserved: Iterable[str]
                        ) -> dict[str, Declared]:
    """The declared parameters of `function` (every argument after the `reserved` ones), from
    ``Annotated[kind, Param(...)]`` annotations and the signature's defaults.

    Raises TypeError naming the argument when one is undeclared, has no default, has a kind
    other than bool, int, float or str, or a default its own declaration refuses."""
    reserved = tuple(reserved)
    hints = typing.get_type_hints(function, include_extras=True)
    parameters = list(inspect.signature(function).parameters.values())
    where = f"{function.__module__}.{function.__qualname__}"
    if tuple(p.name for p in parameters[:len(reserved)]) != reserved:
        raise TypeError(f"{where} must take ({', '.join(reserved)}, ...) first; it takes "
                        f"({', '.join(p.name for p in parameters)})")
    declared: dict[str, Declared] = {}
    for parameter in parameters[len(reserved):]:
        name = parameter.name
        hint = hints.get(name)
        extras = getattr(hint, "__metadata__", ())
        params = [extra for extra in extras if isinstance(extra, Param)]
        if len(params) != 1 or typing.get_origin(hint) is not typing.Annotated:
            raise TypeError(f"{where}: parameter {name!r} needs one declaration, "
                            f"Annotated[kind, Param(...)]")
        kind = typing.get_args(hint)[0]
        if kind not in KINDS:
            raise TypeError(f"{where}: parameter {name!r} has kind {kind!r}; allowed: "
                            f"{', '.join(k.__name__ for k in KINDS)}")
        if parameter.default is parameter.empty:
            raise TypeError(f"{where}: parameter {name!r} needs a default")
        declared[name] = Declared(name, kind, parameter.default, params[0])
    defaults = {name: entry.default for name, entry in declared.items()}
    for entry in declared.values():  # a default must pass its own declaration
        try:
            _checked_kind(entry, entry.default)
            _check_bounds(entry, defaults, None)
        except ParameterError as error:
            raise TypeError(f"{where}: the default of {entry.name!r} is refused: {error}") from None
    return declared


# ------------------------------------------------------------------------ text and values


def from_text(entry: Declared, text: str) -> Any:
    """The value of ``--set name=text`` for `entry`, converted to its kind (not yet checked
    against its bounds: `resolve` does that)."""
    text = text.strip()
    if entry.kind is bool:
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise ParameterError(f"{entry.name} = {text!r}: allowed true or false")
    if entry.kind is str:
        return text
    try:
        number = float(text)
    except ValueError:
        raise ParameterError(f"{entry.name} = {text!r}: allowed {entry.allowed()}") from None
    if entry.kind is int:
        if not (math.isfinite(number) and number.is_integer()):
            raise ParameterError(f"{entry.name} = {text!r}: allowed {entry.allowed()}")
        return int(number)
    return number


def parse_settings(parameters: Mapping[str, Declared], settings: Iterable[str],
                   protocol: str = "the protocol") -> dict[str, Any]:
    """``key=value`` strings (the CLI's ``--set``) to parameter values of their kinds."""
    values: dict[str, Any] = {}
    for setting in settings:
        key, equals, text = setting.partition("=")
        key = key.strip()
        if not equals:
            raise ParameterError(f"--set {setting!r}: expected key=value")
        values[key] = from_text(known(parameters, key, protocol), text)
    return values


def known(parameters: Mapping[str, Declared], name: str, protocol: str) -> Declared:
    """The declaration of `name`, or a ParameterError listing the parameters (and the
    closest names, for a typo)."""
    if name in parameters:
        return parameters[name]
    close = difflib.get_close_matches(name, parameters, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ParameterError(f"{name!r} is not a parameter of {protocol}{hint}; allowed: "
                         f"{', '.join(parameters) or 'none'}")


def resolve(parameters: Mapping[str, Declared], given: Mapping[str, Any], bench: Any = None,
            protocol: str = "the protocol",
            checks: Iterable[Callable[[Mapping[str, Any], Any], None]] = ()) -> dict[str, Any]:
    """Every parameter's value (the given ones, the defaults for the rest), each checked
    against its declaration and `bench` (a bench file's `Bench`, or an object with ``.spec``;
    None skips bounds that name the bench), then the protocol's cross-checks. Returns the
    values in declaration order, floats as floats."""
    spec = getattr(bench, "spec", bench)
    for name in given:
        known(parameters, name, protocol)
    values = {name: _checked_kind(entry, given.get(name, entry.default))
              for name, entry in parameters.items()}
    for relative in (False, True):  # a parameter's own limits before those between them
        for entry in parameters.values():
            _check_bounds(entry, values, spec, relative)
    for entry in parameters.values():
        if entry.param.check is not None and spec is not None:
            try:
                entry.param.check(values[entry.name], spec)
            except ValueError as error:
                text = str(error)
                named = text.startswith(f"{entry.name} = ")
                raise ParameterError(text if named else
                                     f"{entry.name} = {values[entry.name]!r}: {text}") from None
    for check in checks:
        check(values, spec)
    return values


def _checked_kind(entry: Declared, value: Any) -> Any:
    """`value` of `entry`'s kind (ints accepted for floats), finite, with its choices, `zero`
    and `nonzero` checked (bounds are `_check_bounds`'s); else ParameterError."""
    name, p = entry.name, entry.param
    try:
        if entry.kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if entry.kind is str:
            if not isinstance(value, str):
                raise TypeError
            _check_choices(entry, value)
            return value
        number = integer(name, value) if entry.kind is int else finite_real(name, value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} = {value!r}{entry.unit_suffix}: allowed "
                             f"{entry.allowed()}") from None
    if number == 0 and p.zero:
        return number
    if number == 0 and p.nonzero:
        raise ParameterError(f"{name} = 0{entry.unit_suffix}: allowed {entry.allowed()}")
    return number


def _check_choices(entry: Declared, value: str) -> None:
    p = entry.param
    if not p.choices:
        return
    picked = [item.strip() for item in value.split(",")] if p.multiple else [value]
    if (any(item not in p.choices for item in picked) or len(set(picked)) != len(picked)
            or not picked):
        raise ParameterError(f"{entry.name} = {value!r}: allowed {entry.allowed()}")


def _check_bounds(entry: Declared, values: Mapping[str, Any], spec: Any,
                  relative: bool | None = None) -> None:
    """Raise ParameterError if a number of `entry` is outside a bound that can be resolved
    (bench bounds need `spec`); `relative` True checks only the bounds that name another
    parameter, False only the others, None all."""
    if entry.kind not in (int, float):
        return
    value, p = values[entry.name], entry.param
    if value == 0 and p.zero:
        return
    tests = (("minimum", lambda v, b: v >= b), ("maximum", lambda v, b: v <= b),
             ("above", lambda v, b: v > b), ("below", lambda v, b: v < b))
    for key, holds in tests:
        bound = getattr(p, key)
        if relative is not None and _names_parameter(bound) != relative:
            continue
        limit = _resolved(bound, values, spec)
        if limit is not None and not holds(value, limit):
            raise ParameterError(f"{entry.name} = {value!r}{entry.unit_suffix}: allowed "
                                 f"{entry.allowed(values, spec)}")


def _names_parameter(bound: Bound) -> bool:
    """Whether `bound` names another parameter (not a number, not a bench quantity)."""
    return isinstance(bound, str) and "." not in bound


def _resolved(bound: Bound, values: Mapping[str, Any], spec: Any) -> float | None:
    """A bound's number: itself, another parameter's value or a bench quantity (None when it
    names the bench and there is none)."""
    if bound is None or not isinstance(bound, str):
        return bound
    match = _BOUND.match(bound)
    if match is None:
        raise TypeError(f"bound {bound!r}: allowed a number, a parameter name or a bench "
                        "quantity such as 'limits.max_voltage', optionally '-' or 'k*' before")
    name = match["name"]
    if "." in name:
        if spec is None:
            return None
        target: Any = spec
        for part in name.split("."):
            target = getattr(target, part)
        number = float(target)
    else:
        number = float(values[name])
    scale = float(match["scale"]) if match["scale"] else 1.0
    return -scale * number if match["sign"] else scale * number


# ------------------------------------------------------------------------ help


def help_lines(parameters: Mapping[str, Declared]) -> list[str]:
    """One block per parameter for ``xbarlab run NAME --help``: name, kind, default with unit,
    what is allowed, and its help."""
    lines = []
    for entry in parameters.values():
        default = entry.default
        shown = f"{default!r}" if entry.kind is str else f"{default}{entry.unit_suffix}"
        lines.append(f"  {entry.name} ({entry.kind.__name__}, default {shown})")
        lines.append(f"      {entry.param.help}")
        lines.append(f"      allowed: {entry.allowed()}")
    return lines


@functools.cache
def declared_fields(cls: type) -> dict[str, Declared]:
    """The declared parameters of a dataclass whose fields are annotated like a protocol's
    (``name: Annotated[kind, Param(...)] = default``), for settings objects that several
    protocols share."""
    import dataclasses

    hints = typing.get_type_hints(cls, include_extras=True)
    declared = {}
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        params = [extra for extra in getattr(hint, "__metadata__", ()) if isinstance(extra, Param)]
        if len(params) != 1:
            raise TypeError(f"{cls.__qualname__}.{item.name} needs one declaration, "
                            "Annotated[kind, Param(...)]")
        declared[item.name] = Declared(item.name, typing.get_args(hint)[0], item.default,
                                       params[0])
    return declared
