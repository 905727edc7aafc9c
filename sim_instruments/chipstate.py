"""A virtual bench's state file: the World written when the bench closes, and read back when
it opens again, so that the virtual chip keeps its cells from one session to the next as a real
chip does (the format is in the `xbarlab.benchfile` docstring).

The file holds what the instruments were left doing (for a test to look at) and the chip: every
cell's state, forming progress and pending relaxation, its random streams and the virtual clock.
On reading, the chip continues exactly where it was, then the seconds that passed since the file
was written pass on the virtual clock too (the cells relax as they would on the shelf); the
instruments start at their power-on state, as a bench that is opened again does. The chip's
population (device spread, defects) is drawn from the seed, so only what changes is kept.
"""

from __future__ import annotations

import base64
import json
import os
import time
import zlib
from pathlib import Path

import numpy as np

from xbarlab.benchfile import BenchFileError, chip_identity
from xbarlab.physics.array import ArraySnapshot

from .world import World

_CELL_ARRAYS = {"w": "<f8", "formed": "?", "form_progress": "<f8", "relax_pending": "<f8"}


def save_state(world: World, path: str | os.PathLike) -> None:
    """Write the World's state and its chip to `path` as JSON (atomically: a reader never sees
    half a file; the folder is created)."""
    with world.lock:
        state = world.state()
        snapshot = world.array.snapshot()
    chip = {"identity": chip_identity(world.bench), "elapsed_time": snapshot.elapsed_time,
            "read_rng": snapshot.read_rng_state, "program_rng": snapshot.program_rng_state}
    chip |= {name: _encode(getattr(snapshot, name), dtype) for name, dtype in _CELL_ARRAYS.items()}
    state |= {"saved_at": time.time(), "chip": chip}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(state))
    os.replace(partial, target)


def resume_state(world: World, path: str | os.PathLike) -> bool:
    """Continue the chip kept in `path` (when it exists and holds one): True if it did.

    Raises `BenchFileError` when the kept chip is not the bench's chip (another size, preset or
    seed): its cells would be applied to the wrong devices."""
    try:
        kept = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return False
    chip = kept.get("chip")
    if chip is None:  # what an older bench left: instrument states only
        return False
    identity = chip_identity(world.bench)
    if chip["identity"] != identity:
        changed = ", ".join(f"{key} {chip['identity'].get(key)!r} (now {value!r})"
                            for key, value in identity.items()
                            if chip["identity"].get(key) != value)
        raise BenchFileError(f"state file {path}: it keeps another chip than bench "
                             f"{world.bench.name!r} has ({changed}); allowed: the state of this "
                             "bench's chip (delete the file, or xbarlab bench reset, to start "
                             "from a fresh chip)")
    shape = (identity["rows"], identity["cols"])
    snapshot = ArraySnapshot(read_rng_state=chip["read_rng"],
                             program_rng_state=chip["program_rng"],
                             elapsed_time=chip["elapsed_time"],
                             **{name: _decode(chip[name], dtype, shape)
                                for name, dtype in _CELL_ARRAYS.items()})
    world.resume(snapshot, kept["clock"])
    world.advance(max(0.0, time.time() - kept["saved_at"]))
    return True


def _encode(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(values, dtype).tobytes())).decode()


def _decode(text: str, dtype: str, shape: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype).reshape(shape)
