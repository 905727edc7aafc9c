"""xbarlab: a hardware-in-the-loop control stack for memristor crossbar arrays.

Layers (one-way imports, see DESIGN.md): ``xbarlab.protocols`` -> ``xbarlab`` core ->
``xbarlab.drivers`` -> pyvisa -> real instruments, or the ``@xbarsim`` virtual bench in
``xbarlab.sim_instruments``, which answers from the numba model in ``xbarlab.physics``.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``xbarlab.open_bench`` without importing pyvisa and the drivers on ``import xbarlab``."""
    if name == "open_bench":
        from xbarlab.bench import open_bench

        return open_bench
    raise AttributeError(f"module 'xbarlab' has no attribute {name!r}")
