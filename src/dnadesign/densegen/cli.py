"""`dense`: thin Typer CLI over the DenseGen library.

Commands are registered by modules: `cli_setup` (validate-config, inspect config/plan/inputs,
workspace), `cli_run` (run, inspect run, plot, ls-plots) and `cli_export` (export genbank).

`dense run` blocks its stop signals before anything else is imported: a SIGTERM that arrives
while the tool starts up (imports, config, inputs) stays pending, is picked up by the run's
signal guard, and ends the run at its next start-up checkpoint with a trace, instead of either
killing it silently or being noticed only once the run loop starts.
"""

from __future__ import annotations

import os
import sys

if len(sys.argv) > 1 and sys.argv[1] == "run" and os.path.basename(sys.argv[0]) == "dense":
    from .signals import block_early

    block_early()

import typer

from ..core.cli import run_app
from . import cli_export, cli_run, cli_setup

app = typer.Typer(name="dense", help="Design dense DNA arrays of binding sites with CP-SAT and append them to USR.",
                  no_args_is_help=True, add_completion=False)
inspect_app = typer.Typer(help="Inspect a workspace's config, plans, inputs and runs.", no_args_is_help=True)
app.add_typer(inspect_app, name="inspect")

cli_setup.register(app, inspect_app)
cli_run.register(app, inspect_app)
cli_export.register(app)


def main() -> None:
    run_app(app, "dense")
