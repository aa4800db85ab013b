"""`dense inspect run`: a run's progress from what is committed in its outputs (read-only, no lock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..usr.layout import DatasetPaths, resolve_root
from .coverage_report import placed_regulators, unplaced_regulators
from .sinks.records import PLAN_COL, RUN_COL
from .state import MetaDir


def usr_events_path(cfg) -> Path:
    """`<usr_root>/<dataset>/.events.log` of the run's USR output (it may not exist yet)."""
    target = cfg.usr_target()
    if target is None:
        raise InputError(f"{cfg.path} has no usr output target, so the run writes no USR .events.log",
                         hint="add usr to output.targets (notify watches the USR event log)")
    root, dataset_id = target
    return DatasetPaths(resolve_root(root), dataset_id).events_log


def committed_frame(cfg, columns: list[str] | None = None):
    """This run's committed rows from the USR output (preferred) or the Parquet output."""
    import polars as pl

    from .pipeline import open_sinks

    usr, parquet = open_sinks(cfg, None, create=False)
    for sink in (usr, parquet):
        if sink is None:
            continue
        if sink.name == "usr" and not sink.exists():
            continue
        frame = sink.frame(columns)
        if frame.height and RUN_COL in frame.columns:
            return frame.filter(pl.col(RUN_COL) == cfg.run_id), sink
    from .sinks.records import empty_table

    empty = pl.from_arrow(empty_table())
    return (empty.select(columns) if columns else empty), (usr or parquet)


def inspect_run(cfg) -> dict[str, Any]:
    """Status, per-plan counts and quality figures, outputs and the last session of a workspace's run."""
    import polars as pl

    from .pipeline import plan_quota, with_quota
    from .plans import resolve_plans

    meta = MetaDir(Path(cfg.outputs_dir) / "meta")
    manifest = meta.load_manifest() or {}
    state = meta.load_state()
    eff = meta.load_effective() or {}
    frame, _ = committed_frame(cfg, ["id", PLAN_COL, RUN_COL, "densegen__n_sites", "densegen__sites_per_100bp", "densegen__gc",
                                     "densegen__regulators"])
    plans = resolve_plans(cfg)
    prev = eff.get("quotas", {})
    plans = [with_quota(p, max(plan_quota(p), int(prev.get(p.name, 0)))) for p in plans]
    stats: dict[str, dict] = {}
    if frame.height:
        agg = frame.group_by(PLAN_COL).agg(
            pl.len().alias("n"), pl.col("densegen__n_sites").mean().alias("sites"),
            pl.col("densegen__sites_per_100bp").mean().alias("s100"), pl.col("densegen__gc").mean().alias("gc"))
        for r in agg.iter_rows(named=True):
            stats[r[PLAN_COL]] = r
    rows = []
    for p in plans:
        s = stats.get(p.name, {})
        q = plan_quota(p)
        g = int(s.get("n", 0))
        rows.append({"name": p.name, "generated": g, "quota": q, "percent": 100.0 if q <= 0 else round(100.0 * min(g, q) / q, 1),
                     "mean_sites": s.get("sites"), "mean_sites_per_100bp": s.get("s100"), "mean_gc": s.get("gc")})
    for name, s in stats.items():  # rows of plans no longer in the config
        if name not in {p.name for p in plans}:
            rows.append({"name": name, "generated": int(s["n"]), "quota": 0, "percent": 100.0, "mean_sites": s["sites"],
                         "mean_sites_per_100bp": s["s100"], "mean_gc": s["gc"], "removed_from_config": True})
    generated = sum(min(r["generated"], r["quota"]) if r["quota"] else 0 for r in rows)
    quota = sum(r["quota"] for r in rows)
    status = manifest.get("status") or (state.status if state else "not started")
    if state is not None and manifest.get("sessions") and state.session > manifest["sessions"][-1]["session"]:
        status = f"{state.status} (session {state.session} did not finish: killed or still running)"
    elif state is not None and not manifest and state.status == "running":
        status = "running or killed (no session has finished)"
    outputs = {}
    if cfg.usr_target() is not None:
        root, ds = cfg.usr_target()
        outputs["usr"] = str(DatasetPaths(resolve_root(root), ds).dir)
    if cfg.parquet_target() is not None:
        outputs["parquet"] = str(cfg.parquet_target())
    return {
        "run_id": cfg.run_id,
        "config": str(cfg.path),
        "status": status,
        "generated": sum(r["generated"] for r in rows),
        "quota": quota,
        "percent": 100.0 if quota <= 0 else round(100.0 * generated / quota, 1),
        "plans": rows,
        "sessions": len(manifest.get("sessions", [])),
        "last_session": (manifest.get("sessions") or [None])[-1],
        "outputs": outputs,
        "usr_events_path": str(usr_events_path(cfg)) if cfg.usr_target() is not None else None,
        "diagnostics": str(meta.events_path),
        "state": state.as_dict() if state else None,
        "unplaced_regulators": unplaced_regulators(cfg, *placed_regulators(frame)),
    }
