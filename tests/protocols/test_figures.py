"""Each protocol's figures, drawn from a stored run: every axis and colour bar labelled with its
unit, no empty panel, the protocol's own kind of plot (log conductance colour bar, IV loops on a
log current axis, retention on a log time axis with the legend beside the data), and
``xbarlab plot`` writing them next to the run."""

from __future__ import annotations

import numpy as np
import pytest
from figurechecks import check_labels
from matplotlib.backends.backend_agg import FigureCanvasAgg

from xbarlab.cli import main
from xbarlab.figures import run_figures
from xbarlab.store import RunStore

RUNS = {
    "read-map": {"cells": "0-2,0-3", "reads": 3},
    "iv-sweep": {"cells": "0,0-1", "step": 0.25},
    "forming": {"cells": "0,0-1"},
    "endurance": {"cells": "0,0-1", "cycles": 3},
    "retention": {"cells": "0,0-1", "t_first": 0.01, "t_last": 1.0, "points": 3},
    "write-verify": {"rows": 1, "cols": 2, "relax_rounds": 1, "reread_reads": 8,
                     "width": 1e-4},
    "program-efficient": {"rows": 1, "cols": 2, "relax_wait": 0.0},
}


@pytest.mark.parametrize("protocol", list(RUNS))
def test_each_protocol_figure_has_units_and_no_empty_panel(protocol, bench_file, run_named,
                                                           tmp_path):
    preset = "analog" if protocol == "write-verify" else "binary"
    path = bench_file(rows=3, cols=4, preset=preset, defects=False,
                      pristine=protocol == "forming")
    outcome = run_named(protocol, path, tmp_path / "store", **RUNS[protocol])
    with RunStore(tmp_path / "store") as store:
        run = store.open_run(outcome.run_id)
        figures = run_figures(run)
        assert figures, protocol
        for caption, figure in figures:
            assert caption and check_labels(figure) == [], (caption, check_labels(figure))
        first = figures[0][1].axes[0]
        if protocol == "read-map":
            bar = figures[0][1].axes[1]
            assert bar.get_ylabel() == "conductance (S)" and bar.get_yscale() == "log"
        if protocol == "iv-sweep":
            assert first.get_yscale() == "log" and first.get_xlabel() == "voltage (V)"
            assert len(first.lines) == 2 and first.get_ylabel() == "|current| (A)"
            volts = first.lines[0].get_xdata()
            assert volts.max() == pytest.approx(1.5) and volts.min() == pytest.approx(-1.5)
        if protocol in ("retention", "endurance"):
            renderer = FigureCanvasAgg(figures[0][1]).get_renderer()
            box = first.get_legend().get_window_extent(renderer)
            frame = first.get_window_extent(renderer)
            assert box.x0 >= frame.x1  # beside the axes, not over the data
        if protocol == "retention":
            assert first.get_xscale() == "log"
            assert first.get_xlabel() == "time since programming (s)"
            times = first.lines[0].get_xdata()
            np.testing.assert_allclose(times, np.geomspace(0.01, 1.0, 3))
        if protocol == "endurance":
            assert first.get_yscale() == "log" and len(first.lines) == 4  # SET, RESET x 2
            assert all(len(line.get_xdata()) == 3 for line in first.lines)
    expected = tmp_path / "store" / f"run-{outcome.run_id}-{protocol}.png"
    assert expected.read_bytes()[:4] == b"\x89PNG"  # saved by the protocol beside the run
    expected.unlink()
    assert main(["plot", str(outcome.run_id), "--store", str(tmp_path / "store")]) == 0
    assert expected.read_bytes()[:4] == b"\x89PNG"  # and by xbarlab plot, same place
