"""Declared instrument settings: a get string, a set string, a docstring, a strict validator and an
optional value map, in one class attribute (PyMeasure's idea, our own small implementation).

    nplc = Setting(
        get=":SENS:CURR:NPLC?", set=":SENS:CURR:NPLC {value}",
        doc="Integration time in power-line cycles.", validator=InRange(0.01, 10, "PLC"))

Reading the attribute queries the instrument; assigning it validates, formats (numbers through
`format_number`, so 100 nA is `1e-07`), writes, and reads the error queue. `{ch}`-style fields in
the strings are filled from the owner's `command_fields` (the channel of a multi-channel SMU).
`owner_validator` builds the validator from the owner, for limits that depend on the model.
`unit` is the SI unit of the value (empty for states and counts); `settings_snapshot` reads every
readable setting of a driver with its unit, for the run's instrument snapshots.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

from .numbers import format_number, parse_number


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    return format_number(value)


class Setting:
    """A declared instrument setting (see the module docstring)."""

    def __init__(
        self,
        *,
        doc: str,
        get: str | None = None,
        set: str | None = None,  # noqa: A002 - mirrors the instrument's vocabulary
        validator: Callable[[str, Any], Any] | None = None,
        owner_validator: Callable[[Any], Callable[[str, Any], Any]] | None = None,
        values: Mapping[Any, str] | None = None,
        replies: Mapping[str, Any] | None = None,
        parse: Callable[[str], Any] | None = None,
        unit: str = "",
    ):
        if get is None and set is None:
            raise ValueError("a Setting needs a get string, a set string, or both")
        self.get_command = get
        self.set_command = set
        self.validator = validator
        self.owner_validator = owner_validator
        self.values = dict(values) if values is not None else None
        if replies is None and self.values is not None and parse is None:
            replies = {text: key for key, text in self.values.items()}
        self.replies = dict(replies) if replies is not None else None
        self.parse = parse or parse_number
        self.__doc__ = doc
        self.unit = unit
        self.name = "setting"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, owner: Any, owner_type: type | None = None) -> Any:
        if owner is None:
            return self
        if self.get_command is None:
            raise AttributeError(f"{self.name} can only be set")
        reply = owner.ask(self.get_command.format(**owner.command_fields)).strip()
        if self.replies is not None:
            if reply not in self.replies:
                expected = " or ".join(repr(text) for text in self.replies)
                raise ValueError(f"{self.name}: reply {reply!r} is not {expected}")
            return self.replies[reply]
        return self.parse(reply)

    def __set__(self, owner: Any, value: Any) -> None:
        if self.set_command is None:
            raise AttributeError(f"{self.name} is read-only")
        if self.validator is not None:
            value = self.validator(self.name, value)
        if self.owner_validator is not None:
            value = self.owner_validator(owner)(self.name, value)
        if self.values is not None:
            if value not in self.values:
                allowed = ", ".join(repr(key) for key in self.values)
                raise ValueError(f"{self.name} = {value!r} is not one of {allowed}")
            value = self.values[value]
        command = self.set_command.format(value=_as_text(value), **owner.command_fields)
        owner.configure(command)


def settings_snapshot(owner: Any) -> dict[str, dict[str, Any]]:
    """Every readable `Setting` of `owner`, read from the instrument now:
    ``{name: {"value": ..., "unit": ...}}`` in name order (a setting the instrument refuses
    to report gets ``"error"`` instead of a value), then what the owner's `_snapshot_state`
    adds (state that is not a declared setting, such as the relays closed)."""
    shot: dict[str, dict[str, Any]] = {}
    for name in sorted(dir(type(owner))):
        setting = getattr(type(owner), name, None)
        if not isinstance(setting, Setting) or setting.get_command is None:
            continue
        try:
            shot[name] = {"value": getattr(owner, name), "unit": setting.unit}
        except Exception as error:  # one unreadable setting must not hide the others
            shot[name] = {"error": f"{type(error).__name__}: {error}", "unit": setting.unit}
    state = getattr(owner, "_snapshot_state", None)
    if state is not None:
        shot.update(state())
    return shot
