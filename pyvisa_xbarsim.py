"""pyvisa backend shim: ``pyvisa.ResourceManager("@xbarsim")`` finds the virtual bench here.

pyvisa resolves ``@name`` only by importing the top-level module ``pyvisa_<name>`` and taking
its ``WRAPPER_CLASS``.
"""

from xbarlab.sim_instruments.library import XbarSimVisaLibrary

WRAPPER_CLASS = XbarSimVisaLibrary
