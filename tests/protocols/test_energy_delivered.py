"""A protocol's energy is what the instruments deliver (issue 17): on the virtual array board
the pulse energy ``program_cell`` and ``write-verify`` report equals, within 2 %, the energy the
World's physics says every source delivered during the pulses (the whole array: half-selected
cells, sneak paths and wires, not only the selected cell)."""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa
from analogbench import analog_block
from xbarlab.protocols.programming import AmplitudeMemory, PulseSettings, program_cell
from xbarlab.sim_instruments.truth import DeliveredEnergy

from xbarlab.bench import open_bench
from xbarlab.progress import Progress
from xbarlab.registry import get_protocol
from xbarlab.store import RunStore


def test_program_cell_energy_is_the_energy_the_world_delivered(tmp_path):
    path = analog_block(tmp_path, 6, 6, 3, "energy-cells")
    rng = np.random.default_rng(8)
    with open_bench(str(path)) as bench:
        world = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world
        healthy = np.argwhere(world.array.defect_map() == 0)[:2]
        memory = AmplitudeMemory(PulseSettings())
        truth = DeliveredEnergy(world)
        reported = 0.0
        with truth.count(bench):
            for row, col in healthy:
                result = program_cell(bench, int(row), int(col), rng.uniform(2e-6, 30e-6),
                                      memory=memory, reads=4)
                assert result.energy_measured and result.pulses > 0
                reported += result.energy_j
    assert reported == pytest.approx(truth.total, rel=0.02)


def test_write_verify_energy_is_the_energy_the_world_delivered(tmp_path):
    path = analog_block(tmp_path, 3, 3, 2, "energy-map")
    with RunStore(tmp_path / "store") as store, open_bench(str(path)) as bench:
        world = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world
        params = {"algorithm": "adaptive", "relax_rounds": 0, "settle": 0.0, "guard": 0.0,
                  "reread_reads": 16, "g_low": 1.5e-6, "g_high": 30e-6}  # no characterisation
        truth = DeliveredEnergy(world)
        with store.start_run("write-verify", params, bench.spec.text,
                             shape=(bench.rows, bench.cols)) as run, truth.count(bench):
            metrics = get_protocol("write-verify")(bench, run, Progress(show=False), **params)
    assert metrics["energy_measured"] is True
    # the protocol's sum leaves out the stuck-cell preparation pulses, if any: none here
    assert metrics["energy_j"] == pytest.approx(truth.total, rel=0.02)
