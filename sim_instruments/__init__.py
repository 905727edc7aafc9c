"""The virtual bench: an ``@xbarsim`` pyvisa backend backed by the crossbar physics."""
