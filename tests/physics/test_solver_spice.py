"""solve_crossbar (and the SuperLU reference) against ngspice, an independent simulator.

Each case is stored in tests/physics/golden/ as ``<case>.json`` (the exact inputs),
``<case>.cir`` (the netlist xbarlab writes for them) and ``<case>.out`` (what ngspice 39
printed). The comparison with the committed output always runs; where ``ngspice`` is on PATH
the netlist is also simulated live. Regenerate the golden files (after changing a case or the
netlist writer) with:

    python tests/physics/test_solver_spice.py --regenerate
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from solution_checks import relative_deviation

from xbarlab.physics.nodal import solve_crossbar_nodal
from xbarlab.physics.solver import solve_crossbar
from xbarlab.physics.spice import (
    crossbar_netlist,
    ngspice_available,
    run_ngspice,
    solution_from_ngspice,
)

GOLDEN = Path(__file__).parent / "golden"
TOLERANCE = 1e-9
RESISTANCES = ("r_source", "r_sense", "r_wire_row", "r_wire_col")


def make_cases():
    """Seeded cases: N = 8, 16, 32, every kind of line end, floating lines with sneak paths."""
    rng = np.random.default_rng(7)
    cases = {}

    # 8 x 8: ideal sources, resistive sense, two floating rows and a floating column,
    # terminals away from 0 V.
    G = rng.uniform(1e-6, 1e-4, (8, 8))
    v_row = rng.uniform(-0.5, 1.0, 8)
    v_row[[2, 5]] = np.nan
    v_col = rng.uniform(-0.1, 0.1, 8)
    v_col[3] = np.nan
    cases["crossbar_8"] = dict(G=G, v_row=v_row, v_col=v_col, r_source=0.0, r_sense=10.0,
                               r_wire_row=1.0, r_wire_col=2.0)

    # 16 x 16: everything resistive, per-row source resistances, V/2-style biasing with
    # floating lines on both sides, strong IR drop (kappa = 1.5 ohm * 10 mS * 16^2 ~ 4).
    G = rng.uniform(1e-4, 1e-2, (16, 16))
    v_row = np.full(16, 0.25)
    v_row[4] = 0.5
    v_row[rng.random(16) < 0.3] = np.nan
    v_row[4] = 0.5
    v_col = np.full(16, 0.25)
    v_col[9] = 0.0
    v_col[[1, 12]] = np.nan
    cases["crossbar_16"] = dict(G=G, v_row=v_row, v_col=v_col,
                                r_source=rng.uniform(5.0, 20.0, 16), r_sense=5.0,
                                r_wire_row=1.5, r_wire_col=1.5)

    # 32 x 32: ideal bit lines and virtual-ground terminals, some cells off, read of one
    # row with the others floating.
    G = rng.uniform(1e-6, 1e-4, (32, 32))
    G[rng.random((32, 32)) < 0.05] = 0.0
    v_row = np.full(32, np.nan)
    v_row[[0, 7, 19, 31]] = [0.2, 0.1, 0.3, 0.15]
    v_col = np.zeros(32)
    v_col[[5, 6, 30]] = np.nan
    cases["crossbar_32"] = dict(G=G, v_row=v_row, v_col=v_col, r_source=20.0, r_sense=0.0,
                                r_wire_row=2.0, r_wire_col=0.0)
    return cases


def to_json(case) -> str:
    encoded = {}
    for key, value in case.items():
        array = np.asarray(value, dtype=np.float64)
        encoded[key] = np.where(np.isnan(array), None, array).tolist()
    return json.dumps(encoded, indent=1) + "\n"


def from_json(text: str):
    case = {}
    for key, value in json.loads(text).items():
        array = np.array(value, dtype=object)
        array[array == None] = np.nan  # noqa: E711 - JSON null encodes a floating end
        case[key] = array.astype(np.float64)
    return case


def netlist_of(case) -> str:
    return crossbar_netlist(case["G"], case["v_row"], case["v_col"],
                            **{k: case[k] for k in RESISTANCES})


def spice_solution(case, output: str):
    return solution_from_ngspice(output, case["G"].shape, case["v_row"], case["v_col"],
                                 r_wire_row=case["r_wire_row"], r_wire_col=case["r_wire_col"])


def solver_solution(case):
    return solve_crossbar(case["G"], case["v_row"], case["v_col"],
                          **{k: case[k] for k in RESISTANCES})


CASE_NAMES = sorted(make_cases())


@pytest.fixture(params=CASE_NAMES)
def golden_case(request):
    name = request.param
    case = from_json((GOLDEN / f"{name}.json").read_text())
    return name, case


def test_golden_inputs_are_the_seeded_cases(golden_case):
    name, case = golden_case
    expected = make_cases()[name]
    for key, value in expected.items():
        np.testing.assert_array_equal(case[key], np.broadcast_to(value, case[key].shape))


def test_golden_netlist_is_what_the_writer_produces(golden_case):
    name, case = golden_case
    assert netlist_of(case) == (GOLDEN / f"{name}.cir").read_text()


def test_solver_matches_committed_ngspice_output(golden_case):
    name, case = golden_case
    reference = spice_solution(case, (GOLDEN / f"{name}.out").read_text())
    assert np.abs(reference.i_col).max() > 0
    assert relative_deviation(solver_solution(case), reference) < TOLERANCE


def test_sparse_reference_matches_committed_ngspice_output(golden_case):
    name, case = golden_case
    reference = spice_solution(case, (GOLDEN / f"{name}.out").read_text())
    nodal = solve_crossbar_nodal(case["G"], case["v_row"], case["v_col"],
                                 **{k: case[k] for k in RESISTANCES})
    assert relative_deviation(nodal, reference) < TOLERANCE


@pytest.mark.skipif(not ngspice_available(), reason="ngspice not on PATH")
def test_solver_matches_live_ngspice(golden_case):
    name, case = golden_case
    live = spice_solution(case, run_ngspice(netlist_of(case)))
    assert relative_deviation(solver_solution(case), live) < TOLERANCE
    committed = spice_solution(case, (GOLDEN / f"{name}.out").read_text())
    assert relative_deviation(live, committed) < 1e-12


def regenerate():
    GOLDEN.mkdir(exist_ok=True)
    for name, case in make_cases().items():
        case = from_json(to_json(case))
        netlist = netlist_of(case)
        (GOLDEN / f"{name}.json").write_text(to_json(case))
        (GOLDEN / f"{name}.cir").write_text(netlist)
        (GOLDEN / f"{name}.out").write_text(run_ngspice(netlist))
        print(f"wrote {GOLDEN / name}.{{json,cir,out}}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(__doc__)
    regenerate()
