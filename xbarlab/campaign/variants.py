"""Variants of a bench file for a campaign task: the same bench with other ``[sim]`` values.

A campaign sweeps what only a virtual bench has (its seed, its hidden parasitics, its defects)
by writing those values into the bench file's ``[sim]`` table, so each task's bench is a
complete, readable bench file that the run store keeps with the run, and re-running the task
from that text gives the same chip.
"""

from __future__ import annotations

import json
import re
from typing import Any

from xbarlab.benchfile import BenchFileError

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def toml_value(value: Any) -> str:
    """`value` (a bool, number or string) as TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"{value!r}: allowed a bool, a number or a string")


def with_sim_values(text: str, values: dict[str, Any], origin: str = "bench") -> str:
    """Bench-file `text` with each ``[sim]`` setting of `values` set (replaced where the file
    has it, added after the ``[sim]`` header otherwise). A bench without ``[sim]`` (a real
    bench) has nothing to vary: BenchFileError."""
    if not values:
        return text
    lines = text.splitlines()
    headers = [(k, match.group(1)) for k, line in enumerate(lines)
               if (match := _HEADER.match(line))]
    start = next((k for k, name in headers if name == "sim" and "[[" not in lines[k]), None)
    if start is None:
        raise BenchFileError(f"bench file {origin}: has no [sim] section, so "
                             f"{', '.join(f'sim.{key}' for key in values)} cannot vary; "
                             "allowed: sim.* values on virtual benches only")
    end = next((k for k, _ in headers if k > start), len(lines))
    for key, value in values.items():
        line = f"{key} = {toml_value(value)}"
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        found = next((k for k in range(start + 1, end) if pattern.match(lines[k])), None)
        if found is None:
            lines.insert(start + 1, line)
            end += 1
        else:
            lines[found] = line
    return "\n".join(lines) + "\n"
