"""DenseGen workspace config: the strict schema, loading, and resolved paths.

A workspace is a directory holding ``config.yaml``, ``inputs/`` and ``outputs/``. The YAML is
validated strictly: unknown keys and duplicate keys fail with their key path, and
``schema_version`` must be the one this code understands. Paths inside the config are relative
to the config file's directory. The schema is documented in ``docs/dense-config.md``.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..core.errors import ConfigError, DatasetIdError
from ..core.ids import sha256_bytes, validate_dataset_id
from ..core.scheduler import allocated_cpus
from .solver.constraints import RULES
from .solver.constraints.base import Constraint
from .solver.constraints.iupac import is_pattern
from .solver.types import SolverOptions

SCHEMA_VERSION = 1
CONFIG_ENV = "DENSEGEN_CONFIG"
CONFIG_ENV_FALLBACK = "DENSEGEN_CONFIG_PATH"  # the name older job scripts export
DEFAULT_CONFIG_NAME = "config.yaml"

_DNA = re.compile(r"^[ACGT]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _dna(value: str, what: str) -> str:
    seq = str(value).strip().upper()
    if not _DNA.match(seq):
        iupac = "; IUPAC patterns such as GCNNNNNNNGC go under `generation.sequence_constraints.forbid_patterns`"
        tip = iupac if what == "k-mer" and is_pattern(seq) else ""
        raise ValueError(f"{what} {value!r} is not DNA (only A, C, G, T are allowed){tip}")
    return seq


def _rule_value(value: Any, info: ValidationInfo) -> Any:
    """Validate a rule key with its constraint module's parser (``solver.constraints.RULES``)."""
    RULES[str(info.field_name)](value, str(info.field_name))
    return value


def rules_of(section: BaseModel) -> tuple[Constraint, ...]:
    """The solver rules that the rule keys of a config section (set to non-defaults) describe."""
    out: list[Constraint] = []
    for key in type(section).model_fields:
        if key in RULES and key in section.model_fields_set:
            out += RULES[key](getattr(section, key), key)
    return tuple(out)


def _name(value: str, what: str) -> str:
    if not _NAME.match(value or ""):
        raise ValueError(f"{what} {value!r} must start with a letter or digit and use only letters, digits, '_', '.', '+', '-'")
    return value


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Range = tuple[int, int]


def _range_ok(r: Range | None, what: str) -> Range | None:
    if r is not None and (r[0] < 0 or r[0] > r[1]):
        raise ValueError(f"{what} must be [min, max] with 0 <= min <= max, got {list(r)}")
    return r


# -- run -------------------------------------------------------------------------------------

class RunConfig(Strict):
    id: str
    root: str = "."
    description: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _RUN_ID.match(v):
            raise ValueError(f"run id {v!r} must be lowercase letters, digits, '_', '.', '-' (it names the USR dataset)")
        return v


# -- inputs ----------------------------------------------------------------------------------

class SiteColumns(Strict):
    regulator: str = "tf"
    sequence: str = "tfbs"
    site_id: str | None = None


class LengthFilter(Strict):
    min: int | None = Field(default=None, ge=1)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _order(self) -> LengthFilter:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"length.min {self.min} is above length.max {self.max}")
        return self


TableFormat = Literal["auto", "csv", "tsv", "parquet"]


class BindingSitesInput(Strict):
    """Curated sites from a CSV / TSV / Parquet table (one row per site)."""

    type: Literal["binding_sites"]
    name: str
    path: str
    format: TableFormat = "auto"
    columns: SiteColumns = SiteColumns()
    regulators: list[str] | None = None  # keep only these regulators (None = all)
    length: LengthFilter = LengthFilter()
    skip_invalid: bool = False  # drop rows whose sequence is not ACGT instead of failing


class SequenceLibraryInput(Strict):
    """Whole sequences from a table; each becomes one site labelled `regulator`."""

    type: Literal["sequence_library"]
    name: str
    path: str
    format: TableFormat = "auto"
    sequence_column: str = "sequence"
    regulator_column: str | None = None
    regulator: str | None = None  # label when there is no regulator column (default: input name)
    limit: int | None = Field(default=None, ge=1)
    skip_invalid: bool = False


