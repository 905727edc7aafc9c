"""``xbarlab report``: one self-contained HTML file, every figure loading in a real browser."""

from __future__ import annotations

import re

import pytest
from browser import CHROMIUM, MISSING, dump_dom

from xbarlab.cli import main
from xbarlab.engine import run_protocol


def rendered_body(path, profile) -> str:
    """The <body> tag of `path` after headless Chromium loaded it (its scripts run)."""
    return re.search(r"<body[^>]*>", dump_dom(path.as_uri(), profile)).group(0)


@pytest.fixture
def report(tmp_path, capsys):
    result = run_protocol("read-map", "classic", store=tmp_path, progress=False,
                          cells="0-3,0-5")
    capsys.readouterr()
    assert main(["report", str(result.run_id), "--store", str(tmp_path)]) == 0
    return tmp_path / capsys.readouterr().out.strip().split("/")[-1]


def test_the_report_is_self_contained_with_parameters_units_and_snapshots(report):
    text = report.read_text()
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", text)  # nothing from a network
    assert "<td>v_read</td><td class='number'>0.2</td><td>V</td>" in text
    assert "instruments at the start" in text.lower() and "MODEL 2400" in text
    assert text.count("data:image/png;base64,") >= 3  # maps and points over time


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_every_figure_loads_in_headless_chromium(report, tmp_path):
    body = rendered_body(report, tmp_path / "profile")
    figures = int(re.search(r'data-figures="(\d+)"', body).group(1))
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', body).group(1))
    assert figures >= 3 and loaded == figures
