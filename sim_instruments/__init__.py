"""The virtual bench: the ``@xbarsim`` pyvisa backend, its World and instrument grammars.

Use it exactly like a real bench, by address::

    rm = pyvisa.ResourceManager("@xbarsim")            # the embedded default bench
    rm = pyvisa.ResourceManager("board@xbarsim")       # an embedded bench by name
    rm = pyvisa.ResourceManager("my_bench.toml@xbarsim")  # any bench file

Tests that need a bench of their own (pyvisa caches one library per spec for the whole
process) take ``XbarSimVisaLibrary.fresh(name_or_path)`` and wrap it in a ResourceManager;
``library.reset()`` rebuilds a bench in place. The World behind the instruments is
``library.world``: tests may look inside (``world.array``, ``world.terminal(key)``,
``world.closed(matrix)``, ``world.board_level(board, channel)``, ``world.state()``), protocols
never do.

Modules: ``library`` (the backend), ``grammar`` and ``device`` (YAML grammar -> strict
pyvisa-sim device), ``world`` (circuit, compliance, virtual time), ``network`` (the sources
on the line ends), ``behaviours`` (what each instrument family does), ``faults`` (injected
misbehaviour), ``models`` (model -> grammar).
"""

from .device import OutOfRange, UnknownCommand  # noqa: F401
from .library import XbarSimVisaLibrary  # noqa: F401
from .network import ShortCircuit  # noqa: F401
from .world import World  # noqa: F401
