"""Harness for the signal tests: run ``xbarlab`` in this process, then report the virtual bench.

Usage: ``python interrupted_cli.py BENCH ARGS...``. Runs ``xbarlab.cli.main(ARGS)``; when it
returns (the test sends SIGINT or SIGTERM meanwhile) prints one JSON line to stderr with the
exit code and the final state of the virtual instruments of embedded bench BENCH, as their
World holds it: every SMU terminal's output flag and every matrix's closed relays.
"""

import json
import sys

import pyvisa

from xbarlab.cli import main

bench_name, arguments = sys.argv[1], sys.argv[2:]
code = main(arguments)
world = pyvisa.ResourceManager(f"{bench_name}@xbarsim").visalib.world
bench = world.bench
state = {
    "code": code,
    "outputs": {f"{name}.{terminal}": world.terminal(f"{name}.{terminal}").output
                for name, inst in bench.instruments.items() if inst.kind == "smu"
                for terminal in inst.info.terminals},
    "closed": {name: len(world.closed(name))
               for name, inst in bench.instruments.items() if inst.kind == "matrix"},
}
print(json.dumps(state), file=sys.stderr)
