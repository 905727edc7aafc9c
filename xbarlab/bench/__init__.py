"""The bench layer: a bench file's instruments driven as crossbar-level operations.

* `open_bench(path=None)` opens the instruments of a bench file (the embedded ``default`` when
  no path) and returns a context-managed `Bench` (`xbarlab.bench.opening`).
* `Bench` reads cells and maps with a bias scheme, pulses with half-select protection, runs
  matrix-vector products on an array board, idles, and counts round trips
  (`xbarlab.bench.operations`).
* Protocols are plain callables registered by name (`xbarlab.bench.protocols`).
"""

from xbarlab.bench.opening import CountingResource, driver_class, open_bench
from xbarlab.bench.operations import (
    PULSE_SCHEMES,
    READ_SCHEMES,
    Bench,
    BenchError,
    CellReading,
    IoCounter,
    MvmResult,
    bias_levels,
)

__all__ = [
    "PULSE_SCHEMES",
    "READ_SCHEMES",
    "Bench",
    "BenchError",
    "CellReading",
    "CountingResource",
    "IoCounter",
    "MvmResult",
    "bias_levels",
    "driver_class",
    "open_bench",
]
