"""Protocols: a plain function over an open bench, registered under a name with declared
parameters.

A protocol is written as ``function(bench, run, progress, *, <declared parameters>)`` and
returns a mapping of metrics (JSON values) or None. ``bench`` is a `Bench`, ``run`` a writable
run of the run store (record every point as it is measured; ``run.checkpoints()`` says what a
resumed run already did), ``progress`` an `xbarlab.progress.Progress`. Its parameters are
declared once in its signature (`xbarlab.params`).

``@register_protocol("name")`` turns the function into a `Protocol`: calling it checks the
parameters first (one-line `ParameterError`, before anything is sent), then runs the function.
`xbarlab.run_protocol` is what runs one as a run of the store (bench, signals, progress,
snapshots, safe shutdown, status); a protocol only describes what to measure.

Every protocol that `xbarlab run` knows comes from the ``xbarlab.protocols`` entry-point group,
the built-in ones (declared in xbarlab's own pyproject.toml) exactly as a plugin's: an entry
``name = "package.module:function"`` whose target is a `Protocol` of that name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from xbarlab.params import Declared, ParameterError, declared_parameters, parse_settings, resolve

ENTRY_POINT_GROUP = "xbarlab.protocols"
RESERVED = ("bench", "run", "progress")
"""Positional arguments every protocol takes; not parameters."""

Check = Callable[[Mapping[str, Any], Any], None]
"""A cross-parameter check ``check(values, bench_spec)`` that raises `ParameterError`."""


class UnknownProtocolError(LookupError):
    """No protocol of that name; the message lists the available ones."""


@dataclass(frozen=True)
class Protocol:
    """A registered protocol: its name, function, declared parameters and cross-checks."""

    name: str
    function: Callable[..., Mapping[str, Any] | None]
    parameters: Mapping[str, Declared]
    checks: tuple[Check, ...] = ()
    figures: Callable[[Any], Iterable[tuple[str, Any]]] | None = None
    """``figures(run)`` -> (caption, matplotlib Figure) pairs of a stored run of this protocol,
    for ``xbarlab report`` (beside the maps and points every report draws)."""
    table: Callable[[Mapping[str, Any]], str] | None = None
    """``table(metrics)`` -> a text table of a run's metrics, printed at the end of ``xbarlab
    run`` and shown in its report (None: the metrics on one line)."""
    default_bench: str = "default"
    """The embedded bench its runs use when none is named."""
    plan: Callable[[Mapping[str, Any], Any], Any] | None = None
    """``plan(values, bench_spec)`` -> the `xbarlab.plan.Plan` of a run with the resolved
    parameters `values`: its phases at their budgets, which the dry run prints."""

    def __call__(self, bench: Any, run: Any, progress: Any, **params: Any
                 ) -> Mapping[str, Any] | None:
        """Check `params` against the declaration and `bench`, then run the protocol."""
        return self.function(bench, run, progress, **self.resolve(params, bench.spec))

    def resolve(self, params: Mapping[str, Any], bench: Any = None) -> dict[str, Any]:
        """Every parameter's checked value, defaults included (see `xbarlab.params.resolve`)."""
        return resolve(self.parameters, params, bench, self.name, self.checks)

    def parse_settings(self, settings: Iterable[str]) -> dict[str, Any]:
        """``key=value`` strings to values of the parameters' kinds (not yet range-checked)."""
        return parse_settings(self.parameters, settings, self.name)

    @property
    def summary(self) -> str:
        """The first paragraph of the protocol function's docstring, on one line."""
        paragraph = (self.function.__doc__ or "").strip().split("\n\n", 1)[0]
        return " ".join(paragraph.split())

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description of the protocol and every parameter."""
        return {"protocol": self.name, "summary": self.summary,
                "parameters": [entry.describe() for entry in self.parameters.values()]}


def register_protocol(name: str, checks: Iterable[Check] = (),
                      figures: Callable[[Any], Iterable[tuple[str, Any]]] | None = None,
                      table: Callable[[Mapping[str, Any]], str] | None = None,
                      default_bench: str = "default",
                      plan: Callable[[Mapping[str, Any], Any], Any] | None = None,
                      ) -> Callable[[Callable[..., Any]], Protocol]:
    """Decorator: the function as `Protocol` `name` with the parameters its signature declares,
    the cross-parameter `checks` (each ``check(values, bench_spec)`` raising `ParameterError` in
    one line), the report's `figures` of its runs, the `table` of its metrics, the embedded
    bench its runs use when none is named and its dry run's `plan`."""

    def decorate(function: Callable[..., Any]) -> Protocol:
        return Protocol(name, function, declared_parameters(function, RESERVED), tuple(checks),
                        figures, table, default_bench, plan)

    return decorate


def refuse(message: str) -> None:
    """Raise the `ParameterError` of a cross-check (one line naming the parameters)."""
    raise ParameterError(message)


MAX_PLANNED_OPERATIONS = 100_000_000
"""Most bench operations (readings, pulses, sweep points) one run may plan: about a day of
1 ms operations (an endurance run of 10^7 cycles on a few cells). A bound on one run, checked
with the parameters before anything opens, so that no parameter makes a protocol loop over
more than this."""


def bound_operations(count: float, what: str) -> None:
    """Cross-check helper: refuse a run that plans more than MAX_PLANNED_OPERATIONS
    operations, with the figure and how it was counted (`what`)."""
    if count > MAX_PLANNED_OPERATIONS:
        refuse(f"the run plans {count:.4g} operations ({what}); allowed at most "
               f"{MAX_PLANNED_OPERATIONS:.3g} in one run")


_loaded: dict[str, Protocol] | None = None


def available_protocols() -> dict[str, Protocol]:
    """Every protocol of the ``xbarlab.protocols`` entry points, by name (loaded once)."""
    global _loaded
    if _loaded is None:
        found: dict[str, Protocol] = {}
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            target = entry.load()
            if not isinstance(target, Protocol) or target.name != entry.name:
                raise TypeError(f"entry point {entry.name} = {entry.value!r} of "
                                f"{ENTRY_POINT_GROUP} must be a Protocol named {entry.name!r} "
                                "(decorate the function with @register_protocol)")
            found[entry.name] = target
        _loaded = dict(sorted(found.items()))
    return dict(_loaded)


def get_protocol(protocol: str | Protocol) -> Protocol:
    """The protocol named `protocol` (a `Protocol` is returned as is), or
    `UnknownProtocolError` listing the available ones."""
    if isinstance(protocol, Protocol):
        return protocol
    protocols = available_protocols()
    if protocol not in protocols:
        raise UnknownProtocolError(
            f"unknown protocol {protocol!r}; available: {', '.join(protocols) or 'none'}")
    return protocols[protocol]
