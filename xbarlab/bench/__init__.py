"""The bench layer: a bench file's instruments driven as crossbar-level operations.

* `open_bench(path=None)` opens the instruments of a bench file (the embedded ``default`` when
  no path) and returns a context-managed `Bench` (`xbarlab.bench.opening`).
* `Bench` reads cells and maps with a bias scheme (`xbarlab.bench.schemes`), pulses with
  half-select protection, runs matrix-vector products on an array board, idles, and counts
  round trips (`xbarlab.bench.operations`; routing on switch matrices in `matrix`, board lines
  in `board`, cell sweeps on paired SMU channels in `sweeps`, the bench check in `selftest`,
  returned records in `readings`).

Protocols that use a bench are registered in `xbarlab.registry` and run by `xbarlab.engine`.
"""

from xbarlab.bench.opening import CountingResource, driver_class, open_bench
from xbarlab.bench.operations import Bench
from xbarlab.bench.readings import (
    BenchError,
    CellReading,
    IoCounter,
    LineReading,
    MvmResult,
    NothingMeasured,
    ReadingBatch,
)
from xbarlab.bench.schemes import PULSE_SCHEMES, READ_SCHEMES, bias_levels

__all__ = [
    "PULSE_SCHEMES",
    "READ_SCHEMES",
    "Bench",
    "BenchError",
    "NothingMeasured",
    "ReadingBatch",
    "CellReading",
    "CountingResource",
    "IoCounter",
    "LineReading",
    "MvmResult",
    "bias_levels",
    "driver_class",
    "open_bench",
]
