"""`MessageLog`: every message the bench writes to one driver's session, for tests that count
or read the conversation of a protocol."""

from __future__ import annotations


class MessageLog:
    """Every message written to one driver's session (wraps the counted resource)."""

    def __init__(self, driver):
        self.resource, self.messages = driver._resource, []
        driver._resource = self

    def write(self, message, *args, **kwargs):
        self.messages.append(message)
        return self.resource.write(message, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.resource, name)

    def __setattr__(self, name, value):
        if name in ("resource", "messages"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.resource, name, value)
