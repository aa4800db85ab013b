"""The first solution without CP-SAT, when a held layout reaches the path bound.

Small libraries (the demo: 10 sites, L=100) are solved by the beam and the path relaxation in
milliseconds, and the relaxation proves the bound; CP-SAT then only has to confirm. Two things
used to send such libraries to CP-SAT anyway (1-2.5 s of CPU on two workers each, most of
`dense run`'s generation time):

- only the start layout was screened at the bound, while another beam or relaxation layout at
  the bound often passes where the start does not (a regulator rule, a k-mer at a junction);
- a regulator rule (``min_count_by_regulator``, a group) asks for a site the densest paths leave
  out (LexA's sites are long), so every relaxed layout failed the checker. Short relaxation runs
  that favour the sites of the required regulators (``Relaxation.favoured``) find layouts at the
  bound that hold them.

``best_held`` screens these layouts like any candidate (model placements, the independent
checker): one at the bound is an optimal model solution; otherwise the best one is the hint of
the first CP-SAT solve (a start that passes the checker, instead of one that fails it).
When that layout is below the path bound and a regulator minimum applies, the relaxation with
the minimums priced in (``Relaxation.required_bound``) often proves it optimal after all.
"""

from __future__ import annotations

from collections.abc import Iterable

from .bound import site_values
from .budget import Budget
from .heuristics import Layout
from .path_search import MIN_SECONDS, counted_rounds
from .promoter_search import search_layouts
from .state import EnumState
from .types import Problem

MAX_FAVOURED_RUNS = 12  # favoured relaxation runs before the first CP-SAT solve
MAX_SCREENED_BELOW = 8  # held layouts below the bound screened for the hint
SEARCH_MIN_SITES = 50  # libraries this large get the local search when no held layout reaches the bound
SEARCH_SHARE = 0.25  # ... for at most this share of time_limit_s
FAVOURED_RUN_S = 0.05  # idle-machine seconds of one favoured run, charged to counted budgets


def required_site_sets(problem: Problem) -> list[set[int]]:
    """Sets of library sites to favour, one run each: first every site of the regulators that
    ``min_count_by_regulator`` requires together, then each site of those regulators and of
    the members of groups alone. Empty without such rules."""
    by_regulator = sites_by_regulator(problem)
    required = [r for r, k in problem.min_count_by_regulator.items() if k > 0]
    members = [r for g in problem.groups if g.min_required > 0 for r in g.members if r not in required]
    union = {i for r in required for i in by_regulator.get(r, [])}
    out: list[set[int]] = [union] if union else []
    for regulator in [*required, *members]:
        out.extend({i} for i in by_regulator.get(regulator, []) if {i} != union)
    return out


def regulator_minimums(problem: Problem) -> list[tuple[list[int], int]]:
    """``(sites of the regulator, k)`` for each ``min_count_by_regulator`` entry with k > 0."""
    by_regulator = sites_by_regulator(problem)
    return [(by_regulator.get(r, []), k) for r, k in problem.min_count_by_regulator.items() if k > 0]


def sites_by_regulator(problem: Problem) -> dict[str, list[int]]:
    """Library site indices of each regulator, in library order."""
    out: dict[str, list[int]] = {}
    for i, site in enumerate(problem.sites):
        out.setdefault(site.regulator, []).append(i)
    return out


def best_held(st: EnumState, held: Iterable[Layout], bound: int, budget: Budget, share_left: float):
    """The best screened layout among ``held`` and the favoured relaxation runs:
    ``(solution, chosen, layout)`` or None. Stops at the first one with ``bound`` sites (it is
    optimal); the favoured runs stop once ``budget.left()`` falls below ``share_left``."""
    ranked = sorted(held, key=lambda lay: -len(lay.library_sites))
    best = None
    below = 0
    seen: set[str] = set()

    def consider(lay: Layout) -> bool:
        nonlocal best, below
        n = len(lay.library_sites)
        if lay.sequence in seen or (best is not None and n <= best[0].n_sites):
            return False
        seen.add(lay.sequence)
        if n < bound:
            below += 1
            if below > MAX_SCREENED_BELOW:
                return False
        got = st.screen(lay, 0, bound)
        if got is not None:
            best = (*got, lay)
        return best is not None and best[0].n_sites >= bound

    for lay in ranked:
        if consider(lay):
            return best
    for sites in required_site_sets(st.problem)[:MAX_FAVOURED_RUNS]:
        if budget.left() < share_left:
            break
        budget.charge(FAVOURED_RUN_S)  # counted budgets: one run's work (iteration-capped)
        for lay in st.relaxation.favoured(sites, enough=bound):
            if consider(lay):
                return best
    return best


def searched(st: EnumState, held, bound: int, budget: Budget, share_left: float):
    """``held`` (as ``best_held`` returns it), or the local search's best layout
    (``path_search``) when it is denser, screened the same way. Runs only on libraries of
    ``SEARCH_MIN_SITES`` or more (at most one promoter: ``promoter_search``) whose held layout is
    below ``bound``, until
    a layout reaches ``bound``, ``SEARCH_SHARE`` of the limit is spent or ``budget.left()``
    falls below ``share_left``."""
    problem, options = st.problem, st.options
    if len(problem.sites) < SEARCH_MIN_SITES or len(problem.promoters) > 1 or (held is not None and held[0].n_sites >= bound):
        return held
    share = min(SEARCH_SHARE * options.time_limit_s, budget.left() - share_left)
    if share < MIN_SECONDS:
        return held
    stop_at = budget.clock() + SEARCH_SHARE * options.time_limit_s
    starts = [held[2]] if held is not None else []

    def stop() -> bool:
        return budget.clock() > stop_at or budget.left() < share_left

    rounds = counted_rounds(share) if budget.counted else None
    found = search_layouts(problem, site_values(problem), starts, stop, options.seed, rounds=rounds, enough=bound)
    budget.charge(share)  # counted budgets: the round cap does about its share's work
    for lay in found:
        if held is not None and len(lay.library_sites) <= held[0].n_sites:
            break
        got = st.screen(lay, 0, bound)
        if got is not None:
            return (*got, lay)
    return held
