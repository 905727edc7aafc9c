"""A chip's calibration as the run store keeps it, and attaching the newest one to a bench.

The record is JSON (`record_of`): the calibrated resistances (``parasitics``), their standard
errors (``stderr``), per-line values and medians with 95 % intervals (``intervals``), how they
were measured (``measurement``) and the fit's figures (``fit``); the store keeps the chip's
conductance map beside it. `xbarlab.run_protocol` calls `attach_calibration` when it opens a
bench, so every run on a calibrated chip reads it corrected (`Bench.chip_model`), and notes
which record it used in its checkpoint ``calibration``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xbarlab.calibration.chip import ChipModel
from xbarlab.calibration.fit import FitResult
from xbarlab.calibration.model import Parasitics

RESISTANCES = ("r_source", "r_sense", "r_wire_row", "r_wire_col")


def record_of(fit: FitResult, measurement: dict[str, Any]) -> dict[str, Any]:
    """The JSON record of a calibration fit and how its data were measured."""
    m, n = fit.parasitics.shape
    values = fit.parasitics.as_vector()
    split = (slice(0, m), slice(m, m + n), m + n, m + n + 1)
    return {
        "shape": [m, n],
        "parasitics": {name: _plain(values[part]) for name, part in zip(RESISTANCES, split,
                                                                        strict=True)},
        "stderr": {name: _plain(fit.stderr[part]) for name, part in zip(RESISTANCES, split,
                                                                        strict=True)},
        "intervals": fit.intervals(),
        "fit": {"chi2_reduced": fit.chi2_reduced, "residual_rms": fit.residual_rms,
                "evaluations": fit.evaluations, "iterations": fit.iterations,
                "data_count": fit.data_count, "status": fit.status},
        "measurement": measurement,
    }


def parasitics_of(record: dict[str, Any]) -> Parasitics:
    """The calibrated resistances of a stored record."""
    p = record["parasitics"]
    return Parasitics(np.array(p["r_source"], float), np.array(p["r_sense"], float),
                      p["r_wire_row"], p["r_wire_col"])


def attach_calibration(bench: Any, store: Any, run: Any = None):
    """Attach the newest calibration of the bench's chip (``[chip] id``) in `store` as the
    bench's `ChipModel`, and note it in `run`'s checkpoint ``calibration``; return the record,
    or None when the chip has none (or only one of another shape: nothing is attached).
    Every run and stage starts with correction on (``bench.correct``): a stage that turned it
    off (``correct=false``) does not leave it off for the stages after it on the same bench."""
    bench.correct = True
    record = store.latest_calibration(bench.spec.chip.id)
    if record is None or record.conductance.shape != (bench.rows, bench.cols):
        return None
    bench.chip_model = ChipModel(parasitics_of(record.record), record.conductance.copy(),
                                 record.calibration_id)
    if run is not None:
        run.checkpoint("calibration", {"id": record.calibration_id, "run": record.run_id,
                                       "created_at": record.created_at})
    return record


def _plain(value) -> Any:
    array = np.asarray(value, dtype=float)
    return array.tolist() if array.ndim else float(array)


def summary_of(stored) -> dict[str, Any]:
    """A stored record (`xbarlab.store.CalibrationRecord`) as a JSON-ready summary: who, when,
    and each resistance's median (over lines) with its 95 % interval."""
    intervals = stored.record.get("intervals", {})
    return {
        "calibration_id": stored.calibration_id,
        "chip": stored.chip_id,
        "run": stored.run_id,
        "created_at": stored.created_at,
        "retired_at": stored.retired_at,
        "shape": list(stored.conductance.shape),
        **{name: {key: intervals[name][key] for key in ("value", "ci95", "unit")}
           for name in RESISTANCES if name in intervals},
        "measurement": stored.record.get("measurement", {}),
        "fit": stored.record.get("fit", {}),
    }


def export_calibration(stored, path) -> None:
    """Write a stored record as one JSON file: its summary, the whole record (per-line values,
    standard errors and intervals) and the chip's conductance map (S, rows of the map)."""
    import json
    from pathlib import Path

    document = {**summary_of(stored), "record": stored.record,
                "conductance": stored.conductance.tolist()}
    Path(path).write_text(json.dumps(document, indent=1, allow_nan=False))
