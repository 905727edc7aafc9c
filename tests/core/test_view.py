"""xbarlab view: headless Chromium opens a run's page while the run is being written, and the
page shows a point recorded after it was opened; the server listens on loopback only."""

from __future__ import annotations

import asyncio
import re
import socket
import threading

import pytest
from browser import CHROMIUM, MISSING, dump_dom
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from xbarlab.store import RunStore
from xbarlab.view import make_app


def serve_in_thread(store_dir, on_request):
    """Start the view on an ephemeral loopback port in a thread; (port, stop)."""
    ready, holder = threading.Event(), {}

    def run() -> None:
        async def main() -> None:
            sockets = bind_sockets(0, "127.0.0.1")
            server = HTTPServer(make_app(store_dir, on_request))
            server.add_sockets(sockets)
            holder["port"] = sockets[0].getsockname()[1]
            holder["stop"] = asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            holder["sockets"] = sockets
            ready.set()
            await holder["stop"].wait()
            server.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)

    def stop() -> None:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(30)

    return holder, stop


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_the_page_shows_a_point_recorded_after_it_opened(tmp_path):
    store_dir = tmp_path / "store"
    with RunStore(store_dir) as store:
        run = store.start_run("read-map", {"v_read": 0.2}, shape=(4, 4))
        for col in range(3):
            run.record_point(0, col, "read", 0.2, 2e-6 * (col + 1))
        run.checkpoint("progress", {"phase": 1, "phases": 2, "description": "read map",
                                    "done": 3, "total": 16, "eta_s": 13.0,
                                    "overall_eta_s": 60.0})
    recorded = []

    def on_request(path: str) -> None:
        if path.startswith("/api/run/") and not recorded:  # the page is open and polling
            with RunStore(store_dir) as writer:
                later = writer.resume(1, force=True)
                recorded.append(later.record_point(2, 3, "read", 0.2, 7.5e-6))

    holder, stop = serve_in_thread(store_dir, on_request)
    try:
        assert all(s.getsockname()[0] == "127.0.0.1" for s in holder["sockets"])
        page = dump_dom(f"http://127.0.0.1:{holder['port']}/run/1", tmp_path / "profile",
                        budget_ms=6000)
    finally:
        stop()
    assert recorded == [3]
    body = re.search(r"<body[^>]*>", page).group(0)
    assert 'data-last-seq="3"' in body and 'data-points="4"' in body
    assert "#3 read on (2, 3): 0.2 V, 7.5e-06 A" in page
    assert "phase 1 of 2: read map, 3/16" in page
    assert "/run/1/figure/0.png" in page  # the map filling in
    with socket.socket() as probe:  # nothing listens once the view stopped
        assert probe.connect_ex(("127.0.0.1", holder["port"])) != 0
