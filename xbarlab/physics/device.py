"""Memristor device model: parameters, population sampling, and the kernel that moves cell states.

Each cell carries a state ``w`` in [0, 1]; its small-signal conductance is
``G = g_lo + w * (g_hi - g_lo)`` between its own bounds (device-to-device spread, lognormal).
A voltage ``v`` held across the cell for ``duration`` seconds moves the state with switching
kinetics that are exponential in voltage (the voltage-time dilemma of oxide RRAM: Schroeder et
al., J. Appl. Phys. 107, 054517 (2010); Menzel et al., Adv. Funct. Mater. 21, 4487 (2011)
measured switching times spanning more than nine decades). The rate has the field-accelerated
ion-hopping form of the Stanford-PKU model, rate ∝ sinh(v / v_k) (Jiang et al., IEEE TED 63,
1884 (2016); physics.md §4), normalised at the reference pulse:

- ``v > v_set``: SET; the pulse is worth ``n = sinh(v / v_k) / sinh(v_set_ref / v_k)
  * duration / t_ref`` reference pulses (``v_k = v_efold_set``), where one reference pulse
  (``v_set_ref`` for ``t_ref``) advances the cell by one of ``levels_set`` levels;
- ``v < v_reset``: RESET, mirrored (``v_k = v_efold_reset``);
- in between: no change. ``v_set`` / ``v_reset`` are a floor of the model, not a threshold of
  the device: the rate there is already ~1e-9 of the reference rate, and below them a cell
  is not moved at all, so a read can be proven not to disturb. A V/2 half-selected cell
  (above the floor) moves by a small fraction of a level per pulse and drifts over many
  pulses; the higher the write amplitude, the faster its half-selected neighbours drift.

The levels lie on the NeuroSim soft-bound curve G(p) = B(1 - e^{-p/A}) + G_min
(P.-Y. Chen, X. Peng, S. Yu, IEEE TCAD 37, 3067 (2018); MLP_NeuroSim_V3.0): the step shrinks
toward the bound being approached. The state is moved along that curve in pulse-number space,
so a pulse may be any fraction of a level, and splitting a pulse in two gives the same mean
move as one pulse of the summed drive. Cycle-to-cycle noise is Gaussian with
``c2c_sigma * sqrt(n_moved)`` of the range, where ``n_moved`` is the number of reference
pulses' worth of movement the pulse really produced (NeuroSim's ``sigmaCtoC * sqrt(numPulse)``,
generalised to fractional pulses as a diffusion: its variance, like the mean move, is additive
in drive). A cell sitting at its bound does not move and gets no noise.

SET can be limited by a compliance current ``i_cc``: the state never rises past the point
where the cell current at the applied voltage would exceed ``i_cc``, and a cell already past
that point is not changed (the limiter takes the voltage). Where the limiter stops a SET (or a
forming), the cell does not land exactly at ``I_cc / V``: its conductance is
``(I_cc / V) * (1 + cc_sigma * xi)``, a fresh normal ``xi`` per stop (filament growth overshoots
or undershoots the limit from cycle to cycle). Pristine (unformed) cells conduct
``g_pristine`` and do not switch; a voltage at or above ``v_form`` accumulates forming
progress ``duration / t_form * exp((v - v_form) / v_form_slope)``; once it reaches 1 the cell
is formed into its LRS (capped by the compliance, if any). Stuck-on / stuck-off cells sit at
their own ``g_hi`` / ``g_lo`` and never move.

The optional nonlinear I-V is ``I = G * iv_v0 * sinh(V / iv_v0)`` (Yakopcic / Stanford-PKU
form, reference/physics.md §4); ``G`` stays the small-signal conductance.

Post-programming relaxation: every pulse that moves a cell (SET, RESET, forming) also updates
where the cell will relax to, its *pending relaxation* ``p`` (state units), with the cell then
settling at ``clip(w + p, 0, 1)``. Write ``p = s * sigma_w(w) * z``: ``sigma_w`` is
``relax_poly`` evaluated at the cell's conductance, in units of its range,
``s = 1 / (1 - exp(-relax_t_sigma / relax_tau))`` makes the spread seen ``relax_t_sigma``
after programming exactly the polynomial's value, and ``z`` is the filament's normalised
relaxation offset. A pulse that moved the state by ``d = |dw|`` (fraction of the range; the
actual move, noise and compliance landing included) updates ``z`` as an Ornstein-Uhlenbeck
process in the distance moved,
``z' = exp(-d / (2 relax_move_scale)) z + sqrt(1 - exp(-d / relax_move_scale)) xi``, and
``p' = s sigma_w(w') z'``. Forming redraws ``z``. ``p`` itself is not clipped (it is the
filament's offset, and clipping it would carry a bias from every stay at a bound into later
moves); the bound stops the state instead: a cell at a bound relaxes inward only.

- A small corrective move of a settled cell (``z = 0``) leaves a spread of only
  ``sigma(g) sqrt(1 - exp(-d / relax_move_scale)) ~ sigma(g) sqrt(d / relax_move_scale)``:
  it perturbs the filament little (Alibart et al., Nanotechnology 23, 075201 (2012) tune to
  1 % with small corrective pulses; Wan et al., Nature 608, 504 (2022): after relaxation,
  iterative re-programming narrows the distribution) [F: behaviour]. The variance grows in
  proportion to the move, like the cycle-to-cycle noise [E: form].
- The part of the filament a move does not re-form keeps its pending relaxation (the
  ``exp(-d / 2 relax_move_scale)`` weight), rescaled to the spread of the conductance the cell
  now has (a filament near its HRS cannot relax by the spread of its LRS) [E].
- ``z`` stays N(0, 1) once it is (variance-preserving), so a cell programmed by a switching
  event (a move across the range, or any path of moves adding up to it, such as a RESET then
  a SET to a level, or an iterative write-verify like the one behind the aihwkit fit) relaxes
  with the cited sigma(g) at whatever conductance it was left: from a settled cell a move
  across the whole range gives ``sqrt(1 - exp(-1 / relax_move_scale))`` of it (99.7 % at the
  default 0.2), and further moves bring it closer still.
- The update composes: a move made in two parts gives exactly the distribution of ``z`` of
  the whole move (the circuit simulation may split a pulse into steps).

As time ``dt`` passes (``relax_cells``), a fraction ``1 - exp(-dt / relax_tau)`` of the pending
part is carried out, the state clipped to [0, 1] (relaxation stops at a bound). The state thus
never leaves [0, 1], and zero elapsed time changes nothing.
"""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass

