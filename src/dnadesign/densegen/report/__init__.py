"""`dense report`: one self-contained HTML page per run.

The page holds the run's summary, a per-plan table (quota, committed, sites per 100 bp), the
array tasks, the regulators never placed (with the likely reason), the solver's bound gaps, links
to the analysis tables (`outputs/tables/libraries|attempts/*.parquet`) and the plots, embedded as
PNG data. It needs no network and no other file to display (only the table links point at files).
`content.gather` collects, `html.render_html` renders, `write_report` writes atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...core.atomic import atomic_write_text
from ..config import LoadedConfig
from .content import ReportContent, gather
from .html import render_html

REPORT_NAME = "report.html"


def default_report_path(cfg: LoadedConfig) -> Path:
    """`<workspace>/outputs/report.html`."""
    return Path(cfg.outputs_dir) / REPORT_NAME


def write_report(cfg: LoadedConfig, output: Path | None = None,
                 plot_names: list[str] | None = None) -> tuple[Path, ReportContent]:
    """Gather the run's report, write it to `output` (default `outputs/report.html`) atomically, return both."""
    out = Path(output) if output is not None else default_report_path(cfg)
    content = gather(cfg, plot_names)
    outputs = Path(cfg.outputs_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    for t in content.tables:  # links relative to where the page is written
        t.files = [Path(os.path.relpath(outputs / f, out.parent.resolve())).as_posix() for f in t.files]
    atomic_write_text(out, render_html(content))
    return out, content


__all__ = ["REPORT_NAME", "ReportContent", "default_report_path", "write_report"]
