"""Measurement protocols that run unchanged on simulated and real benches."""
from xbarlab.protocols import read_map  # noqa: F401  (registers read-map)
from xbarlab.protocols import iv_sweep  # noqa: F401  (registers iv-sweep)
from xbarlab.protocols import write_verify  # noqa: F401  (registers write-verify)
from xbarlab.protocols import forming  # noqa: F401  (registers forming)
from xbarlab.protocols import retention  # noqa: F401  (registers retention)
from xbarlab.protocols import program_efficient  # noqa: F401  (registers program-efficient)
from xbarlab.protocols import endurance  # noqa: F401  (registers endurance)
