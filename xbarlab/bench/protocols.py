"""The protocol registry: a protocol is a plain callable registered under a name.

A protocol is called as ``protocol(bench, run, progress, **params)`` and returns a mapping of
metrics (JSON values) or None. ``bench`` is a `Bench`, ``run`` a writable run of the run store
(record every point as it is measured, check ``run.done_cells()`` to resume), ``progress`` an
`xbarlab.progress.Progress`. Its parameters are its keyword arguments with defaults; their
defaults' types are the types ``xbarlab run --set key=value`` converts to.

Protocols register with ``@register_protocol("name")``. `available_protocols` finds those of
the ``xbarlab.protocols`` package (importing it registers them) and those of installed packages
that declare an ``xbarlab.protocols`` entry point.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

ProtocolFunction = Callable[..., Mapping[str, Any] | None]
RESERVED = ("bench", "run", "progress")
"""Positional arguments every protocol takes; not parameters."""

_registry: dict[str, ProtocolFunction] = {}


class UnknownProtocolError(LookupError):
    """No protocol of that name; the message lists the available ones."""


class ProtocolParameterError(ValueError):
    """A --set value that the protocol does not take or cannot convert."""


def register_protocol(name: str) -> Callable[[ProtocolFunction], ProtocolFunction]:
    """Decorator: register the function as protocol `name` (a second, different one raises)."""

    def decorate(function: ProtocolFunction) -> ProtocolFunction:
        parameters = list(inspect.signature(function).parameters)
        if tuple(parameters[:3]) != RESERVED:
            raise TypeError(f"protocol {name!r} must take ({', '.join(RESERVED)}, **params) "
                            f"first; it takes ({', '.join(parameters)})")
        for parameter in inspect.signature(function).parameters.values():
            if parameter.name not in RESERVED and parameter.default is parameter.empty:
                raise TypeError(f"protocol {name!r}: parameter {parameter.name!r} needs a "
                                "default (its type is what --set converts to)")
        existing = _registry.get(name)
        if existing is not None and existing.__qualname__ != function.__qualname__:
            raise ValueError(f"protocol {name!r} is already registered by "
                             f"{existing.__module__}.{existing.__qualname__}")
        _registry[name] = function
        return function

    return decorate


def available_protocols() -> dict[str, ProtocolFunction]:
    """Every protocol that can run, by name."""
    try:
        importlib.import_module("xbarlab.protocols")
    except ModuleNotFoundError as error:
        if error.name != "xbarlab.protocols":
            raise
    for entry in entry_points(group="xbarlab.protocols"):
        entry.load()
    return dict(sorted(_registry.items()))


def get_protocol(name: str) -> ProtocolFunction:
    """The protocol registered as `name`, or `UnknownProtocolError` listing the available."""
    protocols = available_protocols()
    if name not in protocols:
        raise UnknownProtocolError(
            f"unknown protocol {name!r}; available: {', '.join(protocols) or 'none'}"
        )
    return protocols[name]


def protocol_parameters(function: ProtocolFunction) -> dict[str, Any]:
    """Parameter names of a protocol and their defaults."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if name not in RESERVED
    }


def parse_settings(function: ProtocolFunction, settings: Iterable[str]) -> dict[str, Any]:
    """``key=value`` strings to the protocol's parameters, converted to each default's type."""
    defaults = protocol_parameters(function)
    params: dict[str, Any] = {}
    for setting in settings:
        key, equals, text = setting.partition("=")
        key = key.strip()
        if not equals:
            raise ProtocolParameterError(f"--set {setting!r}: expected key=value")
        if key not in defaults:
            raise ProtocolParameterError(
                f"--set {key}={text}: {key!r} is not a parameter; allowed: "
                f"{', '.join(defaults) or 'none'}"
            )
        params[key] = _convert(key, text.strip(), defaults[key])
    return params


def _convert(key: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ProtocolParameterError(f"--set {key}={text}: allowed true or false")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise ProtocolParameterError(
                    f"--set {key}={text}: allowed a number ({kind.__name__})"
                ) from None
    return text
