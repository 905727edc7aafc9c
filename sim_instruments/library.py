"""``@xbarsim``: a pyvisa-sim backend whose instruments share one simulated crossbar bench.

``pyvisa.ResourceManager("@xbarsim")`` opens the embedded ``default`` bench;
``ResourceManager("path/to/bench.toml@xbarsim")`` any bench file, and
``ResourceManager("board@xbarsim")`` an embedded bench by name. Every instrument of the bench
file becomes a :class:`ModelDevice` at its address, built from its model's YAML grammar and
bound to a behaviour that acts on the bench's one :class:`World`.

Differences from stock pyvisa-sim, each on purpose:

- writes do not swallow ``AttributeError`` (a bug in a behaviour surfaces where it happens);
- reads are chunked and fail at once when no reply is queued (replies are computed when the
  command is written, so waiting could never help; no silent 2 s timeouts);
- ``clear()``, ``read_stb()`` and ``assert_trigger()`` work;
- :meth:`reset` rebuilds the bench in place and :meth:`fresh` gives an independent bench;
- with ``[sim] state_file`` the World's final state (outputs, closed relays, board lines) is
  written as JSON when the process exits, so a test can check what a killed run left behind.
"""

from __future__ import annotations

import atexit

from pyvisa import constants, errors
from pyvisa.util import LibraryPath
from pyvisa_sim.devices import Devices
from pyvisa_sim.highlevel import SimVisaLibrary

from xbarlab.benchfile import RELAY_FAULT_KINDS, Bench, load_bench

from .behaviours import BEHAVIOURS
from .faults import FaultInjector
from .grammar import build_device
from .models import model_grammar
from .world import World

DEFAULT_BENCH = "default"


class XbarSimVisaLibrary(SimVisaLibrary):
    """pyvisa-sim library serving the instruments of one bench file over a shared World."""

    @staticmethod
    def get_library_paths():
        return (LibraryPath("unset"),)

    def _init(self) -> None:
        self.sessions = {}
        source = str(self.library_path)
        self.bench: Bench = load_bench(DEFAULT_BENCH if source in ("", "unset") else source)
        self._build()
        if self.bench.sim is not None and self.bench.sim.state_file:
            atexit.register(self._write_final_state, self.bench.sim.state_file)

    def _build(self) -> None:
        """Create the World and one device per instrument of the bench."""
        self.world = World(self.bench)
        self.devices = Devices()
        sim_faults = self.bench.sim.faults if self.bench.sim else ()
        seed = self.bench.sim.seed if self.bench.sim else 0
        for k, inst in enumerate(self.bench.instruments.values()):
            grammar, device_name = model_grammar(inst.model)
            kind = grammar["devices"][device_name]["xbar"]["behaviour"]
            device = build_device(
                device_name,
                grammar,
                lambda dev, cls=BEHAVIOURS[kind], inst=inst: cls(dev, self.world, inst),
            )
            faults = [
                f for f in sim_faults
                if f.instrument == inst.name and f.kind not in RELAY_FAULT_KINDS
            ]
            if faults:
                device.faults = FaultInjector(faults, seed + k)
            self.devices.add_device(_canonical(inst.address), device)

    def _write_final_state(self, path: str) -> None:
        """At interpreter exit: what the virtual instruments were left doing (``state_file``)."""
        self.world.write_state(path)

    # ------------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Rebuild the bench from its file (fresh array, instruments at power-on state).

        Open sessions stay valid and talk to the new instruments.
        """
        self._build()
        for sess in self.sessions.values():
            device = getattr(sess, "device", None)
            if device is not None:
                name = sess.attrs[constants.ResourceAttribute.resource_name]
                sess.device = self.devices[name]

    @classmethod
    def fresh(cls, source: str = "unset") -> XbarSimVisaLibrary:
        """A new, independent library for ``source`` (bypasses pyvisa's per-path cache)."""
        cls._registry.pop((cls, LibraryPath(str(source), "user specified")), None)
        cls._registry.pop((cls, LibraryPath(str(source))), None)
        return cls(str(source))

    # ------------------------------------------------------------------ I/O
    def write(self, session, data: bytes):
        sess = self.sessions.get(session)
        if sess is None:
            return 0, constants.StatusCode.error_invalid_object
        if sess.attrs[constants.ResourceAttribute.interface_type] == constants.InterfaceType.asrl:
            return sess.write(data)  # the serial session masks data bits and adds END chars
        sess.device.write(data)
        return len(data), constants.StatusCode.success

    def read(self, session, count: int):
        sess = self.sessions.get(session)
        if sess is None:
            return b"", constants.StatusCode.error_invalid_object
        device = sess.device
        if device.faults is not None:
            device.faults.check_read()
        chunk, ended = device.take_output(count)
        if not chunk:  # the session's timeout passes in virtual time, then the read fails
            timeout_ms, _ = sess.get_attribute(constants.ResourceAttribute.timeout_value)
            if isinstance(timeout_ms, (int, float)) and 0 < timeout_ms < float("inf"):
                self.world.advance(timeout_ms / 1000)
            raise errors.VisaIOError(constants.StatusCode.error_timeout)
        if ended:
            return chunk, constants.StatusCode.success
        return chunk, constants.StatusCode.success_max_count_read

    def clear(self, session):
        sess = self.sessions.get(session)
        if sess is None:
            return constants.StatusCode.error_invalid_object
        sess.device.clear_io()
        return constants.StatusCode.success

    def read_stb(self, session):
        sess = self.sessions.get(session)
        if sess is None:
            return 0, constants.StatusCode.error_invalid_object
        return sess.device.behaviour.status_byte(), constants.StatusCode.success

    def assert_trigger(self, session, protocol):
        sess = self.sessions.get(session)
        if sess is None:
            return constants.StatusCode.error_invalid_object
        trigger = getattr(sess.device.behaviour, "trigger", None)
        if trigger is None:
            return constants.StatusCode.error_nonsupported_operation
        trigger()
        return constants.StatusCode.success


def _canonical(address: str) -> str:
    from pyvisa.rname import to_canonical_name

    return to_canonical_name(address)
