"""Cost of the virtual bench's VISA path, measured against stock pyvisa-sim in the same process.

1. A computed current query through ``@xbarsim`` (``print(smub.measure.i())`` on the default
   bench, one NPLC of virtual time and a reading) against a static dialogue through stock
   ``@sim`` (``:MEAS:CURR?`` with a fixed reply of the same length). Rounds are interleaved and
   the median per-query time of each is compared. Targets: ratio <= 0.8 with read noise off
   (the reading comes from the kept solve), <= 3 with read noise on (every reading draws its
   cells' noise and carries it through the kept unit responses: no solve).
2. A 32 x 32 cell-by-cell read map on the default bench with raw instrument commands (one
   ``channel.exclusiveclose`` and one ``print(smub.measure.i())`` per cell, read noise on):
   cells per second, the share of time spent in the solver and the solves per cell.

Run: ``python benchmarks/bench_visa.py`` (about 10 s on two cores).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import pyvisa
from xbarlab.sim_instruments import XbarSimVisaLibrary

from xbarlab.physics.solver import CrossbarSolver

STOCK_YAML = """\
spec: "1.1"
devices:
  static_smu:
    eom:
      GPIB INSTR: {q: "\\n", r: "\\n"}
    dialogues:
      - {q: ":MEAS:CURR?", r: "REPLY"}
resources:
  GPIB0::5::INSTR: {device: static_smu}
