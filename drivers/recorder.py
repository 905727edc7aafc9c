"""Record a driver's conversation with a real instrument, to replay it as an exact-pair test.

    recorder = RecordingResource(rm.open_resource("GPIB0::26::INSTR"))
    with Keithley2600(recorder) as smu:
        smu.channel("a").measure()
    print(recorder.as_test_pairs())   # paste into a test: expected_protocol(Keithley2600, [...])

A trace captured on hardware is the strongest evidence a command and its reply format are right
(grade HW in commands.toml); replaying it keeps the driver honest when it changes.
"""

from __future__ import annotations

from typing import Any


class RecordingResource:
    """Wraps a message-based resource and keeps every (command, reply) pair, in order.

    A command with no reply is recorded with reply None; a read belongs to the last command.
    Every other attribute is passed through to the wrapped resource.
    """

    def __init__(self, resource: Any):
        object.__setattr__(self, "_resource", resource)
        object.__setattr__(self, "pairs", [])

    def write(self, command: str) -> Any:
        self.pairs.append((command, None))
        return self._resource.write(command)

    def read(self) -> str:
        reply = self._resource.read()
        command, previous = self.pairs[-1] if self.pairs else (None, None)
        if command is None or previous is not None:
            self.pairs.append((None, reply))  # a reply with no command of its own
        else:
            self.pairs[-1] = (command, reply)
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resource, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._resource, name, value)

    def as_test_pairs(self) -> str:
        """The conversation as Python source for an `expected_protocol` pair list."""
        lines = ["["]
        lines += [f"    ({command!r}, {reply!r})," for command, reply in self.pairs]
        lines.append("]")
        return "\n".join(lines)
