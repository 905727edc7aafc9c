"""The access transistor of a 1T1R cell: what its gate voltage lets through.

A word line drives the gates of one row's access transistors. Below the threshold voltage V_t
the transistor is off and its cell carries no current (the row is isolated: no sneak path runs
through it). Above it, the transistor in series with the memristor passes the cell's current
until that current reaches the transistor's saturation current, which it cannot exceed: during
a SET the memristor's resistance falls until the transistor saturates and takes the rest of the
voltage, so the gate voltage sets the SET compliance. That is how 1T1R arrays are programmed
(the access transistor biased so that, as the element switches, the current becomes "determined
by the saturation region operating point of the access transistor", Haukness, US patent
10,699,786 B2 (2020); gate-stepped compliance control in IGVVA, Milo et al., IEEE TED 68 (2021),
and gate-voltage programming in Li et al., Nat. Commun. 9, 2385 (2018): techniques.md §5.2, B6).

Saturation current, long-channel square law (Sze and Ng, Physics of Semiconductor Devices, 3rd
ed., §6.2.2): I_sat = K (V_g - V_t)^2 with K = µ_n C_ox W / (2 L). K is fixed by the device's
``i_compliance_1t1r`` at its ``v_gate_set`` (``DeviceParams``), so the default gate gives the
default compliance. Not modelled: the transistor's linear-region (triode) resistance in series
with the cell during a read (a read's current is that of the memristor alone) and the
saturation limit during a read (reads open the gate far above the read current).
"""

from __future__ import annotations

import numpy as np

from xbarlab.physics.device import DeviceParams


def transistor_gain(params: DeviceParams) -> float:
    """K of I_sat = K (V_g - V_t)^2 (A/V^2): the default compliance at the default gate."""
    return params.i_compliance_1t1r / (params.v_gate_set - params.v_gate_threshold) ** 2


def saturation_current(v_gate, params: DeviceParams) -> np.ndarray:
    """The access transistor's saturation current at gate voltage(s) `v_gate` (A); 0 where the
    gate is at or below the threshold (transistor off)."""
    overdrive = np.maximum(np.asarray(v_gate, dtype=float) - params.v_gate_threshold, 0.0)
    return transistor_gain(params) * overdrive**2


def conducting(v_gate, params: DeviceParams) -> np.ndarray:
    """Rows whose transistors are on: gate above the threshold."""
    return np.asarray(v_gate, dtype=float) > params.v_gate_threshold
