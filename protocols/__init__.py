"""Measurement protocols that run unchanged on simulated and real benches."""
from xbarlab.protocols import read_map  # noqa: F401  (registers read-map)
