"""On SMU benches a pulse's energy is measured by the SMU that pulses (issue 17): the Keithley
2600B and the Keysight B2900 measure V and I during each pulse, and with the other lines
floating (the ``float`` pulse scheme) that SMU is the only source delivering energy. The
energy ``program_cell`` reports is then labelled measured and equals, within 2 %, what the
World's physics says every source delivered during the pulses. With a non-zero bias on another
SMU (``v/2``) what that SMU delivered during the pulse is not measured: the energy is labelled
an estimate."""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa
from xbarlab.protocols.programming import AmplitudeMemory, PulseSettings, program_cell
from xbarlab.sim_instruments.truth import DeliveredEnergy

from xbarlab.bench import open_bench

SETTINGS = {"width": 1e-4, "max_pulses": 40, "reads": 4}


@pytest.mark.parametrize("bench_name", ["default", "keysight"])  # 2636B, B2902B
def test_program_cell_energy_is_measured_by_the_pulsing_smu(bench_name):
    settings = {**SETTINGS, "pulse_scheme": "float"}
    with open_bench(bench_name) as bench:
        world = pyvisa.ResourceManager(f"{bench_name}@xbarsim").visalib.world
        healthy = np.argwhere(world.array.defect_map() == 0)[:2]
        memory = AmplitudeMemory(PulseSettings(**settings))
        truth = DeliveredEnergy(world)
        reported = 0.0
        with truth.count(bench):
            for row, col in healthy:
                start = bench.read(int(row), int(col), 0.2, "ground").conductance
                result = program_cell(bench, int(row), int(col), 1.5 * start, memory=memory,
                                      **settings)
                assert result.energy_measured and result.pulses > 0
                reported += result.energy_j
    assert reported == pytest.approx(truth.total, rel=0.02)


@pytest.mark.parametrize("bench_name", ["default", "keysight"])
def test_a_pulse_under_a_bias_of_another_smu_is_an_estimate(bench_name):
    with open_bench(bench_name) as bench:
        bench.pulse(1, 2, 1.0, 1e-4, "v/2", current_limit=1e-3)
        assert bench.last_pulse_energy is None
        bench.pulse(1, 2, 1.0, 1e-4, "float", current_limit=1e-3)
        assert bench.last_pulse_energy is not None
        result = program_cell(bench, 1, 2, 2e-6, **{**SETTINGS, "pulse_scheme": "v/2",
                                                    "max_pulses": 3})
        assert not result.energy_measured
