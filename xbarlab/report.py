"""``xbarlab report RUN``: one self-contained HTML file of a run, to open anywhere and share.

Everything is inside the file: styles inline, figures as PNG data URIs, no script or font from
the network. It shows the run's metadata (bench, chip, seed, software, host, times), its
parameters with their units and help (from the protocol's declaration), its metrics, its child
runs (a campaign's tasks, a pipeline's stages), its figures (each map as a heat map, the
points over time, the protocol's own figures where it declares some, a campaign's metrics
against its swept values), the instruments' snapshots and the run's history.

The page marks on its ``<body>`` how many figures it has and how many loaded
(``data-figures``, ``data-figures-loaded``), so a test in a real browser can check it.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xbarlab.figures import map_figures, png_bytes, points_figure
from xbarlab.provenance import bench_of

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; } .failed { color: #b00; } .completed { color: #070; }
"""

LOAD_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.setAttribute("data-figures", images.length);
  document.body.setAttribute("data-figures-loaded", images.filter(function (image) {
    return image.complete && image.naturalWidth > 0; }).length);
});
"""


def write_report(store, run_id: int, path: str | Path | None = None) -> Path:
    """Write the report of run `run_id` of `store` (a `RunStore`) to `path` (default:
    ``report-<id>.html`` next to the store); the path."""
    html_text = render_report(store, run_id)
    path = Path(path) if path is not None else store.data_dir / f"report-{run_id}.html"
    path.write_text(html_text, encoding="utf-8")
    return path


def render_report(store, run_id: int) -> str:
    """The report of run `run_id` as HTML text."""
    run = store.open_run(run_id)
    info = run.info
    checkpoints = run.checkpoints()
    metrics = checkpoints.get("metrics") or {}
    sections = [
        f"<h1>xbarlab run {info.run_id}: {_e(info.protocol)} "
        f"<span class='{_e(info.status)}'>({_e(info.status)})</span></h1>",
        _table(["", ""], _summary(info), header=False),
        "<h2>Parameters</h2>" + _table(["parameter", "value", "unit", "meaning"],
                                       _parameters(info)),
        "<h2>Metrics</h2>" + _protocol_table(info.protocol, metrics)
        + (_table(["metric", "value"], _flat(metrics).items()) if metrics
           else "<p>none stored</p>"),
    ]
    children = store.children(run_id)
    if children:
        sections.append("<h2>Child runs</h2>" + _table(
            ["run", "protocol", "status", "task or stage", "points"],
            [(child.run_id, child.protocol, child.status, _child_label(store, child.run_id),
              child.n_points) for child in children]))
    figures = list(_figures(store, run, info))
    sections.append("<h2>Figures</h2>" + ("".join(_figure(caption, figure)
                                                   for caption, figure in figures)
                                          or "<p>none</p>"))
    for shot in run.snapshots():
        sections.append(f"<h2>Instruments at the {_e(shot.phase)} ({_utc(shot.t)})</h2>"
                        + _table(["instrument", "setting", "value", "unit"],
                                 _snapshot_rows(shot.instruments)))
    sections.append("<h2>History</h2>" + _table(
        ["time (UTC)", "event", "detail"],
        [(_utc(event.t), event.event, (event.detail or "").splitlines()[-1:][0]
          if event.detail else "") for event in run.events()]))
    body = "\n".join(sections)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>xbarlab run {info.run_id} ({_e(info.protocol)})</title>"
            f"<style>{STYLE}</style><script>{LOAD_CHECK}</script></head>"
            f"<body>\n{body}\n<p><small>written by xbarlab at {_utc(time.time())}</small></p>"
            "</body></html>\n")


# ------------------------------------------------------------------------ content


def _summary(info) -> list[tuple[str, Any]]:
    bench = bench_of(info.bench_text)
    duration = (f"{info.ended_at - info.started_at:.1f} s" if info.ended_at else "running")
    rows = [("started (UTC)", _utc(info.started_at)), ("duration", duration)]
    if bench is not None:
        chip = bench.chip
        rows += [("bench", f"{bench.name}: {bench.description}"),
                 ("chip", f"{chip.rows} x {chip.cols} {chip.device}, {chip.preset} devices")]
    rows += [("seed of the virtual chip", info.seed), ("xbarlab", info.software_version),
             ("host, process", f"{info.writer_host}, {info.writer_pid}"),
             ("points, maps", f"{info.n_points}, {info.n_maps}")]
    if info.parent_id is not None:
        rows.append(("part of run", info.parent_id))
    if info.traceback:
        rows.append(("error", info.traceback.strip().splitlines()[-1]))
    return rows


def _parameters(info) -> list[tuple[Any, ...]]:
    """Each stored parameter with the unit and help its protocol declares (when installed)."""
    from xbarlab.registry import available_protocols

    declared = getattr(available_protocols().get(info.protocol), "parameters", {})
    rows = []
    for name, value in info.params.items():
        entry = declared.get(name)
        shown = value if not isinstance(value, str) or len(value) < 200 else value[:200] + "..."
        rows.append((name, shown, entry.param.unit if entry else "",
                     entry.param.help if entry else ""))
    return rows


def _protocol_table(protocol: str, metrics: Mapping[str, Any]) -> str:
    """The protocol's own table of the metrics (``xbarlab run`` prints the same), if it has
    one."""
    from xbarlab.registry import available_protocols

    table = getattr(available_protocols().get(protocol), "table", None)
    return f"<pre>{_e(table(metrics))}</pre>" if table is not None and metrics else ""


def _child_label(store, run_id: int) -> str:
    checkpoints = store.open_run(run_id).checkpoints()
    return str(checkpoints.get("campaign.task") or checkpoints.get("pipeline.stage") or "")


def _figures(store, run, info) -> Iterable[tuple[str, Any]]:
    """The run's figures: its maps, its points over time, the protocol's own, a campaign's."""
    from xbarlab.registry import available_protocols

    yield from map_figures(run)
    points = points_figure(run, info.n_points) if info.n_points else None
    if points is not None:
        yield "every point's current over time", points
    protocol = available_protocols().get(info.protocol)
    if protocol is not None and protocol.figures is not None:
        yield from protocol.figures(run)
    if info.protocol == "campaign":
        from xbarlab.campaign.runner import campaign_figures, campaign_rows

        rows = campaign_rows(store, info.run_id)
        if rows:
            for metric, axis, figure in campaign_figures(rows, info.params.get("axes", [])):
                yield f"{metric} against {axis}", figure


