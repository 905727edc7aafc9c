"""Item 12: Ctrl-C while `xbarlab` starts, during `bench check`, and a second Ctrl-C while the
first is handled: one line, exit status 130, no traceback, the instruments safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability import small_text, write_bench

HARNESS = Path(__file__).parent / "cli_state.py"


def interrupted(path: Path, delays: list[float]) -> tuple[int, str, dict | None]:
    """Run ``xbarlab bench check`` on bench file `path` and send SIGINT after each delay
    (seconds from the call of `xbarlab.cli.main`); the exit status, stderr and the final
    instrument state."""
    process = subprocess.Popen(
        [sys.executable, str(HARNESS), str(path), "bench", "check", "--bench", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr.readline() == "main\n"  # xbarlab's main is about to run
        started = time.monotonic()
        for delay in delays:
            time.sleep(max(0.0, started + delay - time.monotonic()))
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    lines = err.strip().splitlines()
    state = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    text = "\n".join(line for line in lines if not line.startswith("{"))
    return process.returncode, text, state


@pytest.mark.parametrize("delays", [[0.05], [0.3], [0.7], [0.4, 0.42], [0.6, 0.61, 0.62]])
def test_ctrl_c_during_bench_check_is_one_line_and_130(tmp_path, delays):
    path = write_bench(tmp_path, small_text("default"))
    code, err, state = interrupted(path, delays)
    assert "Traceback" not in err, err
    if state is None:  # the harness itself was interrupted before main ran
        pytest.fail(f"interrupted before xbarlab ran: {err}")
    if state["code"] == 0:
        pytest.skip("bench check finished before the signal")  # a slow machine's timing
    assert state["code"] == 130 and code == 0
    assert err.splitlines() == ["xbarlab bench: interrupted"]
    assert not any(state["outputs"].values()) and not any(state["closed"].values())


def test_ctrl_c_while_the_interpreter_imports_xbarlab(tmp_path):
    """The console script path: `main` catches Ctrl-C while xbarlab's modules load."""
    code = ("import signal, os, sys; from xbarlab.cli import main;"
            "signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT));"
            "signal.setitimer(signal.ITIMER_REAL, 0.02); sys.exit(main(sys.argv[1:]))")
    path = write_bench(tmp_path, small_text("default"))
    result = subprocess.run([sys.executable, "-c", code, "bench", "check", "--bench", str(path)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 130, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith(": interrupted")


def test_ctrl_c_in_a_callback_ends_the_run_without_a_traceback():
    """A Ctrl-C that lands in a callback Python cannot raise from (here a weakref callback, as
    the import system's module locks have) is signalled again and ends the run where it can,
    instead of "Exception ignored" with a traceback and the run going on."""
    code = ("import time, weakref\n"
            "from xbarlab.cli import _redeliver_interrupts_from_callbacks\n"
            "_redeliver_interrupts_from_callbacks()\n"
            "class Thing: pass\n"
            "def callback(_): raise KeyboardInterrupt\n"
            "thing = Thing(); ref = weakref.ref(thing, callback)\n"
            "try:\n"
            "    del thing\n"
            "    time.sleep(10)\n"
            "    print('went on')\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "interrupted"
    assert "Traceback" not in done.stderr, done.stderr
