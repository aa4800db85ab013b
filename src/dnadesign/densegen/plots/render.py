"""Render the chosen plots of a run into `<workspace>/outputs/plots/` (imports matplotlib)."""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt

from ...core.atomic import atomic_write_json
from ...core.errors import InputError
from ...core.timeutil import utc_now_iso
from ..config import LoadedConfig
from . import PLOTS, resolve_plot_names
from .data import PlotData, load_plot_data
from .style import DPI


def chosen_plots(cfg: LoadedConfig, only: list[str] | None = None) -> list[str]:
    """The plot names to draw: `only`, else `plots.default`, else every plot.

    The incumbent's plot ids map to ours (`INCUMBENT_PLOTS`); an unknown name is an InputError.
    """
    return resolve_plot_names(list(only or cfg.model.plots.default or PLOTS.keys()))[0]


def draw(name: str, data: PlotData):
    """The figure of plot `name` (None when it does not apply to this run, e.g. logos without PWM inputs)."""
    module, func = PLOTS[name].func_name.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), func)(data)


def iter_figures(names: list[str], data: PlotData) -> Iterator[tuple[str, object]]:
    """(name, figure) for each plot that applies; the caller saves the figure, this closes it afterwards."""
    for name in names:
        fig = draw(name, data)
        if fig is None:
            continue
        try:
            yield name, fig
        finally:
            plt.close(fig)


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes (for embedding). Every figure lays itself out, so no tight-bbox pass (a second draw) is needed."""
    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, format="png")
    return buf.getvalue()


def render_plots(cfg: LoadedConfig, only: list[str] | None = None, formats: list[str] | None = None) -> list[Path]:
    """Render the chosen plots (default: `plots.default`, else all) in the chosen formats."""
    names = chosen_plots(cfg, only)
    fmts = list(formats or cfg.model.plots.formats or ["png", "pdf"])
    data = load_plot_data(cfg)
    if data.rows == 0:
        raise InputError(f"run {cfg.run_id} has no committed sequences to plot yet", hint="run `dense run` first")
    out_dir = Path(cfg.outputs_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    inventory = []
    for name, fig in iter_figures(names, data):
        for fmt in fmts:
            path = out_dir / f"{name}.{fmt}"
            tmp = path.with_name(f".{path.name}.tmp.{fmt}")
            fig.savefig(tmp, dpi=DPI, format=fmt)  # type: ignore[attr-defined]
            tmp.replace(path)
            written.append(path)
            inventory.append({"plot": name, "format": fmt, "path": str(path.relative_to(out_dir))})
    atomic_write_json(out_dir / "plots_manifest.json", {"run_id": cfg.run_id, "created_at": utc_now_iso(),
                                                       "rows": data.rows, "files": inventory})
    return written
