"""Headless Chromium (Debian's ``chromium``, installed by .ci/run) for the tests that check a page
as a browser renders it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "Debian's chromium is not installed (.ci/run installs it)"


def dump_dom(address: str, profile: Path, budget_ms: int = 5000) -> str:
    """The page at `address` (a file URI or a loopback URL) as Chromium leaves it after
    `budget_ms` of virtual time (its scripts run), with a fresh profile in `profile`."""
    completed = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
         "--dump-dom", address], capture_output=True, text=True, timeout=120)
    return completed.stdout
