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
- a bench with a state file keeps its chip from one session to the next (`chipstate`): the
  World, chip included, is written to it when the resource manager closes, or when the process
  exits with it open (so a test can check what a killed run left behind), and a resource
  manager that opens with no other open continues the chip kept there. The state file is the
  bench's ``[sim] state_file``, or the one the library path names (``analog|state=FILE@xbarsim``,
  `xbarlab.benchfile.simulator_source`).
"""

from __future__ import annotations

import atexit
import weakref

from pyvisa import constants, errors
from pyvisa.util import LibraryPath
from pyvisa_sim.devices import Devices
from pyvisa_sim.highlevel import SimVisaLibrary

from xbarlab.benchfile import RELAY_FAULT_KINDS, Bench, load_bench, split_simulator_source

from .behaviours import BEHAVIOURS
from .chipstate import resume_state, save_state
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
        self._opened = False  # a resource manager was opened on this library before
        source, state_file = split_simulator_source(str(self.library_path))
        self.bench: Bench = load_bench(DEFAULT_BENCH if source in ("", "unset") else source)
        self.state_file = state_file or (self.bench.sim.state_file if self.bench.sim else "")
        self._build()
        if self.state_file:
            atexit.register(_save_if_open, weakref.ref(self))

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

    def _save_state(self) -> None:
        """The World and its chip into the state file (`chipstate.save_state`)."""
        save_state(self.world, self.state_file)

    def open_default_resource_manager(self):
        """A resource manager session. The first one opened while no other session is open
        is a new opening of the bench: on a bench with a state file it continues the chip
        kept there (the file holds the latest state: another process, or a bench reset, may
        have changed it since this library last saw it); without one it gets the fresh chip
        of the bench file, as a new process would (pyvisa keeps a library while anything
        still refers to it, so a bench opened again in one process could otherwise meet the
        chip a closed opening left, or not, as garbage collection had it)."""
        if not self.sessions:
            if self.state_file or self._opened:
                self._build()
            if self.state_file:
                resume_state(self.world, self.state_file)
        self._opened = True
        return super().open_default_resource_manager()

    def close(self, session):
        """Close a session; closing a resource manager writes the state file."""
        manager = self.sessions.get(session) is self
        status = super().close(session)
        if manager and self.state_file:
            self._save_state()
        return status

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
        serial = getattr(sess, "xbar_serial", None)
        if serial is None:  # asked once per session (enum keys hash in Python)
            serial = sess.xbar_serial = (sess.attrs[constants.ResourceAttribute.interface_type]
                                         == constants.InterfaceType.asrl)
        if serial:
            attribute = sess.get_attribute
            plain = (attribute(constants.ResourceAttribute.asrl_data_bits)[0] >= 8
                     and attribute(constants.ResourceAttribute.asrl_end_out)[0]
                     == constants.SerialTermination.none)
            if not plain:
                return sess.write(data)  # the serial session masks data bits and adds END chars
            # eight data bits, no END: the serial session would pass every byte as it is
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


def _save_if_open(library: weakref.ref) -> None:
    """At interpreter exit: the state of a library whose resource manager was never closed
    (a killed run's), so its state file tells what the instruments were left doing."""
    alive = library()
    if alive is not None and any(session is alive for session in alive.sessions.values()):
        alive._save_state()


def _canonical(address: str) -> str:
    from pyvisa.rname import to_canonical_name

    return to_canonical_name(address)
