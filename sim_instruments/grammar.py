"""Build a :class:`ModelDevice` from one instrument's pyvisa-sim YAML grammar.

Our own builder walks the parsed YAML (loaded with pyvisa-sim's ``BaseLoader`` convention: every
scalar is a string) and binds the extra keys ``compute``, ``notify``, ``call`` and
``xbar.commands`` to methods of the instrument's behaviour object. Channel groups are expanded
per channel id by substituting ``{ch_id}`` textually, so each channel gets exact-match entries.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from functools import cache
from typing import Any

import stringparser
import yaml
from pyvisa_sim.component import NoResponse, to_bytes

from .device import ModelDevice, SimProperty, reply_bytes

SPEC_VERSION = "1.1"


@cache
def load_grammar(filename: str) -> dict[str, Any]:
    """Parse one grammar file shipped in ``xbarlab.sim_instruments.grammars`` (cached)."""
    text = importlib.resources.files("xbarlab.sim_instruments.grammars").joinpath(filename)
    data = yaml.load(text.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    if data.get("spec") != SPEC_VERSION:
        raise ValueError(f"grammar {filename}: spec {data.get('spec')!r}, expected {SPEC_VERSION}")
    return data


def _method(behaviour: Any, name: str, where: str) -> Callable:
    fn = getattr(behaviour, name, None)
    if not callable(fn):
        raise AttributeError(
            f"grammar {where}: behaviour {type(behaviour).__name__} has no {name}()"
        )
    return fn


def _bind(dev: ModelDevice, table: dict, behaviour: Any, ch: str | None, where: str) -> None:
    """Add one component's dialogues and properties (for one channel id, or device-level)."""

    def sub(text: str) -> str:
        text = text.strip(" ")
        return text.replace("{ch_id}", ch) if ch is not None else text

    args = () if ch is None else (ch,)
    for dia in table.get("dialogues", ()):
        query = to_bytes(sub(dia["q"]))
        reply = sub(dia["r"]) if "r" in dia else None
        if "call" in dia:
            fn = _method(behaviour, dia["call"], where)
            dev.exact[query] = lambda fn=fn, reply=reply: reply_bytes(reply, fn(*args))
        else:
            static = to_bytes(reply) if reply is not None else NoResponse
            dev.exact[query] = lambda static=static: static

    for name, spec in table.get("properties", {}).items():
        prop = dev.settings.get(name)
        if prop is None:
            prop = dev.settings[name] = SimProperty(
                name, spec.get("default", ""), spec.get("specs", {})
            )
        if "getter" in spec:
            query = to_bytes(sub(spec["getter"]["q"]))
            fmt = sub(spec["getter"]["r"])
            if "compute" in spec:
                fn = _method(behaviour, spec["compute"], where)
                dev.exact[query] = lambda fn=fn, fmt=fmt: fmt.format(fn(*args)).encode()
            else:
                dev.exact[query] = lambda prop=prop, fmt=fmt: to_bytes(fmt.format(prop.get(ch)))
        if "setter" in spec:
            parser = stringparser.Parser(sub(spec["setter"]["q"]))
            observers = [_method(behaviour, spec["notify"], where)] if "notify" in spec else []
            dev.setters.append((parser, prop, ch, observers))


def build_device(name: str, grammar: dict[str, Any], behaviour_factory) -> ModelDevice:
    """A ModelDevice for device ``name`` of a parsed grammar, bound to a new behaviour."""
    table = grammar["devices"][name]
    xbar = table.get("xbar", {})
    dev = ModelDevice(name, table.get("delimiter", ";").encode(), to_bytes(xbar.get("join", ";")),
                      xbar.get("statements", ""))
    dev.add_error_handler(table.get("error", {}))
    for itype, eom in table.get("eom", {}).items():
        dev.add_eom(itype, eom["q"], eom["r"])
    dev.channel_ids = tuple(table.get("channels", {}).get("smu", {}).get("ids", ()))
    behaviour = behaviour_factory(dev)
    dev.behaviour = behaviour
    _bind(dev, table, behaviour, None, name)
    for group, ch_table in table.get("channels", {}).items():
        for ch in ch_table.get("ids", ()):
            _bind(dev, ch_table, behaviour, ch, f"{name}.{group}")
    for cmd in xbar.get("commands", ()):
        fn = _method(behaviour, cmd["call"], name)
        ids = table["channels"][cmd["channel"]]["ids"] if "channel" in cmd else [None]
        for ch in ids:
            query = cmd["q"] if ch is None else cmd["q"].replace("{ch_id}", ch)
            bound = fn if ch is None else (lambda *a, fn=fn, ch=ch, **k: fn(*a, ch=ch, **k))
            dev.patterns.append((stringparser.Parser(query), cmd.get("r"), bound))
    behaviour.reset()
    return dev
