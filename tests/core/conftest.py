"""Fixtures for the core tests: recording benches built from the embedded bench files
(helpers in `corehelpers`)."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.benchfile import load_bench
from xbarlab.dryrun import RecordingBench


@pytest.fixture
def default_recording() -> RecordingBench:
    return RecordingBench(load_bench("default"))


@pytest.fixture
def conductances() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(1e-6, 1e-4, size=(32, 32))
