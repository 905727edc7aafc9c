"""The virtual chips a run store remembers: one state file per virtual bench, beside the store.

A real chip keeps what was done to it; so does a virtual one when its runs go through the CLI
(`xbarlab run`, or `run_protocol(..., remember_chip=True)`): the simulator continues the chip
kept in ``<store>/chips/<bench>-<identity>.json`` and writes it back when the bench closes, its
virtual clock running on between runs (the file's format: `xbarlab.benchfile`). The identity
part of the name is a digest of `xbarlab.benchfile.chip_identity` (size, preset, seed, wires,
defects), so a bench file with another seed is another chip. `xbarlab bench reset` forgets a
bench's chip: the next run starts from the fresh chip its seed draws, which is how a sequence of
runs is reproduced exactly. A run records the chip state it started from (`started_from`) in its
``chip`` checkpoint. Runs in memory, dry runs and campaign tasks always use a fresh chip.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from xbarlab.benchfile import Bench, chip_identity

CHIPS_FOLDER = "chips"
CHECKPOINT = "chip"
"""The run checkpoint naming the chip state a run on a virtual bench started from."""


def chip_state_file(store_dir: str | os.PathLike, bench: Bench) -> Path:
    """Where the store at `store_dir` keeps the virtual chip of `bench`."""
    identity = json.dumps(chip_identity(bench), sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return Path(store_dir) / CHIPS_FOLDER / f"{bench.name}-{digest}.json"


def started_from(path: str | os.PathLike) -> dict[str, Any]:
    """What a run that opens the chip kept in `path` starts from, for its ``chip`` checkpoint:
    ``kept`` False (a fresh chip drawn from the seed), or True with the ``file``, its
    ``sha256``, the ``virtual_time_s`` it was kept at and ``saved_at`` (Unix time, s); the chip
    then continues at that virtual time plus the seconds since."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return {"kept": False, "file": str(path)}
    kept = json.loads(content)
    return {"kept": True, "file": str(path), "sha256": hashlib.sha256(content).hexdigest(),
            "virtual_time_s": kept["clock"], "saved_at": kept["saved_at"]}


def forget_chip(store_dir: str | os.PathLike, bench: Bench) -> dict[str, Any]:
    """Delete the chip the store keeps for `bench` (its next run starts fresh); returns what it
    kept (`started_from` before the deletion)."""
    path = chip_state_file(store_dir, bench)
    kept = started_from(path)
    path.unlink(missing_ok=True)
    return kept
