"""Cited device presets (reference/techniques.md §7).

Shared by all presets (fields left at their ``DeviceParams`` defaults): NeuroSim RealDevice
update nonlinearity NL_LTP 2.4 / NL_LTD -4.88 and cycle-to-cycle noise 3.5 % of the range per
pulse [F]; ±1.3 V, 100 ns reference pulses (Prezioso 2015; techniques.md §7) [F]; stuck-on
1.75 % / stuck-off 9.04 % (Chen 2017 / He 2019) [F]; 1 % read noise (aihwkit) [F]; lognormal
device-to-device spread 10 % [E]; 1T1R compliance 100 µA [E]; compliance-stop spread 4 %
(Milo 2021 IGVVA-100 spread, 3.9 % at 100 µS, reduced to one value) [F/E]; relaxation time
constant 0.1 s [E].

Post-programming relaxation: ``analog`` carries the aihwkit ReRamWan2022 1 s polynomial at its
own g_max of 40 µS, sigma 0.72-2.3 µS over 1-40 µS [F]. No relaxation data exist for the binary
devices; they get the same polynomial in g/g_max, scaled by their own g_max (aihwkit's rule for
another g_max) [E]: sigma 1.3-5.8 µS over 1-100 µS (binary), 0.13-0.58 µS over 0.1-10 µS
(high_r), 2.8 % of g_max at the LRS. Relaxation stops at a bound, so a cell sitting at
its HRS bound relaxes upward only (binary: by ≈0.5 µS on average, half its 1 µS HRS).
A switching event across the range draws the full spread (every binary switch; about 100
reference pulses of ``analog``); a small corrective move d of a settled cell adds only about
sigma(g) sqrt(d / 0.2) (``relax_move_scale`` 0.2 of the range [E], ``device.py``).

Switching kinetics (``device.py``): rate ∝ sinh(v / 42.6 mV), normalised so that the ±1.3 V,
100 ns reference pulse moves one level (Stanford-PKU field term [F: derived], voltage-time
dilemma of oxide RRAM). A V/2 half-selected cell of a 1.3 V pulse (0.65 V) moves 2.4e-7 of a
level per 100 ns pulse, of a 1.6 V pulse (0.8 V) 8.0e-6, of a 2 V pulse 8.7e-4: half-select
disturb grows by an e-fold per 85 mV of write amplitude. The floor ``v_set`` / ``v_reset`` =
±0.45 V [E], below which a cell does not move at all, sits where the rate is 2.2e-9 of the
reference rate: a V/3 half-selected cell of a pulse up to 1.35 V and every read at up to half
of it (0.225 V, the bench's default read limit) cannot disturb.
"""

from __future__ import annotations

import dataclasses

from .device import RELAX_POLY_WAN2022, DeviceParams

V_FLOOR = 0.45
"""Kinetics floor of every preset (V): below it a cell does not move (module docstring)."""

BINARY = DeviceParams(
    g_min=1e-6,  # 1 MΩ HRS, Pham et al. 2019, Pt/LaAlO3/Nb:SrTiO3 [F]
    g_max=100e-6,  # 10 kΩ LRS, same device [F]
    v_set=V_FLOOR,  # [E] kinetics floor (module docstring)
    v_reset=-V_FLOOR,  # [E]
    levels_set=1.0,  # binary operation: one reference pulse switches the full range [E]
    levels_reset=1.0,
    relax_poly=RELAX_POLY_WAN2022,  # [E] Wan 2022 shape, scaled by this g_max (100 µS)
)
"""Min group's binary device: 10 kΩ / 1 MΩ, one ±1.3 V 100 ns pulse switches it."""

ANALOG = DeviceParams(
    g_min=1e-6,  # 1 µS [F: techniques.md §7, NeuRRAM-calibrated aihwkit g_max 40 µS]
    g_max=40e-6,  # 40 µS [F]
    v_set=V_FLOOR,  # [E] kinetics floor (module docstring)
    v_reset=-V_FLOOR,  # [E]
    levels_set=97.0,  # NeuroSim maxNumLevelLTP [F]
    levels_reset=100.0,  # NeuroSim maxNumLevelLTD [F]
    relax_poly=RELAX_POLY_WAN2022,  # aihwkit ReRamWan2022, 1 s, g_max 40 µS [F]
)
"""1T1R-like analog device, 1-40 µS, ~100 levels per direction."""

HIGH_R = DeviceParams(
    g_min=0.1e-6,  # 10 MΩ HRS [E]; GENIEx used Ron 50-300 kΩ [F]
    g_max=10e-6,  # 100 kΩ LRS [E]
    v_set=V_FLOOR,  # [E] kinetics floor (module docstring)
    v_reset=-V_FLOOR,  # [E]
    levels_set=1.0,
    levels_reset=1.0,
    relax_poly=RELAX_POLY_WAN2022,  # [E] Wan 2022 shape, scaled by this g_max (10 µS)
)
"""High-resistance binary device, 100 kΩ / 10 MΩ (less IR drop, techniques.md §4.3)."""

BINARY_SINH = dataclasses.replace(BINARY, iv_v0=0.25)
"""``binary`` with the sinh I-V switched on, I = G V0 sinh(V / V0), V0 = 0.25 V (Stanford RRAM
model v1.0.0, Jiang et al., IEEE TED 63, 1884 (2016); doi:10.4231/D37H1DN48) [F]: a cell
conducts 11 % more than G V at a 0.2 V read and 17x at a 1.3 V pulse, so sneak and
half-selected currents grow faster than linearly with the pulse amplitude. Every solve is then
self-consistent (slower); reads cannot share unit responses."""

PRESETS: dict[str, DeviceParams] = {"binary": BINARY, "analog": ANALOG, "high_r": HIGH_R,
                                    "binary_sinh": BINARY_SINH}


def preset(name: str) -> DeviceParams:
    """The preset called ``name`` ("binary", "analog", "high_r" or "binary_sinh")."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"preset = {name!r} is not one of the allowed presets {sorted(PRESETS)}"
        ) from None


def with_stuck_fraction(params: DeviceParams, fraction: float) -> DeviceParams:
    """`params` with `fraction` of the cells stuck (stuck-on plus stuck-off), split in the
    ratio of `params`' own stuck-on and stuck-off rates (when both are 0: all stuck-off)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"stuck fraction = {fraction!r}: allowed 0 <= fraction <= 1")
    total = params.p_stuck_on + params.p_stuck_off
    share_on = params.p_stuck_on / total if total > 0 else 0.0
    on = fraction * share_on
    return dataclasses.replace(params, p_stuck_on=on,
                               p_stuck_off=min(fraction * (1.0 - share_on), 1.0 - on))
