"""The World's truth about what a bench's operations did, for tests and benchmarks only.

Protocols never import this: they learn what the instruments measure. A benchmark or test
compares the protocol's figures with these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from xbarlab.progress import Progress


class DeliveredEnergy:
    """Energy (J) the World's sources delivered during a bench's pulses (`Bench.pulse`: the
    bias set-up and the pulses, every driven line end, V x I integrated by the physics).
    ``total`` sums every pulse since `count` began; ``by_phase`` sums them under the label
    last given to `phase`."""

    def __init__(self, world):
        self.world = world
        self.total = 0.0
        self.by_phase: dict[str, float] = {}
        self.label = ""

    def phase(self, label: str) -> None:
        """The pulses from now on are summed under `label` too."""
        self.label = label

    def progress(self) -> Progress:
        """A silent progress to hand the protocol: each phase it starts (``ff: programming``,
        ``adaptive/first: preparing`` ...: its description up to any ``(``) labels the
        pulses from then on."""
        return _PhaseLabels(self)

    @contextmanager
    def count(self, bench) -> Iterator[DeliveredEnergy]:
        """Sum the World's energy over each of `bench`'s pulses while the block runs."""
        pulse = bench.pulse

        def counted(*args, **kwargs):
            before = self.world.energy
            try:
                return pulse(*args, **kwargs)
            finally:
                delivered = self.world.energy - before
                self.total += delivered
                self.by_phase[self.label] = self.by_phase.get(self.label, 0.0) + delivered

        bench.pulse = counted
        try:
            yield self
        finally:
            del bench.pulse


class _PhaseLabels(Progress):
    """`DeliveredEnergy.progress`."""

    def __init__(self, energy: DeliveredEnergy):
        super().__init__(show=False)
        self.energy = energy

    def start(self, total: int, description: str) -> None:
        self.energy.phase(description.split(" (")[0])
        super().start(total, description)
