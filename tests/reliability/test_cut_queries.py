"""Item 2: a query cut between its write and its read (a timeout whose reply arrives late,
Ctrl-C outside the held sections) clears the session, so nothing later reads a shifted reply:
the shutdown reads the true function and level and ramps down before turning the output off.
Item 9 (drivers): a timeout or a garbled reply names the instrument, the command and the reply.
"""

from __future__ import annotations

import pytest
from pyvisa import constants
from reliability import fault, small_text, write_bench
from virtualbenches import world_of
from xbarlab.drivers.errors import GarbledReplyError, InstrumentIOError
from xbarlab.drivers.keithley2600 import Keithley2600

from xbarlab.bench import open_bench

SMU = "GPIB0::26::INSTR"


def driver_on(tmp_path, extra: str):
    path = write_bench(tmp_path, small_text("default") + extra)
    import pyvisa

    return Keithley2600.connect(SMU, pyvisa.ResourceManager(f"{path}@xbarsim")), path


def test_a_late_reply_is_cleared_and_the_next_query_reads_its_own(tmp_path):
    smu, path = driver_on(tmp_path, fault("smu", "late", after=3))  # *IDN?, error count, ...
    channel = smu.smua
    channel.source_voltage(0.3, 1e-3)  # replies 2..: error queue counts
    answered = []
    with pytest.raises(InstrumentIOError) as info:
        for _ in range(3):
            answered.append(channel.source_function())
    assert info.value.error_code == constants.StatusCode.error_timeout
    assert "Keithley2600 at GPIB0::26::INSTR: no reply before the timeout" in str(info.value)
    assert "after 'print(smua." in str(info.value)
    # the late reply arrived meanwhile; the session was cleared, so each query gets its own
    assert channel.output_enabled() is False
    assert float(smu.ask("print(smua.source.levelv)")) == pytest.approx(0.3)
    smu.shutdown()
    assert world_of(path).terminal("smu.a").level == 0.0
    smu.disconnect()


def test_ctrl_c_between_write_and_read_then_shutdown_ramps_down(tmp_path):
    """The auditor's case: Ctrl-C after a query's write; the shutdown must read the true
    function and level (not the queued reply) and ramp 0.2 V to 0 before output off."""
    path = write_bench(tmp_path, small_text("default"))
    with open_bench(path) as bench:
        bench.read(0, 1, 0.2)  # one source at +-0.2 V (the bias shifted as the bench needs)
        world = world_of(path)
        live = next(t for t in bench.channels if world.terminal(t).level != 0.0)
        instrument, channel = live.split(".")
        resource = bench._drivers[instrument]._resource
        written: list[str] = []
        real_write, real_read = resource.write, resource.read
        cut = {"done": False}

        def write(message, *args, **kwargs):
            written.append(message)
            return real_write(message, *args, **kwargs)

        def read(*args, **kwargs):
            if not cut["done"]:
                cut["done"] = True
                raise KeyboardInterrupt  # the reply is queued on the instrument
            return real_read(*args, **kwargs)

        object.__setattr__(resource, "write", write)
        object.__setattr__(resource, "read", read)
        with pytest.raises(KeyboardInterrupt):
            bench.channels[live].measure()
        written.clear()
        bench.channels[live].shutdown()
    assert not world.terminal(live).output and world.terminal(live).level == 0.0
    smu = f"smu{channel}"
    off = written.index(f"{smu}.source.output = {smu}.OUTPUT_OFF")
    assert any(m.startswith(f"{smu}.source.levelv = 0.0") for m in written[:off]), written


def test_a_garbled_reply_names_the_instrument_the_command_and_the_reply(tmp_path):
    smu, _ = driver_on(tmp_path, fault("smu", "garbled", after=3))
    smu.smua.output_enabled()  # reply 2
    with pytest.raises(GarbledReplyError) as info:
        smu.smua.source_function()  # reply 3: garbled
    text = str(info.value)
    assert text.startswith("Keithley2600 at GPIB0::26::INSTR: reply ")
    assert "to 'print(smua.source.func)'" in text
    smu.disconnect()
