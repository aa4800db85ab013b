"""`dense validate-config`, `dense inspect config|plan|inputs` and `dense workspace init|list|where`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..core.cli import handled

ConfigOpt = typer.Option(None, "-c", "--config", help="Workspace config (default: $DENSEGEN_CONFIG, else ./config.yaml).",
                         show_default=False)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _load(config: Path | None):
    from .config import load_config

    return load_config(config)


def probe_solver(workers: int = 1) -> float:
    """Solve a tiny problem once; returns seconds taken. Raises ConfigError when the solver fails."""
    from ..core.errors import ConfigError

    t0 = time.perf_counter()
    try:
        from .solver import Problem, PromoterConstraint, Site, SolverOptions, check_solution, solve

        problem = Problem(
            sites=(Site("probe_a", "ACGTTGCA", "probe"), Site("probe_b", "GGATCC", "probe")),
            length=24,
            promoters=(PromoterConstraint("probe", "TTGACA", "TATAAT", 2, 4),),
        )
        sols = list(solve(problem, SolverOptions(time_limit_s=10.0, seed=0, workers=workers), 1))
        if not sols:
            raise RuntimeError("no solution returned")
        check_solution(problem, sols[0])
    except ImportError as e:
        raise ConfigError(f"solver probe failed: the CP-SAT solver cannot be imported ({e})",
                          hint="reinstall with `uv sync` (ortools is required)") from None
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001  # any solver failure is a failed probe, not a crash
        raise ConfigError(f"solver probe failed: {type(e).__name__}: {e}",
                          hint="check the ortools installation (`uv sync`) and the CPU allocation") from None
    return time.perf_counter() - t0


def invalid_document(config: Path | None, exc) -> dict:
    """The `validate-config --json` document for a config that failed: every problem with its key path."""
    from .config import default_config_path

    problems = getattr(exc, "problems", None)
    errors = [p.as_dict() for p in problems] if problems else [{"key": None, "problem": exc.message, "hint": exc.hint}]
    return {"config": str(config if config is not None else default_config_path()), "valid": False,
            "errors": errors, "exit_code": int(exc.exit_code)}


def register(app: typer.Typer, inspect_app: typer.Typer) -> None:
    """Add this module's commands to the `dense` app."""
    workspace_app = typer.Typer(help="Create and locate workspaces (config.yaml + inputs/ + outputs/).",
                                no_args_is_help=True)
    app.add_typer(workspace_app, name="workspace")
    config_app = typer.Typer(help="Convert configs of the previous DenseGen.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("migrate")
    @handled
    def config_migrate(
        old: Path = typer.Argument(..., metavar="OLD.yaml", help="Config of the previous DenseGen (densegen: section, schema 2.x).",
                                   show_default=False),
        output: Path | None = typer.Option(None, "-o", "--output", help="Write the new config here (default: print it on stdout)."),
        force: bool = typer.Option(False, "--force", help="Overwrite --output if it exists."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Convert an old config into a valid config here, keeping its comments; list what could not be carried."""
        import sys

        from ..core import console
        from ..core.atomic import atomic_write_text
        from ..core.errors import ConflictError
        from .config_migrate import migrate_config

        if output is not None and output.exists() and not force:
            raise ConflictError(f"{output} already exists", hint="choose another --output, or pass --force to replace it")
        mig = migrate_config(old, output)
        if output is not None:
            atomic_write_text(output, mig.text)
        if as_json:
            console.print_json({**mig.as_dict(), "output": str(output) if output else None,
                                **({} if output else {"config": mig.text})})
            return
        if output is None:
            sys.stdout.write(mig.text)
        report = console.info if output is None else (lambda line: console.out.print(line, highlight=False, markup=False))
        report(f"{'Wrote ' + str(output) if output else 'Converted'} from {old} (DenseGen schema {mig.schema_version}): "
               f"{len(mig.changed)} setting(s) renamed, moved or changed; {len(mig.not_carried)} not carried")
        for n in mig.not_carried:
            report(f"  not carried  {n.key} = {n.value}: {n.reason}")
        if output is not None:
            report(f"next: uv run dense validate-config -c {output}")

    @app.command("validate-config")
    @handled
    def validate_config(
        config: Path | None = ConfigOpt,
        probe: bool = typer.Option(False, "--probe-solver/--no-probe-solver", help="Also solve a tiny problem to prove the solver works here."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Validate the config strictly and check it against its inputs (no solving).

        With --json an invalid config prints `{"valid": false, "errors": [...]}` (every problem,
        each with its key path and hint) on stdout, the error line on stderr, and exits 1.
        """
        from ..core import console
        from ..core.errors import DnadesignError
        from .library import build_pools, preflight
        from .plans import resolve_plans, total_quota
        from .plots import check_plot_names

        t0 = time.perf_counter()
        try:
            cfg = _load(config)
            plans = resolve_plans(cfg)
            pools = build_pools(cfg)
            warnings = preflight(cfg, plans=plans, pools=pools) + check_plot_names(cfg)
            probe_s = probe_solver() if probe else None
        except DnadesignError as exc:
            if as_json:
                console.print_json(invalid_document(config, exc))
            raise
        result = {"config": str(cfg.path), "valid": True, "inputs": len(cfg.model.inputs), "plans": len(plans),
                  "total_quota": total_quota(plans), "warnings": warnings,
                  "solver_probe_s": round(probe_s, 3) if probe_s is not None else None,
                  "elapsed_s": round(time.perf_counter() - t0, 3)}
        if as_json:
            console.print_json(result)
            return
        for w in warnings:
            console.warn(w)
        line = (f"Config is valid: {cfg.path} ({len(cfg.model.inputs)} input(s), {len(plans)} plan(s), "
                f"total quota {total_quota(plans)}).")
        console.out.print(line, highlight=False)
        if probe_s is not None:
            console.out.print(f"Solver probe OK ({probe_s:.2f} s).", highlight=False)

    @inspect_app.command("config")
    @handled
    def inspect_config(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
        """Show the effective config: outputs, inputs, plans, sampling, solver and runtime settings."""
        from ..core import console
        from .plans import resolve_plans, total_quota

        cfg = _load(config)
        m = cfg.model
        plans = resolve_plans(cfg)
        usr = cfg.usr_target()
        pq = cfg.parquet_target()
        if as_json:
            console.print_json({
                "config": str(cfg.path), "root": str(cfg.root), "sha256": cfg.sha256, "run_id": cfg.run_id,
                "outputs": {"usr": {"root": str(usr[0]), "dataset": usr[1]} if usr else None,
                            "parquet": str(pq) if pq else None},
                "plans": [p.describe() for p in plans],
                "effective": m.model_dump(mode="json"),
            })
            return
        o = console.out
        o.print(f"[bold]{cfg.run_id}[/bold]  {m.run.description}".rstrip(), highlight=False)
        o.print(f"config {cfg.path}\nroot   {cfg.root}\nsha256 {cfg.sha256[:16]}", highlight=False)
        rows = []
        if usr:
            rows.append(["usr", f"{usr[0]}", usr[1]])
        if pq:
            rows.append(["parquet", str(pq), ""])
        o.print(console.table("Outputs", ["target", "path / root", "dataset"], rows))
        o.print(console.table("Inputs", ["name", "type", "source"],
                              [[i.name, i.type, ", ".join(_sources(cfg, i))] for i in m.inputs]))
        o.print(console.table(f"Plans (total quota {total_quota(plans)})", ["plan", "quota", "inputs", "fixed elements", "constraints"],
                              [[p.name, p.quota, ", ".join(p.include_inputs), _fixed(p), _constraints(p)] for p in plans]))
        g = m.generation
        s = g.sampling
        o.print(console.table("Generation", ["setting", "value"], [
            ["sequence_length", g.sequence_length],
            ["library_size", s.library_size], ["strategy", s.strategy],
            ["cover_all_regulators", s.cover_all_regulators], ["unique_binding_sites", s.unique_binding_sites],
            ["unique_binding_cores", s.unique_binding_cores],
            ["forbid_kmers", ", ".join(cfg.forbid_kmers()) or "-"],
            ["gc", f"{g.sequence_constraints.gc.min} .. {g.sequence_constraints.gc.max}"],
        ]))
        sv, rt = m.solver, m.runtime
        o.print(console.table("Solver and runtime", ["setting", "value"], [
            ["solver.strategy", sv.strategy], ["solver.time_limit_s", sv.time_limit_s],
            ["solver.run_time_limit_s", sv.run_time_limit_s], ["solver.workers", sv.workers or "from scheduler"],
            ["solver.strands", sv.strands], ["solver.solutions_per_library", sv.solutions_per_library],
            ["runtime.seed", rt.seed], ["runtime.round_robin", rt.round_robin],
            ["runtime.max_failed_solutions", rt.max_failed_solutions or "unlimited"],
            ["runtime.max_stalled_libraries", rt.max_stalled_libraries],
            ["runtime.checkpoint_every", rt.checkpoint_every], ["runtime.max_seconds", rt.max_seconds or "-"],
            ["logging.progress", m.logging.progress], ["plots.default", ", ".join(m.plots.default) or "-"],
        ]))

    @inspect_app.command("plan")
    @handled
    def inspect_plan(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
        """Show the resolved plans (matrix plans expanded) with their quotas and constraints."""
        from ..core import console
        from .plans import resolve_plans, total_quota

        cfg = _load(config)
        plans = resolve_plans(cfg)
        if as_json:
            console.print_json({"config": str(cfg.path), "total_quota": total_quota(plans),
                                "plans": [p.describe() for p in plans]})
            return
        rows = [[p.name, p.quota, ", ".join(p.include_inputs), f"{p.sampling.library_size} ({p.sampling.strategy})",
                 _fixed(p), _constraints(p)] for p in plans]
        console.out.print(console.table(f"Plans of {cfg.run_id} (L={plans[0].sequence_length if plans else '-'}, "
                                        f"total quota {total_quota(plans)})",
                                        ["plan", "quota", "inputs", "library", "fixed elements", "constraints"], rows))

    @inspect_app.command("inputs")
    @handled
    def inspect_inputs(
        config: Path | None = ConfigOpt,
        as_json: bool = JsonOpt,
        show_sites: int = typer.Option(0, "--show-sites", min=0, help="Also list the first N sites of each pool."),
        only: list[str] | None = typer.Option(None, "-i", "--input", help="Only this input (repeatable)."),
    ) -> None:
        """Build each input's pool in-process and summarise it (sites, regulators, lengths)."""
        from ..core import console
        from ..core.errors import UsageError
        from .library import build_pools, describe_inputs

        cfg = _load(config)
        names = [i.name for i in cfg.model.inputs]
        unknown = [n for n in (only or []) if n not in names]
        if unknown:
            raise UsageError(f"unknown input {', '.join(unknown)}", hint=f"inputs are: {', '.join(names)}")
        pools = build_pools(cfg, names=only or None)
        rows = [r for r in describe_inputs(cfg, pools) if r["name"] in pools]
        if show_sites:
            for r in rows:
                pool = pools[r["name"]]
                r["first_sites"] = [{"id": s.id, "regulator": s.regulator, "sequence": s.sequence, **dict(pool.info.get(s.id, {}))}
                                    for s in pool.sites[:show_sites]]
        if as_json:
            console.print_json({"config": str(cfg.path), "seed": cfg.model.runtime.seed, "inputs": rows})
            return
        console.out.print(console.table(f"Inputs of {cfg.run_id} (seed {cfg.model.runtime.seed})",
                                        ["name", "type", "sites", "regulators", "lengths", "source"],
                                        [[r["name"], r["type"], r["sites"], r["regulators"],
                                          f"{r['length_min']}-{r['length_max']}", ", ".join(r["sources"])] for r in rows]))
        for r in rows:
            for n in r.get("notes", []):
                console.info(n)
            if show_sites:
                console.out.print(console.table(f"{r['name']}: first {len(r['first_sites'])} site(s)",
                                                ["id", "regulator", "sequence", "info"],
                                                [[s["id"], s["regulator"], s["sequence"],
                                                  ", ".join(f"{k}={v}" for k, v in s.items() if k not in ("id", "regulator", "sequence"))]
                                                 for s in r["first_sites"]]))

    @workspace_app.command("init")
    @handled
    def workspace_init(
        ws_id: str = typer.Argument(None, metavar="ID", help="New workspace id (becomes run.id).", show_default=False),
        ws_id_opt: str | None = typer.Option(None, "-i", "--id", help="Same as the ID argument."),
        from_workspace: str | None = typer.Option(None, "--from", "--from-workspace", help="Packaged workspace to copy (see `dense workspace list`)."),
        from_config: Path | None = typer.Option(None, "--from-config", help="Any config.yaml to start from."),
        root: Path = typer.Option(Path("."), "--root", help="Directory to create the workspace in."),
        copy_inputs: bool = typer.Option(True, "--copy-inputs/--no-copy-inputs", help="Copy input files into inputs/ (else point at them by absolute path)."),
        targets: str | None = typer.Option(None, "--targets", help="Output targets: usr, parquet or usr,parquet (default: as in the source)."),
        usr_root: Path | None = typer.Option(None, "--usr-root", help="Write the USR dataset under this root (e.g. a shared project root)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Create <root>/<ID>/ with config.yaml, inputs/ and outputs/ from a packaged workspace or a config."""
        from ..core import console
        from ..core.errors import UsageError
        from .workspace import init_workspace

        wid = ws_id or ws_id_opt
        if not wid:
            raise UsageError("workspace init needs an ID", hint="e.g. `dense workspace init my_run --from demo_sites`")
        if ws_id and ws_id_opt and ws_id != ws_id_opt:
            raise UsageError("give the workspace id once (argument or --id)")
        if from_workspace is None and from_config is None:
            from_workspace = "demo_sites"
        if from_workspace is not None and from_config is not None:
            raise UsageError("give only one of --from and --from-config")
        target_list = [t.strip() for t in targets.split(",") if t.strip()] if targets is not None else None
        dest, notes = init_workspace(wid, root=root, from_workspace=from_workspace, from_config=from_config,
                                     copy_inputs=copy_inputs, targets=target_list, usr_root=usr_root)
        if as_json:
            console.print_json({"workspace": str(dest), "config": str(dest / "config.yaml"), "notes": notes})
            return
        for n in notes:
            console.info(n)
        console.out.print(f"Created workspace {dest}", highlight=False)
        console.info(f"next: uv run dense validate-config --probe-solver -c {dest / 'config.yaml'}")
        console.info(f"      uv run dense run -c {dest / 'config.yaml'}")

    @workspace_app.command("list")
    @handled
    def workspace_list(
        root: Path | None = typer.Option(None, "--root", help="List workspaces under this directory instead."),
        as_json: bool = JsonOpt,
    ) -> None:
        """List packaged workspaces (or those under --root)."""
        from ..core import console
        from .workspace import list_workspaces

        items = list_workspaces(root.resolve() if root else None)
        if as_json:
            console.print_json([w.as_dict() for w in items])
            return
        console.out.print(console.table(None, ["name", "description", "outputs", "files", "path"],
                                        [[w.name, w.description, "yes" if w.has_outputs else "-", w.files, str(w.path)]
                                         for w in items]))

    @workspace_app.command("where")
    @handled
    def workspace_where(as_json: bool = JsonOpt) -> None:
        """Print the directory holding the packaged workspaces."""
        import os

        from ..core import console
        from .workspace import WORKSPACE_ROOT_ENV, packaged_root

        root = packaged_root()
        if as_json:
            console.print_json({"root": str(root), "source": "env" if os.environ.get(WORKSPACE_ROOT_ENV) else "repository"})
            return
        console.out.print(str(root), highlight=False, soft_wrap=True)


def _sources(cfg, inp) -> list[str]:
    from .inputs import input_sources

    out = []
    for s in input_sources(cfg, inp):
        try:
            out.append(str(Path(s).relative_to(cfg.root)))
        except ValueError:
            out.append(s)
    return out


def _fixed(p) -> str:
    parts = [f"{x.name}: {x.upstream}-[{x.spacer_min}..{x.spacer_max}]-{x.downstream}" for x in p.promoters]
    if p.side_left or p.side_right:
        parts.append(f"bias L={','.join(p.side_left)} R={','.join(p.side_right)}")
    return "; ".join(parts) or "-"


def _constraints(p) -> str:
    parts = [f"{g.name}: {g.min_required} of {','.join(g.members)}" for g in p.groups]
    parts += [f"{r}>={n}" for r, n in p.min_count_by_regulator]
    if p.min_total_sites:
        parts.append(f"total>={p.min_total_sites}")
    parts += list(dict.fromkeys(r.config_key() for r in p.rules))  # details: `dense inspect plan --json`, docs/constraints.md
    return "; ".join(parts) or "-"
