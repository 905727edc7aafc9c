"""Crossbar physics: device model, array, and the exact parasitic circuit solver.

The virtual instruments answer from this package; protocols may use it as a *model*
(fitting, pre-distortion), never to produce a measurement.
"""

from xbarlab.physics.solver import CrossbarSolution, solve_crossbar  # noqa: E402, F401

# isort: split
from xbarlab.physics.array import ArraySnapshot, CrossbarArray, PulseResult  # noqa: E402, F401
from xbarlab.physics.device import DeviceParams  # noqa: E402, F401
from xbarlab.physics.presets import (  # noqa: E402, F401
    ANALOG,
    BINARY,
    HIGH_R,
    PRESETS,
    preset,
    with_stuck_fraction,
)
