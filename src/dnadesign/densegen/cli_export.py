"""`dense export genbank`: a thin wrapper over `densegen.export`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.cli import handled
from ..core.console import out, print_json

ConfigOpt = typer.Option(None, "-c", "--config", help="Workspace config (default: $DENSEGEN_CONFIG, else ./config.yaml).",
                         show_default=False)


def register(app: typer.Typer) -> None:
    """Add the `export` command group to the `dense` app."""
    export_app = typer.Typer(help="Hand on a run's designed sequences in other formats.", no_args_is_help=True)
    app.add_typer(export_app, name="export")

    @export_app.command("genbank")
    @handled
    def genbank(
        path: Path = typer.Argument(..., help="Output GenBank file (e.g. designs.gb); written atomically."),
        config: Path | None = ConfigOpt,
        plan: str | None = typer.Option(None, "--plan", help="Only the sequences of this plan."),
        limit: int | None = typer.Option(None, "--limit", min=0, help="Write at most N records (default: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    ) -> None:
        """The run's sequences as GenBank: every placed site (regulator, strand) and promoter element a feature."""
        from .config import load_config
        from .export import export_genbank

        cfg = load_config(config)
        n, source = export_genbank(cfg, path, plan=plan, limit=limit)
        if as_json:
            print_json({"records": n, "path": str(path), "source": source})
        else:
            out.print(f"Wrote {n} record(s) from {source} to {path}", highlight=False, soft_wrap=True)
