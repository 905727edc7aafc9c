"""Measurement protocols that run unchanged on simulated and real benches.

Each module declares one protocol (`xbarlab.registry.register_protocol`); pyproject.toml lists
them under the ``xbarlab.protocols`` entry points, the way a plugin package lists its own, so
``xbarlab run NAME`` finds them without the core importing this package by name.
"""
