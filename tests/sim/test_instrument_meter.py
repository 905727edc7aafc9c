"""Virtual SMUs' current readings through their specification sheets (issue 17 item 8):
``[sim] instrument_meter`` puts every reading through the range's error (the sheet's
+-(% reading + offset) read as 3 sigma) and rounds it to the range's resolution, both read here
from ``measurement_specs.toml`` and checked against the World's noise-free current."""

from __future__ import annotations

import dataclasses
import importlib.resources

import numpy as np
import pytest
from simhelpers import tomllib
from virtualbenches import world_of, write_matrix_bench

from xbarlab.bench import open_bench

SPECS = tomllib.loads(importlib.resources.files("xbarlab.sim_instruments").joinpath(
    "measurement_specs.toml").read_text())


def test_every_spec_table_cites_its_source_and_is_ordered():
    for family, table in SPECS.items():
        assert "http" in table["source"] or family == "array_board", family
        rows = np.array(table["current"], dtype=float).reshape(-1, 4)
        assert (np.diff(rows[:, 0]) > 0).all(), family
        assert (rows[:, 1] < rows[:, 0]).all(), family


@pytest.mark.parametrize("fixed_range", [1e-6, 1e-4])
def test_2636b_readings_scatter_as_its_sheet_says_on_each_range(tmp_path, fixed_range):
    path = write_matrix_bench(tmp_path, rows=4, cols=4, read_noise=True)
    path.write_text(path.read_text().replace("read_noise = true",
                                             "read_noise = true\ninstrument_meter = true"))
    with open_bench(str(path)) as bench:
        world = world_of(path)
        world.array.params = dataclasses.replace(world.array.params, read_noise=0.0)
        for channel in bench.channels.values():  # the meter's error alone, on a fixed range
            channel.set_current_range(fixed_range)
        readings = np.array([r.current for r in bench.read_repeated(1, 2, 0.2, "ground", 400)])
        truth = world.conductance()[1, 2] * 0.2
    rows = {row[0]: row for row in SPECS["keithley_2600b"]["current"]}
    _, resolution, percent, offset = rows[fixed_range]
    sigma = (percent / 100 * truth + offset) / 3
    steps = readings / resolution
    assert np.allclose(steps, np.round(steps), atol=1e-6)  # on the range's resolution
    # plus the IR drop of a ground read on 4 x 4 (row path and wires: under 0.1 %)
    assert abs(readings.mean() - truth) < 4 * sigma / np.sqrt(400) + resolution + 1e-3 * truth
    if sigma > resolution:
        assert np.std(readings) == pytest.approx(sigma, rel=0.15)
