"""Where a stored run was measured: its bench and chip, read back from the bench file the run
keeps verbatim (``RunInfo.bench_text``), for ``xbarlab runs``, ``show``, ``report`` and the view.
"""

from __future__ import annotations

from typing import Any


def bench_of(text: str) -> Any:
    """The `benchfile.Bench` a run's stored bench text describes; None when there is none or it
    no longer parses (a run stored by an older xbarlab, or by a script without a bench)."""
    from xbarlab.benchfile import BenchFileError, parse_bench

    if not text:
        return None
    try:
        return parse_bench(text)
    except BenchFileError:
        return None


def bench_and_chip(text: str) -> tuple[str, str]:
    """Short labels of a run's bench (its name) and chip (``32x32 crossbar, binary``); ``-``
    each when the run stored no bench file."""
    bench = bench_of(text)
    if bench is None:
        return "-", "-"
    chip = bench.chip
    return bench.name, f"{chip.rows}x{chip.cols} {chip.device}, {chip.preset}"
