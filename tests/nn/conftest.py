"""Fixtures of the nn tests: the digits split, loaded once."""

from __future__ import annotations

import pytest

from xbarlab.nn.data import load_digits_split


@pytest.fixture(scope="session")
def digits():
    return load_digits_split()
