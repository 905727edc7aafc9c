"""The ``xbarlab demo`` command solves a real crossbar and reports the IR-drop error."""

import re

from xbarlab.cli import main


def test_demo_reports_ir_drop_that_grows_with_wire_resistance(capsys):
    assert main(["demo", "--size", "16", "--r-wire", "0", "--r-source", "0", "--r-sense", "0"]) == 0
    ideal = capsys.readouterr().out
    assert "max 0.00%" in ideal  # no parasitics: the exact solve is v @ G

    assert main(["demo", "--size", "16", "--r-wire", "5"]) == 0
    lossy = capsys.readouterr().out
    max_error = float(re.search(r"max ([0-9.]+)%", lossy).group(1))
    assert max_error > 1.0
