"""The sources tied to crossbar line ends, as arrays: Thevenin line ends and terminal currents.

Every line end is floating or tied, through a path resistance, to one or more sources (a
terminal, or ground). The World builds one ``Network`` per wiring from its relays and board
lines, as arrays (no loop over the lines); the network turns terminal voltages into line-end
Thevenin voltages and resistances for the crossbar solve, and line-end inflows back into the
current each terminal delivers.
"""

from __future__ import annotations

import numpy as np

GROUND_KEY = "ground"


class ShortCircuit(RuntimeError):
    """A source tied to a line through 0 ohm while another source also drives that line."""


class Network:
    """The sources tied to line ends, as arrays: source s feeds line ``line[s]`` from terminal
    ``term[s]`` (-1 = ground) through conductance ``g[s]`` (inf = 0 ohm). Sources are in the
    order given; `ordered` puts them line by line (sums over a line's sources then run in a
    fixed order). ``names[t]`` is terminal t's key (for messages)."""

    def __init__(self, line: np.ndarray, term: np.ndarray, r: np.ndarray, n_lines: int,
                 names: list[str]):
        self.n_lines, self.n_terms = n_lines, len(names)
        self.line = np.asarray(line, dtype=np.intp)
        self.term = np.asarray(term, dtype=np.intp)
        r_arr = np.asarray(r, dtype=float)
        self.ideal = r_arr == 0.0
        self._any_ideal = bool(self.ideal.any())
        count = np.bincount(self.line, minlength=n_lines)
        if self._any_ideal:
            self.ideal_line = np.bincount(self.line, weights=self.ideal, minlength=n_lines) > 0
            shorted = np.flatnonzero((count > 1) & self.ideal_line)
            if shorted.size:
                k = int(shorted[0])
                names_there = sorted({GROUND_KEY if t < 0 else names[t]
                                      for t in self.term[self.line == k].tolist()})
                raise ShortCircuit(
                    f"line {k} is tied to {names_there} and one of them through 0 ohm: "
                    "an ideal source in parallel with another source has no solution"
                )
            with np.errstate(divide="ignore"):
                self.g = np.where(self.ideal, 0.0, 1.0 / np.where(self.ideal, 1.0, r_arr))
        else:
            self.ideal_line = np.zeros(n_lines, dtype=bool)
            self.g = 1.0 / r_arr
        self.g_line = np.bincount(self.line, weights=self.g, minlength=n_lines)
        self.fed = count > 0
        self.alone = count[self.line] == 1  # the only source on its line
        self._live = np.flatnonzero(self.term >= 0)
        # every line and every terminal with one source: sums are plain scatters
        self._one_per_line = bool(count.max(initial=0) <= 1)
        self._one_per_term = np.bincount(self.term[self._live], minlength=self.n_terms).max(
            initial=0) <= 1

    @classmethod
    def ordered(cls, line, term, r, n_lines: int, names: list[str]) -> Network:
        """The network of sources given in any order, put line by line (a stable sort, so
        the sources of one line keep their order)."""
        order = np.argsort(np.asarray(line), kind="stable")
        return cls(np.asarray(line)[order], np.asarray(term)[order], np.asarray(r)[order],
                   n_lines, names)

    def source_volts(self, volts: np.ndarray) -> np.ndarray:
        """(B, S) voltage behind each source (0 for ground)."""
        if self.n_terms == 0:
            return np.zeros((volts.shape[0], len(self.term)))
        return np.where(self.term >= 0, volts[:, np.maximum(self.term, 0)], 0.0)

    def thevenin(self, volts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Line-end Thevenin voltages (B, L; NaN = floating) and resistances (L,)."""
        v_s = self.source_volts(volts)
        with np.errstate(invalid="ignore", divide="ignore"):
            v_end = np.zeros((len(v_s), self.n_lines))
            if self._one_per_line:
                v_end[:, self.line] = v_s * self.g
            else:
                np.add.at(v_end, (slice(None), self.line), v_s * self.g)
            v_end /= self.g_line
            r_end = np.where(self.fed & ~self.ideal_line, 1.0 / self.g_line, 0.0)
        if self._any_ideal:
            v_end[:, self.line[self.ideal]] = v_s[:, self.ideal]
        v_end[:, ~self.fed] = np.nan
        return v_end, r_end

    def terminal_currents(self, inflow, v_end, volts) -> np.ndarray:
        """(B, K) current each terminal delivers, from the line-end inflows.

        A source alone on its line delivers the line's inflow; sources sharing a line split it
        as g_s (V_s - V_node) = g_s (V_s - V_th) + (g_s / G) * inflow (no cancellation).
        """
        at_line = inflow[:, self.line]
        with np.errstate(invalid="ignore", divide="ignore"):
            shared = (
                self.g * (self.source_volts(volts) - v_end[:, self.line])
                + (self.g / self.g_line[self.line]) * at_line
            )
        per_source = np.where(self.alone, at_line, shared)[:, self._live]
        currents = np.zeros((len(inflow), self.n_terms))
        if self._one_per_term:
            currents[:, self.term[self._live]] = per_source
        else:
            np.add.at(currents, (slice(None), self.term[self._live]), per_source)
        return currents
