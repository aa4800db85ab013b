"""The run report as one self-contained HTML page: inline CSS, PNG plots as data URIs, no script,
no external URL. Every value from the run is HTML-escaped."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from .content import ReportContent

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:.9em;margin:0 0 16px}
table{border-collapse:collapse;font-size:.9em;margin:6px 0 10px}
th,td{border-bottom:1px solid #e4e4e4;padding:4px 10px;text-align:right;vertical-align:top}
th{background:#f6f6f6}th:first-child,td:first-child{text-align:left}
td.l{text-align:left}
.kv td{text-align:left}.kv td:first-child{color:#555;padding-right:18px}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;margin:6px 0;font-size:.9em}
.ok{color:#2e7d32}.warn{color:#b03030}
nav a{margin-right:12px;font-size:.9em}
figure{margin:18px 0 26px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555;margin-top:4px}
code{background:#f3f3f3;padding:0 3px}
"""


def _num(v: Any, fmt: str = "{:.2f}") -> str:
    return "" if v is None else fmt.format(v)


def _table(headers: list[str], rows: list[list[str]], raw: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary(c: ReportContent) -> str:
    info = c.info
    last = info.get("last_session") or {}
    rows = [("status", info["status"]), ("sequences", f"{info['generated']} of quota {info['quota']} ({info['percent']:.0f}%)"),
            ("sessions", str(info["sessions"])), ("config", info.get("config") or "")]
    if last:
        rows.append(("last session", f"{last.get('status')} at {last.get('finished_at')} (exit {last.get('exit_code')})"))
    for name, loc in (info.get("outputs") or {}).items():
        rows.append((f"{name} output", loc))
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<h2 id="summary">Summary</h2><table class="kv">{body}</table>'


def _plans(c: ReportContent) -> str:
    rows = [[p["name"], str(p["quota"]), str(p["generated"]), f"{p['percent']:.0f}%", _num(p.get("mean_sites")),
             _num(p.get("mean_sites_per_100bp")), _num(p.get("mean_gc"), "{:.3f}")] for p in c.info["plans"]]
    return ('<h2 id="plans">Plans</h2>'
            + _table(["plan", "quota", "committed", "done", "mean sites", "sites/100 bp", "mean GC"], rows))


def _tasks(c: ReportContent) -> str:
    tasks = c.info.get("tasks") or []
    if not tasks:
        return ""
    rows = [[t["task"], t["state"], str(t["rows"]), str(t["sessions"]),
             " ".join(str(x) for x in ((t.get("last_event") or {}).get("event"), (t.get("last_event") or {}).get("ts")) if x),
             f"{t.get('host') or ''}/{t.get('pid') or ''}"] for t in tasks]
    return ('<h2 id="tasks">Array tasks</h2>'
            + _table(["task", "state", "rows", "sessions", "last event", "host/pid"], rows))


def _unplaced(c: ReportContent) -> str:
    entries = c.info.get("unplaced_regulators") or []
    if not entries:
        return '<h2 id="unplaced">Unplaced regulators</h2><p class="ok">Every regulator of the inputs was placed.</p>'
    rows = [[e["plan"], e["regulator"], str(e["sites"]), str(e["sequences"]), e["reason"]] for e in entries]
    return ('<h2 id="unplaced">Unplaced regulators</h2>'
            f'<p class="warn">{len(entries)} regulator(s) of the inputs were never placed, with the likely reason:</p>'
            + _table(["plan", "regulator", "sites in inputs", "sequences", "likely reason and fix"], rows))


def _gaps(c: ReportContent) -> str:
    if not c.bound_gaps:
        return '<h2 id="bounds">Solver bound gaps</h2><p>No solver figures in the committed records.</p>'
    rows = [[g["plan"], str(g["rows"]), str(g["optimal"]), str(g["with_bound"]), str(g["with_gap"]),
             _num(g["mean_gap"]), _num(g["max_gap"])] for g in c.bound_gaps]
    return ('<h2 id="bounds">Solver bound gaps</h2><p class="sub">gap = proven bound &minus; objective of the accepted '
            'layout (in objective units: binding sites unless weights are set); 0 means proven best.</p>'
            + _table(["plan", "rows", "proven optimal", "with a bound", "with a gap", "mean gap", "max gap"], rows))


def _tables(c: ReportContent) -> str:
    out = ['<h2 id="tables">Analysis tables</h2>']
    if c.tables_note:
        out.append(f'<p class="note">{escape(c.tables_note)}</p>')
    for t in c.tables:
        if not t.files:
            continue
        links = ", ".join(f'<a href="{escape(f, quote=True)}">{escape(f.rsplit("/", 1)[-1])}</a>' for f in t.files)
        rows = f", {t.rows} rows" if t.rows else ""
        out.append(f"<p><b>{escape(t.name)}</b> ({len(t.files)} file(s){rows}): {links}</p>")
        if t.summary:
            out.append(_table([t.summary[0][0], "count"], [[k, v] for k, v in t.summary[1:]]))
    return "".join(out)


def _plots(c: ReportContent) -> str:
    out = ['<h2 id="plots">Plots</h2>']
    out.extend(f'<p class="note">{escape(n)}</p>' for n in c.plot_notes)
    for f in c.figures:
        data = base64.b64encode(f.png).decode("ascii")
        out.append(f'<figure id="plot-{escape(f.name, quote=True)}"><img alt="{escape(f.name, quote=True)}" '
                   f'src="data:image/png;base64,{data}"><figcaption><b>{escape(f.name)}</b>: {escape(f.description)}'
                   "</figcaption></figure>")
    return "".join(out)


def render_html(c: ReportContent) -> str:
    """The whole page."""
    nav = "".join(f'<a href="#{k}">{escape(v)}</a>' for k, v in (("summary", "Summary"), ("plans", "Plans"),
                                                                  ("unplaced", "Unplaced regulators"),
                                                                  ("bounds", "Bound gaps"), ("tables", "Tables"),
                                                                  ("plots", "Plots")))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">',
        f"<title>DenseGen run {escape(c.run_id)}</title>", f"<style>{CSS}</style></head><body><main>",
        f"<h1>DenseGen run {escape(c.run_id)}</h1>",
        f'<p class="sub">report written {escape(c.created_at)} by <code>dense report</code></p>', f"<nav>{nav}</nav>",
        _summary(c), _plans(c), _tasks(c), _unplaced(c), _gaps(c), _tables(c), _plots(c),
        "</main></body></html>",
    ]
    return "\n".join(parts)
