"""SPICE netlists of the crossbar network and an ngspice runner: an independent reference.

The netlist describes the same network as `xbarlab.physics.solver` (see its docstring) with
plain resistors and DC voltage sources, so ngspice solves it with its own nodal analysis:

- word node (i, j) is ``w<i>_<j>`` (``w<i>`` when row wires are ideal: one node per line);
  bit node (i, j) is ``b<i>_<j>`` (``b<j>`` when column wires are ideal);
- cell (i, j) with G > 0 is ``RC<i>_<j>`` of 1/G ohm; off cells are left out;
- wire segments ``RWR<i>_<j>`` (w<i>_<j> to w<i>_<j+1>) and ``RWC<i>_<j>`` (b<i>_<j> to b<i+1>_<j>);
- a driven row is ``VROW<i>`` (+ ``RSRC<i>`` when r_source > 0), a driven column terminal
  ``VCOL<j>`` (+ ``RSNS<j>`` when r_sense > 0); floating ends have neither.

Values are written with Python's shortest round-trip repr, and ngspice prints with 16
significant digits (``numdgt=15``), so a comparison is limited by ngspice's arithmetic only.
Every node group must reach a driven end (ngspice cannot solve a floating subcircuit).
ngspice agrees with the exact solution to ~1e-12 on well-scaled arrays. In networks with
extreme conductance ratios (sub-ohm sources, 10 MΩ cells, most lines floating) it drifts
(2.8e-4 seen where SuperLU and xbarlab agreed with a long-double refinement to 1e-9), so it is
a reference for well-scaled cases only.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np

from xbarlab.physics.solver import CrossbarSolution

_VALUE_LINE = re.compile(r"^(\S+) = (\S+)$", re.MULTILINE)


def _number(value) -> str:
    """Shortest text that reads back as exactly this float."""
    return repr(float(value))


def _word_node(i: int, j: int, lumped: bool) -> str:
    return f"w{i}" if lumped else f"w{i}_{j}"


def _bit_node(i: int, j: int, lumped: bool) -> str:
    return f"b{j}" if lumped else f"b{i}_{j}"


def crossbar_netlist(G, v_row, v_col, *, r_source=0.0, r_sense=0.0, r_wire_row=0.0,
                     r_wire_col=0.0, title="xbarlab crossbar") -> str:
    """ngspice netlist (``-b`` batch mode) of one input vector; NaN voltages are floating."""
    G = np.asarray(G, dtype=np.float64)
    m, n = G.shape
    v_row, v_col = np.asarray(v_row, dtype=np.float64), np.asarray(v_col, dtype=np.float64)
    r_source = np.broadcast_to(np.asarray(r_source, dtype=np.float64), (m,))
    r_sense = np.broadcast_to(np.asarray(r_sense, dtype=np.float64), (n,))
    lump_row, lump_col = r_wire_row == 0, r_wire_col == 0
    lines = [f"* {title}", f"* {m} x {n} crossbar, written by xbarlab.physics.spice"]
    for i in range(m):
        if np.isnan(v_row[i]):
            continue
        end = _word_node(i, 0, lump_row)
        if r_source[i] > 0:
            lines.append(f"VROW{i} src{i} 0 DC {_number(v_row[i])}")
            lines.append(f"RSRC{i} src{i} {end} {_number(r_source[i])}")
        else:
            lines.append(f"VROW{i} {end} 0 DC {_number(v_row[i])}")
    for j in range(n):
        if np.isnan(v_col[j]):
            continue
        end = _bit_node(m - 1, j, lump_col)
        if r_sense[j] > 0:
            lines.append(f"RSNS{j} {end} term{j} {_number(r_sense[j])}")
            lines.append(f"VCOL{j} term{j} 0 DC {_number(v_col[j])}")
        else:
            lines.append(f"VCOL{j} {end} 0 DC {_number(v_col[j])}")
    for i in range(m):
        for j in range(n):
            if G[i, j] > 0:
                lines.append(f"RC{i}_{j} {_word_node(i, j, lump_row)} "
                             f"{_bit_node(i, j, lump_col)} {_number(1.0 / G[i, j])}")
    if not lump_row:
        for i in range(m):
            for j in range(n - 1):
                lines.append(f"RWR{i}_{j} w{i}_{j} w{i}_{j + 1} {_number(r_wire_row)}")
    if not lump_col:
        for i in range(m - 1):
            for j in range(n):
                lines.append(f"RWC{i}_{j} b{i}_{j} b{i + 1}_{j} {_number(r_wire_col)}")
    lines += [".control", "set numdgt=15", "op", "print all", ".endc", ".end", ""]
    return "\n".join(lines)


def ngspice_available() -> bool:
    return shutil.which("ngspice") is not None


def run_ngspice(netlist: str, timeout: float = 120.0) -> str:
    """Run ``ngspice -b`` on the netlist (given on stdin) and return what it printed.

    ngspice 39 exits with status 1 in batch mode even after a good ``op`` (it notes that no
    ``.print`` lines exist), so success is judged from its output.
    """
    completed = subprocess.run(
        ["ngspice", "-b"], input=netlist, capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    failed = "Error" in completed.stdout or "Error" in completed.stderr
    if failed or "No. of Data Rows" not in completed.stdout:
        raise RuntimeError(f"ngspice failed (exit {completed.returncode}):\n"
                           f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}")
    return completed.stdout


def solution_from_ngspice(output: str, shape, v_row, v_col, *, r_wire_row=0.0,
                          r_wire_col=0.0) -> CrossbarSolution:
    """Terminal currents and node voltages from ngspice's ``print all`` output.

    The voltages and wire settings must be those the netlist was written with (they decide
    which sources and nodes exist).
    """
    m, n = shape
    values = {name.lower(): float(value) for name, value in _VALUE_LINE.findall(output)}
    lump_row, lump_col = r_wire_row == 0, r_wire_col == 0
    v_row, v_col = np.asarray(v_row, dtype=np.float64), np.asarray(v_col, dtype=np.float64)
    # A source's branch current flows into its + terminal: the row source delivers -i.
    i_row = np.array([0.0 if np.isnan(v_row[i]) else -values[f"vrow{i}#branch"]
                      for i in range(m)])
    i_col = np.array([0.0 if np.isnan(v_col[j]) else values[f"vcol{j}#branch"]
                      for j in range(n)])
    v_word = np.array([[values[_word_node(i, j, lump_row)] for j in range(n)] for i in range(m)])
    v_bit = np.array([[values[_bit_node(i, j, lump_col)] for j in range(n)] for i in range(m)])
    return CrossbarSolution(i_row=i_row, i_col=i_col, v_cell=v_word - v_bit, v_word=v_word,
                            v_bit=v_bit, iterations=0)
