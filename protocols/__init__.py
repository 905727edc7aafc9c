"""Measurement protocols that run unchanged on simulated and real benches.

Importing this package registers every protocol with ``xbarlab.bench.protocols``, so that
``xbarlab run NAME`` finds it.
"""

from xbarlab.protocols import (  # noqa: F401  (imported to register)
    endurance,
    forming,
    iv_sweep,
    program_efficient,
    read_map,
    retention,
    write_verify,
)
