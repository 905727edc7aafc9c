"""Fixtures for the protocol tests: small virtual benches written into the test's tmp dir, and a
runner that plays a registered protocol on one with a fresh run store.

Test modules reach the helpers through fixtures (``bench_file``, ``run_named``,
``stop_after``). Each bench file lives at its own tmp path and each opening of it builds a
fresh World (closing a bench drops the ``@xbarsim`` backend), so runs never share state. Tests
look inside the World for the truth (``Outcome.before`` and ``Outcome.world``); protocols
never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from virtualbenches import world_of, write_matrix_bench

from xbarlab.bench import open_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore


@dataclass
class Outcome:
    """What a protocol returned, its run, and the World it ran on: ``before`` is the true
    conductance map when the protocol started, ``world`` the World as the protocol left it."""

    metrics: dict
    run_id: int
    store: Path
    before: np.ndarray
    world: object


class StopAfter(Progress):
    """A progress that raises KeyboardInterrupt after `steps` steps (an interrupted run)."""

    def __init__(self, steps: int):
        super().__init__(show=False)
        self.left = steps

    def advance(self, steps: int = 1) -> None:
        super().advance(steps)
        self.left -= steps
        if self.left <= 0:
            raise KeyboardInterrupt


def run_protocol(name: str, bench_path, store_dir: Path, progress: Progress | None = None,
                 resume: int | None = None, **params) -> Outcome:
    """Play protocol `name` on the bench as ``xbarlab run`` does (a new run, or `resume` one);
    an interrupt leaves the run aborted and re-raises."""
    protocol = get_protocol(name)
    with RunStore(store_dir) as store:
        with open_bench(str(bench_path)) as bench:
            world = world_of(bench_path)
            before = world.conductance().copy()
            run = (store.resume(resume) if resume is not None else
                   store.start_run(name, params, bench.spec.text, shape=(bench.rows, bench.cols)))
            with run:
                metrics = protocol(bench, run, progress or Progress(show=False), **params)
        return Outcome(dict(metrics), run.run_id, store_dir, before, world)


@pytest.fixture
def bench_file(tmp_path):
    """Factory: ``bench_file(**write_matrix_bench options)`` -> path of a fresh bench in
    tmp_path."""
    return lambda **options: write_matrix_bench(tmp_path, **options)


@pytest.fixture(scope="session")
def run_named():
    """`run_protocol` as a fixture (test modules cannot import this conftest by name); session
    scoped, so module-scoped fixtures can run protocols too."""
    return run_protocol


@pytest.fixture(scope="session")
def stop_after():
    """`StopAfter` as a fixture."""
    return StopAfter
