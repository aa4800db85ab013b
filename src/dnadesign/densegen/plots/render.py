"""Render the chosen plots of a run into `<workspace>/outputs/plots/` (imports matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt

from ...core.atomic import atomic_write_json
from ...core.errors import InputError
from ...core.timeutil import utc_now_iso
from ..config import LoadedConfig
from . import PLOTS, figures
from .data import load_plot_data


def render_plots(cfg: LoadedConfig, only: list[str] | None = None, formats: list[str] | None = None) -> list[Path]:
    """Render the chosen plots (default: `plots.default`, else all) in the chosen formats."""
    names = list(only or cfg.model.plots.default or PLOTS.keys())
    unknown = [n for n in names if n not in PLOTS]
    if unknown:
        raise InputError(f"unknown plot {unknown[0]!r}", hint=f"choose from {', '.join(PLOTS)} (see `dense ls-plots`)")
    fmts = list(formats or cfg.model.plots.formats or ["png", "pdf"])
    data = load_plot_data(cfg)
    if data.frame.height == 0:
        raise InputError(f"run {cfg.run_id} has no committed sequences to plot yet", hint="run `dense run` first")
    out_dir = Path(cfg.outputs_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    inventory = []
    for name in names:
        fig = getattr(figures, PLOTS[name].func_name)(data)
        if fig is None:
            continue
        for fmt in fmts:
            path = out_dir / f"{name}.{fmt}"
            tmp = path.with_name(f".{path.name}.tmp.{fmt}")
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=fmt)
            tmp.replace(path)
            written.append(path)
            inventory.append({"plot": name, "format": fmt, "path": str(path.relative_to(out_dir))})
        plt.close(fig)
    atomic_write_json(out_dir / "plots_manifest.json", {"run_id": cfg.run_id, "created_at": utc_now_iso(),
                                                       "rows": data.frame.height, "files": inventory})
    return written
