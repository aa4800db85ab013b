"""`dense report`: a thin wrapper over `densegen.report`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.cli import handled
from ..core.console import out, print_json
from ..core.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add `dense report` to the `dense` app."""

    @app.command("report")
    @handled
    def report_cmd(
        config: Path | None = typer.Option(None, "-c", "--config", show_default=False,
                                           help="Workspace config (default: $DENSEGEN_CONFIG, else ./config.yaml)."),
        output: Path | None = typer.Option(None, "-o", "--output", metavar="PATH",
                                           help="Where to write the page (default: outputs/report.html)."),
        only: str | None = typer.Option(None, "--only", help="Comma-separated plots to include, ours or the incumbent ids (default: plots.default, else all)."),
        as_json: bool = typer.Option(False, "--json", help="Print what the page shows (without the images) as JSON."),
    ) -> None:
        """Write one self-contained HTML page of a run: summary, plans, unplaced regulators, bound gaps, tables, plots."""
        from .config import load_config
        from .plots import parse_plot_names
        from .report import write_report

        names = parse_plot_names(only)
        if output is not None and output.is_dir():
            raise UsageError(f"--output {output} is a directory", hint="give a file path, e.g. report.html")
        cfg = load_config(config)
        path, content = write_report(cfg, output, names)
        if as_json:
            print_json({"path": str(path), **content.as_json()})
            return
        out.print(str(path), highlight=False)


__all__ = ["register"]
