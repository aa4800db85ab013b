"""`dense run`, `dense inspect run`, `dense plot`, `dense ls-plots`: thin wrappers over the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from ..core.cli import handled
from ..core.console import err, out, print_json
from ..core.errors import UsageError

ConfigOpt = typer.Option(None, "-c", "--config", help="Workspace config (default: $DENSEGEN_CONFIG, else ./config.yaml).",
                         show_default=False)


def _load(config: Path | None):
    from .config import load_config

    return load_config(config)


def _summary_table(state, title: str):
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in ("plan", "done", "quota", "%", "new", "libs", "dup", "rej", "infeas", "tmout"):
        t.add_column(c, justify="left" if c == "plan" else "right")
    for p in state.plans.values():
        t.add_row(p.name, str(p.generated), str(p.quota), f"{p.percent:.0f}", str(p.accepted_session), str(p.libraries),
                  str(p.duplicates), str(p.rejected), str(p.infeasible), str(p.no_solution))
    t.add_row("[bold]total", f"[bold]{state.generated}", f"[bold]{state.quota}", f"{state.percent:.0f}",
              str(sum(p.accepted_session for p in state.plans.values())), "", "", "", "", "")
    return t


def register(app: typer.Typer, inspect_app: typer.Typer) -> None:
    """Add this module's commands to the `dense` app."""

    @app.command("run")
    @handled
    def run_cmd(
        config: Path | None = ConfigOpt,
        no_plot: bool = typer.Option(False, "--no-plot", help="Do not render plots after the run (batch jobs)."),
        fresh: bool = typer.Option(False, "--fresh", help="Discard this workspace's outputs and start over."),
        resume: bool = typer.Option(False, "--resume", help="Require existing outputs and continue them (the default when they exist)."),
        extend_quota: int = typer.Option(0, "--extend-quota", min=0, metavar="N",
                                         help="Add N sequences, spread across the plans, on top of the current quotas."),
        workers: int | None = typer.Option(None, "--workers", min=1,
                                              help="CP-SAT workers (default: solver.workers, else the scheduler's CPUs, else the machine's)."),
        progress: str | None = typer.Option(None, "--progress", metavar="auto|bar|lines|off",
                                               help="Progress display (default: logging.progress)."),
        max_seconds: float | None = typer.Option(None, "--max-seconds", min=0.1,
                                                    help="Stop cleanly after this many seconds (default: runtime.max_seconds)."),
        parallel_libraries: int = typer.Option(1, "--parallel-libraries", min=1, metavar="K",
                                               help="Solve K libraries at once, each with workers/K CP-SAT workers (one writer)."),
        metrics_dir: Path | None = typer.Option(None, "--metrics-dir", metavar="DIR",
                                                help="Write Prometheus textfile metrics here while running (node_exporter's textfile directory)."),
        shard: str | None = typer.Option(None, "--shard", metavar="K/N",
                                         help="Run as task K of N array tasks sharing this config's quotas (default: "
                                              "from SLURM_ARRAY_* / SGE_TASK_*; `none` turns array mode off)."),
    ) -> None:
        """Design sequences until every plan meets its quota; resumes when outputs exist."""
        if fresh and resume:
            raise UsageError("--fresh and --resume cannot be used together", hint="use --fresh to start over or --resume to continue")
        if progress is not None and progress not in ("auto", "bar", "lines", "off"):
            raise UsageError(f"--progress must be auto, bar, lines or off, not {progress!r}")
        from ..core.errors import DnadesignError
        from ..core.jobs import safe_exit_code
        from .jobtrace import trace_failed_start
        from .signals import SignalGuard, StopFlag

        stop = StopFlag()
        # Route stop signals first, so every thread started later (polars, arrow, CP-SAT) inherits the mask.
        with SignalGuard(stop):
            from .pipeline import run
            from .run_metrics import metered
            from .settings import LOG_LEVELS, RunOptions
            from .shard import resolve_shard

            cfg = None
            try:
                array_task = resolve_shard(shard)
                cfg = _load(config)
                run = metered(run, metrics_dir, cfg)  # the same run, with textfile metrics when --metrics-dir is given
            except DnadesignError as exc:  # the task still leaves a trace (job_started + job_finished)
                trace_failed_start(config, cfg, exc, int(exc.exit_code))
                raise
            threshold = LOG_LEVELS.index(cfg.model.logging.level)

            def note(level: str, message: str) -> None:
                if LOG_LEVELS.index(level) >= threshold:
                    err.print(message, highlight=False)

            result = run(cfg, RunOptions(fresh=fresh, resume=resume or None, extend_quota=extend_quota, workers=workers,
                                         progress=progress, max_seconds=max_seconds, stop=stop,
                                         parallel_libraries=parallel_libraries, shard=array_task, on_note=note))
        out.print(_summary_table(result.state, f"dense run {cfg.run_id} (session {result.state.session}): {result.status}"))
        if result.status == "completed":
            err.print(f"[green]{result.message}[/green]", highlight=False)
            for loc in result.sinks:
                err.print(f"  output: {loc}", highlight=False)
            _report_unplaced(cfg, note)
            if not no_plot:
                _plots_after_run(cfg)
        else:
            err.print(f"[yellow]dense: {result.message}[/yellow]", highlight=False)
            # A stopped run may leave an abandoned solve running in a daemon thread; everything is
            # committed and recorded by now, so leave without waiting for it (or for interpreter teardown).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(safe_exit_code(result.exit_code))
        raise typer.Exit(safe_exit_code(result.exit_code))

    def _report_unplaced(cfg, note) -> None:
        from .coverage_report import render_line
        from .inspect_run import inspect_run

        for entry in inspect_run(cfg)["unplaced_regulators"]:
            note("WARNING", f"warning: {render_line(entry)}")

    def _plots_after_run(cfg) -> None:
        from ..core.errors import DnadesignError
        from .plots.render import render_plots

        try:
            paths = render_plots(cfg)
            err.print(f"  plots: {len(paths)} file(s) in {Path(cfg.outputs_dir) / 'plots'}", highlight=False)
        except (DnadesignError, OSError, ValueError, RuntimeError) as exc:  # the run succeeded: a plot problem must not fail it
            err.print(f"[yellow]warning:[/yellow] plots were not rendered ({exc}); retry with `dense plot`", highlight=False)

    @inspect_app.command("run")
    @handled
    def inspect_run_cmd(
        config: Path | None = ConfigOpt,
        usr_events_path: bool = typer.Option(False, "--usr-events-path",
                                             help="Print only the USR .events.log path of this run (for notify) and exit."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Show a run's progress per plan (from what is committed in the outputs)."""
        from .inspect_run import inspect_run
        from .inspect_run import usr_events_path as events_path_of

        cfg = _load(config)
        if usr_events_path:
            sys.stdout.write(f"{events_path_of(cfg)}\n")
            sys.stdout.flush()
            return
        info = inspect_run(cfg)
        if as_json:
            print_json(info)
            return
        _render_inspect(info)

    def _render_inspect(info: dict) -> None:
        from rich.table import Table

        out.print(f"run [bold]{info['run_id']}[/bold]  status: {info['status']}  "
                  f"{info['generated']}/{info['quota']} ({info['percent']:.0f}%)  sessions: {info['sessions']}", highlight=False)
        t = Table(show_lines=False)
        for c in ("plan", "generated", "quota", "%", "mean sites", "mean sites/100bp", "mean GC"):
            t.add_column(c, justify="left" if c == "plan" else "right")
        for p in info["plans"]:
            t.add_row(p["name"], str(p["generated"]), str(p["quota"]), f"{p['percent']:.0f}",
                      "" if p.get("mean_sites") is None else f"{p['mean_sites']:.2f}",
                      "" if p.get("mean_sites_per_100bp") is None else f"{p['mean_sites_per_100bp']:.2f}",
                      "" if p.get("mean_gc") is None else f"{p['mean_gc']:.3f}")
        out.print(t)
        for name, loc in info["outputs"].items():
            out.print(f"{name}: {loc}", highlight=False)
        if info.get("usr_events_path"):
            out.print(f"usr events: {info['usr_events_path']}", highlight=False)
        from .coverage_report import render_line

        for entry in info.get("unplaced_regulators") or []:
            out.print(f"warning: {render_line(entry)}", highlight=False)
        if info.get("last_session"):
            s = info["last_session"]
            out.print(f"last session: {s.get('status')} at {s.get('finished_at')} (exit {s.get('exit_code')})"
                      + (f" - {s['reason']}" if s.get("reason") else ""), highlight=False)
        if info.get("tasks"):
            tt = Table(title="array tasks", show_lines=False)
            for c in ("task", "state", "rows", "sessions", "last event", "job", "host/pid"):
                tt.add_column(c, justify="right" if c in ("rows", "sessions") else "left")
            for task in info["tasks"]:
                last = task.get("last_event") or {}
                job = task.get("job") or {}
                tt.add_row(task["task"], task["state"], str(task["rows"]), str(task["sessions"]),
                           f"{last.get('event', '')} {last.get('ts', '')}".strip(),
                           f"{job.get('action', '')} {job.get('state') or ''}".strip(),
                           f"{task.get('host') or ''}/{task.get('pid') or ''}")
            out.print(tt)

    @app.command("plot")
    @handled
    def plot_cmd(
        config: Path | None = ConfigOpt,
        only: str | None = typer.Option(None, "--only", help="Comma-separated plot names, ours or the incumbent DenseGen ids (see `dense ls-plots`)."),
        formats: str | None = typer.Option(None, "--format", help="Comma-separated formats: png, pdf, svg (default: plots.formats)."),
    ) -> None:
        """Render plots of the run's outputs into outputs/plots/."""
        from .plots import check_plot_names, parse_plot_names, resolve_plot_names
        from .plots.render import render_plots

        cfg = _load(config)
        names = parse_plot_names(only)
        fmts = [f.strip() for f in formats.split(",")] if formats else None
        if fmts and any(f not in ("png", "pdf", "svg") for f in fmts):
            raise UsageError(f"--format must list png, pdf or svg, not {formats!r}")
        notes = resolve_plot_names([n.strip() for n in only.split(",") if n.strip()])[1] if only else check_plot_names(cfg)
        for w in notes:
            err.print(f"warning: {w}", highlight=False)
        if names == []:  # --only named incumbent plots that have no equivalent: nothing to draw
            return
        paths = render_plots(cfg, only=names, formats=fmts)
        for p in paths:
            out.print(str(p), highlight=False)

    @app.command("ls-plots")
    @handled
    def ls_plots_cmd(
        config: Path | None = typer.Option(None, "-c", "--config", show_default=False,
                                              help="Optional: also check that this config's plots.default names known plots."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """List the plots `dense plot` can render, with the incumbent DenseGen plot ids each one stands for."""
        from rich.table import Table

        from .plots import INCUMBENT_WITHOUT_EQUIVALENT, PLOTS, check_plot_names, incumbent_names

        if config is not None:
            for w in check_plot_names(_load(config)):  # an unknown name raises: one line, exit 1
                err.print(f"warning: {w}", highlight=False)
        if as_json:
            print_json([{"name": n, "incumbent_names": incumbent_names(n), "description": p.description}
                        for n, p in PLOTS.items()])
            return
        t = Table(show_lines=False)
        t.add_column("plot", no_wrap=True)
        t.add_column("incumbent DenseGen ids", no_wrap=True)
        t.add_column("shows", overflow="fold")
        for n, p in PLOTS.items():
            t.add_row(n, "\n".join(incumbent_names(n)) or "-", p.description)
        out.print(t)
        out.print(f"Skipped (no equivalent here): {', '.join(INCUMBENT_WITHOUT_EQUIVALENT)}.", highlight=False)


__all__ = ["register"]
