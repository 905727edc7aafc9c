"""Harness of the interrupt tests: ``python cli_state.py BENCHFILE ARGS...`` prints
``main`` to stderr and runs ``xbarlab.cli.main(ARGS)`` (importing nothing else first), then,
Ctrl-C ignored, prints one JSON line to stderr: the exit status and what the virtual
instruments of BENCHFILE were left doing (every SMU terminal's output flag, every matrix's
closed relays)."""

import signal
import sys

from xbarlab.cli import main

print("main", file=sys.stderr, flush=True)
code = main(sys.argv[2:])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # what follows is the harness, not xbarlab

import json  # noqa: E402 - only after main, so that Ctrl-C meets xbarlab's code, not this

import pyvisa  # noqa: E402

state = {"code": code, "outputs": {}, "closed": {}}
try:
    world = pyvisa.ResourceManager(f"{sys.argv[1]}@xbarsim").visalib.world
except Exception:  # noqa: BLE001 - Ctrl-C cut xbarlab's import of the simulator: nothing opened
    world = None
if world is not None:
    bench = world.bench
    state["outputs"] = {f"{name}.{terminal}": world.terminal(f"{name}.{terminal}").output
                        for name, inst in bench.instruments.items() if inst.kind == "smu"
                        for terminal in inst.info.terminals}
    state["closed"] = {name: len(world.closed(name))
                       for name, inst in bench.instruments.items() if inst.kind == "matrix"}
print(json.dumps(state), file=sys.stderr)
