"""On SMU benches a pulse's energy is measured by the SMU that pulses (issue 17): the Keithley
2600B and the Keysight B2900 measure V and I during each pulse, and with the other lines
floating (the ``float`` pulse scheme) that SMU is the only source delivering energy. The
energy ``program_cell`` reports is then labelled measured and equals, within 2 %, what the
World's physics says every source delivered during the pulses. Under ``v/2`` the bias is on the
other channel of the pulsing SMU, which pulses with it and measures it too: the energy is the
sum of both, measured. Under ``v/3`` on the default bench the third level is on the second
2636B, started by the first over the trigger cable of their DIGITAL I/O ports: measured too.
Without that cable it holds its bias at DC, not synchronised with the pulse, and what it
delivered during the pulse is not measured: the energy is labelled an estimate."""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa
from xbarlab.protocols.programming import AmplitudeMemory, PulseSettings, program_cell
from xbarlab.sim_instruments.truth import DeliveredEnergy

from xbarlab.bench import open_bench
from xbarlab.benches import with_sim
from xbarlab.benchfile import load_bench

SETTINGS = {"width": 1e-4, "max_pulses": 40, "reads": 4}


@pytest.mark.parametrize(("bench_name", "scheme"), [
    ("default", "float"), ("keysight", "float"),  # 2636B, B2902B: the pulsing SMU alone
    ("default", "v/2"), ("keysight", "v/2"),  # both channels pulse, both measured
    ("default", "v/3"),  # the third level on the second 2636B, started over the trigger cable
])
def test_program_cell_energy_is_measured_by_the_pulsing_smus(bench_name, scheme):
    settings = {**SETTINGS, "pulse_scheme": scheme}
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


@pytest.mark.parametrize(("bench_name", "scheme"), [
    ("default", "v/2"), ("keysight", "v/2"), ("default", "v/3")])
def test_a_pulse_is_the_sum_of_its_pulsing_channels_measured(bench_name, scheme, tmp_path):
    """Without read noise, a V/2 or V/3 pulse's measured energy (the pulsed row's channel and
    the bias channels, all integrating over the pulse) is what the World's physics says every
    source delivered, to the instruments' six or seven digits."""
    path = tmp_path / f"{bench_name}.toml"
    path.write_text(with_sim(load_bench(bench_name).text, read_noise=False))
    with open_bench(str(path)) as bench:
        world = pyvisa.ResourceManager(f"{path}@xbarsim").visalib.world
        before = world.energy
        bench.pulse(1, 2, 1.0, 1e-4, scheme, current_limit=1e-3)
        delivered = world.energy - before
        assert bench.last_pulse_energy == pytest.approx(delivered, rel=1e-5)


def test_without_a_trigger_cable_the_v3_pulse_is_an_estimate(tmp_path):
    """V/3 needs three pulsing levels (V, V/3, 2V/3): on the default bench the third is on the
    second 2636B. Without the trigger cable between the two (``[wiring] trigger_link``) that
    SMU cannot pulse with the first, so it holds its bias at DC and what it delivered during
    the pulse is not measured: the energy is labelled an estimate."""
    text = load_bench("default").text
    assert 'trigger_link = ["smu", "smu2"]' in text
    path = tmp_path / "uncabled.toml"
    path.write_text(text.replace('trigger_link = ["smu", "smu2"]', ""))
    with open_bench(str(path)) as bench:
        bench.pulse(1, 2, 1.0, 1e-4, "v/3", current_limit=1e-3)
        assert bench.last_pulse_energy is None
        result = program_cell(bench, 1, 2, 2e-6, **{**SETTINGS, "pulse_scheme": "v/3",
                                                    "max_pulses": 3})
        assert not result.energy_measured
