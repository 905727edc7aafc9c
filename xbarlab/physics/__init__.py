"""Crossbar physics: device model, array, and the exact parasitic circuit solver.

The virtual instruments answer from this package; protocols may use it as a *model*
(fitting, pre-distortion), never to produce a measurement.
"""
