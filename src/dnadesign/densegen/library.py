"""Pools and libraries.

A *pool* is every candidate site of one input. A *library* is the small set of sites offered to
one solve round of one plan, drawn from the union of the plan's pools by `LibrarySampler`.
`preflight` checks a whole config against its inputs before any solving.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import ConfigError, DnadesignError, InputError
from .config import LoadedConfig, SamplingConfig
from .inputs import derive_rng, input_sources, load_input
from .plans import PlanSpec, resolve_plans
from .solver import Site, precheck
from .solver.precheck import placeable_sites

_COMP = str.maketrans("ACGT", "TGCA")


def _rc(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


@dataclass(frozen=True)
class Pool:
    """All candidate sites of one input, with per-site provenance (`info[site.id]`)."""

    name: str
    kind: str
    sites: tuple[Site, ...]
    info: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False, hash=False)
    notes: tuple[str, ...] = ()

    @property
    def regulators(self) -> tuple[str, ...]:
        return tuple(sorted({s.regulator for s in self.sites}))

    def summary(self) -> dict[str, Any]:
        """Counts and lengths for `dense inspect inputs` and manifests."""
        lens = [len(s.sequence) for s in self.sites]
        per_reg = Counter(s.regulator for s in self.sites)
        return {
            "name": self.name,
            "kind": self.kind,
            "sites": len(self.sites),
            "regulators": len(per_reg),
            "length_min": min(lens) if lens else None,
            "length_max": max(lens) if lens else None,
            "sites_per_regulator": dict(sorted(per_reg.items())),
            "notes": list(self.notes),
        }


def build_pools(cfg: LoadedConfig, *, seed: int | None = None, names: Sequence[str] | None = None,
                checkpoint: Callable[[], None] | None = None) -> dict[str, Pool]:
    """Input name -> Pool, in config order (only `names` when given).

    PWM and background inputs are sampled in-process, seeded from (seed, input name, motif), so
    the same config and seed give the same pools on every machine. `checkpoint` is called before
    each input (a start-up stop raises from it).
    """
    seed = cfg.model.runtime.seed if seed is None else seed
    pools: dict[str, Pool] = {}
    for inp in cfg.model.inputs:
        if names is not None and inp.name not in names:
            continue
        if checkpoint is not None:
            checkpoint()
        records, notes = load_input(cfg, inp, seed=seed)
        kind = "pwm_sampled" if inp.type == "pwm" else ("background" if inp.type == "background_pool" else inp.type)
        pools[inp.name] = Pool(
            name=inp.name,
            kind=kind,
            sites=tuple(Site(r.id, r.sequence, r.regulator) for r in records),
            info={r.id: r.info for r in records},
            notes=tuple(notes),
        )
    return pools


def filler_ids(pools: Mapping[str, Pool]) -> frozenset[str]:
    """Ids of the background filler sites: placed to fill gaps, never counted as binding sites."""
    return frozenset(s.id for pool in pools.values() if pool.kind == "background" for s in pool.sites)


def library_hash(sites: Sequence[Site]) -> str:
    """Order-independent 16-hex digest of a library (site ids, sequences, regulators)."""
    lines = sorted(f"{s.id}|{s.sequence}|{s.regulator}" for s in sites)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _forbidden_set(kmers: Sequence[str]) -> set[str]:
    return set(kmers) | {_rc(k) for k in kmers}


def plan_pool(plan: PlanSpec, pools: Mapping[str, Pool]) -> tuple[list[Site], Counter]:
    """The sites a plan's libraries may draw from, and counts of what was left out and why.

    The union of the plan's pools (first occurrence of a site id wins), minus sites longer than
    the sequence and sites that contain a forbidden k-mer on either strand or that the plan's rules
    refuse everywhere (they can never be placed).
    """
    forbidden = _forbidden_set(plan.forbid_kmers)
    seen: set[str] = set()
    out: list = []
    dropped: Counter = Counter()
    for name in plan.include_inputs:
        if name not in pools:
            raise ConfigError(f"plan {plan.name!r} includes input {name!r}, which has no pool",
                              hint="build pools for every input the plan includes")
        for s in pools[name].sites:
            if s.id in seen:
                continue
            seen.add(s.id)
            if len(s.sequence) > plan.sequence_length:
                dropped["longer than sequence_length"] += 1
                continue
            if forbidden and any(f in s.sequence or f in _rc(s.sequence) for f in forbidden):
                dropped["contains a forbidden k-mer"] += 1
                continue
            out.append(s)
    if plan.rules and out:  # forbidden patterns / enzymes, homopolymers: drop sites they refuse on both strands
        ok = {s.id for s in placeable_sites(plan.build_problem(out), starts=False)}
        if len(ok) < len(out):
            dropped["breaks a sequence rule"] += len(out) - len(ok)
            out = [s for s in out if s.id in ok]
    return out, dropped


class LibrarySampler:
    """Draws one library per solve round for a plan.

    `sampling` defaults to the plan's resolved settings; when given, the plan's own
    `sampling` overrides still apply on top of it.

    Library k is a function of (seed, plan name, k) and of the usage fed back through `observe`
    (only `coverage_weighted` uses it), so a run replays exactly. Each library first takes the
    sites that the plan's constraints require (`min_count_by_regulator`, `min_required` members of
    each group, and one site per regulator with `cover_all_regulators`), then fills up to
    `library_size` by the strategy:

    - `tf_balanced`: the regulator with the fewest sites in the library so far (ties at random),
      then one of its sites uniformly;
    - `coverage_weighted`: sites weighted by (1 + placed + offered/4) ** -coverage_alpha, so
      sites placed or offered less often come first;
    - `uniform`: uniformly over the remaining sites.

    `unique_binding_sites` keeps one copy of a sequence (strand-aware when strands=double);
    `unique_binding_cores` also skips a site whose sequence lies inside another library site (or
    contains one), since it would be placed for free.
    """

    def __init__(self, plan: PlanSpec, pools: Mapping[str, Pool], sampling: SamplingConfig | None = None, seed: int = 0):
        self.plan = plan
        if sampling is None:
            self.sampling = plan.sampling
        else:  # the given settings, with the plan's own overrides on top
            self.sampling = sampling.model_copy(update={k: getattr(plan.sampling, k) for k in plan.sampling_overrides})
        self.seed = int(seed)
        self.sites, self.dropped = plan_pool(plan, pools)
        self.filler = filler_ids(pools)
        self.by_reg: dict[str, list[int]] = {}
        for i, s in enumerate(self.sites):
            self.by_reg.setdefault(s.regulator, []).append(i)
        self.calls = 0
        self._index = {s.id: i for i, s in enumerate(self.sites)}
        self._offered = np.zeros(len(self.sites))
        self._placed = np.zeros(len(self.sites))
        self._double = plan.strands == "double"

    @property
    def regulators(self) -> tuple[str, ...]:
        return tuple(sorted(self.by_reg))

    def observe(self, site_ids: Sequence[str]) -> None:
        """Feed back the library sites placed in an accepted sequence (for coverage weighting)."""
        for sid in site_ids:
            i = self._index.get(sid)
            if i is not None:
                self._placed[i] += 1

    @property
    def offered(self) -> Counter:
        """Site id -> number of libraries it was offered in."""
        return Counter({self.sites[i].id: int(n) for i in np.flatnonzero(self._offered) for n in [self._offered[i]]})

    @property
    def placed(self) -> Counter:
        """Site id -> number of accepted sequences it was placed in (as reported by `observe`)."""
        return Counter({self.sites[i].id: int(n) for i in np.flatnonzero(self._placed) for n in [self._placed[i]]})

    def _canon(self, seq: str) -> str:
        return min(seq, _rc(seq)) if self._double else seq

    def next(self) -> tuple[Site, ...]:
        """The next library (at most `library_size` sites; fewer when the pool is smaller)."""
        sp = self.sampling
        rng = derive_rng(self.seed, "library", self.plan.name, str(self.calls))
        self.calls += 1
        size = min(sp.library_size, len(self.sites))
        chosen: list[int] = []
        taken: set[int] = set()
        seqs: set[str] = set()
        reg_count: Counter = Counter()

        def ok(i: int) -> bool:
            if i in taken:
                return False
            s = self.sites[i]
            if sp.max_sites_per_regulator and reg_count[s.regulator] >= sp.max_sites_per_regulator:
                return False
            if sp.unique_binding_sites and self._canon(s.sequence) in seqs:
                return False
            if sp.unique_binding_cores:
                a = s.sequence
                ar = _rc(a) if self._double else a
                for j in chosen:
                    b = self.sites[j].sequence
                    if a != b and (a in b or b in a or ar in b or (self._double and b in ar)):
                        return False
            return True

        def add(i: int) -> None:
            chosen.append(i)
            taken.add(i)
            seqs.add(self._canon(self.sites[i].sequence))
            reg_count[self.sites[i].regulator] += 1

        def weights(idx: np.ndarray) -> np.ndarray:
            if sp.strategy != "coverage_weighted":
                return np.ones(len(idx))
            return (1.0 + self._placed[idx] + self._offered[idx] / 4) ** (-sp.coverage_alpha)

        def pick(idx) -> int | None:
            idx = np.asarray(idx, dtype=np.int64)
            w = weights(idx)
            total = w.sum()
            while total > 0:
                k = int(rng.choice(len(idx), p=w / total))
                i = int(idx[k])
                if ok(i):
                    return i
                w[k] = 0.0
                total = w.sum()
            return None

        def add_from_regulator(reg: str) -> bool:
            if len(chosen) >= size:
                return False
            i = pick(self.by_reg.get(reg, []))
            if i is None:
                return False
            add(i)
            return True

        # 1. what the plan's constraints require
        for reg, n in self.plan.min_count_by_regulator:
            while reg_count[reg] < n and add_from_regulator(reg):
                pass
        for g in self.plan.groups:
            members = [m for m in g.members if m in self.by_reg]
            order = [members[k] for k in rng.permutation(len(members))]
            order.sort(key=lambda m: reg_count[m] == 0)  # members already present count first
            have = sum(1 for m in members if reg_count[m] > 0)
            for m in order:
                if have >= g.min_required:
                    break
                if reg_count[m] == 0 and add_from_regulator(m):
                    have += 1
        if sp.cover_all_regulators:
            regs = list(self.by_reg)
            for k in rng.permutation(len(regs)):
                if reg_count[regs[k]] == 0:
                    add_from_regulator(regs[k])

        # 2. fill by strategy
        if sp.strategy == "tf_balanced":
            live = set(self.by_reg)
            while len(chosen) < size and live:
                regs = sorted(live)
                low = min(reg_count[r] for r in regs)
                cands = [r for r in regs if reg_count[r] == low]
                reg = cands[int(rng.integers(len(cands)))]
                if not add_from_regulator(reg):
                    live.discard(reg)
        else:
            every = np.arange(len(self.sites))
            while len(chosen) < size:
                i = pick(every)  # `ok` rejects sites already taken
                if i is None:
                    break
                add(i)
        lib = tuple(self.sites[i] for i in chosen)
        self._offered[chosen] += 1
        return lib


# -- preflight -------------------------------------------------------------------------------

def _promoter_fits(p, L: int) -> bool:
    lu, ld = len(p.upstream), len(p.downstream)
    ulo, uhi = 0, L - lu
    if p.upstream_pos:
        ulo, uhi = max(ulo, p.upstream_pos[0]), min(uhi, p.upstream_pos[1])
    dlo, dhi = 0, L - ld
    if p.downstream_pos:
        dlo, dhi = max(dlo, p.downstream_pos[0]), min(dhi, p.downstream_pos[1])
    for u in range(ulo, uhi + 1):
        lo, hi = u + lu + p.spacer_min, u + lu + p.spacer_max
        if max(lo, dlo) <= min(hi, dhi):
            return True
    return False


def _placements(p, L: int) -> int:
    """Number of (upstream start, downstream start) pairs a promoter can take in `L` bases."""
    lu, ld = len(p.upstream), len(p.downstream)
    n = 0
    for u in range(L - lu + 1):
        if p.upstream_pos and not p.upstream_pos[0] <= u <= p.upstream_pos[1]:
            continue
        for gap in range(p.spacer_min, p.spacer_max + 1):
            d = u + lu + gap
            if d + ld <= L and (not p.downstream_pos or p.downstream_pos[0] <= d <= p.downstream_pos[1]):
                n += 1
    return n


def _distinct_bound(plan: PlanSpec) -> int | None:
    """Upper bound on distinct sequences a plan can make, when small enough to matter.

    Bases outside the fixed promoter elements are free, so there are at most
    4 ** free * (promoter placements) sequences (and no more than the GC bounds allow).
    """
    L = plan.sequence_length
    free = L - sum(len(p.upstream) + len(p.downstream) for p in plan.promoters)
    if free < 0:
        return 0
    if free > 40:
        return None
    bound = 4 ** free
    for p in plan.promoters:
        bound *= max(1, _placements(p, L))
    if plan.gc_min is not None or plan.gc_max is not None:
        lo = math.ceil((plan.gc_min or 0.0) * L - 1e-9)
        hi = math.floor((plan.gc_max if plan.gc_max is not None else 1.0) * L + 1e-9)
        bound = min(bound, sum(math.comb(L, k) * 2 ** L for k in range(max(lo, 0), min(hi, L) + 1)))
    return bound


def _too_long_by_regulator(plan: PlanSpec, pools: Mapping[str, Pool]) -> dict[str, int]:
    """Shortest site length of each regulator whose sites are all longer than the sequence."""
    shortest: dict[str, int] = {}
    for name in plan.include_inputs:
        for s in pools[name].sites if name in pools else ():
            shortest[s.regulator] = min(shortest.get(s.regulator, len(s.sequence)), len(s.sequence))
    return {reg: n for reg, n in shortest.items() if n > plan.sequence_length}


def check_plan(plan: PlanSpec, pools: Mapping[str, Pool], cfg_path: Any = "") -> list[str]:
    """Errors (raised) and warnings (returned) for one plan against its pools."""
    where = f"plan {plan.name!r}"
    pre = f"{cfg_path}: " if cfg_path else ""
    warnings: list[str] = []
    L = plan.sequence_length
    sites, dropped = plan_pool(plan, pools)
    for reason, n in sorted(dropped.items()):
        warnings.append(f"{where}: {n} site(s) left out of the pool ({reason})")
    for p in plan.promoters:
        if p.min_span > L:
            raise ConfigError(f"{pre}{where}: promoter {p.name!r} needs at least {p.min_span} bp "
                              f"({len(p.upstream)} + spacer {p.spacer_min} + {len(p.downstream)}) but sequence_length is {L}",
                              hint="raise generation.sequence_length or shorten the spacer")
        if not _promoter_fits(p, L):
            raise ConfigError(f"{pre}{where}: promoter {p.name!r} cannot be placed: its position windows and spacer "
                              f"do not fit in {L} bp", hint="widen upstream_pos / downstream_pos")
    if len(plan.promoters) > 1 and sum(p.min_span for p in plan.promoters) > L:
        warnings.append(f"{where}: the promoters together need more than {L} bp unless they overlap")
    by_reg = Counter(s.regulator for s in sites)
    avail = ", ".join(sorted(by_reg)[:12]) + (" ..." if len(by_reg) > 12 else "") if by_reg else "none"
    too_long = _too_long_by_regulator(plan, pools)
    for g in plan.groups:
        present = [m for m in g.members if by_reg.get(m)]
        cut = {m: too_long[m] for m in g.members if m in too_long and not by_reg.get(m)}
        if cut and len(present) < g.min_required:
            shortest = min(cut.values())
            regs = ", ".join(f"{m} (shortest site {n} bp)" for m, n in sorted(cut.items()))
            raise ConfigError(f"{pre}{where}: regulator group {g.name!r} cannot be met: sequence_length is {L} bp but every "
                              f"site of {regs} is longer", hint=f"raise generation.sequence_length to at least {shortest} "
                              "(or the plan's sequence_length), or use shorter sites for these regulators")
        if not present and g.min_required > 0:
            raise ConfigError(f"{pre}{where}: regulator group {g.name!r} has no members in the plan's inputs "
                              f"(members: {', '.join(g.members) or 'none'}; regulators available: {avail})",
                              hint="fix the member names (case-sensitive; PWM sites are labelled by motif name) or include the input that has them")
        if len(present) < g.min_required:
            raise ConfigError(f"{pre}{where}: regulator group {g.name!r} needs {g.min_required} member(s) but only "
                              f"{len(present)} ({', '.join(present)}) have sites in the plan's inputs",
                              hint="lower min_required or include inputs with the other members")
        missing = [m for m in g.members if not by_reg.get(m)]
        if missing:
            warnings.append(f"{where}: group {g.name!r} members without sites in the inputs: {', '.join(missing)}")
    ids = {s.id for s in sites}
    unknown_bias = [x for x in plan.side_left + plan.side_right if x not in by_reg and x not in ids]
    if unknown_bias:
        warnings.append(f"{where}: side_biases name(s) {', '.join(unknown_bias)} match no regulator or site id in the inputs")
    for reg, n in plan.min_count_by_regulator:
        if by_reg.get(reg, 0) < n and reg in too_long:
            raise ConfigError(f"{pre}{where}: min_count_by_regulator asks {n} site(s) of {reg!r} but sequence_length is {L} bp "
                              f"and its shortest site is {too_long[reg]} bp",
                              hint=f"raise generation.sequence_length to at least {too_long[reg]} or lower the minimum")
        if by_reg.get(reg, 0) < n:
            raise ConfigError(f"{pre}{where}: min_count_by_regulator asks {n} site(s) of {reg!r} but the plan's inputs "
                              f"have {by_reg.get(reg, 0)} usable", hint="lower the minimum or add sites for that regulator")
    size = plan.sampling.library_size
    required = sum(n for _, n in plan.min_count_by_regulator) + sum(g.min_required for g in plan.groups)
    if required > size:
        raise ConfigError(f"{pre}{where}: the regulator constraints need {required} library sites but library_size is {size}",
                          hint="raise generation.sampling.library_size (or the plan's sampling.library_size)")
    if plan.sampling.cover_all_regulators and len(by_reg) > size:
        raise ConfigError(f"{pre}{where}: cover_all_regulators needs all {len(by_reg)} regulators in every library "
                          f"but library_size is {size}", hint="raise library_size or turn cover_all_regulators off")
    if plan.min_total_sites > min(size, len(sites)):
        raise ConfigError(f"{pre}{where}: min_total_sites is {plan.min_total_sites} but a library holds at most "
                          f"{min(size, len(sites))} usable site(s)", hint="lower min_total_sites or raise library_size")
    if not sites:
        warnings.append(f"{where}: no usable sites in its inputs; sequences will hold only fixed elements and filler")
    elif len(sites) <= size:
        warnings.append(f"{where}: its pool has {len(sites)} usable site(s), not more than library_size {size}, "
                        f"so every library is the whole pool")
    bound = _distinct_bound(plan)
    if bound is not None and plan.quota > bound:
        raise ConfigError(f"{pre}{where}: quota {plan.quota} is unreachable: at most {bound} distinct sequences of "
                          f"{L} bp fit these constraints", hint="lower `sequences` or lengthen the sequence")
    # the solver's own precheck on a sampled library catches the rest
    lib = LibrarySampler(plan, pools, seed=0).next()
    try:
        precheck(plan.build_problem(lib))
    except DnadesignError as e:
        raise ConfigError(f"{pre}{where}: {e.message}", hint=e.hint) from None
    return warnings


def preflight(cfg: LoadedConfig, *, plans: Sequence[PlanSpec] | None = None,
              pools: Mapping[str, Pool] | None = None, seed: int | None = None,
              checkpoint: Callable[[], None] | None = None) -> list[str]:
    """Check a config against its inputs before solving; return warnings, raise on errors.

    Catches missing or unreadable input files, invalid alphabets, promoters that cannot fit,
    regulator groups with no members in the inputs, constraints a library can never meet, and
    quotas above the number of distinct sequences the constraints allow (when that is small).
    `checkpoint` is called before each plan (a start-up stop raises from it).
    """
    plans = list(plans) if plans is not None else resolve_plans(cfg)
    warnings: list[str] = []
    used = {n for p in plans for n in p.include_inputs}
    for inp in cfg.model.inputs:
        if inp.name not in used:
            warnings.append(f"input {inp.name!r} is not used by any plan")
    if pools is None:
        pools = build_pools(cfg, seed=seed, checkpoint=checkpoint)
    for pool in pools.values():
        warnings.extend(pool.notes)
    for plan in plans:
        if checkpoint is not None:
            checkpoint()
        for w in check_plan(plan, pools, cfg.path):
            if plan.variant:  # matrix variants share most warnings: report them once per base plan
                w = w.replace(f"plan {plan.name!r}", f"plan {plan.base_plan!r} (matrix variants)", 1)
            warnings.append(w)
    return list(dict.fromkeys(warnings))


def describe_inputs(cfg: LoadedConfig, pools: Mapping[str, Pool]) -> list[dict[str, Any]]:
    """One row per input: type, sources and pool summary (for `dense inspect inputs`)."""
    rows = []
    for inp in cfg.model.inputs:
        row = {"name": inp.name, "type": inp.type, "sources": input_sources(cfg, inp)}
        if inp.name in pools:
            row.update({k: v for k, v in pools[inp.name].summary().items() if k != "name"})
        rows.append(row)
    return rows


__all__ = [
    "InputError",
    "LibrarySampler",
    "Pool",
    "build_pools",
    "check_plan",
    "describe_inputs",
    "library_hash",
    "plan_pool",
    "preflight",
]