import numpy as np
from numba import njit

HEALTHY = 0
STUCK_ON = 1
STUCK_OFF = 2

# Max deviation of the NeuroSim nonlinearity curve from the straight line, per unit of the "NL"
# label. Solving max_x [f(x; A) - x] = NL_DEVIATION_PER_UNIT * NL for A reproduces NeuroSim's
# published NL -> normalised-A table (documents/Nonlinearity-NormA) to <0.1 % over NL 0.01..9.
NL_DEVIATION_PER_UNIT = 0.099

# aihwkit ReRamWan2022NoiseModel, 1 s fit to the published figures of Wan et al., Nature
# (2022): sigma(g) = sum_i c_i (g/g_max)^i in µS at g_max = 40 µS, ascending order [F].
WAN2022_SIGMA_1S_US = (0.348, 16.030, -43.853, 45.393, -16.815)
WAN2022_G_MAX_US = 40.0
RELAX_POLY_WAN2022 = tuple(c / WAN2022_G_MAX_US for c in WAN2022_SIGMA_1S_US)
"""The Wan 2022 polynomial as a fraction of g_max (aihwkit scales sigma with g_max / 40 µS)."""
RELAX_POLY_MAX_TERMS = 5

HARDER_READ_NOISE = {"read_noise_exponent": 0.5, "flicker_fraction": 0.5}
"""The optional read noise that grows toward the HRS with a 1/f half: ``dataclasses.replace(
params, **HARDER_READ_NOISE)``, or ``[sim] harder_read_noise = true`` in a bench file."""
READ_NOISE_CAP = 0.2
"""Largest relative read noise of a cell (sigma of ln G): aihwkit caps its PCM 1/f amplitude
Q_s at 0.2 [F]."""
FLICKER_TAUS = (1e-5, 1e-3, 1e-1, 1e1)
"""Time constants (s) of the Lorentzians whose equal-weight sum is the 1/f read noise: a 1/f
spectrum (within a few dB) from about 0.02 Hz to 16 kHz [E: band]."""


def _in_range(name: str, value: float, low: float, high: float, *, low_open=False,
              high_open=False, unit: str = "") -> None:
    """Raise ValueError naming ``name`` and its allowed range when ``value`` is outside it."""
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (math.isfinite(value) and ok_low and ok_high):
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise ValueError(
            f"DeviceParams.{name} = {value!r} {unit}".rstrip()
            + f" is outside the allowed range {lb}{low:g}, {high:g}{hb}"
            + (f" {unit}" if unit else "")
        )


def _check_relax_poly(poly) -> None:
    """Raise unless ``poly`` is 1..5 finite coefficients with 0 <= sigma(x) <= 0.5 on [0, 1]."""
    allowed = (f"the allowed range: a tuple of 1 to {RELAX_POLY_MAX_TERMS} finite coefficients "
               "with 0 <= sum_i c_i x^i <= 0.5 for every x in [0, 1]")
    ok = isinstance(poly, tuple) and 1 <= len(poly) <= RELAX_POLY_MAX_TERMS
    if ok:
        try:
            coeffs = np.array(poly, dtype=float)
        except (TypeError, ValueError):
            ok = False
        else:
            sigma = np.polynomial.polynomial.polyval(np.linspace(0.0, 1.0, 1001), coeffs)
            ok = bool(np.all(np.isfinite(coeffs)) and sigma.min() >= 0.0 and sigma.max() <= 0.5)
    if not ok:
        raise ValueError(f"DeviceParams.relax_poly = {poly!r} is outside {allowed}")


