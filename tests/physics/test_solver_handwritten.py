"""The solver and xbarlab's own netlist writer against a netlist written by hand.

tests/physics/golden/handwritten_3x3.cir was written from the model's description, not by
`xbarlab.physics.spice`: a 3 x 3 array with every kind of parasitic (per-row source and
per-column sense resistances, word- and bit-line wires) and a floating row and column.
handwritten_3x3.out is what ngspice 39 printed for it (15 digits). The values below are the
netlist's, entered again by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from xbarlab.physics.solver import solve_crossbar
from xbarlab.physics.spice import (
    crossbar_netlist,
    ngspice_available,
    run_ngspice,
    solution_from_ngspice,
)

GOLDEN = Path(__file__).parent / "golden"
G = np.array([[10, 20, 50], [100, 1, 2], [5, 40, 30]]) * 1e-6
V_ROW = [0.3, np.nan, -0.2]
V_COL = [0.0, 0.05, np.nan]
PARASITICS = dict(r_source=[5.0, 0.0, 20.0], r_sense=[3.0, 6.0, 0.0], r_wire_row=2.0,
                  r_wire_col=1.5)


def printed(output: str) -> dict[str, float]:
    """``name = value`` lines of ngspice's ``print`` output."""
    return {name: float(value) for name, value in
            re.findall(r"^([iv]\([\w.]+\)) = (\S+)$", output, re.M)}


def test_the_solver_gives_what_ngspice_printed_for_the_hand_written_netlist():
    spice = printed((GOLDEN / "handwritten_3x3.out").read_text())
    solution = solve_crossbar(G, V_ROW, V_COL, **PARASITICS)
    scale = max(abs(v) for k, v in spice.items() if k.startswith("i("))
    # a source's current runs from its + node through it: into the array is negative
    expected_rows = [-spice["i(vs0)"], 0.0, -spice["i(vs2)"]]
    expected_cols = [spice["i(vt0)"], spice["i(vt1)"], 0.0]
    np.testing.assert_allclose(solution.i_row, expected_rows, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(solution.i_col, expected_cols, rtol=0, atol=1e-9 * scale)
    assert solution.v_word[1, 1] == pytest.approx(spice["v(a11)"], abs=1e-12)  # floating row
    assert solution.v_bit[1, 2] == pytest.approx(spice["v(b12)"], abs=1e-12)  # floating column


@pytest.mark.skipif(not ngspice_available(), reason="ngspice is not installed (.ci/run "
                                                    "installs it)")
def test_the_hand_written_netlist_and_xbarlabs_own_give_the_same_currents():
    live = printed(run_ngspice((GOLDEN / "handwritten_3x3.cir").read_text()))
    assert live == pytest.approx(printed((GOLDEN / "handwritten_3x3.out").read_text()),
                                 rel=1e-12)
    written = solution_from_ngspice(run_ngspice(crossbar_netlist(G, V_ROW, V_COL, **PARASITICS)),
                                    G.shape, V_ROW, V_COL, r_wire_row=2.0, r_wire_col=1.5)
    spice = printed((GOLDEN / "handwritten_3x3.out").read_text())
    np.testing.assert_allclose(written.i_row[[0, 2]], [-spice["i(vs0)"], -spice["i(vs2)"]],
                               rtol=1e-9)
    np.testing.assert_allclose(written.i_col[:2], [spice["i(vt0)"], spice["i(vt1)"]],
                               rtol=1e-9)
