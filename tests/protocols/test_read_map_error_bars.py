"""read-map's standard errors against the World's truth (issue 17 item 8): the error of every
healthy cell divided by its reported standard error scatters with a spread of 1 +- 0.1, with
the optional 1/f read noise on, whose slow part readings taken back to back share (so their
own scatter understates the error of their mean). Under V/3 the correction subtracts the
column's readings, whose slow noise (the same half-selected neighbours, seconds apart) partly
cancels the cell's own: its error bars take the design effect measured on the corrected values
of two passes (0.93-1.04 over seeds 11-13 on this bench)."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.store import RunStore


@pytest.mark.parametrize("scheme", ["ground", "v/3"])
def test_error_over_standard_error_has_unit_spread(bench_file, run_named, tmp_path, scheme):
    path = bench_file(rows=24, cols=24, harder_read_noise=True, seed=11)
    outcome = run_named("read-map", path, tmp_path / "store", scheme=scheme, reads=8)
    healthy = outcome.world.array.defect_map() == 0
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(outcome.run_id)
        g = run.latest_map("conductance")
        stderr = run.latest_map("conductance_stderr")
        points = run.points(operation="read")
    z = ((g - outcome.before) / stderr)[healthy]
    assert healthy.sum() > 400 and np.isfinite(z).all()
    assert 0.9 <= np.std(z) <= 1.1, np.std(z)  # 400+ cells: the spread known to about 4 %
    if scheme == "ground":  # each cell's own scatter over its count, the error bar before
        currents = np.full((24, 24, 8), np.nan)
        for k, p in enumerate(sorted(points, key=lambda p: (p.row, p.col))):
            currents[p.row, p.col, k % 8] = p.current
        naive = np.std(currents, axis=2, ddof=1) / np.sqrt(8) / 0.2
        assert np.std(((g - outcome.before) / naive)[healthy]) > 1.3