"""
QUERIES_PER_ROUND = 1000
ROUNDS = 9


def _per_query(inst, command: str) -> float:
    start = time.perf_counter()
    for _ in range(QUERIES_PER_ROUND):
        inst.query(command)
    return (time.perf_counter() - start) / QUERIES_PER_ROUND


def query_cost(tmp: Path, noise: bool) -> tuple[float, float]:
    """Median seconds per query: (xbarsim computed, stock static), read noise on or off."""
    bench = tmp / f"query-noise-{noise}.toml"
    default = XbarSimVisaLibrary.fresh("default").bench.text
    bench.write_text(default.replace("read_noise = true", f"read_noise = {str(noise).lower()}"))
    rm_x = pyvisa.ResourceManager(XbarSimVisaLibrary.fresh(str(bench)))
    smu = rm_x.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    matrix = rm_x.open_resource("GPIB0::18::INSTR", read_termination="\n", write_termination="\n")
    matrix.write('channel.close("1A01,4B01")')
    for line in (
        "smua.source.levelv = 0.2",
        "smua.source.output = smua.OUTPUT_ON",
        "smub.source.output = smub.OUTPUT_ON",
    ):
        smu.write(line)
    stock_yaml = tmp / "stock.yaml"  # same reply text, so both move the same bytes
    stock_yaml.write_text(STOCK_YAML.replace("REPLY", smu.query("print(smub.measure.i())")))
    rm_s = pyvisa.ResourceManager(f"{stock_yaml}@sim")
    stock = rm_s.open_resource("GPIB0::5::INSTR", read_termination="\n", write_termination="\n")
    assert len(smu.query("print(smub.measure.i())")) == len(stock.query(":MEAS:CURR?"))
    computed, static = [], []
    for _ in range(ROUNDS):
        computed.append(_per_query(smu, "print(smub.measure.i())"))
        static.append(_per_query(stock, ":MEAS:CURR?"))
    rm_x.close()
    rm_s.close()
    return statistics.median(computed), statistics.median(static)


def read_map() -> tuple[float, float, float, float]:
    """(cells per second, solver share, seconds, solver calls per cell) of a 32 x 32
    raw-command read map."""
    lib = XbarSimVisaLibrary.fresh("default")
    rm = pyvisa.ResourceManager(lib)
    smu = rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    matrix = rm.open_resource("GPIB0::18::INSTR", read_termination="\n", write_termination="\n")
    solver_time, calls = [0.0], [0]
    solve = CrossbarSolver.solve

    def timed(*args, **kwargs):
        start = time.perf_counter()
        calls[0] += 1
        try:
            return solve(*args, **kwargs)
        finally:
            solver_time[0] += time.perf_counter() - start

    CrossbarSolver.solve = timed
    for line in (
        "smua.source.levelv = 0.2",
        "smub.source.levelv = 0",
        "smua.source.output = smua.OUTPUT_ON",
        "smub.source.output = smub.OUTPUT_ON",
    ):
        smu.write(line)
    matrix.write('channel.exclusiveclose("1A01,4B01")')  # warm-up (numba cache, first solve)
    smu.query("print(smub.measure.i())")
    solver_time[0], calls[0] = 0.0, 0
    start = time.perf_counter()
    for i in range(32):
        for j in range(32):
            row, col = 1 + i, 37 + j
            matrix.write(
                f'channel.exclusiveclose("{(row - 1) // 12 + 1}A{(row - 1) % 12 + 1:02d},'
                f'{(col - 1) // 12 + 1}B{(col - 1) % 12 + 1:02d}")'
            )
            float(smu.query("print(smub.measure.i())"))
    elapsed = time.perf_counter() - start
    CrossbarSolver.solve = solve
    rm.close()
    return 1024 / elapsed, solver_time[0] / elapsed, elapsed, calls[0] / 1024


def board_product() -> float:
    """Seconds per ``MEAS:ALL?`` with every row driven on the 128 x 128 board bench."""
    rm = pyvisa.ResourceManager(XbarSimVisaLibrary.fresh("board"))
    board = rm.open_resource("ASRL1::INSTR", read_termination="\n", write_termination="\n")
    board.query("VROW " + ",".join(["0.1", "0.0"] * 64))
    board.query("VCOL " + ",".join(["0"] * 128))
    board.query("MEAS:ALL?")
    start = time.perf_counter()
    for _ in range(20):
        board.query("MEAS:ALL?")
    seconds = (time.perf_counter() - start) / 20
    rm.close()
    return seconds


def sweep_cost(tmp: Path, noise: bool) -> float:
    """Seconds for a 100-point 2636B list sweep (initiate + printbuffer) on the default bench."""
    bench = tmp / f"sweep-{noise}.toml"
    default = XbarSimVisaLibrary.fresh("default").bench.text
    bench.write_text(default.replace("read_noise = true", f"read_noise = {str(noise).lower()}"))
    rm = pyvisa.ResourceManager(XbarSimVisaLibrary.fresh(str(bench)))
    smu = rm.open_resource("GPIB0::26::INSTR", read_termination="\n", write_termination="\n")
    matrix = rm.open_resource("GPIB0::18::INSTR", read_termination="\n", write_termination="\n")
    matrix.write('channel.close("1A01,4B01")')
    levels = ",".join(repr(round(-0.5 + k * 0.01, 2)) for k in range(100))
    for line in (
        f"smua.trigger.source.listv({{{levels}}})",
        "smua.trigger.count = 100",
        "smua.trigger.measure.i(smua.nvbuffer1)",
        "smua.source.output = smua.OUTPUT_ON",
        "smub.source.output = smub.OUTPUT_ON",
    ):
        smu.write(line)
    start = time.perf_counter()
    smu.write("smua.nvbuffer1.clear()")
    smu.write("smua.trigger.initiate()")
    assert len(smu.query("printbuffer(1, 100, smua.nvbuffer1.readings)").split(", ")) == 100
    seconds = time.perf_counter() - start
    rm.close()
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        computed, static = query_cost(Path(tmp), noise=False)
        noisy, static_noisy = query_cost(Path(tmp), noise=True)
        sweep_quiet, sweep_noisy = sweep_cost(Path(tmp), False), sweep_cost(Path(tmp), True)
    cells_per_s, share, seconds, solves = read_map()
    product = board_product()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| measurement | value |")
    print("|---|---:|")
    print(f"| @xbarsim computed query `print(smub.measure.i())`, read noise off | "
          f"{computed * 1e6:.1f} us |")
    print(f"| stock @sim static dialogue `:MEAS:CURR?` | {static * 1e6:.1f} us |")
    print(f"| ratio computed / stock, read noise off (target <= 0.8) | {computed / static:.2f} |")
    print(f"| @xbarsim computed query, read noise on | {noisy * 1e6:.1f} us |")
    print(f"| ratio computed / stock, read noise on (target <= 3) | "
          f"{noisy / static_noisy:.2f} |")
    print(
        f"| 32x32 raw-command read map, default bench | {cells_per_s:.0f} cells/s "
        f"({seconds:.2f} s) |"
    )
    print(f"| share of read-map time in the solver | {share * 100:.0f} % |")
    print(f"| solver calls per cell of the read map | {solves:.3f} |")
    print(f"| board 128x128 `MEAS:ALL?` (matrix-vector product) | {product * 1e3:.2f} ms |")
    print(f"| 2636B 100-point sweep + printbuffer, no read noise | {sweep_quiet * 1e3:.1f} ms |")
    print(f"| 2636B 100-point sweep + printbuffer, read noise | {sweep_noisy * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
