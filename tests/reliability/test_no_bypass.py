"""Item 1: no way from a bench's public API to exceed its limits.

Every path the auditor used (a channel's `source_voltage`/`pulse`, reassigning `guard`) and every
public method of every driver channel type is tried on each kind of bench; the ones a handle does
not offer raise AttributeError, the ones that source raise before anything is sent, and the
virtual instruments (the World) never see a level above the limits.
"""

from __future__ import annotations

import inspect

import pytest
from reliability import BENCHES, small_text, write_bench
from virtualbenches import world_of

from xbarlab.bench import open_bench
from xbarlab.bench.guarded import GuardedHandle
from xbarlab.benchfile import load_bench
from xbarlab.safety import LimitError, SafetyGuard

REFUSED = (LimitError, PermissionError, AttributeError, TypeError, ValueError)
OVER = {"source_voltage": (20.0, 0.1), "source_current": (0.5, 20.0), "pulse": (30.0, 2.0),
        "sweep": ([20.0], 0.0)}


def raw_classes(bench) -> set[type]:
    """Every driver class behind the bench's handles (channels, instruments)."""
    found = {type(handle._inner) for handle in bench.channels.values()}
    found |= {type(handle._inner) for handle in bench.drivers.values()}
    return found


def public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}


@pytest.fixture(params=BENCHES)
def small_bench(request, tmp_path):
    path = write_bench(tmp_path, small_text(request.param), request.param)
    return path


def test_the_auditors_paths_are_closed(small_bench):
    """`c.source_voltage(20, 0.1); c.output_on()`, `c.pulse(30, 2)`, `b.guard = ...` on a
    5 V / 10 mA bench: each refused, nothing sent, every output still off."""
    spec = load_bench(small_bench)
    with open_bench(spec) as bench:
        before = bench.io.total
        for channel in bench.channels.values():
            with pytest.raises(LimitError, match="limits.max_voltage"):
                channel.source_voltage(20.0, 0.1)
            with pytest.raises(PermissionError, match="before a level and limit"):
                channel.output_on()
            with pytest.raises(PermissionError):
                channel.pulse(30.0, 2.0)
            with pytest.raises(LimitError, match="limits.max_compliance"):
                channel.source_current(0.5, 1.0)
        for board in bench.boards.values():
            with pytest.raises(LimitError, match="limits.max_voltage"):
                board.set_lines(rows={0: 20.0})
            with pytest.raises(LimitError):
                board.set_voltage_limit(20.0)
            with pytest.raises(LimitError):
                board.read_one(0, 0, 20.0)
            with pytest.raises(LimitError):
                board.read_one_repeated(0, 0, 20.0, 8)
        with pytest.raises(AttributeError, match="fixed when the bench opens"):
            bench.guard = SafetyGuard(spec.limits.__class__(210.0, 1.0, 100.0, 10.0))
        with pytest.raises(AttributeError):
            bench.guard.limits = spec.limits.__class__(210.0, 1.0, 100.0, 10.0)
        with pytest.raises(AttributeError):
            bench.guard.record_violations = True
        with pytest.raises(AttributeError):
            bench.spec = spec
        with pytest.raises(TypeError):
            bench.channels["x"] = object()
        assert bench.io.total == before  # nothing reached an instrument
        world = world_of(small_bench)
        assert not any(world.terminal(name).output for name in bench.channels)


def test_every_method_of_every_driver_is_offered_guarded_or_not_at_all(small_bench):
    """Each public attribute of each driver class behind a handle: either the handle does not
    offer it (AttributeError), or it is a query/safe operation, or (a source method) it refuses
    a request above the limits, also after a legal level was set through the handle."""
    with open_bench(small_bench) as bench:
        handles: list[GuardedHandle] = [*bench.channels.values(), *bench.drivers.values()]
        tried = 0
        for handle in handles:
            offered = handle._offered()
            for name in sorted(public_methods(type(handle._inner))):
                if name not in offered:
                    with pytest.raises(AttributeError, match="not offered"):
                        getattr(handle, name)
                    tried += 1
            for name in ("write", "ask", "configure", "instrument", "reset", "current_limit",
                         "voltage_limit", "smua", "_resource"):
                with pytest.raises(AttributeError):
                    getattr(handle, name)
            with pytest.raises(AttributeError, match="read-only"):
                handle.current_limit = 1.0
        for channel in bench.channels.values():
            channel.source_voltage(0.0, 1e-3)  # legal: the handle now knows its limit
            for method, args in OVER.items():
                before = bench.io.total
                with pytest.raises(REFUSED):
                    getattr(channel, method)(*args)
                assert bench.io.total == before, method
                tried += 1
            channel.output_off()
        for driver in bench.drivers.values():
            if hasattr(driver, "sweep_pair"):
                terminals = list(driver.channels)
                with pytest.raises(LimitError):
                    driver.sweep_pair(terminals[0], [20.0], terminals[1], [0.0], 0.0)
                before = bench.io.total
                with pytest.raises(LimitError):
                    driver.pulse_pair(terminals[0], 1.0, terminals[1], 20.0, 1e-4)
                if hasattr(driver, "pulse_linked"):
                    for linked in (driver.pulse_linked, driver.arm_linked_pulse):
                        with pytest.raises(LimitError):
                            linked({terminals[0]: 1.0, terminals[1]: -20.0}, 1e-4)
                assert bench.io.total == before
        for board in bench.boards.values():
            board.set_current_limit(1e-3)
            for call in (lambda b: b.pulse(1e-3, rows={0: 30.0}),
                         lambda b: b.pulse(2.0, rows={0: 1.0}),
                         lambda b: b.set_rows([20.0] * b.rows),
                         lambda b: b.set_columns([-20.0] * b.columns),
                         lambda b: b.set_current_limit(0.5)):
                with pytest.raises(LimitError):
                    call(board)
                tried += 1
    assert tried > 20


@pytest.mark.parametrize("name", ["default", "board"])
def test_legal_requests_still_work_through_the_handles(name, tmp_path):
    path = write_bench(tmp_path, small_text(name), name)
    with open_bench(path) as bench:
        reading = bench.read(1, 2, 0.2)
        assert reading.current > 0
        for channel in bench.channels.values():
            channel.source_voltage(0.1, 1e-4)
            channel.output_on()
            assert channel.output_enabled()
            channel.output_off()
    world = world_of(path)
    assert not any(world.terminal(n).output for n in bench.channels)
