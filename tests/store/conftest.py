"""Shared fixtures: a fresh run store in a temporary directory for every test."""

import pytest

from xbarlab.store import RunStore


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "data") as opened:
        yield opened