class UsrSequencesInput(Strict):
    """Sequences read from a USR dataset (`namespace/name`)."""

    type: Literal["usr_sequences"]
    name: str
    dataset: str
    root: str | None = None  # USR root; relative to the config; default: USR's default root
    regulator: str | None = None
    limit: int | None = Field(default=None, ge=1)

    @field_validator("dataset")
    @classmethod
    def _ds(cls, v: str) -> str:
        try:
            return validate_dataset_id(v)
        except DatasetIdError:
            raise ValueError(f"dataset {v!r} must be namespace/name with lowercase letters, digits, '_', '.', '-'") from None


class PwmSampling(Strict):
    """How sites are drawn from a PWM and scored by log-odds (in-process)."""

    strategy: Literal["stochastic", "consensus", "top"] = "stochastic"
    n_sites: int = Field(default=40, ge=1)
    candidates: int = Field(default=4000, ge=1)  # sequences drawn per motif before selection
    min_score_norm: float = Field(default=0.6, ge=0.0, le=1.0)  # (score-min)/(max-min)
    trim_to: int | None = Field(default=None, ge=4)  # keep the most informative window of this width
    pseudocount: float = Field(default=0.5, ge=0.0)

    @model_validator(mode="after")
    def _consensus(self) -> PwmSampling:
        if self.strategy == "consensus" and self.n_sites != 1:
            raise ValueError("strategy consensus yields exactly one site per motif; set n_sites: 1")
        return self


class PwmInput(Strict):
    """Position weight matrices from which sites are sampled and scored in-process."""

    type: Literal["pwm"]
    name: str
    format: Literal["meme", "jaspar", "regulondb", "artifact", "jaspar_db"]
    path: str | None = None  # jaspar_db: optional JASPAR SQLite file (default: the release pyjaspar ships)
    paths: list[str] | None = None
    motifs: list[str] | None = None  # motif names to keep (None = all); jaspar_db: matrix ids or TF names
    taxon: str | None = None  # jaspar_db: species name or NCBI tax id narrowing TF-name lookups
    release: str | None = None  # jaspar_db: e.g. JASPAR2024 (default: the latest shipped)
    collection: str | None = "CORE"  # jaspar_db: collection for TF-name lookups (null = all)
    labels: dict[str, str] = {}  # motif name -> regulator label (default: the motif name)
    background: dict[str, float] | None = None  # A/C/G/T frequencies; default uniform
    sampling: PwmSampling = PwmSampling()

    @model_validator(mode="after")
    def _paths(self) -> PwmInput:
        if self.format == "jaspar_db":
            if self.paths is not None or not self.motifs:
                raise ValueError("format jaspar_db takes `motifs` (matrix ids or TF names) and at most a `path` to a JASPAR SQLite file")
            if self.path is not None and self.release is not None:
                raise ValueError("give `release` or `path`, not both")
        elif (self.path is None) == (self.paths is None):
            raise ValueError("give exactly one of path or paths")
        elif self.taxon is not None or self.release is not None:
            raise ValueError("`taxon` and `release` apply to format jaspar_db only")
        if self.background is not None:
            keys = set(self.background)
            if keys != set("ACGT") or any(v <= 0 for v in self.background.values()):
                raise ValueError("background must give positive frequencies for exactly A, C, G, T")
        return self

    @property
    def all_paths(self) -> list[str]:
        return [self.path] if self.path is not None else list(self.paths or [])


class KmerRule(Strict):
    """Forbidden k-mers named literally and/or taken from motif sets."""

    kmers: list[str] = []
    motif_sets: list[str] = []

    @field_validator("kmers")
    @classmethod
    def _k(cls, v: list[str]) -> list[str]:
        return [_dna(k, "k-mer") for k in v]


KmerSpec = str | KmerRule


def _kmer_items(v: list) -> list:
    return [(_dna(k, "k-mer") if isinstance(k, str) else k) for k in v]


class GcBounds(Strict):
    min: float | None = Field(default=None, ge=0.0, le=1.0)
    max: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _order(self) -> GcBounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"gc.min {self.min} is above gc.max {self.max}")
        return self


