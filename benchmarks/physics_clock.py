"""How much of a run is physics: CPU and wall time inside the physics kernels' entry points.

The benchmarks wrap a protocol run in `PhysicsClock`: every call into the crossbar solver
(`CrossbarSolver`: set-up and solve) and the device model (`CrossbarArray`: pulses, read-noise
draws, relaxation, conductances) is timed, nested calls once, and `report` prints that share
of the run's wall and CPU time with the solver's call and vector counts. Everything else (the
instruments' command path, the bench layer, the protocol, the run store) is the rest.
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np

from xbarlab.physics import array, solver

ENTRY_POINTS = (
    (solver.CrossbarSolver, "__init__"),
    (solver.CrossbarSolver, "solve"),
    (array.CrossbarArray, "apply"),
    (array.CrossbarArray, "read_noise_currents"),
    (array.CrossbarArray, "relax_in_steps"),
    (array.CrossbarArray, "advance_time"),
    (array.CrossbarArray, "conductance"),
    (array.CrossbarArray, "relaxation_changes_conductance"),
)


class PhysicsClock:
    """Context manager: time spent in the physics entry points while it is open."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self.solves = self.vectors = 0
        self._inside = 0
        self._originals = []

    def __enter__(self) -> PhysicsClock:
        for owner, name in ENTRY_POINTS:
            original = getattr(owner, name)
            self._originals.append((owner, name, original))
            setattr(owner, name, self._timed(original, count=name == "solve"))
        self._started = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.total_wall = time.perf_counter() - self._started[0]
        self.total_cpu = time.process_time() - self._started[1]
        for owner, name, original in self._originals:
            setattr(owner, name, original)

    def _timed(self, function, count: bool):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if count:
                self.solves += 1
                rows, cols = np.ndim(args[1]), np.ndim(args[2])
                self.vectors += max(np.shape(args[1])[0] if rows == 2 else 1,
                                    np.shape(args[2])[0] if cols == 2 else 1,
                                    len(args[0].G) if args[0].per_vector else 1)
            if self._inside:
                return function(*args, **kwargs)
            self._inside += 1
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.process_time() - cpu
                self._inside -= 1
        return timed

    def report(self) -> str:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        return (f"wall {self.total_wall:.1f} s, CPU {self.total_cpu:.1f} s (load {load}); "
                f"physics kernels {self.wall:.1f} s wall ({self.wall / self.total_wall:.0%}), "
                f"{self.cpu:.1f} s CPU ({self.cpu / max(self.total_cpu, 1e-9):.0%}); "
                f"{self.solves} solver calls, {self.vectors} vectors")