@dataclass(frozen=True)
class DeviceParams:
    """Parameters of one memristor technology. Every field is validated on construction.

    Provenance tags follow reference/techniques.md: [F] found in a cited source, [E] our
    estimate. Presets with cited values live in ``xbarlab.physics.presets``.
    """

    g_min: float
    """HRS conductance, nominal (S). Binary default 1 µS = 1 MΩ (Pham et al., Micromachines
    10, 245 (2019), measured Pt/LaAlO3/Nb:SrTiO3) [F]."""
    g_max: float
    """LRS conductance, nominal (S). Binary default 100 µS = 10 kΩ (same source) [F]."""
    v_set: float
    """SET threshold (V, > 0): a cell voltage at or below it never increases the state."""
    v_reset: float
    """RESET threshold (V, < 0): a cell voltage at or above it never decreases the state."""
    v_set_ref: float = 1.3
    """Amplitude of the reference SET pulse (V): +1.3 V (Prezioso et al., Nature 521, 61
    (2015)) [F]. One such pulse of ``t_ref`` moves the cell by one level."""
    v_reset_ref: float = -1.3
    """Amplitude of the reference RESET pulse (V): -1.3 V (Prezioso 2015) [F]."""
    t_ref: float = 100e-9
    """Width of the reference pulse (s): 100 ns (techniques.md §7; Yao 2020 used 50 ns) [F]."""
    levels_set: float = 97.0
    """Reference SET pulses spanning the full range (NeuroSim RealDevice maxNumLevelLTP 97) [F]."""
    levels_reset: float = 100.0
    """Reference RESET pulses spanning the full range (NeuroSim maxNumLevelLTD 100) [F]."""
    nl_set: float = 2.4
    """Update nonlinearity label of SET (NeuroSim NL_LTP 2.4) [F]; 0 = linear."""
    nl_reset: float = -4.88
    """Update nonlinearity label of RESET (NeuroSim NL_LTD -4.88) [F]; only |NL| is used, the
    curve always saturates toward the bound it approaches."""
    v_efold_set: float = 0.0426
    """Voltage per e-fold of SET speed (V), the ``v_k`` of rate ∝ sinh(v / v_k). Stanford-PKU
    model v1.0.0 (Jiang et al., IEEE TED 63, 1884 (2016); doi:10.4231/D37H1DN48): the field
    term sinh(gamma a0 q v / (L k T)) with gamma0 = 16, beta = 0.8, a0 = 0.25 nm, L = 5 nm,
    T = 298 K gives v_k = k T L / (gamma a0 q) = 32.1 mV at the smallest gap and 42.6 mV at its
    largest (gamma = gamma0 - beta (1.7 nm / 1 nm)^3 = 12.07) [F: derived]; the shallower end
    is taken (about 98 mV per decade of switching time)."""
    v_efold_reset: float = 0.0426
    """Voltage per e-fold of RESET speed (V); the same Stanford-PKU field term [F: derived]."""
    c2c_sigma: float = 0.035
    """Cycle-to-cycle noise per reference pulse of movement, fraction of (g_hi - g_lo);
    NeuroSim default sigmaCtoC = 3.5 % x sqrt(pulses) [F]."""
    d2d_sigma: float = 0.10
    """Device-to-device spread of g_min and g_max: lognormal sigma (R = R_nom exp(theta),
    Chen et al., DATE 2017 form) [F: form], 10 % [E] (Truong 2014 sweeps 0-15 %)."""
    p_stuck_on: float = 0.0175
    """Probability that a cell is stuck at its LRS (Chen 2017 / He 2019 measured 1.75 %) [F]."""
    p_stuck_off: float = 0.0904
    """Probability that a cell is stuck at its HRS (Chen 2017 / He 2019 measured 9.04 %) [F]."""
    read_noise: float = 0.01
    """Relative read noise of the conductance per reading at ``g_max``, sigma of ln G (aihwkit
    short-term read noise note, 1 %) [F]. Optionally it grows toward the HRS
    (``read_noise_exponent``) and part of it is 1/f noise (``flicker_fraction``); module
    docstring of ``array.py``."""
    read_noise_exponent: float = 0.0
    """Conductance dependence of the read noise: sigma(g) = read_noise (g_max / g)^exponent,
    at most READ_NOISE_CAP. The relative amplitude of RRAM read noise (random-telegraph and
    1/f) grows with the resistance (Ielmini, Nardi, Cagli, Appl. Phys. Lett. 96, 053503
    (2010); Ambrogio et al., IEEE TED 62, 3805 (2015)) [F: form]; aihwkit's PCM 1/f model
    uses (g_max / g)^0.65 [F]. 0 (off) by default; ``HARDER_READ_NOISE`` switches on 0.5 [E]
    (10 % at a binary cell's 1 µS HRS, 6.3 % at the analog 1 µS): with it, the protocols'
    acceptance figures of read-map, write-verify and program-efficient are not met yet."""
    flicker_fraction: float = 0.0
    """Fraction of the read-noise variance that is 1/f noise (correlated across successive
    readings: a sum of Lorentzians, one per two decades, FLICKER_TAUS), the rest white.
    1/f spectra of RRAM read current: Ambrogio et al., IEEE TED 62, 3805 (2015) [F: form];
    the fraction at a ~1 µs-1 s reading cadence [E]. 0 (off) by default; 0.5 in
    ``HARDER_READ_NOISE``."""
    iv_v0: float = 0.0
    """Voltage scale of the sinh I-V (V); 0 means linear I = G V. Yakopcic / Stanford-PKU
    form I ∝ sinh(V/V0) (physics.md §4) [F: form]."""
    g_pristine: float = 0.0
    """Conductance of a pristine (unformed) cell, nominal (S); scaled per cell with its g_min
    spread. Must be below g_min. 0 means g_min / 100 [E]."""
    v_form: float = 2.0
    """Forming threshold (V): below it a pristine cell never forms [E]."""
    t_form: float = 1e-6
    """Forming time at exactly v_form (s) [E]."""
    v_form_slope: float = 0.1
    """Voltage per e-fold acceleration of forming above v_form (V) [E]."""
    i_compliance_1t1r: float = 100e-6
    """SET compliance current that the access transistor enforces in 1T1R arrays at the
    default gate voltage ``v_gate_set`` (A); 100 µA, techniques.md §7 [E] (consistent with LRS
    10 kΩ at ≈1 V). Other gate voltages limit it by the square law (``transistor.py``)."""
    v_gate_threshold: float = 0.5
    """Threshold voltage of the 1T1R access transistor (V): below it the transistor is off and
    its cell carries no current [E] (a thin-oxide NMOS of a 0.13-0.25 µm node, 0.4-0.6 V)."""
    v_gate_set: float = 1.5
    """Gate voltage at which the access transistor's saturation current is
    ``i_compliance_1t1r`` (V) [E]; it fixes the transistor's gain K = i_compliance_1t1r /
    (v_gate_set - v_gate_threshold)^2 (100 µA/V² by default)."""
    cc_sigma: float = 0.04
    """Relative cycle-to-cycle spread of the conductance at which a compliance-limited SET or
    forming stops (Gaussian sigma of G / (I_cc/V), dimensionless). Gate-stepped (compliance-
    controlled) programming of 4 kbit HfO2 1T1R levels spreads by sigma_G = 4.78 µS -
    0.0091 G over 50-225 µS, i.e. 8.7 % at 50 µS, 3.9 % at 100 µS, 1.2 % at 225 µS (Milo et
    al., IRPS 2021, Fig. 4, IGVVA-100; linear fit in Sandia CrossSim's RRAMMilo model) [F];
    one relative value of 4 % (the mid-range level) is our reduction [E]."""
    relax_poly: tuple[float, ...] = RELAX_POLY_WAN2022
    """Spread of post-programming relaxation seen ``relax_t_sigma`` after a pulse, as a fraction
    of g_max: sigma(g) / g_max = sum_i relax_poly[i] (g/g_max)^i, g/g_max clipped to [0, 1],
    ascending order, at most 5 terms; (0.0,) turns relaxation off. Default: aihwkit
    ReRamWan2022NoiseModel 1 s fit (0.348, 16.03, -43.85, 45.39, -16.82) µS at g_max 40 µS:
    0.35 µS at g = 0, 2.3 µS at g = 0.31 g_max, 1.1 µS at g_max (techniques.md §7) [F]."""
    relax_tau: float = 0.1
    """Time constant of post-programming relaxation (s) [E]: relaxation is >99.99 % complete at
    the 1 s point where its spread is cited, and <0.01 % of it happens within the 10 µs of a
    verify read, so a read right after a pulse does not see it."""
    relax_tau_spread: float = 0.0
    """Spread of the relaxation time constant from cell to cell (optional; 0: every cell relaxes
    with ``relax_tau``): each cell's own time constant is relax_tau x exp(relax_tau_spread x z),
    z a standard normal drawn once per chip (a lognormal, of median relax_tau). Relaxation of
    RRAM arrays goes on over decades of time after programming (Wan et al., Nature 608, 504
    (2022): the programmed distribution still widening from 1 s to 1 h and on), which one time
    constant cannot give and a broad distribution of them does: the thermally activated
    processes of filamentary RRAM have lognormally distributed times (Karpov and Niraula,
    "Log-normal statistics in filamentary RRAM devices and related systems"), and a sum of
    exponentials with lognormal time constants is the usual stand-in for a stretched
    exponential. The spread ``relax_poly`` gives is reached at ``relax_t_sigma`` by a cell of
    the median time constant; slower cells are still relaxing then. Bench option ``[sim]
    relaxation_spread``."""
    relax_t_sigma: float = 1.0
    """Time after programming at which ``relax_poly`` gives the spread (s); 1 s, the first time
    point of the aihwkit ReRamWan2022 fits [F]."""
    relax_move_scale: float = 0.2
    """Move of the state (fraction of the cell's range, dimensionless, in (0, 1]) that sets how
    much of the filament's pending relaxation a pulse redraws: a move d redraws a variance
    fraction 1 - exp(-d / relax_move_scale) of the cited spread and keeps the rest (module
    docstring). 0.2 [E]: no measurement of relaxation against the size of the programming
    move was found. With it a switching event across the range redraws >= 99.3 % of the
    variance (the cited spread to 0.3 %), while a corrective move of the size of the cited
    spread itself (at most 6 % of the range) adds about half of it, so re-programming after
    relaxation narrows the distribution as Wan 2022 reports. A settled cell moved by a single
    short step relaxes less than the cited spread."""

    def __post_init__(self) -> None:
        _in_range("g_min", self.g_min, 0.0, 1.0, low_open=True, unit="S")
        _in_range("g_max", self.g_max, self.g_min * 2.0, 1.0, unit="S")
        _in_range("v_set", self.v_set, 0.0, 10.0, low_open=True, unit="V")
        _in_range("v_reset", self.v_reset, -10.0, 0.0, high_open=True, unit="V")
        _in_range("v_set_ref", self.v_set_ref, self.v_set, 20.0, low_open=True, unit="V")
        _in_range("v_reset_ref", self.v_reset_ref, -20.0, self.v_reset, high_open=True, unit="V")
        _in_range("t_ref", self.t_ref, 1e-12, 1.0, unit="s")
        _in_range("levels_set", self.levels_set, 1.0, 1e6)
        _in_range("levels_reset", self.levels_reset, 1.0, 1e6)
        _in_range("nl_set", abs(self.nl_set), 0.0, 9.0)
        _in_range("nl_reset", abs(self.nl_reset), 0.0, 9.0)
        _in_range("v_efold_set", self.v_efold_set, 1e-3, 10.0, unit="V")
        _in_range("v_efold_reset", self.v_efold_reset, 1e-3, 10.0, unit="V")
        _in_range("c2c_sigma", self.c2c_sigma, 0.0, 0.5)
        _in_range("d2d_sigma", self.d2d_sigma, 0.0, 0.5)
        _in_range("p_stuck_on", self.p_stuck_on, 0.0, 1.0)
        _in_range("p_stuck_off", self.p_stuck_off, 0.0, 1.0 - self.p_stuck_on)
        _in_range("read_noise", self.read_noise, 0.0, 0.1)
        _in_range("read_noise_exponent", self.read_noise_exponent, 0.0, 2.0)
        _in_range("flicker_fraction", self.flicker_fraction, 0.0, 1.0)
        _in_range("iv_v0", self.iv_v0, 0.0, 10.0, unit="V")
        _in_range("g_pristine", self.g_pristine, 0.0, self.g_min, high_open=True, unit="S")
        _in_range("v_form", self.v_form, self.v_set, 20.0, low_open=True, unit="V")
        _in_range("t_form", self.t_form, 1e-12, 1e3, unit="s")
        _in_range("v_form_slope", self.v_form_slope, 1e-3, 10.0, unit="V")
        _in_range("i_compliance_1t1r", self.i_compliance_1t1r, 1e-9, 1.0, low_open=True,
                  unit="A")
        _in_range("v_gate_threshold", self.v_gate_threshold, 0.0, 5.0, unit="V")
        _in_range("v_gate_set", self.v_gate_set, self.v_gate_threshold, 10.0, low_open=True,
                  unit="V")
        _in_range("cc_sigma", self.cc_sigma, 0.0, 0.5)
        _check_relax_poly(self.relax_poly)
        _in_range("relax_tau", self.relax_tau, 1e-9, 1e9, unit="s")
        _in_range("relax_t_sigma", self.relax_t_sigma, 0.0, 1e9, low_open=True, unit="s")
        _in_range("relax_tau_spread", self.relax_tau_spread, 0.0, 5.0)
        _in_range("relax_move_scale", self.relax_move_scale, 0.0, 1.0, low_open=True)
        # With spread, the bounds of one cell must not cross: keep ln(g_max/g_min) > 12 sigma.
        if self.d2d_sigma > 0 and math.log(self.g_max / self.g_min) <= 12.0 * self.d2d_sigma:
            raise ValueError(
                f"DeviceParams.d2d_sigma = {self.d2d_sigma!r} is outside the allowed range "
                f"[0, {math.log(self.g_max / self.g_min) / 12.0:.4g}] for g_max/g_min = "
                f"{self.g_max / self.g_min:.4g} (ln ratio must exceed 12 sigma)"
            )

    @property
    def pristine_conductance(self) -> float:
        """Nominal conductance of an unformed cell (S)."""
        return self.g_pristine if self.g_pristine > 0 else self.g_min / 100.0

    def read_noise_sigma(self, g) -> np.ndarray:
        """Relative read noise (sigma of ln G per reading) of cells of conductance ``g`` (S)."""
        g = np.maximum(np.asarray(g, dtype=float), 1e-300)
        sigma = self.read_noise * (self.g_max / g) ** self.read_noise_exponent
        return np.minimum(sigma, max(READ_NOISE_CAP, self.read_noise))

    def relaxation_sigma(self, g) -> np.ndarray:
        """Spread (S) of relaxation seen ``relax_t_sigma`` after programming a cell to ``g`` (S)."""
        x = np.clip(np.asarray(g, dtype=float) / self.g_max, 0.0, 1.0)
        sigma = np.polynomial.polynomial.polyval(x, np.array(self.relax_poly, dtype=float))
        return self.g_max * np.maximum(sigma, 0.0)