class PwmExclusion(Strict):
    """Drop background candidates that score like a site of these PWM inputs."""

    inputs: list[str]
    max_score_norm: float = Field(default=0.8, ge=0.0, le=1.0)


class BackgroundPoolInput(Strict):
    """Random filler sites with GC bounds and forbidden k-mers removed."""

    type: Literal["background_pool"]
    name: str
    n_sites: int = Field(default=200, ge=1)
    length: Range = (16, 20)
    gc: GcBounds = GcBounds(min=0.4, max=0.6)
    forbid_kmers: list[KmerSpec] = []
    exclude_pwm_hits: PwmExclusion | None = None
    regulator: str = "background"
    max_candidates: int = Field(default=200_000, ge=1)

    @field_validator("forbid_kmers")
    @classmethod
    def _fk(cls, v: list) -> list:
        return _kmer_items(v)

    @field_validator("length")
    @classmethod
    def _len(cls, v: Range) -> Range:
        _range_ok(v, "length")
        if v[0] < 1:
            raise ValueError("length must be at least 1")
        return v


InputConfig = Annotated[
    BindingSitesInput | SequenceLibraryInput | UsrSequencesInput | PwmInput | BackgroundPoolInput,
    Field(discriminator="type"),
]


# -- output ----------------------------------------------------------------------------------

