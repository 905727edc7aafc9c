"""The virtual bench's hidden path resistances: one per line, spread lognormally about the
bench file's values by a seeded draw that nothing else of the bench depends on."""

from __future__ import annotations

import numpy as np
from xbarlab.sim_instruments.world import line_paths

from xbarlab.benchfile import Sim


def test_paths_spread_about_the_bench_values_seeded():
    sim = Sim(seed=1, r_path_row=100.0, r_path_col=50.0, r_path_spread=0.2)
    rows, cols = line_paths(sim, 300, 200)
    assert rows.shape == (300,) and cols.shape == (200,)
    for values, nominal in ((rows, 100.0), (cols, 50.0)):
        assert abs(np.median(values) / nominal - 1) < 0.05
        assert 0.17 < np.std(np.log(values)) < 0.23
    again = line_paths(sim, 300, 200)
    assert np.array_equal(again[0], rows) and np.array_equal(again[1], cols)
    other = line_paths(Sim(seed=2, r_path_row=100.0, r_path_col=50.0, r_path_spread=0.2),
                       300, 200)
    assert not np.allclose(other[0], rows)


def test_no_spread_is_the_bench_value_on_every_line():
    rows, cols = line_paths(Sim(seed=3, r_path_row=2.0, r_path_col=7.0), 4, 5)
    assert rows.tolist() == [2.0] * 4 and cols.tolist() == [7.0] * 5
