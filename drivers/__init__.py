"""Instrument drivers over pyvisa, one module per instrument family."""
