"""What every figure of a run must be (issue 18): every axis labelled, numeric axes and colour
bars with their unit in parentheses, no empty panel."""

from __future__ import annotations

import re

UNIT = re.compile(r"\(([^()]+)\)\s*$")
CATEGORICAL = {"scheme", "algorithm", "phase", "stage"}


def axes_with_data(figure):
    """The figure's axes that are not colour bars."""
    colourbars = {getattr(image.colorbar, "ax", None) for axis in figure.axes
                  for image in axis.images}
    return [axis for axis in figure.axes if axis not in colourbars], colourbars - {None}


def check_labels(figure) -> list[str]:
    """Problems: an unlabelled axis, a numeric axis or colour bar without a unit, an axis
    showing nothing."""
    problems = []
    axes, colourbars = axes_with_data(figure)
    for axis in axes:
        if not (axis.lines or axis.images or axis.patches or axis.collections):
            problems.append(f"empty panel {axis.get_title()!r}")
        for label in (axis.get_xlabel(), axis.get_ylabel()):
            if not label:
                problems.append(f"unlabelled axis in {axis.get_title()!r}")
            elif label not in CATEGORICAL and label not in ("row", "column") \
                    and not UNIT.search(label):
                problems.append(f"axis label {label!r} has no unit")
    for bar in colourbars:
        if not UNIT.search(bar.get_ylabel()):
            problems.append(f"colour bar {bar.get_ylabel()!r} has no unit")
    return problems
