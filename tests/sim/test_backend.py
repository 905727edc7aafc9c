"""Selecting the virtual bench through pyvisa, and the pyvisa-sim internals it relies on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import pyvisa
from pyvisa.highlevel import VisaLibraryBase, list_backends
from pyvisa_sim.devices import Device, ErrorQueue
from simhelpers import embedded_text
from xbarlab.sim_instruments import XbarSimVisaLibrary

from xbarlab.benchfile import BenchFileError


def test_backend_is_listed_and_default_bench_opens():
    assert "xbarsim" in list_backends()
    rm = pyvisa.ResourceManager("@xbarsim")
    assert isinstance(rm.visalib, XbarSimVisaLibrary)
    assert set(rm.list_resources()) == {"GPIB0::26::INSTR", "GPIB0::27::INSTR", "GPIB0::18::INSTR"}
    for address in ("GPIB0::26::INSTR", "GPIB0::27::INSTR"):
        smu = rm.open_resource(address, read_termination="\n", write_termination="\n")
        assert "Model 2636B" in smu.query("*IDN?")
        smu.close()


@pytest.mark.parametrize(
    "name,address,model",
    [
        ("board", "ASRL1::INSTR", "ARRAYBOARD"),
        ("keysight", "GPIB0::23::INSTR", "B2902B"),
        ("classic", "GPIB0::24::INSTR", "MODEL 2450"),
    ],
)
def test_embedded_bench_by_name(name, address, model):
    rm = pyvisa.ResourceManager(f"{name}@xbarsim")
    inst = rm.open_resource(address, read_termination="\n", write_termination="\n")
    assert model in inst.query("*IDN?")
    inst.close()


def test_bench_file_by_path(tmp_path):
    path = tmp_path / "my bench.toml"
    path.write_text(embedded_text("default").replace("GPIB0::26::INSTR", "GPIB1::7::INSTR"))
    rm = pyvisa.ResourceManager(f"{path}@xbarsim")
    assert "GPIB1::7::INSTR" in rm.list_resources()
    rm.close()


def test_unknown_bench_is_a_clear_error():
    with pytest.raises(BenchFileError, match="no_such_bench.*not an embedded bench"):
        XbarSimVisaLibrary.fresh("no_such_bench")


def test_fresh_gives_an_independent_library():
    first = XbarSimVisaLibrary.fresh("default")
    second = XbarSimVisaLibrary.fresh("default")
    assert first is not second and first.world is not second.world


def test_pyvisa_sim_internals_we_rely_on():
    """Contract with pyvisa-sim 0.7 / pyvisa 1.16 private names (see reference/pyvisa_sim.md)."""
    device = Device("probe", b";")
    for name in (
        "_error_queues",
        "_output_buffers",
        "_input_buffer",
        "_query_eom",
        "_response_eom",
    ):
        assert hasattr(device, name), name
    assert hasattr(ErrorQueue({"q": "E?", "default": "0"}), "_queue")
    assert callable(VisaLibraryBase._registry.pop)  # a WeakValueDictionary in pyvisa 1.16


def test_every_bench_model_has_a_grammar():
    from xbarlab.sim_instruments.models import MODELS as SIMULATED

    from xbarlab.benchfile import MODELS

    assert set(MODELS) == set(SIMULATED)


def test_state_file_records_what_the_instruments_were_left_doing(tmp_path):
    """A process that exits with an output on and a relay closed leaves that in its state file."""
    bench = tmp_path / "bench.toml"
    text = embedded_text("default").replace("[sim]\n", '[sim]\nstate_file = "final.json"\n')
    bench.write_text(text)
    script = (
        "import pyvisa\n"
        f"rm = pyvisa.ResourceManager({str(bench) + '@xbarsim'!r})\n"
        "m = rm.open_resource('GPIB0::18::INSTR', write_termination='\\n')\n"
        "s = rm.open_resource('GPIB0::26::INSTR', write_termination='\\n')\n"
        "m.write('channel.close(\"1A01\")')\n"
        "s.write('smua.source.levelv = 0.2')\n"
        "s.write('smua.source.output = smua.OUTPUT_ON')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    state = json.loads((tmp_path / "final.json").read_text())
    assert state["closed"]["matrix"] == [["A", 1]]
    assert state["terminals"]["smu.a"] == {"output": True, "func": "V", "level": 0.2}


def test_a_bench_opened_again_in_one_process_gets_the_fresh_chip(tmp_path):
    """Closing a bench and opening its file again is a new opening: the chip the file draws,
    not the one the closed opening left (whether or not its library is still referred to)."""
    from virtualbenches import world_of, write_matrix_bench

    from xbarlab.bench import open_bench

    path = write_matrix_bench(tmp_path)
    with open_bench(path) as bench:
        first = world_of(path)
        fresh, opened = first.conductance().copy(), (first.clock, first.energy)
        bench.pulse(0, 0, 1.5, 1e-4)
        assert first.clock > opened[0] and not np.array_equal(first.conductance(), fresh)
    with open_bench(path):
        again = world_of(path)
        assert again is not first  # `first` still refers to the closed opening's World
        assert (again.clock, again.energy) == opened  # as the first opening began
        np.testing.assert_array_equal(again.conductance(), fresh)
