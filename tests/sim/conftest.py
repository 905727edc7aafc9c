"""Fixtures for the virtual bench: fresh, independent benches built from bench-file text."""

from __future__ import annotations

import pytest
import pyvisa
from simhelpers import embedded_text, set_key
from xbarlab.sim_instruments import XbarSimVisaLibrary


@pytest.fixture
def open_bench(tmp_path):
    """open_bench(name, extra="", text=None, **keys) -> (ResourceManager, library), fresh.

    ``keys`` replace ``key = value`` lines of the embedded bench file (or of ``text``);
    ``extra`` is appended.
    """
    managers = []

    def factory(name: str = "default", extra: str = "", text: str | None = None, **keys):
        text = embedded_text(name) if text is None else text
        for key, value in keys.items():
            text = set_key(text, key, value)
        path = tmp_path / f"{name}-{len(managers)}.toml"
        path.write_text(text + extra)
        lib = XbarSimVisaLibrary.fresh(str(path))
        rm = pyvisa.ResourceManager(lib)
        managers.append(rm)
        return rm, lib

    yield factory
    for rm in managers:
        rm.close()