def nonlinearity_to_a(nl: float) -> float:
    """Normalised NeuroSim shape parameter A (in units of the full pulse range) for label ``nl``.

    The curve is f(x) = (1 - e^{-x/A}) / (1 - e^{-1/A}) on x in [0, 1]. NeuroSim tabulates A
    against a nonlinearity label; the label equals the curve's largest deviation above the
    straight line divided by ``NL_DEVIATION_PER_UNIT``. Returns ``inf`` (linear) for 0.
    """
    nl = abs(float(nl))
    if nl == 0.0:
        return math.inf
    target = NL_DEVIATION_PER_UNIT * nl

    def deviation(a: float) -> float:
        # f'(x*) = 1 at x* = -a ln(a (1 - e^{-1/a})); the max deviation is f(x*) - x*.
        c = -math.expm1(-1.0 / a)
        x_star = -a * math.log(a * c)
        return -math.expm1(-x_star / a) / c - x_star

    lo, hi = 1e-3, 1e6  # deviation falls monotonically from ~1 to ~0 over this bracket
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if deviation(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1.0 + 1e-13:
            break
    return math.sqrt(lo * hi)


@dataclass(frozen=True)
class DevicePopulation:
    """Per-cell fixed properties of one array, drawn once from ``DeviceParams`` (seeded)."""

    g_lo: np.ndarray
    """Per-cell HRS bound (S)."""
    g_hi: np.ndarray
    """Per-cell LRS bound (S)."""
    g_pristine: np.ndarray
    """Per-cell conductance before forming (S)."""
    defects: np.ndarray
    """int8 map: 0 healthy, 1 stuck-on (at g_hi), 2 stuck-off (at g_lo)."""


def sample_population(params: DeviceParams, shape: tuple[int, int], rng: np.random.Generator,
                      *, defects: bool = True) -> DevicePopulation:
    """Draw the device-to-device spread and the stuck-at map of an array of ``shape``."""
    spread_lo = np.exp(params.d2d_sigma * rng.standard_normal(shape))
    spread_hi = np.exp(params.d2d_sigma * rng.standard_normal(shape))
    u = rng.random(shape)
    defect_map = np.full(shape, HEALTHY, dtype=np.int8)
    if defects:
        defect_map[u < params.p_stuck_on] = STUCK_ON
        defect_map[(u >= params.p_stuck_on) & (u < params.p_stuck_on + params.p_stuck_off)] = (
            STUCK_OFF
        )
    return DevicePopulation(
        g_lo=params.g_min * spread_lo,
        g_hi=params.g_max * spread_hi,
        g_pristine=params.pristine_conductance * spread_lo,
        defects=defect_map,
    )


def cell_current(g: np.ndarray, v: np.ndarray, iv_v0: float) -> np.ndarray:
    """Current through cells of small-signal conductance ``g`` at voltage ``v`` (A)."""
    if iv_v0 == 0.0:
        return g * v
    return g * iv_v0 * np.sinh(v / iv_v0)


def chord_conductance(g: np.ndarray, v: np.ndarray, iv_v0: float) -> np.ndarray:
    """I(v)/v for the device I-V (S): the conductance a linear solve must use at voltage v."""
    if iv_v0 == 0.0:
        return np.array(g, dtype=float, copy=True)
    x = np.asarray(v, dtype=float) / iv_v0
    safe = np.where(x == 0.0, 1.0, x)
    ratio = np.where(x == 0.0, 1.0, np.sinh(safe) / safe)
    return g * ratio


# Constants handed to the kernel, in one immutable tuple (numba-friendly).
KernelConstants = namedtuple(
    "KernelConstants",
    "v_set v_reset v_set_ref v_reset_ref t_ref levels_set levels_reset a_set a_reset "
    "v_efold_set v_efold_reset c2c_sigma iv_v0 v_form t_form v_form_slope cc_sigma g_max "
    "relax_poly relax_scale relax_move_scale",
)


def kernel_constants(params: DeviceParams) -> KernelConstants:
    """Pack the parameters the pulse kernel needs (A values resolved from NL labels)."""
    return KernelConstants(
        float(params.v_set), float(params.v_reset), float(params.v_set_ref),
        float(params.v_reset_ref), float(params.t_ref), float(params.levels_set),
        float(params.levels_reset), nonlinearity_to_a(params.nl_set),
        nonlinearity_to_a(params.nl_reset), float(params.v_efold_set), float(params.v_efold_reset),
        float(params.c2c_sigma), float(params.iv_v0), float(params.v_form),
        float(params.t_form), float(params.v_form_slope), float(params.cc_sigma),
        float(params.g_max), _padded_relax_poly(params),
        1.0 / -math.expm1(-params.relax_t_sigma / params.relax_tau),
        float(params.relax_move_scale),
    )


def _padded_relax_poly(params: DeviceParams) -> tuple:
    """``relax_poly`` as exactly RELAX_POLY_MAX_TERMS floats (zero-padded), for the kernel."""
    poly = [float(c) for c in params.relax_poly]
    return tuple(poly + [0.0] * (RELAX_POLY_MAX_TERMS - len(poly)))


@njit(cache=True)
def soft_bound_curve(x, a):
    """Normalised NeuroSim curve f(x) = (1 - e^{-x/a}) / (1 - e^{-1/a}); linear for a = inf."""
    if a == np.inf:
        return x
    return math.expm1(-x / a) / math.expm1(-1.0 / a)


@njit(cache=True)
def soft_bound_inverse(w, a):
    """Pulse coordinate x in [0, 1] at which the curve reaches w (inverse of soft_bound_curve)."""
    if a == np.inf:
        return w
    return -a * math.log1p(w * math.expm1(-1.0 / a))


@njit(cache=True)
def _kinetic_drive(v, v_ref, v_k):
    """Reference pulses' worth of drive per ``t_ref`` at voltage v: sinh(v/v_k)/sinh(v_ref/v_k)
    (v and v_ref of one sign), computed without overflow at large v / v_k."""
    x, x_ref = abs(v) / v_k, abs(v_ref) / v_k
    return math.exp(x - x_ref) * -math.expm1(-2.0 * x) / -math.expm1(-2.0 * x_ref)


@njit(cache=True)
def _compliance_state(i_cc, v, g_lo, g_hi, iv_v0):
    """State at which the cell current at voltage v > 0 equals i_cc (may lie outside [0, 1])."""
    per_siemens = v if iv_v0 == 0.0 else iv_v0 * math.sinh(v / iv_v0)
    return (i_cc / per_siemens - g_lo) / (g_hi - g_lo)


@njit(cache=True)
def _compliance_landing(cap, g_lo, g_hi, k, rng):
    """State where a compliance-stopped cell lands: G = G_cc (1 + cc_sigma xi), within [0, 1]."""
    if k.cc_sigma == 0.0:
        return cap
    g_cc = g_lo + cap * (g_hi - g_lo)
    g = g_cc * (1.0 + k.cc_sigma * rng.standard_normal())
    return min(max((g - g_lo) / (g_hi - g_lo), 0.0), 1.0)


@njit(cache=True)
def _relaxation_sigma_w(w, g_lo, g_hi, k):
    """s * sigma_w: the pending-relaxation spread of a cell at state w, in state units."""
    x = min(max((g_lo + w * (g_hi - g_lo)) / k.g_max, 0.0), 1.0)
    sigma = 0.0
    power = 1.0
    for coeff in k.relax_poly:
        sigma += coeff * power
        power *= x
    if sigma <= 0.0:
        return 0.0
    return k.relax_scale * sigma * k.g_max / (g_hi - g_lo)


@njit(cache=True)
def _relaxation_offset(w_before, w, pending, full, g_lo, g_hi, k, rng):
    """Pending relaxation of a cell a pulse just moved from state ``w_before`` (pending
    relaxation ``pending``) to ``w``: the Ornstein-Uhlenbeck update of the normalised offset
    in the distance moved (module docstring); ``full`` redraws it (forming). Not clipped:
    ``relax_cells`` stops the state at its bounds.
    """
    sigma = _relaxation_sigma_w(w, g_lo, g_hi, k)
    if sigma <= 0.0:
        return 0.0
    d = abs(w - w_before)
    if full:
        keep, fresh = 0.0, 1.0
    else:
        keep = math.exp(-0.5 * d / k.relax_move_scale)
        fresh = math.sqrt(-math.expm1(-d / k.relax_move_scale))
    z = fresh * rng.standard_normal()
    if keep > 0.0 and pending != 0.0:
        sigma_before = _relaxation_sigma_w(w_before, g_lo, g_hi, k)
        if sigma_before > 0.0:
            z += keep * pending / sigma_before
    return sigma * z


@njit(cache=True)
def _pulse_kernel(w, formed, form_progress, relax, defects, g_lo, g_hi, v_cell, duration,
                  i_cc_cells, k, rng):
    """Move every cell (flat arrays, in place) by the voltage it saw for ``duration`` seconds;
    ``i_cc_cells`` is each cell's SET compliance (A; <= 0: none), or one value for all.

    ``relax`` (pending relaxation per cell) is updated for every cell that moves, by how far it
    moved (``_relaxation_offset``), unless it is empty (relaxation not tracked).
    """
    track = relax.size > 0
    each = i_cc_cells.size > 1
    for c in range(w.size):
        if defects[c] != 0:
            continue
        v = v_cell[c]
        i_cc = i_cc_cells[c] if each else i_cc_cells[0]
        if not formed[c]:
            if v >= k.v_form:
                form_progress[c] += duration / k.t_form * math.exp((v - k.v_form) / k.v_form_slope)
                if form_progress[c] >= 1.0:
                    formed[c] = True
                    w[c] = 1.0
                    if i_cc > 0.0:
                        cap = _compliance_state(i_cc, v, g_lo[c], g_hi[c], k.iv_v0)
                        if cap <= 0.0:
                            w[c] = 0.0  # even the HRS exceeds i_cc: the limiter holds it there
                        elif cap < 1.0:
                            w[c] = _compliance_landing(cap, g_lo[c], g_hi[c], k, rng)
                    if track:  # forming creates the filament: a full switching event
                        relax[c] = _relaxation_offset(0.0, w[c], 0.0, True, g_lo[c],
                                                      g_hi[c], k, rng)
            continue
        before = w[c]
        if v > k.v_set:
            cap = 1.0
            if i_cc > 0.0:
                cap = _compliance_state(i_cc, v, g_lo[c], g_hi[c], k.iv_v0)
                if cap <= w[c]:
                    continue  # already conducting i_cc: the limiter takes the overdrive
            drive = _kinetic_drive(v, k.v_set_ref, k.v_efold_set) * duration / k.t_ref
            x0 = soft_bound_inverse(w[c], k.a_set)
            x1 = min(1.0, x0 + drive / k.levels_set)
            moved = (x1 - x0) * k.levels_set
            if moved <= 0.0:
                continue
            new = soft_bound_curve(x1, k.a_set)
            if k.c2c_sigma > 0.0:
                new += k.c2c_sigma * math.sqrt(moved) * rng.standard_normal()
            if cap < 1.0 and new >= cap:
                w[c] = _compliance_landing(cap, g_lo[c], g_hi[c], k, rng)
            else:
                w[c] = min(max(new, 0.0), 1.0)
        elif v < k.v_reset:
            drive = _kinetic_drive(v, k.v_reset_ref, k.v_efold_reset) * duration / k.t_ref
            y0 = soft_bound_inverse(1.0 - w[c], k.a_reset)
            y1 = min(1.0, y0 + drive / k.levels_reset)
            moved = (y1 - y0) * k.levels_reset
            if moved <= 0.0:
                continue
            new = 1.0 - soft_bound_curve(y1, k.a_reset)
            if k.c2c_sigma > 0.0:
                new += k.c2c_sigma * math.sqrt(moved) * rng.standard_normal()
            w[c] = min(max(new, 0.0), 1.0)
        else:
            continue
        if track:
            relax[c] = _relaxation_offset(before, w[c], relax[c], False, g_lo[c], g_hi[c], k,
                                          rng)


def pulse_cells(w: np.ndarray, formed: np.ndarray, form_progress: np.ndarray,
                population: DevicePopulation, v_cell: np.ndarray, duration: float,
                constants: KernelConstants, *, i_compliance: float | np.ndarray | None,
                rng: np.random.Generator, relax_pending: np.ndarray | None = None) -> None:
    """Apply ``v_cell`` (V, shaped like ``w``) for ``duration`` seconds to every cell, in place.

    ``i_compliance`` (A) limits SET (and forming): one value, or one per cell (shaped like
    ``w``; inf: no limit for that cell); None means no limit. Cycle-to-cycle noise,
    compliance-landing spread and relaxation offsets are drawn from ``rng`` (per cell that
    moves, in cell order), so a seeded generator gives a reproducible pulse sequence.
    ``relax_pending`` (shaped like ``w``), if given, is updated (state units) for every cell
    that moves, by how far it moved (module docstring); ``relax_cells`` later carries it out.
    """
    if not (math.isfinite(duration) and duration >= 0.0):
        raise ValueError(f"duration = {duration!r} s is outside the allowed range [0, inf) s")
    if i_compliance is None:
        i_cc = np.full(1, -1.0)
    elif np.ndim(i_compliance) == 0:
        if not (math.isfinite(i_compliance) and i_compliance > 0.0):
            raise ValueError(
                f"i_compliance = {i_compliance!r} A is outside the allowed range (0, inf) A")
        i_cc = np.full(1, float(i_compliance))
    else:
        i_cc = np.asarray(i_compliance, dtype=np.float64)
        if i_cc.shape != w.shape or not np.all(i_cc > 0.0):
            raise ValueError(f"i_compliance per cell must be positive and shaped {w.shape}")
        i_cc = np.where(np.isinf(i_cc), -1.0, i_cc).reshape(-1)
    v = np.ascontiguousarray(v_cell, dtype=np.float64)
    if v.shape != w.shape:
        raise ValueError(f"v_cell has shape {v.shape}, expected the array's shape {w.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("v_cell contains non-finite voltages")
    arrays = [("w", w), ("formed", formed), ("form_progress", form_progress)]
    if relax_pending is not None:
        arrays.append(("relax_pending", relax_pending))
    for name, arr in arrays:
        if arr.shape != w.shape or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous array shaped {w.shape}")
    relax = np.empty(0) if relax_pending is None else relax_pending.reshape(-1)
    _pulse_kernel(
        w.reshape(-1), formed.reshape(-1), form_progress.reshape(-1), relax,
        population.defects.reshape(-1), population.g_lo.reshape(-1),
        population.g_hi.reshape(-1), v.reshape(-1), float(duration), i_cc, constants, rng,
    )


def relax_cells(w: np.ndarray, relax_pending: np.ndarray, seconds: float,
                tau: float | np.ndarray) -> None:
    """Let ``seconds`` pass: carry out a fraction 1 - exp(-seconds/tau) of every cell's pending
    relaxation, in place (both arrays shaped alike; `tau` one time constant, or one per cell
    shaped like them). Zero seconds change nothing. The state
    moves toward ``w + relax_pending`` and stops at a bound (a filament offset pointing past
    the bound is not carried out); within one interval between pulses every cell moves one way,
    so splitting the time into parts gives the same state.
    """
    if not (math.isfinite(seconds) and seconds >= 0.0):
        raise ValueError(f"seconds = {seconds!r} s is outside the allowed range [0, inf) s")
    if seconds == 0.0:
        return
    step = relax_pending * -np.expm1(-seconds / tau)
    np.clip(w + step, 0.0, 1.0, out=w)
    relax_pending -= step
