"""Dry run: play a protocol against a recording bench and report what it would do to the chip.

The recording instruments satisfy the `xbarlab.interfaces` protocols with no instrument I/O at
all: they keep the state they were told (levels, limits, outputs, closed relays, line levels) and
log every call. A `Ledger` watches them: after every call it works out each crossbar line's
potential from the wiring of the bench file (which relay joins which line to which terminal, what
each terminal sources) and keeps, per cell, the largest |V| across it and the largest current
the sources could push through it (the smaller compliance of its two lines). Each pulse adds
its worst-case energy |V| x I_limit x width x count, and an estimate with every biased cell at
the LRS conductance of the chip's device preset (`xbarlab.physics.presets`, used as a model
only), capped by the worst case. The safety guard runs in recording mode, so every limit the
protocol would break is listed instead of stopping it at the first.

Measurements return NaN currents (nothing is measured), so a protocol that iterates until a
target is reached runs to its iteration cap: the estimate is the worst case.

Durations: each call costs one round trip (`ROUND_TRIP` by instrument kind) plus what the
instrument spends (integration time, pulse widths and periods, sweep delays).
"""

from xbarlab.dryrun.instruments import (
    POWER_LINE_CYCLE,
    ROUND_TRIP,
    PlayCut,
    Recorder,
    RecordingBoard,
    RecordingMatrix,
    RecordingPairedSMU,
    RecordingSMU,
)
from xbarlab.dryrun.ledger import Ledger
from xbarlab.dryrun.report import DryRunReport, RecordingBench

__all__ = [
    "POWER_LINE_CYCLE",
    "ROUND_TRIP",
    "DryRunReport",
    "PlayCut",
    "Ledger",
    "Recorder",
    "RecordingBench",
    "RecordingBoard",
    "RecordingMatrix",
    "RecordingPairedSMU",
    "RecordingSMU",
]
