"""xbarlab: a hardware-in-the-loop control stack for memristor crossbar arrays.

Layers (one-way imports, see docs/ARCHITECTURE.md): ``xbarlab.protocols`` -> ``xbarlab`` core ->
``xbarlab.drivers`` -> pyvisa -> real instruments, or the ``@xbarsim`` virtual bench in
``xbarlab.sim_instruments``, which answers from the numba model in ``xbarlab.physics``.
"""

import logging

__version__ = "0.1.0"

logging.getLogger("xbarlab").addHandler(logging.NullHandler())
"""xbarlab's loggers (each instrument's I/O, instrument errors) say nothing unless the
application configures logging (``xbarlab --log FILE``): Python's last-resort handler would
otherwise print every warning to stderr, around the one- or two-line message a user gets."""


_LAZY = {
    "open_bench": "xbarlab.bench",
    "run_protocol": "xbarlab.engine",
    "RunResult": "xbarlab.engine",
    "available_protocols": "xbarlab.registry",
    "get_protocol": "xbarlab.registry",
    "register_protocol": "xbarlab.registry",
    "load": "xbarlab.loader",
    "RunData": "xbarlab.loader",
}


def __getattr__(name: str):
    """``xbarlab.open_bench``, ``xbarlab.run_protocol`` and the registry without importing
    pyvisa, numpy and the drivers on ``import xbarlab``."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xbarlab' has no attribute {name!r}")
