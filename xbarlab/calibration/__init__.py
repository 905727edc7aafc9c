"""Measured parasitic calibration: the model, its fit to measured terminal currents, and the
corrections it makes possible (techniques.md §4).

* `model`: the parasitic model (`Parasitics`: a path resistance per line end, a wire
  resistance per segment) solved exactly, and its unit responses and sensitivities.
* `fit`: `fit_parasitics` fits it, with the cells of each programmed pattern, to measured
  admittances (`Transfers`) with `scipy.optimize.least_squares`, with confidence intervals.
* `correction`: cell reads in any scheme, board row reads and matrix-vector products
  corrected with the model; weight pre-distortion; the per-column linear alternative.
* `chip`: `ChipModel`, what a bench knows of its chip (the model and an estimate of every
  cell), which the bench corrects with.
* `record`: a chip's calibration as stored in the run store, and attaching the newest one
  to a bench.
"""

from xbarlab.calibration.chip import ChipModel
from xbarlab.calibration.correction import (
    CellResponse,
    LinearColumnCorrection,
    Predistortion,
    cell_response,
    correct_mvm,
    predistort,
)
from xbarlab.calibration.fit import FitResult, Transfers, fit_parasitics
from xbarlab.calibration.model import Parasitics, unit_responses

__all__ = [
    "CellResponse",
    "ChipModel",
    "FitResult",
    "LinearColumnCorrection",
    "Parasitics",
    "Predistortion",
    "Transfers",
    "cell_response",
    "correct_mvm",
    "fit_parasitics",
    "predistort",
    "unit_responses",
]
