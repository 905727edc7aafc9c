"""Where each layer of a network sits on one crossbar: tiles, spare lines, JSON.

A layer with n_in inputs and n_out neurons needs a tile of n_in + 1 rows (the inputs and the
bias row, last) and 2 n_out columns (a plus and a minus column per neuron,
`xbarlab.nn.mapping`). A `Tile` lists the physical line of each: ``rows[i]`` carries input i,
``plus_cols[j]`` / ``minus_cols[j]`` carry neuron j's pair. Lines need not be contiguous, so
defect-aware mapping (`xbarlab.nn.defects`) can move single rows or columns onto spare lines.

Two tiles may share rows (their columns differ: driving one tile's rows puts currents on the
other's columns, which are not read) or columns (their rows differ: the other tile's rows sit
at 0 V), but never a cell. `place_layers` packs tiles without sharing lines where it can
(block diagonal: a tile's rows drive no other tile's cells), then sharing rows or columns; a
64-54-10 network (tiles of 65 x 108 and 55 x 20) fits a 128 x 128 array block-diagonally with
rows 120..127 spare.

A `Placement` is frozen, validated on construction, and serialises to and from JSON
(`to_json`, `from_json`) to be stored with a run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np


class PlacementError(ValueError):
    """A network that does not fit an array, or a placement that is not consistent."""


def _indices(name: str, values: Sequence[int], size: int) -> tuple[int, ...]:
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise PlacementError(f"{name}: {value!r} is not a line index (an integer)")
        out.append(int(value))
    bad = [v for v in out if not 0 <= v < size]
    if bad:
        raise PlacementError(f"{name}: line {bad[0]} is outside the array; allowed 0..{size - 1}")
    if len(set(out)) != len(out):
        raise PlacementError(f"{name}: line {_first_repeat(out)} is used twice")
    return tuple(out)


def _first_repeat(values: Sequence[int]) -> int:
    seen: set[int] = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    raise ValueError("no repeat")


@dataclass(frozen=True)
class Tile:
    """The physical lines of one layer: input rows (bias last), plus and minus columns."""

    rows: tuple[int, ...]
    plus_cols: tuple[int, ...]
    minus_cols: tuple[int, ...]

    @property
    def inputs(self) -> int:
        """Rows of the layer's weight matrix (inputs + bias)."""
        return len(self.rows)

    @property
    def neurons(self) -> int:
        return len(self.plus_cols)

    @property
    def cols(self) -> tuple[int, ...]:
        """Every column of the tile (plus columns, then minus columns)."""
        return self.plus_cols + self.minus_cols

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Physical (row, plus column, minus column) of every weight, each (inputs, neurons)."""
        rows = np.asarray(self.rows)[:, None]
        shape = (self.inputs, self.neurons)
        return (np.broadcast_to(rows, shape),
                np.broadcast_to(np.asarray(self.plus_cols)[None, :], shape),
                np.broadcast_to(np.asarray(self.minus_cols)[None, :], shape))

    def to_dict(self) -> dict[str, list[int]]:
        return {"rows": list(self.rows), "plus_cols": list(self.plus_cols),
                "minus_cols": list(self.minus_cols)}


@dataclass(frozen=True)
class Placement:
    """Tiles of a network's layers (in layer order) on an array of `array_rows` x `array_cols`."""

    array_rows: int
    array_cols: int
    tiles: tuple[Tile, ...]

    def __post_init__(self) -> None:
        for name in ("array_rows", "array_cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise PlacementError(f"{name} = {value!r}: allowed an integer >= 1")
        if not self.tiles:
            raise PlacementError("a placement needs at least one tile")
        checked = []
        for k, tile in enumerate(self.tiles):
            rows = _indices(f"tile {k} rows", tile.rows, self.array_rows)
            plus = _indices(f"tile {k} plus_cols", tile.plus_cols, self.array_cols)
            minus = _indices(f"tile {k} minus_cols", tile.minus_cols, self.array_cols)
            if not rows or not plus or len(plus) != len(minus):
                raise PlacementError(f"tile {k}: {len(rows)} rows, {len(plus)} plus and "
                                     f"{len(minus)} minus columns; allowed at least one row and "
                                     "one plus and one minus column per neuron")
            _indices(f"tile {k} columns", plus + minus, self.array_cols)
            checked.append(Tile(rows, plus, minus))
        object.__setattr__(self, "tiles", tuple(checked))
        for (a, ta), (b, tb) in combinations(enumerate(self.tiles), 2):
            shared_rows = set(ta.rows) & set(tb.rows)
            shared_cols = set(ta.cols) & set(tb.cols)
            if shared_rows and shared_cols:
                raise PlacementError(f"tiles {a} and {b} share cell ({min(shared_rows)}, "
                                     f"{min(shared_cols)}); tiles may share rows or columns, "
                                     "not cells")

    @property
    def spare_rows(self) -> tuple[int, ...]:
        """Rows no tile uses."""
        used = {r for t in self.tiles for r in t.rows}
        return tuple(r for r in range(self.array_rows) if r not in used)

    @property
    def spare_cols(self) -> tuple[int, ...]:
        """Columns no tile uses."""
        used = {c for t in self.tiles for c in t.cols}
        return tuple(c for c in range(self.array_cols) if c not in used)

    def check_array(self, rows: int, cols: int) -> None:
        """Raise `PlacementError` unless this placement was made for a `rows` x `cols` array."""
        if (rows, cols) != (self.array_rows, self.array_cols):
            raise PlacementError(f"placement is for a {self.array_rows} x {self.array_cols} "
                                 f"array; this array is {rows} x {cols}")

    def check_network(self, sizes: Sequence[int]) -> None:
        """Raise `PlacementError` unless the tiles fit a network of layer `sizes`."""
        wanted = _tile_shapes(sizes)
        have = [(t.inputs, t.neurons) for t in self.tiles]
        if have != wanted:
            raise PlacementError(f"placement tiles (inputs+bias, neurons) {have} do not fit a "
                                 f"network of sizes {tuple(sizes)}: it needs {wanted}")

    def to_dict(self) -> dict[str, Any]:
        return {"array": [self.array_rows, self.array_cols],
                "tiles": [t.to_dict() for t in self.tiles]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> Placement:
        """A placement from `to_dict` output; raises `PlacementError` naming what is wrong."""
        if not isinstance(data, dict) or set(data) != {"array", "tiles"}:
            raise PlacementError("placement must be an object with keys 'array' and 'tiles'")
        array, tiles = data["array"], data["tiles"]
        if not isinstance(array, list) or len(array) != 2:
            raise PlacementError(f"placement 'array' = {array!r}: allowed [rows, cols]")
        if not isinstance(tiles, list):
            raise PlacementError("placement 'tiles' must be a list")
        keys = {"rows", "plus_cols", "minus_cols"}
        parsed = []
        for k, tile in enumerate(tiles):
            if not isinstance(tile, dict) or set(tile) != keys:
                raise PlacementError(f"tile {k} must be an object with keys {sorted(keys)}")
            if not all(isinstance(tile[key], list) for key in keys):
                raise PlacementError(f"tile {k}: rows, plus_cols and minus_cols must be lists")
            parsed.append(Tile(tuple(tile["rows"]), tuple(tile["plus_cols"]),
                               tuple(tile["minus_cols"])))
        return cls(array[0], array[1], tuple(parsed))

    @classmethod
    def from_json(cls, text: str) -> Placement:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PlacementError(f"placement is not valid JSON: {error}") from None
        return cls.from_dict(data)


def _tile_shapes(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """(rows, neurons) of each layer's tile: inputs + bias row, outputs."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise PlacementError(f"sizes = {tuple(sizes)}: allowed two or more layer sizes >= 1")
    return [(a + 1, b) for a, b in zip(sizes[:-1], sizes[1:], strict=False)]


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    (r0, c0, r1, c1), (s0, d0, s1, d1) = a, b
    return r0 < s1 and s0 < r1 and c0 < d1 and d0 < c1


def place_layers(sizes: Sequence[int], array_rows: int, array_cols: int) -> Placement:
    """Tiles for a network of layer `sizes` on one array (module docstring).

    Each tile is a block (inputs + 1 rows, 2 x neurons columns, plus and minus columns of a
    neuron side by side so that both see nearly the same line resistance). Candidate corners
    are the array's origin and the ends of tiles already placed; among those where the block
    fits on free cells, the one sharing the fewest lines with placed tiles wins, then the one
    nearest the origin. Raises `PlacementError` when a layer fits nowhere.
    """
    blocks: list[tuple[int, int, int, int]] = []  # (row0, col0, row_end, col_end)
    shapes = _tile_shapes(sizes)
    for k, (rows, neurons) in enumerate(shapes):
        cols = 2 * neurons
        if rows > array_rows or cols > array_cols:
            raise PlacementError(
                f"layer {k} needs a tile of {rows} rows (inputs + bias) x {cols} columns (a "
                f"pair per neuron); the array has {array_rows} x {array_cols}")
        best = None
        for r0 in sorted({0, *(b[2] for b in blocks)}):
            for c0 in sorted({0, *(b[3] for b in blocks)}):
                block = (r0, c0, r0 + rows, c0 + cols)
                if block[2] > array_rows or block[3] > array_cols:
                    continue
                if any(_overlaps(block, b) for b in blocks):
                    continue
                shared = sum(max(0, min(b[2], block[2]) - max(b[0], r0))
                             + max(0, min(b[3], block[3]) - max(b[1], c0)) for b in blocks)
                key = (shared, r0 + c0, r0)
                if best is None or key < best[0]:
                    best = (key, block)
        if best is None:
            used = ", ".join(f"{b[2] - b[0]}x{b[3] - b[1]} at ({b[0]}, {b[1]})" for b in blocks)
            raise PlacementError(
                f"layer {k} ({rows} x {cols} cells) does not fit on the {array_rows} x "
                f"{array_cols} array beside the tiles already placed ({used}); network tiles "
                f"(rows x columns): {', '.join(f'{r}x{2 * n}' for r, n in shapes)}")
        blocks.append(best[1])
    tiles = []
    for (r0, c0, r1, c1) in blocks:
        cols = range(c0, c1)
        tiles.append(Tile(tuple(range(r0, r1)), tuple(cols[0::2]), tuple(cols[1::2])))
    return Placement(array_rows, array_cols, tuple(tiles))
