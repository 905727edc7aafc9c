"""Each protocol's figures, declared once: ``register_protocol(name, figures=fn)`` with
``fn(run)`` drawing the run's (caption, Figure) pairs from what the run stored. The protocol
saves them next to the run store when it ends (`save_figures`), ``xbarlab plot RUN`` draws them
again from the store, and ``xbarlab report RUN`` embeds them: one drawing, three uses.

A run's figures are ``run-<id>-<protocol>.png`` (then ``-2``, ``-3``...) in the run store's data
directory, beside ``runs.sqlite3``; a dry run (a store in memory) draws nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xbarlab.figures import save_run_figures


def save_figures(run, name: str, figures: Callable) -> Path | None:
    """Draw `figures(run)` and save them next to the run store; the first PNG's path (None for
    a dry run, or a run with nothing to draw)."""
    if run.data_dir is None:
        return None
    paths = save_run_figures(run, figures(run), name)
    return paths[0] if paths else None


def stored_parameters(run) -> dict:
    """The parameters a run of a registered protocol ran with: its stored values over the
    declared defaults (a run stored by a script may have stored only those it was given)."""
    from xbarlab.registry import available_protocols

    info = run.info
    protocol = available_protocols().get(info.protocol)
    declared = {} if protocol is None else {name: entry.default
                                            for name, entry in protocol.parameters.items()}
    return {**declared, **info.params}
