"""Comparison of two crossbar solutions, shared by the circuit-solver tests."""

import numpy as np


def relative_deviation(solution, reference) -> float:
    """Largest deviation of any output from the reference, relative to its scale.

    Currents are measured against the reference's largest terminal current and cell voltages
    against its largest cell voltage (the solver's accuracy contract).
    """
    current_scale = max(np.abs(reference.i_row).max(), np.abs(reference.i_col).max())
    voltage_scale = np.abs(reference.v_cell).max()
    deviations = [0.0]
    if current_scale > 0:
        deviations += [
            np.abs(solution.i_row - reference.i_row).max() / current_scale,
            np.abs(solution.i_col - reference.i_col).max() / current_scale,
        ]
    if voltage_scale > 0:
        deviations.append(np.abs(solution.v_cell - reference.v_cell).max() / voltage_scale)
    return float(max(deviations))
