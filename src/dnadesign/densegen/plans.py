"""Plan resolution: config plans -> concrete `PlanSpec`s (matrix plans expanded), and quotas.

A `PlanSpec` holds everything needed to turn a sampled library into a solver `Problem`:
sequence length, strands, fixed promoter elements, regulator groups and minimums, forbidden
k-mers, GC bounds, side biases and the further rules of ``solver/constraints`` (``rules``). It is plain, frozen data so it can be hashed, logged and
compared across resumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..core.errors import ConfigError
from .config import FixedElementMatrix, LoadedConfig, PlanConfig, SamplingConfig, rules_of
from .solver.constraints.base import Constraint, required_counts  # plain dataclasses: no OR-Tools
from .solver.types import Problem, PromoterConstraint, RegulatorGroup, SideBias, Site


@dataclass(frozen=True)
class PlanSpec:
    """One concrete plan: a quota of sequences designed from the union of `include_inputs`."""

    name: str
    quota: int
    include_inputs: tuple[str, ...]
    sequence_length: int
    strands: str = "double"
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    promoters: tuple[PromoterConstraint, ...] = ()
    groups: tuple[RegulatorGroup, ...] = ()
    min_count_by_regulator: tuple[tuple[str, int], ...] = ()
    min_total_sites: int = 0
    forbid_kmers: tuple[str, ...] = ()
    gc_min: float | None = None
    gc_max: float | None = None
    side_left: tuple[str, ...] = ()
    side_right: tuple[str, ...] = ()
    side_weight: float = 1.0
    rules: tuple[Constraint, ...] = ()  # forbidden patterns/enzymes, GC windows, homopolymers, pins, spacing, weights...
    sampling_overrides: tuple[str, ...] = ()  # sampling keys this plan sets itself
    base_plan: str = ""  # the config plan this one came from (differs from name for matrix plans)
    variant: tuple[tuple[str, str], ...] = ()  # matrix variant: (("up", id), ("down", id))

    @property
    def required_regulators(self) -> tuple[str, ...]:
        """Regulators named by groups, `min_count_by_regulator` or pins (sorted, unique)."""
        regs = {m for g in self.groups for m in g.members} | {r for r, n in self.min_count_by_regulator if n > 0}
        regs |= set(required_counts(self.rules))
        return tuple(sorted(regs))

    def with_quota(self, quota: int) -> PlanSpec:
        return replace(self, quota=quota)

    def build_problem(self, library: Sequence[Site]) -> Problem:
        """The solver problem for one library of sites under this plan's constraints."""
        promoters, groups = self.promoters, self.groups
        biases: tuple[SideBias, ...] = ()
        if self.side_left or self.side_right:
            biases = (SideBias(left=self.side_left, right=self.side_right, weight=self.side_weight),)
        return Problem(
            sites=tuple(library),
            length=self.sequence_length,
            strands=self.strands,
            promoters=promoters,
            groups=groups,
            min_count_by_regulator=dict(self.min_count_by_regulator),
            min_total_sites=self.min_total_sites,
            forbid_kmers=self.forbid_kmers,
            gc_min=self.gc_min,
            gc_max=self.gc_max,
            side_biases=biases,
            rules=self.rules,
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for `dense inspect plan` and run manifests."""
        d: dict[str, Any] = {
            "name": self.name,
            "base_plan": self.base_plan or self.name,
            "quota": self.quota,
            "include_inputs": list(self.include_inputs),
            "sequence_length": self.sequence_length,
            "strands": self.strands,
            "sampling": self.sampling.model_dump(),
            "sampling_overrides": list(self.sampling_overrides),
            "promoters": [asdict(p) for p in self.promoters],
            "groups": [asdict(g) for g in self.groups],
            "min_count_by_regulator": dict(self.min_count_by_regulator),
            "min_total_sites": self.min_total_sites,
            "forbid_kmers": list(self.forbid_kmers),
            "gc": {"min": self.gc_min, "max": self.gc_max},
            "side_biases": {"left": list(self.side_left), "right": list(self.side_right), "weight": self.side_weight},
            "rules": [{"rule": r.config_key(), **_jsonable(asdict(r))} for r in self.rules],  # type: ignore[call-overload]
        }
        if self.variant:
            d["variant"] = dict(self.variant)
        for p in d["promoters"]:
            for k in ("upstream_pos", "downstream_pos"):
                if p[k] is not None:
                    p[k] = list(p[k])
        for g in d["groups"]:
            g["members"] = list(g["members"])
        return d


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: [list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, tuple) else v for k, v in d.items()}


def merged_sampling(base: SamplingConfig, plan: PlanConfig) -> SamplingConfig:
    """`generation.sampling` with the plan's `sampling` overrides applied."""
    over = {k: v for k, v in plan.sampling.model_dump().items() if v is not None}
    return base.model_copy(update=over)


def _matrix_pairs(cfg: LoadedConfig, plan: PlanConfig, m: FixedElementMatrix) -> list[tuple[str, str]]:
    sets = cfg.model.motif_sets
    up_set, down_set = sets[m.upstream_from_set], sets[m.downstream_from_set]
    where = f"generation.plans[{plan.name}].fixed_elements.fixed_element_matrix"
    ups = m.upstream_variants if m.upstream_variants is not None else list(up_set)
    downs = m.downstream_variants if m.downstream_variants is not None else list(down_set)
    for ids, s, nm in ((ups, up_set, m.upstream_from_set), (downs, down_set, m.downstream_from_set)):
        for vid in ids:
            if vid not in s:
                raise ConfigError(f"{cfg.path}: `{where}`: variant {vid!r} is not in motif set {nm!r}",
                                  hint=f"known variants: {', '.join(s)}")
    if m.pairing == "zip":
        if len(ups) != len(downs):
            raise ConfigError(f"{cfg.path}: `{where}`: pairing zip needs as many upstream as downstream variants "
                              f"(got {len(ups)} and {len(downs)})", hint="use cross_product or explicit_pairs")
        return list(zip(ups, downs, strict=True))
    if m.pairing == "cross_product":
        return [(u, d) for u in ups for d in downs]
    pairs = []
    for pr in m.pairs:
        for vid, s, nm in ((pr.up, up_set, m.upstream_from_set), (pr.down, down_set, m.downstream_from_set)):
            if vid not in s:
                raise ConfigError(f"{cfg.path}: `{where}.pairs`: variant {vid!r} is not in motif set {nm!r}")
        pairs.append((pr.up, pr.down))
    if len(set(pairs)) != len(pairs):
        raise ConfigError(f"{cfg.path}: `{where}.pairs` lists a pair twice")
    return pairs


def _pair(r: tuple[int, int] | None) -> tuple[int, int] | None:
    return (int(r[0]), int(r[1])) if r is not None else None


def split_quota(total: int, n: int) -> list[int]:
    """`total` split over `n` parts: floor each, the remainder one by one to the first parts."""
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def resolve_plans(cfg: LoadedConfig) -> list[PlanSpec]:
    """Concrete plans in config order; `fixed_element_matrix` plans expand to one plan per pair.

    A matrix plan's `sequences` is the total over its variants, split as evenly as possible
    (the first variants take the remainder). Names are unique; a clash is a ConfigError.
    """
    g = cfg.model.generation
    sc = g.sequence_constraints
    forbid = cfg.forbid_kmers()
    seq_rules = rules_of(sc)
    out: list[PlanSpec] = []
    for plan in g.plans:
        rc = plan.regulator_constraints
        fe = plan.fixed_elements
        fixed = tuple(
            PromoterConstraint(p.name, p.upstream, p.downstream, p.spacer[0], p.spacer[1], _pair(p.upstream_pos),
                               _pair(p.downstream_pos))
            for p in fe.promoter_constraints
        )
        spec = PlanSpec(
            name=plan.name,
            quota=plan.sequences,
            include_inputs=tuple(dict.fromkeys(plan.include_inputs)),
            sequence_length=g.sequence_length,
            strands=cfg.model.solver.strands,
            sampling=merged_sampling(g.sampling, plan),
            promoters=fixed,
            sampling_overrides=tuple(k for k, v in plan.sampling.model_dump().items() if v is not None),
            groups=tuple(RegulatorGroup(x.name, tuple(x.members), x.min_required) for x in rc.groups),
            min_count_by_regulator=tuple(sorted((k, v) for k, v in rc.min_count_by_regulator.items() if v > 0)),
            min_total_sites=rc.min_total_sites,
            forbid_kmers=forbid,
            gc_min=sc.gc.min,
            gc_max=sc.gc.max,
            side_left=tuple(fe.side_biases.left) if fe.side_biases else (),
            side_right=tuple(fe.side_biases.right) if fe.side_biases else (),
            side_weight=fe.side_biases.weight if fe.side_biases else 1.0,
            rules=seq_rules + rules_of(rc),
            base_plan=plan.name,
        )
        m = fe.fixed_element_matrix
        if m is None:
            out.append(spec)
            continue
        pairs = _matrix_pairs(cfg, plan, m)
        if len(pairs) > plan.sequences:
            raise ConfigError(
                f"{cfg.path}: plan {plan.name!r} expands to {len(pairs)} promoter variants but asks for only "
                f"{plan.sequences} sequences, so some variants would get none",
                hint=f"raise `sequences` to at least {len(pairs)} (it is the total over all variants)")
        quotas = split_quota(plan.sequences, len(pairs))
        sets = cfg.model.motif_sets
        for (up, down), q in zip(pairs, quotas, strict=True):
            try:
                name = plan.name_template.format(plan=plan.name, up=up, down=down)
            except (KeyError, IndexError, ValueError) as e:
                raise ConfigError(f"{cfg.path}: plan {plan.name!r}: name_template {plan.name_template!r} is invalid ({e})",
                                  hint="use only the placeholders {plan}, {up}, {down}") from None
            prom = PromoterConstraint(m.name, sets[m.upstream_from_set][up], sets[m.downstream_from_set][down],
                                      m.spacer[0], m.spacer[1], _pair(m.upstream_pos), _pair(m.downstream_pos))
            out.append(replace(spec, name=name, quota=q, promoters=(*fixed, prom), variant=(("up", up), ("down", down))))
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{cfg.path}: plan names clash after matrix expansion: {', '.join(dup[:5])}",
                          hint="rename plans or change name_template")
    if len(out) > g.max_plans:
        raise ConfigError(f"{cfg.path}: the plans expand to {len(out)} concrete plans, above generation.max_plans={g.max_plans}",
                          hint="raise generation.max_plans or narrow the matrix")
    return out


def extend_quotas(plans: Sequence[PlanSpec], n: int, *, generated: Mapping[str, int] | None = None) -> list[PlanSpec]:
    """Add `n` sequences spread over the plans in proportion to their weight.

    Weight of a plan is max(quota, generated[name]). Shares are floored and the leftover units go
    to the plans with the largest remainders (ties: earlier plan first), so the result is
    deterministic and the added total is exactly `n`.
    """
    if n < 0:
        raise ConfigError(f"--extend-quota must be >= 0, got {n}")
    if not plans or n == 0:
        return list(plans)
    generated = generated or {}
    weights = [max(p.quota, generated.get(p.name, 0), 1) for p in plans]
    total = sum(weights)
    shares = [n * w / total for w in weights]
    adds = [int(s) for s in shares]
    left = n - sum(adds)
    order = sorted(range(len(plans)), key=lambda i: (-(shares[i] - adds[i]), i))
    for i in order[:left]:
        adds[i] += 1
    return [p.with_quota(p.quota + a) for p, a in zip(plans, adds, strict=True)]


def total_quota(plans: Sequence[PlanSpec]) -> int:
    return sum(p.quota for p in plans)
