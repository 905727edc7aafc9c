"""The ``mvm-error`` protocol: how far a board's matrix-vector products are from the ideal ones,
uncorrected, corrected with the chip's calibrated model, and with a per-column linear fit.

Source: reference/techniques.md §4.3-4.4 (C3: Hu 2018, Zhang & Hu 2020). On a board bench
(every row driven and every column sensed at once, `bench.mvm`):

1. The cells: every row read ``reads`` times (one row at ``v_in``, every other line at 0 V,
   every column sensed); with a calibration of the chip the map is corrected with its model
   (`ChipModel.correct_map`, every row again with the others' estimates until none moves),
   without one it is the raw I / V. This map G is the reference: ideal products are v @ G.
2. ``fit_inputs`` random inputs (every row uniform in [0, ``v_in``], seeded): the per-column
   linear correction (gain and offset, least squares) is fitted on them.
3. ``inputs`` further random inputs, held out: the error of each column relative to full
   scale (``v_in`` times the largest column sum of G), uncorrected (what the board sensed),
   corrected with the model (`ChipModel.correct_mvm`: the bench's own correction) and with
   the linear fit. Reported: the largest (``mvm_error_*``) and the mean (``mvm_mae_*``) over
   the held-out inputs and columns.

A chip without a calibration record (or ``correct`` false) has no model correction: its
``mvm_error_corrected`` is null. Each phase is checkpointed, so a resumed run measures only
what is missing.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from xbarlab.protocols.parameters import Compliance, Correct, Seed, VRead

from xbarlab.calibration import LinearColumnCorrection
from xbarlab.engine import json_ready
from xbarlab.params import Param
from xbarlab.plan import Phase, Plan
from xbarlab.registry import refuse, register_protocol
from xbarlab.safety import signals_held


def _needs_board(values, spec) -> None:
    """Cross-check: the bench has an array board (only a board runs a whole product)."""
    if spec is not None and not any(inst.kind == "board" for inst in spec.instruments.values()):
        refuse(f"bench {spec.name!r} has no array board; allowed: a board bench (mvm-error "
               "drives every row and senses every column at once)")


def mvm_error_plan(values, spec) -> Plan:
    """The reference map (each row measured `reads` times), then one product a random
    input."""
    rows, cells = spec.chip.rows, spec.chip.rows * spec.chip.cols
    return Plan.of([Phase("reference map", cells, 0, rows * values["reads"]),
                    Phase("products", cells, 0, values["fit_inputs"] + values["inputs"])])


@register_protocol("mvm-error", checks=[_needs_board], plan=mvm_error_plan,
                   default_bench="analog")
def mvm_error(
    bench, run, progress, *,
    v_in: VRead = 0.2,
    inputs: Annotated[int, Param("held-out random inputs the errors are taken over",
                                 minimum=1, maximum=100000)] = 100,
    fit_inputs: Annotated[int, Param("random inputs the per-column linear correction is "
                                     "fitted on", minimum=2, maximum=100000)] = 10,
    reads: Annotated[int, Param("readings of each row of the reference map", minimum=1,
                                maximum=10000)] = 4,
    seed: Seed = 0,
    current_limit: Compliance = 1e-2,
    correct: Correct = True,
) -> dict:
    """Matrix-vector product error against the measured map, uncorrected, corrected with the
    chip's calibration and with a per-column linear fit (see the module docstring)."""
    bench.correct = correct
    m, n = bench.rows, bench.cols
    progress.plan(2)  # the reference map, the products
    G = _reference_map(bench, run, progress, v_in, reads, current_limit)
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.0, v_in, (fit_inputs + inputs, m))
    raw, corrected = _products(bench, run, progress, v, current_limit)
    metrics: dict = {"size": [m, n], "inputs": inputs, "fit_inputs": fit_inputs,
                     "calibration_id": bench.chip_model.calibration_id if bench.corrects
                     else None}
    if not np.all(np.isfinite(raw)) or not np.all(np.isfinite(G)):  # a dry run measures NaN
        return metrics
    ideal = v @ G
    scale = v_in * G.sum(axis=0).max()
    held = slice(fit_inputs, None)
    linear = LinearColumnCorrection.fit(raw[:fit_inputs], ideal[:fit_inputs]).apply(raw[held])
    errors = {"uncorrected": raw[held], "linear": linear,
              "corrected": None if corrected is None else corrected[held]}
    metrics["full_scale_a"] = scale
    for name, values in errors.items():
        if values is None:
            metrics[f"mvm_error_{name}"] = metrics[f"mvm_mae_{name}"] = None
            continue
        error = np.abs(values - ideal[held]) / scale
        metrics[f"mvm_error_{name}"] = float(error.max())
        metrics[f"mvm_mae_{name}"] = float(error.mean())
    return metrics


def _reference_map(bench, run, progress, v_in, reads, current_limit) -> np.ndarray:
    """The cells: each row read `reads` times (raw currents averaged), corrected with the
    chip model as a whole map when the bench corrects, else I / V."""
    if run.checkpoints().get("map"):
        return run.latest_map("conductance")
    m, n = bench.rows, bench.cols
    raw = np.zeros((m, n))
    progress.start(m, f"reference map ({reads} reading(s) a row at {v_in:g} V)")
    for row in range(m):
        readings = [bench.read_row(row, v_in, current_limit=current_limit) for _ in range(reads)]
        raw[row] = np.mean([[r.raw_current if r.corrected else r.current for r in reading]
                            for reading in readings], axis=0)
        progress.advance()
    G = (bench.chip_model.correct_map(raw, v_in, None) if bench.corrects else raw / v_in)
    with signals_held():
        run.record_map("raw_conductance", raw / v_in, unit="S")
        run.record_map("conductance", G, unit="S")
        run.checkpoint("map", True)
    return G


def _products(bench, run, progress, v, current_limit):
    """Raw and model-corrected column currents of every input (None for the corrected when
    the bench does not correct), one checkpoint per input."""
    done = run.checkpoints()
    raw, corrected = [], []
    progress.start(len(v), f"{len(v)} matrix-vector products")
    for k, vector in enumerate(v):
        key = f"product{k}"
        if key not in done:
            result = bench.mvm(vector, current_limit)
            sensed = result.raw_currents if result.raw_currents is not None else result.currents
            done[key] = json_ready({"raw": sensed,
                                    "corrected": result.currents if bench.corrects else None})
            run.checkpoint(key, done[key])
        raw.append([np.nan if x is None else x for x in done[key]["raw"]])
        corrected.append(done[key]["corrected"])
        progress.advance()
    if any(c is None for c in corrected):
        return np.array(raw), None
    return np.array(raw), np.array([[np.nan if x is None else x for x in c] for c in corrected])
