"""The virtual bench: the ``@xbarsim`` pyvisa backend, its World and instrument grammars.

``pyvisa.ResourceManager("@xbarsim")`` opens the embedded default bench;
``XbarSimVisaLibrary.fresh(path_or_name)`` gives an independent bench (for tests).
"""

from .device import OutOfRange, UnknownCommand  # noqa: F401
from .library import XbarSimVisaLibrary  # noqa: F401
from .world import ShortCircuit, World  # noqa: F401