def _snapshot_rows(instruments: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for name, shot in instruments.items():
        rows.append((name, "identity", shot.get("identity", ""), ""))
        if "error" in shot:
            rows.append((name, "(not read)", shot["error"], ""))
        settings = dict(shot.get("settings", {}))
        groups = {"": settings, **settings.pop("channels", {})}
        for channel, values in groups.items():
            for key, entry in values.items():
                label = f"{channel}.{key}" if channel else key
                value = entry.get("value", entry.get("error"))
                if isinstance(value, list) and len(value) > 8:
                    value = _counts(value)
                rows.append((name, label, value, entry.get("unit", "")))
    return rows


def _counts(values: list[Any]) -> str:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return f"{len(values)} values: " + ", ".join(f"{k} x{n}" for k, n in counts.items())


def _flat(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}/"))
        else:
            text = json.dumps(value) if isinstance(value, list) else value
            flat[f"{prefix}{key}"] = text if not isinstance(text, str) or len(text) < 300 \
                else text[:300] + "..."
    return flat


# ------------------------------------------------------------------------ HTML


def _figure(caption: str, figure: Any) -> str:
    data = base64.b64encode(png_bytes(figure)).decode("ascii")
    return (f"<figure><img alt='{_e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _table(headers: list[str], rows: Iterable[Iterable[Any]], header: bool = True) -> str:
    head = ("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>") if header else ""
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        shown = f"{value:.6g}" if isinstance(value, float) else value
        return f"<td class='number'>{_e(shown)}</td>"
    return f"<td>{_e(value)}</td>"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
