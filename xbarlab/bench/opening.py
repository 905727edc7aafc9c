"""Opening a bench: a bench file's instruments through pyvisa, each with the driver it names.

Every instrument opens on the file's VISA backend (``@xbarsim`` instruments of one virtual bench
share one resource manager, so they act on one simulated chip, which a state file may keep from
one opening to the next; ``@py`` or the system VISA for real ones), its resource wrapped so
that every command written is counted, and its driver found by name:
the class in ``xbarlab.drivers.<driver>`` whose ``catalog_name`` is that name. An SMU's bench-file
settings (``off_mode`` on every channel, ``terminals``) are applied as it opens; its driver
applies them again after every reset.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from typing import Any

from xbarlab.bench.operations import Bench
from xbarlab.bench.readings import ANY_PULSE, BenchError, IoCounter
from xbarlab.benchfile import Bench as BenchSpec
from xbarlab.benchfile import load_bench, simulator_source
from xbarlab.interfaces import ArrayBoard, PulseCapability, SourceMeasureChannel, SwitchMatrix


class CountingResource:
    """A pyvisa resource that counts every `write` on an `IoCounter` and adds the time of every
    `write` and `read` to it; all else passes through."""

    def __init__(self, resource: Any, counter: IoCounter, name: str):
        object.__setattr__(self, "_resource", resource)
        object.__setattr__(self, "_counter", counter)
        object.__setattr__(self, "_name", name)

    def write(self, message: str, *args: Any, **kwargs: Any) -> Any:
        self._counter.add(self._name)
        start = time.perf_counter()
        try:
            return self._resource.write(message, *args, **kwargs)
        finally:
            self._counter.seconds += time.perf_counter() - start

    def read(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._resource.read(*args, **kwargs)
        finally:
            self._counter.seconds += time.perf_counter() - start

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._resource, attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._resource, attribute, value)


def driver_class(driver: str) -> type:
    """The driver class named `driver` in the bench file: the class of module
    `xbarlab.drivers.<driver>` whose `catalog_name` is `driver`."""
    try:
        module = importlib.import_module(f"xbarlab.drivers.{driver}")
    except ModuleNotFoundError as exc:
        raise BenchError(f"driver = {driver!r}: no module xbarlab.drivers.{driver}") from exc
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "catalog_name", None) == driver \
                and value.__module__ == module.__name__:
            return value
    raise BenchError(f"driver = {driver!r}: xbarlab.drivers.{driver} has no driver class "
                     f"with catalog_name {driver!r}")


def model_pulse_capability(driver: str, model: str) -> PulseCapability | None:
    """What an instrument of `model` can pulse, from its driver module's
    `model_pulse_capability` (None: no pulse mode; a driver module without one: only the bench
    limits apply, `ANY_PULSE`)."""
    module = importlib.import_module(f"xbarlab.drivers.{driver}")
    capability_of = getattr(module, "model_pulse_capability", None)
    return ANY_PULSE if capability_of is None else capability_of(model)


def pulse_capabilities(spec: BenchSpec) -> dict[str, PulseCapability | None]:
    """What each source of bench file `spec` that can reach the chip pulses, known before
    anything opens: every SMU terminal (``smu.a``) and every board, by its driver's
    `model_pulse_capability`."""
    found: dict[str, PulseCapability | None] = {}
    for name, inst in spec.instruments.items():
        if inst.kind == "smu":
            capability = model_pulse_capability(inst.driver, inst.model)
            found.update({f"{name}.{terminal}": capability for terminal in inst.info.terminals})
        elif inst.kind == "board":
            found[name] = model_pulse_capability(inst.driver, inst.model)
    return found


def check_pulse_width(width: float, spec: BenchSpec) -> None:
    """A pulse width some source of bench file `spec` can pulse (`pulse_capabilities`), else
    `ValueError` saying which widths the bench can and what to set."""
    if not spec.instruments:  # a test double of a bench: nothing to check against
        return
    capabilities = {name: c for name, c in pulse_capabilities(spec).items() if c is not None}
    if not capabilities:
        raise ValueError(f"bench {spec.name!r} has no source with a pulse mode "
                         f"({', '.join(pulse_capabilities(spec))})")
    if any(c.min_width <= width <= c.max_width for c in capabilities.values()):
        return
    shortest = min(c.min_width for c in capabilities.values())
    longest = max(c.max_width for c in capabilities.values())
    by_range: dict[tuple[float, float], list[str]] = {}
    for name, c in capabilities.items():
        by_range.setdefault((c.min_width, c.max_width), []).append(name)
    ranges = "; ".join(f"{', '.join(names)}: {low:g} to {high:g} s"
                       for (low, high), names in by_range.items())
    suggestion = shortest if width < shortest else longest
    raise ValueError(f"no source of bench {spec.name!r} pulses {width:g} s ({ranges}); "
                     f"set width={suggestion:g}")


def smu_channel(driver: Any, name: str, terminal: str) -> SourceMeasureChannel:
    """The channel of SMU driver `driver` that the bench file calls terminal `terminal`.

    Single-channel drivers are their own channel; multi-channel drivers keep a `channels`
    mapping keyed by the instrument's own names (``smua`` on a 2600B, ``1`` on a B2900).
    """
    channels = getattr(driver, "channels", None)
    if channels is None:
        return driver
    for key in (terminal, f"smu{terminal}", int(terminal) if terminal.isdigit() else None):
        if key in channels:
            return channels[key]
    raise BenchError(f"instrument {name}: terminal {terminal!r} is not one of its channels "
                     f"({', '.join(map(str, channels))})")


def apply_settings(inst: Any, driver: Any, max_voltage: float) -> None:
    """The bench file's settings of SMU `inst` on its open `driver`: the terminals the bench is
    cabled to (2400, 2450), then the output-off mode of every channel, and the instrument's
    own over-voltage protection from the bench's `max_voltage` where the model has one
    (2400, 2450: programmed and read back; defence in depth below the guard)."""
    if inst.terminals:
        driver.set_terminals(inst.terminals)
    for channel in getattr(driver, "channels", {None: driver}).values():
        if inst.off_mode:
            channel.set_output_off_mode(inst.off_mode)
        channel.protect_voltage(max_voltage)


def _resource_manager(spec: BenchSpec, backend: str, managers: dict[str, Any],
                      chip_state: str | os.PathLike | None) -> Any:
    import pyvisa

    if backend == "@xbarsim":
        source = spec.origin.removeprefix("embedded:")
        backend = f"{simulator_source(source, chip_state or '')}@xbarsim"
    if backend not in managers:
        managers[backend] = pyvisa.ResourceManager(backend) if backend else \
            pyvisa.ResourceManager()
    return managers[backend]


def open_bench(path: str | BenchSpec | None = None, current_limit: float | None = None,
               chip_state: str | os.PathLike | None = None) -> Bench:
    """Open the bench described by bench file `path` (the embedded ``default`` when None; an
    embedded bench's name; or a bench file already loaded). `chip_state`: the state file in
    which a virtual bench keeps its chip from one opening to the next (`xbarlab.chips`; None:
    the bench file's own ``sim.state_file``, if any); a real bench has nothing to keep."""
    spec = path if isinstance(path, BenchSpec) else load_bench(path)
    io = IoCounter()
    managers: dict[str, Any] = {}
    drivers: dict[str, Any] = {}
    try:
        for name, inst in spec.instruments.items():
            cls = driver_class(inst.driver)
            manager = _resource_manager(spec, inst.backend, managers, chip_state)
            resource = CountingResource(manager.open_resource(inst.address), io, name)
            options = {}
            if "cards" in inspect.signature(cls).parameters:  # card-configured mainframes
                options["cards"] = inst.cards
            drivers[name] = cls(resource, **options)
            if inst.kind == "smu":
                apply_settings(inst, drivers[name], spec.limits.max_voltage)
        channels: dict[str, SourceMeasureChannel] = {}
        matrices: dict[str, SwitchMatrix] = {}
        boards: dict[str, ArrayBoard] = {}
        for name, inst in spec.instruments.items():
            driver = drivers[name]
            if inst.kind == "smu":
                for terminal in inst.info.terminals:
                    channels[f"{name}.{terminal}"] = smu_channel(driver, name, terminal)
            elif inst.kind == "matrix":
                matrices[name] = driver
            else:
                boards[name] = driver
        identities = {name: getattr(d, "identity", "") for name, d in drivers.items()}
        closers = [d.disconnect for d in drivers.values()]
        closers += [manager.close for manager in managers.values()]
        return Bench(spec, channels, matrices, boards, io=io, identities=identities,
                     closers=closers, current_limit=current_limit, drivers=drivers)
    except BaseException as error:
        for name, driver in drivers.items():
            try:
                driver.shutdown()
            except Exception as failure:  # keep making the others safe; report it
                if hasattr(error, "add_note"):
                    error.add_note(f"shutdown of {name} also failed: {failure!r}")
            finally:
                driver.disconnect()
        for manager in managers.values():
            manager.close()
        raise
