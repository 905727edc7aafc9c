"""``xbarlab view``: a local web page that follows the store's runs live, as they are written.

Tornado serves it (already a dependency through dask.distributed; a maintained asynchronous web
server, the one Jupyter runs on), on the loopback interface only: nothing else listens, and no
login is needed because nobody else can reach it. The page lists the store's runs; a run's page
polls ``/api/run/<id>`` once a second and shows, from the store alone (never from the
instruments): its status, progress (phase k of n, ETAs: the engine stores the progress in the
run), the last point recorded, and figures redrawn when the run has grown: the conductance map
filling in from the reads so far, the recent |current| against voltage (an IV loop as it is
swept), the conductance read against time (write-verify converging), and once the run has
them, its protocol's own figures (`xbarlab.figures.run_figures`).

The figures are PNGs drawn by matplotlib on the server, so the page needs no script from the
network. Each run's live state is kept between requests and grows by the new points only.
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xbarlab.figures import curves_figure, map_figure, png_bytes, run_figures
from xbarlab.provenance import bench_and_chip
from xbarlab.store import OPERATIONS

RECENT = 2000
"""Recent points kept per run for the live curves."""
POLL_MS = 1000

PAGE = """<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: 0.2em 0.6em; }}
img {{ max-width: 48%; margin: 0.3em; }}</style></head>
<body data-run="{run}" data-points="0" data-last-seq="-1"><h1>{title}</h1>{body}
<script>
var version = -1;
function poll() {{
  fetch("{api}").then(function (r) {{ return r.json(); }}).then(function (d) {{ show(d); }})
    .finally(function () {{ setTimeout(poll, {poll}); }});
}}
{script}
poll();
</script></body></html>"""

RUN_SCRIPT = """
function show(d) {
  document.body.setAttribute("data-points", d.points);
  document.body.setAttribute("data-last-seq", d.last ? d.last.seq : -1);
  document.getElementById("status").textContent = d.status + ", " + d.points + " points";
  document.getElementById("progress").textContent = d.progress_text;
  document.getElementById("last").textContent = d.last_text;
  if (d.version !== version) {
    version = d.version;
    var holder = document.getElementById("figures");
    holder.innerHTML = "";
    for (var k = 0; k < d.figures.length; k++) {
      var image = document.createElement("img");
      image.alt = d.figures[k];
      image.src = "/run/" + d.run + "/figure/" + k + ".png?v=" + version;
      holder.appendChild(image);
    }
  }
}
"""

RUNS_SCRIPT = """
function show(d) {
  var rows = d.runs.map(function (r) {
    return "<tr><td><a href='/run/" + r.id + "'>" + r.id + "</a></td><td>" + r.protocol +
      "</td><td>" + r.status + "</td><td>" + r.bench + "</td><td>" + r.chip + "</td><td>" +
      r.points + "</td></tr>";
  });
  document.getElementById("runs").innerHTML =
    "<tr><th>run</th><th>protocol</th><th>status</th><th>bench</th><th>chip</th><th>points</th></tr>"
    + rows.join("");
}
"""


class LiveRun:
    """What the page shows of one run, grown by the points recorded since the last look."""

    def __init__(self, shape: tuple[int, int] | None):
        self.shape = shape or (1, 1)
        self.conductance = np.full(self.shape, np.nan)
        self.seen = 0
        self.recent: deque = deque(maxlen=RECENT)
        self.reads: deque = deque(maxlen=RECENT)

    def grow(self, run) -> None:
        """Fold in the points recorded since the last call."""
        for chunk in run.point_chunks(start=self.seen):
            reads = (chunk["operation"] == OPERATIONS.index("read")) & (chunk["voltage"] != 0)
            rows, cols = chunk["row"][reads], chunk["col"][reads]
            inside = (rows < self.shape[0]) & (cols < self.shape[1])
            g = chunk["current"][reads] / chunk["voltage"][reads]
            self.conductance[rows[inside], cols[inside]] = np.abs(g[inside])
            self.reads.extend(zip(chunk["t"][reads].tolist(), np.abs(g).tolist(), strict=True))
            self.recent.extend(zip(chunk["voltage"].tolist(), chunk["current"].tolist(),
                                   strict=True))
            self.seen = int(chunk["seq"][-1]) + 1

    def figures(self) -> list[tuple[str, Any]]:
        """The live figures the points so far allow (none of an empty kind)."""
        figures = []
        live = map_figure(self.conductance, "conductance read so far (|I| / V)", "S")
        if live is not None:
            figures.append(("conductance map filling in", live))
        swept = [(v, i) for v, i in self.recent if np.isfinite(v) and np.isfinite(i) and i]
        if swept:
            v, i = np.array(swept).T
            figures.append(("recent points", curves_figure(
                [("recent points", v, i)], "|current| against voltage, recent points",
                "voltage (V)", "|current| (A)", logy=True, style=".")))
        if self.reads:
            t, g = np.array(self.reads).T
            finite = np.isfinite(g) & (g > 0)
            if finite.any():
                figures.append(("reads over time", curves_figure(
                    [("reads", t[finite] - t[finite].min(), g[finite])],
                    "conductance read against time", "time since the first shown (s)",
                    "conductance (S)", logy=True, style=".")))
        return figures


def make_app(store_dir: str | Path | None = None,
             on_request: Callable[[str], None] | None = None):
    """The Tornado application serving the store at `store_dir` (``$XBARLAB_DATA`` else
    ``./xbarlab-data``); `on_request(path)` is called before each request (tests)."""
    import tornado.web

    from xbarlab.store import RunStore

    store = RunStore(store_dir)
    live: dict[int, LiveRun] = {}
    drawn: dict[int, tuple[int, list]] = {}

    def figures_of(run_id: int) -> tuple[list, int]:
        run = store.open_run(run_id)
        info = run.info
        state = live.setdefault(run_id, LiveRun(info.shape))
        state.grow(run)
        version = info.n_points * 1000 + info.n_maps + (info.status != "running")
        if drawn.get(run_id, (None,))[0] != version:
            figures = state.figures()
            if info.status != "running":
                figures += list(run_figures(run))
            drawn[run_id] = (version, figures)
        return drawn[run_id][1], version

    class Base(tornado.web.RequestHandler):
        def prepare(self) -> None:
            if on_request is not None:
                on_request(self.request.path)

    class Runs(Base):
        def get(self) -> None:
            self.write(PAGE.format(title="xbarlab runs", run="", api="/api/runs",
                                   poll=POLL_MS * 2, body="<table id='runs'></table>",
                                   script=RUNS_SCRIPT))

    class RunsApi(Base):
        def get(self) -> None:
            runs = []
            for info in store.runs():
                bench, chip = bench_and_chip(info.bench_text)
                runs.append({"id": info.run_id, "protocol": html.escape(info.protocol),
                             "status": info.status, "bench": html.escape(bench),
                             "chip": html.escape(chip), "points": info.n_points})
            self.write({"runs": runs})

    class RunPage(Base):
        def get(self, run_id: str) -> None:
            info = store.run_info(int(run_id))
            bench, chip = bench_and_chip(info.bench_text)
            body = (f"<p>{html.escape(info.protocol)} on bench {html.escape(bench)}, chip "
                    f"{html.escape(chip)} &middot; <a href='/'>all runs</a></p>"
                    "<p id='status'></p><p id='progress'></p><p>last point: "
                    "<span id='last'></span></p><div id='figures'></div>")
            self.write(PAGE.format(title=f"xbarlab run {info.run_id}", run=info.run_id,
                                   api=f"/api/run/{info.run_id}", poll=POLL_MS, body=body,
                                   script=RUN_SCRIPT))

    class RunApi(Base):
        def get(self, run_id: str) -> None:
            run = store.open_run(int(run_id))
            info = run.info
            figures, version = figures_of(info.run_id)
            last = None
            if info.n_points:
                chunk = next(run.point_chunks(start=info.n_points - 1))
                last = {"seq": int(chunk["seq"][0]), "row": int(chunk["row"][0]),
                        "col": int(chunk["col"][0]),
                        "operation": OPERATIONS[int(chunk["operation"][0])],
                        "voltage": _number(chunk["voltage"][0]),
                        "current": _number(chunk["current"][0])}
            self.write({"run": info.run_id, "status": info.status, "points": info.n_points,
                        "last": last, "last_text": _last_text(last),
                        "progress_text": _progress_text(run.checkpoints().get("progress"),
                                                        info.status),
                        "figures": [caption for caption, _ in figures], "version": version})

    class Figure(Base):
        def get(self, run_id: str, index: str) -> None:
            figures, _ = figures_of(int(run_id))
            if int(index) >= len(figures):
                raise tornado.web.HTTPError(404)
            self.set_header("Content-Type", "image/png")
            self.set_header("Cache-Control", "no-store")
            self.write(png_bytes(figures[int(index)][1], dpi=80))

    return tornado.web.Application([
        (r"/", Runs), (r"/api/runs", RunsApi), (r"/run/(\d+)", RunPage),
        (r"/api/run/(\d+)", RunApi), (r"/run/(\d+)/figure/(\d+)\.png", Figure)])


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _last_text(last: dict | None) -> str:
    if last is None:
        return "none yet"
    current = "-" if last["current"] is None else f"{last['current']:.4g} A"
    voltage = "-" if last["voltage"] is None else f"{last['voltage']:.4g} V"
    return (f"#{last['seq']} {last['operation']} on ({last['row']}, {last['col']}): "
            f"{voltage}, {current}")


def _progress_text(progress: dict | None, status: str) -> str:
    if status != "running":
        return f"run {status}"
    if not progress:
        return "starting"
    from xbarlab.progress import duration_text

    text = (f"phase {progress['phase']} of {progress['phases']}: {progress['description']}, "
            f"{progress['done']}/{progress['total']}")
    if progress.get("eta_s") is not None:
        text += f", this phase ~{duration_text(progress['eta_s'])} left"
    if progress.get("overall_eta_s") is not None and progress["phases"] > 1:
        text += f", all phases ~{duration_text(progress['overall_eta_s'])} left"
    return text


def serve(store_dir: str | Path | None = None, port: int = 8765) -> None:
    """Serve the view on http://127.0.0.1:`port`/ until Ctrl-C (loopback only)."""
    import asyncio

    async def main() -> None:
        server = make_app(store_dir).listen(port, address="127.0.0.1")
        print(f"xbarlab view: http://127.0.0.1:{port}/ (Ctrl-C stops it)", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            server.stop()

    asyncio.run(main())


__all__ = ["LiveRun", "make_app", "serve"]