class UsrOutput(Strict):
    root: str | None = None  # default: <workspace>/outputs/usr_datasets
    dataset: str | None = None  # default: densegen/<run id>

    @field_validator("dataset")
    @classmethod
    def _ds(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return validate_dataset_id(v)
        except DatasetIdError:
            raise ValueError(f"dataset {v!r} must be namespace/name with lowercase letters, digits, '_', '.', '-'") from None


class ParquetOutput(Strict):
    path: str = "outputs/tables/records.parquet"
    deduplicate: bool = True  # skip sequences whose id is already in the file


class OutputConfig(Strict):
    targets: list[Literal["usr", "parquet"]] = ["parquet"]
    usr: UsrOutput = UsrOutput()
    parquet: ParquetOutput = ParquetOutput()

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one output target (usr or parquet) is required")
        if len(set(v)) != len(v):
            raise ValueError("output targets must not repeat")
        return v


# -- generation ------------------------------------------------------------------------------

SamplingStrategy = Literal["tf_balanced", "coverage_weighted", "uniform"]


class SamplingConfig(Strict):
    """How a library (the sites offered to one solve round) is drawn from a plan's pool."""

    library_size: int = Field(default=12, ge=1)
    strategy: SamplingStrategy = "tf_balanced"
    cover_all_regulators: bool = False
    unique_binding_sites: bool = True
    unique_binding_cores: bool = True
    max_sites_per_regulator: int | None = Field(default=None, ge=1)
    coverage_alpha: float = Field(default=1.0, ge=0.0)


class SamplingOverride(Strict):
    """Per-plan overrides of `generation.sampling` (unset keys inherit)."""

    library_size: int | None = Field(default=None, ge=1)
    strategy: SamplingStrategy | None = None
    cover_all_regulators: bool | None = None
    unique_binding_sites: bool | None = None
    unique_binding_cores: bool | None = None
    max_sites_per_regulator: int | None = Field(default=None, ge=1)
    coverage_alpha: float | None = Field(default=None, ge=0.0)


class PromoterConstraintConfig(Strict):
    name: str = "promoter"
    upstream: str
    downstream: str
    spacer: Range
    upstream_pos: Range | None = None
    downstream_pos: Range | None = None

    @field_validator("upstream", "downstream")
    @classmethod
    def _seq(cls, v: str) -> str:
        return _dna(v, "promoter element")

    @field_validator("spacer", "upstream_pos", "downstream_pos")
    @classmethod
    def _rng(cls, v: Range | None) -> Range | None:
        return _range_ok(v, "range")


class ExplicitPair(Strict):
    up: str
    down: str


class FixedElementMatrix(Strict):
    """Expands one plan into one plan per (upstream, downstream) variant pair."""

    name: str = "promoter"
    upstream_from_set: str
    downstream_from_set: str
    upstream_variants: list[str] | None = None  # None = every variant of the set, in set order
    downstream_variants: list[str] | None = None
    pairing: Literal["zip", "cross_product", "explicit_pairs"] = "cross_product"
    pairs: list[ExplicitPair] = []
    spacer: Range
    upstream_pos: Range | None = None
    downstream_pos: Range | None = None

    @model_validator(mode="after")
    def _pairs(self) -> FixedElementMatrix:
        if self.pairing == "explicit_pairs" and not self.pairs:
            raise ValueError("pairing explicit_pairs needs a non-empty pairs list")
        if self.pairing != "explicit_pairs" and self.pairs:
            raise ValueError("pairs is only used with pairing: explicit_pairs")
        for r in (self.spacer, self.upstream_pos, self.downstream_pos):
            _range_ok(r, "range")
        return self


class SideBiases(Strict):
    left: list[str] = []
    right: list[str] = []
    weight: float = Field(default=1.0, ge=0.0)


class FixedElements(Strict):
    promoter_constraints: list[PromoterConstraintConfig] = []
    fixed_element_matrix: FixedElementMatrix | None = None
    side_biases: SideBiases | None = None


class RegulatorGroupConfig(Strict):
    name: str
    members: list[str]
    min_required: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _members(self) -> RegulatorGroupConfig:
        if len(set(self.members)) != len(self.members):
            raise ValueError(f"group {self.name!r} lists a member twice")
        if self.min_required > len(self.members):
            raise ValueError(f"group {self.name!r} requires {self.min_required} of only {len(self.members)} member(s)")
        return self


class RegulatorConstraints(Strict):
    """Per-plan regulator rules; the newer ones are parsed by their modules in ``solver/constraints``."""

    groups: list[RegulatorGroupConfig] = []
    min_count_by_regulator: dict[str, int] = {}
    min_total_sites: int = Field(default=0, ge=0)
    max_count_by_regulator: dict[str, Any] = {}  # constraints/counts.py
    pins: list[Any] = []  # constraints/pins.py: [{regulator, at}] or [{regulator, window: [lo, hi]}]
    spacing: list[Any] = []  # constraints/spacing.py: [{a, b, min_gap, max_gap}]
    weights: dict[str, Any] = {}  # constraints/weights.py: {regulator: integer 1..1000}

    _rules = field_validator("max_count_by_regulator", "pins", "spacing", "weights")(_rule_value)

    @model_validator(mode="after")
    def _check(self) -> RegulatorConstraints:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("regulator group names must be unique")
        for reg, n in self.min_count_by_regulator.items():
            if n < 0:
                raise ValueError(f"min_count_by_regulator[{reg}] must be >= 0")
        return self


class PlanConfig(Strict):
    name: str
    sequences: int = Field(ge=1)
    include_inputs: list[str] = Field(min_length=1)
    sampling: SamplingOverride = SamplingOverride()
    fixed_elements: FixedElements = FixedElements()
    regulator_constraints: RegulatorConstraints = RegulatorConstraints()
    name_template: str = "{plan}__{up}__{down}"  # matrix plans; placeholders {plan} {up} {down}

    @field_validator("name")
    @classmethod
    def _n(cls, v: str) -> str:
        return _name(v, "plan name")


class SequenceConstraints(Strict):
    """Rules on the whole designed sequence; the newer ones are parsed in ``solver/constraints``."""

    forbid_kmers: list[KmerSpec] = []
    gc: GcBounds = GcBounds()
    forbid_patterns: list[Any] = []  # constraints/forbidden.py: IUPAC patterns, both strands
    forbid_enzymes: list[Any] = []  # constraints/enzymes.py: restriction enzyme names (Bio.Restriction)
    gc_windows: list[Any] = []  # constraints/gc.py: [{window, min, max}]
    max_homopolymer: int | None = None  # constraints/homopolymer.py

    _rules = field_validator("forbid_patterns", "forbid_enzymes", "gc_windows", "max_homopolymer")(_rule_value)

    @field_validator("forbid_kmers")
    @classmethod
    def _fk(cls, v: list) -> list:
        return _kmer_items(v)


class GenerationConfig(Strict):
    sequence_length: int = Field(ge=4, le=10_000)
    sampling: SamplingConfig = SamplingConfig()
    plans: list[PlanConfig] = Field(min_length=1)
    sequence_constraints: SequenceConstraints = SequenceConstraints()
    max_plans: int = Field(default=256, ge=1)  # cap on plans after matrix expansion


# -- solver / runtime / misc -----------------------------------------------------------------

class SolverConfig(Strict):
    strategy: Literal["optimal", "diverse"] = "optimal"
    time_limit_s: float = Field(default=10.0, gt=0)  # per solve
    run_time_limit_s: float | None = Field(default=None, gt=0)  # per library (all its solutions)
    workers: int | None = Field(default=None, ge=1)  # None: the scheduler's CPU allocation
    strands: Literal["single", "double"] = "double"
    solutions_per_library: int = Field(default=5, ge=1)
    deterministic: bool = False  # limits count work, not time: reproducible whatever the load (solver/budget.py)
    min_objective_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    # End a library's first (optimising) solve after this many seconds without improvement;
    # null = use the whole time_limit_s. The benchmark's 13x figure uses 1 s.
    stall_time_s: float | None = Field(default=None, gt=0)
    # How time limits are measured: "wall" seconds or "cpu" seconds of the process (the same
    # budget of computation on an oversubscribed node as on an idle one; see docs/solver.md).
    clock: Literal["wall", "cpu"] = "wall"


class RuntimeConfig(Strict):
    seed: int = 1
    round_robin: bool = False
    max_failed_solutions: int | None = Field(default=None, ge=1)  # None = unlimited
    max_stalled_libraries: int = Field(default=25, ge=1)  # consecutive libraries with nothing new
    checkpoint_every: int = Field(default=50, ge=1)  # accepted sequences per flush
    checkpoint_interval_s: float = Field(default=30.0, gt=0)  # ... or at least this often
    health_interval_s: float = Field(default=60.0, gt=0)
    max_seconds: float | None = Field(default=None, gt=0)  # whole run; stop cleanly and finalize


class PostprocessConfig(Strict):
    # After every session, write the run's accepted sequences as FASTA (`>id plan=... sites=...`) to this
    # path, relative to the config; null = off. (Every solution is always re-checked before acceptance.)
    fasta: str | None = None


class LoggingConfig(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    progress: Literal["auto", "bar", "lines", "off"] = "auto"
    summary_interval_s: float = Field(default=30.0, gt=0)


class PlotsConfig(Strict):
    default: list[str] = []
    formats: list[Literal["png", "pdf", "svg"]] = ["png"]


class DenseConfig(Strict):
    schema_version: int
    run: RunConfig
    inputs: list[InputConfig] = Field(min_length=1)
    motif_sets: dict[str, dict[str, str]] = {}
    output: OutputConfig = OutputConfig()
    generation: GenerationConfig
    solver: SolverConfig = SolverConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    logging: LoggingConfig = LoggingConfig()
    plots: PlotsConfig = PlotsConfig()

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is not supported; this dense reads schema_version {SCHEMA_VERSION}")
        return v

    @field_validator("motif_sets")
    @classmethod
    def _sets(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        out = {}
        for set_name, variants in v.items():
            if not variants:
                raise ValueError(f"motif set {set_name!r} is empty")
            out[set_name] = {vid: _dna(seq, f"motif_sets.{set_name}.{vid}") for vid, seq in variants.items()}
        return out

    @model_validator(mode="after")
    def _cross_refs(self) -> DenseConfig:
        names = [i.name for i in self.inputs]
        for k, n in enumerate(names):
            try:
                _name(n, "input name")
            except ValueError as e:
                raise ValueError(f"`inputs[{k}].name`: {e}") from None
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"`inputs`: input names must be unique; repeated: {', '.join(dup)}")
        by_name = {i.name: i for i in self.inputs}
        for k, inp in enumerate(self.inputs):
            if isinstance(inp, BackgroundPoolInput):
                self._check_kmers(inp.forbid_kmers, f"`inputs[{k}].forbid_kmers`")
                if inp.exclude_pwm_hits:
                    for ref in inp.exclude_pwm_hits.inputs:
                        if not isinstance(by_name.get(ref), PwmInput):
                            raise ValueError(f"`inputs[{k}].exclude_pwm_hits`: input {inp.name!r} refers to {ref!r}, which is not a pwm input")
        self._check_kmers(self.generation.sequence_constraints.forbid_kmers, "`generation.sequence_constraints.forbid_kmers`")
        plan_names = [p.name for p in self.generation.plans]
        dup = sorted({n for n in plan_names if plan_names.count(n) > 1})
        if dup:
            raise ValueError(f"`generation.plans`: plan names must be unique; repeated: {', '.join(dup)}")
        for k, plan in enumerate(self.generation.plans):
            at = f"generation.plans[{k}]"
            for ref in plan.include_inputs:
                if ref not in by_name:
                    raise ValueError(f"`{at}.include_inputs`: unknown input {ref!r} (inputs are: {', '.join(names)})")
            m = plan.fixed_elements.fixed_element_matrix
            if m is not None:
                for s in (m.upstream_from_set, m.downstream_from_set):
                    if s not in self.motif_sets:
                        raise ValueError(f"`{at}.fixed_elements.fixed_element_matrix`: unknown motif set {s!r}; define it under motif_sets")
            seen: dict[str, str] = {}
            for g in plan.regulator_constraints.groups:
                for mem in g.members:
                    if mem in seen:
                        raise ValueError(f"`{at}.regulator_constraints.groups`: regulator {mem!r} is in groups {seen[mem]!r} and {g.name!r}")
                    seen[mem] = g.name
        return self

    def _check_kmers(self, specs: list, where: str) -> None:
        for spec in specs:
            if isinstance(spec, KmerRule):
                for s in spec.motif_sets:
                    if s not in self.motif_sets:
                        raise ValueError(f"{where}: unknown motif set {s!r}; define it under motif_sets")

    def expand_kmers(self, specs: list) -> tuple[str, ...]:
        """Literal k-mers of a forbid_kmers list, motif-set references expanded, in first-seen order."""
        out: list[str] = []
        for spec in specs:
            if isinstance(spec, str):
                out.append(spec)
            else:
                out.extend(spec.kmers)
                for s in spec.motif_sets:
                    out.extend(self.motif_sets[s].values())
        return tuple(dict.fromkeys(out))


# -- loading ---------------------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys, naming the key path."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            mark = key_node.start_mark
            raise _DuplicateKey(f"duplicate key {key!r} at line {mark.line + 1}, column {mark.column + 1}")
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


class _DuplicateKey(Exception):
    pass


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _key_path(loc: tuple, raw: Any) -> str:
    """Render a pydantic error location as `a.b[0].c`, dropping union/discriminator tags."""
    parts: list[str] = []
    node = raw
    for i, el in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, list) and isinstance(el, int):
            parts.append(f"[{el}]")
            node = node[el] if el < len(node) else None
        elif isinstance(node, dict) and el in node:
            parts.append(f".{el}")
            node = node[el]
        elif isinstance(node, dict) and last:
            parts.append(f".{el}")
            node = None
        elif node is None and isinstance(el, str) and last:
            parts.append(f".{el}")
        else:
            continue  # a tag pydantic inserts for unions (e.g. the input `type`)
    return "".join(parts).lstrip(".") or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model reachable through list / dict / Union / Annotated in `annotation`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for a in typing.get_args(annotation):
        out.extend(_models_in(a))
    return out


def _tag_matches(cls: type[BaseModel], tag: Any) -> bool:
    f = cls.model_fields.get("type")
    return f is not None and tag in typing.get_args(f.annotation)


def _allowed_keys(model: type[BaseModel], loc: tuple, raw: Any) -> list[str] | None:
    """Field names allowed at the mapping holding an unknown key, when they can be worked out."""
    cands: list[type[BaseModel]] = [model]
    node = raw
    for el in loc[:-1]:
        if isinstance(node, list) and isinstance(el, int):
            node = node[el] if el < len(node) else None
        elif isinstance(node, dict) and el in node:
            owners = [c for c in cands if el in c.model_fields]
            if isinstance(node.get("type"), str):
                owners = [c for c in owners if _tag_matches(c, node["type"])] or owners
            if len(owners) != 1:
                return None
            cands = _models_in(owners[0].model_fields[el].annotation)
            node = node[el]
        else:  # a union tag pydantic inserted
            cands = [c for c in cands if _tag_matches(c, el) or c.__name__ == el] or cands
    if isinstance(node, dict) and isinstance(node.get("type"), str):
        cands = [c for c in cands if _tag_matches(c, node["type"])] or cands
    return sorted(cands[0].model_fields) if len(cands) == 1 else None


# Keys of the previous DenseGen config format, with the key that replaces them here.
_RENAMED = {
    "spacer_length": "spacer", "plan": "plans", "random_seed": "seed", "library_sampling_strategy": "strategy",
    "solver_attempt_timeout_seconds": "time_limit_s", "threads": "workers",
    "upstream_variant_ids": "upstream_variants", "downstream_variant_ids": "downstream_variants",
    "expanded_name_template": "name_template", "progress_style": "progress",
}
_DROPPED = {"backend": "the solver is always CP-SAT", "log_dir": "logs always go to outputs/logs",
            "pool_strategy": "libraries are always sampled per solve round"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: where (key path), what, and what to do."""

    where: str
    message: str
    hint: str | None = None

    def line(self) -> str:
        return self.message + (f"; {self.hint}" if self.hint else "")

    def as_dict(self) -> dict[str, str | None]:
        return {"key": self.where, "problem": self.message, "hint": self.hint}


class ConfigProblems(ConfigError):
    """A config with one or more schema problems; `problems` lists every one of them."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"{path}: {problems[0].message}", hint=problems[0].hint)
        else:
            lines = "".join(f"\n  - {p.line()}" for p in problems)
            super().__init__(f"{path} has {len(problems)} problems:{lines}", hint="see docs/dense-config.md")


def _problem(err: Any, raw: Any) -> Problem:
    """One pydantic error as a Problem (key path, message, hint)."""
    loc = tuple(err.get("loc", ()))
    where = _key_path(loc, raw)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(DenseConfig, loc, raw)
        key = str(loc[-1]) if loc else ""
        guess = _RENAMED.get(key) or next(iter(difflib.get_close_matches(key, allowed or [], n=1, cutoff=0.6)), None)
        did = f" (did you mean `{guess}`?)" if guess else ""
        if key in _DROPPED:
            did = f" (not needed: {_DROPPED[key]})"
        hint = f"allowed keys here: {', '.join(allowed)}" if allowed else "see docs/dense-config.md for the allowed keys"
        return Problem(where, f"unknown key `{where}`{did}", hint)
    if err["type"] == "missing":
        return Problem(where, f"missing required key `{where}`", "see docs/dense-config.md")
    msg = err.get("msg", "invalid value")
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx") or {}
        hint = f"use one of: {ctx.get('expected_tags', '')}".rstrip(": ")
        got = f"unknown type {ctx['tag']!r}" if "tag" in ctx else "missing `type`"
        return Problem(f"{where}.type", f"`{where}.type`: {got}", hint)
    if where == "(top level)":
        return Problem(where, msg)
    return Problem(where, f"`{where}`: {msg}")


def _format_error(exc: ValidationError, raw: Any, path: Path) -> ConfigProblems:
    """Every problem pydantic found, unknown keys first (they often explain the rest), duplicates merged."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    problems = list({(p.where, p.message): p for p in (_problem(e, raw) for e in errors)}.values())
    return ConfigProblems(path, problems)


def default_config_path() -> Path:
    """`$DENSEGEN_CONFIG` (or `$DENSEGEN_CONFIG_PATH`), else `./config.yaml`."""
    env = os.environ.get(CONFIG_ENV) or os.environ.get(CONFIG_ENV_FALLBACK)
    return Path(env).expanduser() if env else Path.cwd() / DEFAULT_CONFIG_NAME


def read_yaml(path: Path) -> Any:
    """Parse a YAML file strictly (duplicate keys fail); errors are ConfigError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found",
                          hint="pass -c PATH, or create a workspace with `dense workspace init`") from None
    except IsADirectoryError:
        raise ConfigError(f"config path {path} is a directory", hint="pass the config.yaml file inside it") from None
    try:
        return yaml.load(data.decode("utf-8"), Loader=_StrictLoader), data
    except _DuplicateKey as e:
        raise ConfigError(f"{path}: {e}", hint="each key may appear once per mapping") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def parse_config(raw: Any, path: Path) -> DenseConfig:
    """Validate parsed YAML against the schema; errors name the key path."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping with schema_version, run, inputs, generation, ...")
    if "densegen" in raw and "schema_version" not in raw:
        raise ConfigError(f"{path}: this looks like a config of the previous DenseGen (settings under `densegen:`)",
                          hint=f"convert it with `dense config migrate {path.name} -o NEW.yaml` (keeps comments, lists what cannot be carried)")
    if "schema_version" not in raw:
        raise ConfigError(f"{path}: missing required key `schema_version`", hint=f"add `schema_version: {SCHEMA_VERSION}` at the top")
    try:
        return DenseConfig.model_validate(raw)
    except ValidationError as exc:
        raise _format_error(exc, raw, path) from None


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config together with where it lives."""

    path: Path
    root: Path
    model: DenseConfig
    sha256: str
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def resolve(self, p: str | Path) -> Path:
        """A path from the config, relative to the config's directory (``~`` expanded)."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.path.parent / q).resolve()

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def inputs_dir(self) -> Path:
        return self.root / "inputs"

    @property
    def run_id(self) -> str:
        return self.model.run.id

    def usr_target(self) -> tuple[Path, str] | None:
        """(USR root, dataset id) when USR output is configured."""
        out = self.model.output
        if "usr" not in out.targets:
            return None
        root = self.resolve(out.usr.root) if out.usr.root else self.outputs_dir / "usr_datasets"
        return root, out.usr.dataset or f"densegen/{self.run_id}"

    def parquet_target(self) -> Path | None:
        """The records parquet file when parquet output is configured."""
        out = self.model.output
        if "parquet" not in out.targets:
            return None
        return self.resolve(out.parquet.path)

    def input_by_name(self, name: str):
        for inp in self.model.inputs:
            if inp.name == name:
                return inp
        raise KeyError(name)

    def forbid_kmers(self) -> tuple[str, ...]:
        """Global forbidden k-mers (literal, motif sets expanded)."""
        return self.model.expand_kmers(self.model.generation.sequence_constraints.forbid_kmers)

    def solver_options(self, *, seed: int | None = None, workers: int | None = None):
        """`SolverOptions` from the solver section; workers default to the scheduler's CPU allocation."""
        s = self.model.solver
        n = workers or s.workers or allocated_cpus()
        return SolverOptions(time_limit_s=s.time_limit_s, seed=self.model.runtime.seed if seed is None else seed,
                             workers=max(1, int(n)), mode=s.strategy, run_time_limit_s=s.run_time_limit_s,
                             deterministic=s.deterministic, min_objective_fraction=s.min_objective_fraction,
                             stall_time_s=s.stall_time_s, clock=s.clock)


def load_config(path: str | Path | None = None) -> LoadedConfig:
    """Load and strictly validate a workspace config (default: `$DENSEGEN_CONFIG` or ./config.yaml)."""
    p = Path(path).expanduser() if path is not None else default_config_path()
    p = p.resolve() if p.exists() else (Path.cwd() / p if not p.is_absolute() else p)
    raw, data = read_yaml(p)
    model = parse_config(raw, p)
    root_raw = Path(model.run.root).expanduser()
    root = root_raw if root_raw.is_absolute() else (p.parent / root_raw)
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(f"{p}: `run.root` {model.run.root!r} resolves to {root}, which is not a directory",
                          hint="create it or set run.root: \".\" (the config's directory)")
    return LoadedConfig(path=p, root=root, model=model, sha256=sha256_bytes(data), raw=raw)
