"""``xbarlab calibration`` and the calibration lines of ``xbarlab show``: records listed, shown,
exported and retired from the run store, one-line errors for what is not there."""

from __future__ import annotations

import json

from xbarlab.benches import board_of_size
from xbarlab.cli import main

HIDDEN = dict(seed=4, r_path_row=100.0, r_path_col=100.0, r_wire_row=2.0, r_wire_col=2.0)


def test_calibration_records_through_the_command(tmp_path, capsys):
    bench = tmp_path / "chip.toml"
    bench.write_text(board_of_size(6, 6, name="chip", **HIDDEN))
    store = str(tmp_path / "store")
    assert main(["run", "calibrate-parasitics", "--bench", str(bench), "--store", store,
                 "-q", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.splitlines()[-1])["metrics"]
    assert metrics["fitted"] and metrics["calibration_id"] == 1
    assert main(["calibration", "list", "--store", store]) == 0
    listed = capsys.readouterr().out
    assert "#1 chip 'chip' by run 1" in listed and "(in use)" in listed and "r_source" in listed
    assert main(["calibration", "show", "1", "--store", store, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["chip"] == "chip" and shown["run"] == 1
    assert shown["r_sense"]["value"] == metrics["r_sense"]["value"]
    out = tmp_path / "c.json"
    assert main(["calibration", "export", "1", "--store", store, "--out", str(out)]) == 0
    exported = json.loads(out.read_text())
    assert len(exported["conductance"]) == 6 and "per_line" in exported["record"]["intervals"][
        "r_source"]
    assert main(["calibration", "export", "1", "--store", store, "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["show", "1", "--store", store]) == 0
    assert "calibration record #1 chip 'chip'" in capsys.readouterr().out
    assert main(["run", "read-map", "--bench", str(bench), "--store", store, "-q"]) == 0
    capsys.readouterr()
    assert main(["show", "2", "--store", store]) == 0
    assert "corrected with calibration record #1 (measured by run 1" in capsys.readouterr().out
    assert main(["calibration", "retire", "1", "--store", store]) == 0
    assert "now uses no calibration" in capsys.readouterr().out
    assert main(["calibration", "list", "--store", store]) == 0
    assert "no calibration records" in capsys.readouterr().out
    assert main(["calibration", "show", "5", "--store", store]) == 2
    assert "calibration_id = 5 is not in the store" in capsys.readouterr().err
