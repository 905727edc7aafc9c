"""read-map with the sensing SMU on a fixed current range too low for some cells: those cells
come back as overflow ("range too low"), never as a conductance; the others are read right."""

from __future__ import annotations

import numpy as np
import pyvisa

from xbarlab.bench import open_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore

V_READ = 0.2
RANGE = 1e-6
"""Fixed current range of every SMU channel (A); the 2600B reads up to 1.01 x the range."""


def test_a_cell_beyond_the_fixed_range_is_reported_as_overflow_not_as_a_conductance(
        bench_file, tmp_path):
    path = bench_file(read_noise=False)
    with RunStore(tmp_path / "store") as store, open_bench(str(path)) as bench:
        truth = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world.conductance().copy()
        for channel in bench.channels.values():
            channel.set_current_range(RANGE)
        run = store.start_run("read-map", {}, bench.spec.text, shape=(bench.rows, bench.cols))
        with run:
            metrics = get_protocol("read-map")(bench, run, Progress(show=False),
                                               v_read=V_READ, scheme="ground")
        conductance = run.latest_map("conductance")
        stored = {(p.row, p.col): p.current for p in run.points(operation="read")}
    top = 1.01 * RANGE / V_READ  # the largest conductance the range reads (wires aside)
    over, under = truth > 1.1 * top, truth < 0.9 * top
    assert over.any() and under.any()  # the chip has cells on both sides of the range
    assert np.isnan(conductance[over]).all()
    assert all(np.isnan(stored[cell]) for cell in zip(*np.nonzero(over), strict=True))
    error = np.abs(conductance[under] - truth[under]) / truth[under]
    assert error.max() < 0.05
    ambiguous = int((~over & ~under).sum())
    assert over.sum() <= metrics["cells_overflow"] <= over.sum() + ambiguous
    assert metrics["cells_overflow"] == int(np.isnan(conductance).sum())
