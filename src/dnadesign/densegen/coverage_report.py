"""Regulators of a run's inputs that no committed sequence places, each with its likely reason.

Read by `dense run` at the end of a run and by `dense inspect run`. It looks only at what is
committed (the run's rows) and at the plans' pools, so it can be recomputed at any time.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from .library import build_pools, plan_pool
from .plans import resolve_plans
from .sinks.records import PLAN_COL

LONG_MARGIN_BP = 2  # a regulator's median site this much longer than the placed ones' is "long"


def unplaced_regulators(cfg, placed_by_plan: dict[str, set[str]], rows_by_plan: dict[str, int]) -> list[dict[str, Any]]:
    """One entry per (plan, regulator) of the plan's inputs that none of its committed rows place.

    ``placed_by_plan`` maps a plan to the regulators its rows place; plans without rows are
    skipped (nothing to judge yet). Background filler inputs are not regulators and never listed.
    """
    pools = build_pools(cfg)
    filler = {s.regulator for pool in pools.values() if pool.kind == "background" for s in pool.sites}
    out: list[dict[str, Any]] = []
    for plan in resolve_plans(cfg):
        n_rows = rows_by_plan.get(plan.name, 0)
        if not n_rows:
            continue
        placed = placed_by_plan.get(plan.name, set())
        raw = [s for name in plan.include_inputs if name in pools for s in pools[name].sites]
        usable, _dropped = plan_pool(plan, pools)
        usable_regs = Counter(s.regulator for s in usable)
        lengths: dict[str, list[int]] = {}
        for s in raw:
            lengths.setdefault(s.regulator, []).append(len(s.sequence))
        placed_lengths = [n for reg in placed for n in lengths.get(reg, [])]
        typical = statistics.median(placed_lengths) if placed_lengths else None
        for reg in sorted(lengths):
            if reg in placed or reg in filler:
                continue
            out.append({"plan": plan.name, "regulator": reg, "sites": len(lengths[reg]), "sequences": n_rows,
                        "reason": _reason(plan, reg, lengths[reg], usable_regs.get(reg, 0), typical)})
    return out


def _reason(plan, reg: str, lengths: list[int], usable: int, typical: float | None) -> str:
    """The likely reason a regulator was never placed, and what to change."""
    L = plan.sequence_length
    if usable == 0 and min(lengths) > L:
        return (f"every site is longer than sequence_length {L} bp (shortest {min(lengths)} bp): "
                f"raise sequence_length to at least {min(lengths)}")
    if usable == 0:
        return "every site contains a forbidden k-mer (on either strand): relax forbid_kmers or add other sites"
    median = statistics.median(lengths)
    fix = (f"require it with a regulator group (members: [{reg}], min_required: 1) or "
           f"min_count_by_regulator {{{reg}: 1}}")
    if typical is not None and median >= typical + LONG_MARGIN_BP:
        return (f"its sites are long (median {median:g} bp vs {typical:g} bp for the placed regulators) and the "
                f"solver maximises the number of sites, so shorter sites win: {fix}")
    return f"the solver never chose it in the libraries offered: {fix}, or raise library_size"


def placed_regulators(frame) -> tuple[dict[str, set[str]], dict[str, int]]:
    """(regulators placed per plan, rows per plan) from a frame with plan and regulators columns."""
    placed: dict[str, set[str]] = {}
    rows: dict[str, int] = {}
    if not frame.height or "densegen__regulators" not in frame.columns:
        return placed, rows
    for plan, regs in zip(frame[PLAN_COL].to_list(), frame["densegen__regulators"].to_list(), strict=True):
        placed.setdefault(plan, set()).update(regs or [])
        rows[plan] = rows.get(plan, 0) + 1
    return placed, rows


def render_line(entry: dict[str, Any]) -> str:
    """One line for the terminal."""
    return (f"regulator {entry['regulator']} (plan {entry['plan']}, {entry['sites']} site(s) in the inputs) was never "
            f"placed in {entry['sequences']} sequence(s): {entry['reason']}")
