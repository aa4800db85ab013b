"""`dense config migrate`: turn a config of the previous DenseGen (schema 2.x) into a config here.

The old file is edited as a round-trip YAML document, so every comment survives: settings that
have a counterpart are renamed or moved in place (`densegen.generation.plan` -> `generation.plans`,
`spacer_length` -> `spacer`, `runtime.max_accepted_per_library` -> `solver.solutions_per_library`,
...), and each setting that cannot be carried is removed and replaced by a comment saying what it
was and why it has no counterpart; the comments that were attached to it are kept next to that
note. The result must pass the same strict validation as any config, or nothing is written.

The incumbent schema is described in ../shared/reference/densegen.md (section 3); the mapping
is documented in docs/migrate.md.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from ..core.errors import ConfigError, DatasetIdError
from ..core.timeutil import utc_now_iso
from ..usr.incumbent import map_dataset_id
from . import yaml_rt
from .config import SCHEMA_VERSION, ConfigProblems, Problem, parse_config
from .plots import INCUMBENT_PLOTS

MARK = "dense config migrate"
# Incumbent plot ids with an equivalent plot here (`dense ls-plots`): the plots registry's table.
PLOT_IDS = INCUMBENT_PLOTS
PROGRESS = {"auto": "auto", "screen": "bar", "stream": "lines", "summary": "lines"}
STRATEGY = {"tf_balanced": "tf_balanced", "coverage_weighted": "coverage_weighted", "uniform_over_pairs": "uniform"}
PWM_FORMATS = {"pwm_meme": "meme", "pwm_meme_set": "meme", "pwm_jaspar": "jaspar", "pwm_artifact": "artifact",
               "pwm_artifact_set": "artifact"}
# Why whole groups of incumbent settings have no counterpart here.
WHY = {
    "solver": "the solver is always CP-SAT; there is no MILP backend to choose",
    "pad": "the solver designs the whole sequence, gaps included, so there is no padding step",
    "pool": "libraries are sampled from each plan's pool for every solve round; there are no pool strategies or prebuilt libraries",
    "feedback": "library sampling already uses placement feedback; failure penalties and coverage powers are not tunable",
    "fimo": "PWM sites are sampled and scored in-process; there is no FIMO, tier or MMR selection to tune",
    "logging": "logs always go to outputs/logs; progress is a bar on a terminal and one-line summaries in batch jobs",
    "sink": "outputs are flushed every runtime.checkpoint_every accepted sequences",
    "strands": "forbidden k-mers are always forbidden on both strands",
    "allowlist": "promoter elements are always exempt from forbid_kmers at their own positions",
    "plots": "plots here are fewer and configured by plots.default and plots.formats only",
    "stall": "stalls are counted in libraries, not seconds: see runtime.max_stalled_libraries",
    "dup": "a library ends after solver.solutions_per_library distinct sequences; duplicates are never accepted",
}


@dataclass(frozen=True)
class NotCarried:
    """An incumbent setting with no counterpart here: its key path, value and why."""

    key: str
    value: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "reason": self.reason}


@dataclass
class Migration:
    """The converted config text and what happened to each setting."""

    source: Path
    schema_version: str
    text: str = ""
    changed: list[str] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"source": str(self.source), "schema_version": self.schema_version, "changed": self.changed,
                "not_carried": [n.as_dict() for n in self.not_carried]}


# -- editing a round-trip document without losing comments ------------------------------------------

def _summary(value: Any) -> str:
    text = json.dumps(yaml_rt.plain(value), default=str) if isinstance(value, (dict, list, bool)) or value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _token_lines(tokens: Any) -> list[str]:
    """Comment lines held by a ruamel comment slot (a token, a list of tokens, or None)."""
    if tokens is None:
        return []
    if isinstance(tokens, list):
        return [ln for t in tokens for ln in _token_lines(t)]
    if isinstance(tokens, CommentToken):
        return [ln.strip() for ln in tokens.value.splitlines() if ln.strip().startswith("#")]
    return []


def _subtree_comments(node: Any) -> list[str]:
    """Every comment line inside a mapping or sequence node, in document order."""
    return [ln for tok in {id(t): t for t in _tokens(node)}.values() for ln in _token_lines(tok)]


def _is_flow(node: Any) -> bool:
    return isinstance(node, (CommentedMap, CommentedSeq)) and bool(node.fa.flow_style())


def _tokens(node: Any) -> list[CommentToken]:
    """Every comment token in a node's subtree."""
    found: list[CommentToken] = []

    def add(slot: Any) -> None:
        if isinstance(slot, CommentToken):
            found.append(slot)
        elif isinstance(slot, list):
            for s in slot:
                add(s)

    if isinstance(node, (CommentedMap, CommentedSeq)):
        add(node.ca.comment)
        add(list(node.ca.items.values()))
        add(node.ca.end)
        for child in (node.values() if isinstance(node, CommentedMap) else node):
            found += _tokens(child)
    return found


def _dedent(node: Any, delta: int) -> None:
    """Shift the comments of a subtree `delta` columns left (it moved up one level)."""
    for tok in {id(t): t for t in _tokens(node)}.values():  # ruamel may reference one token twice
        mark = tok.start_mark
        if mark is not None and getattr(mark, "column", 0) >= delta:
            mark.column -= delta
        first, *rest = tok.value.split("\n")
        tok.value = "\n".join([first, *(ln[delta:] if ln[:delta].isspace() else ln.lstrip() for ln in rest)])


def _trailing_slot(node: Any) -> list | None:
    """The comment slot after the last entry of a block mapping/sequence (where ruamel keeps following lines)."""
    if not isinstance(node, (CommentedMap, CommentedSeq)) or not len(node) or _is_flow(node):
        return None
    last: Any = list(node)[-1] if isinstance(node, CommentedMap) else len(node) - 1
    deeper = _trailing_slot(node[last])
    if deeper is not None:
        return deeper
    entry = node.ca.items.setdefault(last, [None, None, None, None])
    return [entry, 2 if isinstance(node, CommentedMap) else 0]


def _append_after(entry_slot: list, lines: list[str], col: int) -> None:
    entry, slot = entry_slot
    text = "".join(f"{' ' * col}{ln}\n" for ln in lines)
    old = entry[slot]
    if isinstance(old, CommentToken):
        old.value = old.value.rstrip("\n") + "\n" + text
    else:
        entry[slot] = CommentToken("\n" + text, CommentMark(0))


@dataclass
class _Pending:
    """Comment lines to put where a key was removed: before `next` in `container`, else after `prev`."""

    container: Any
    after: list[Any]  # the keys that followed the removed one: the comment goes before the first still there
    lines: list[str]


class _Editor:
    """Renames, moves and removals on the document, recorded for the report.

    Comments of removed keys are placed at the end (`flush`), when the final nesting of every
    mapping is known: before the next key, after the previous one, or one level up when a
    mapping is flow style (`{a: 1}`) or became empty.
    """

    def __init__(self, migration: Migration):
        self.m = migration
        self.pending: list[_Pending] = []
        self.orphans: list[str] = []  # comment lines that found no place (emitted in the header)

    def rename(self, m: CommentedMap, old: str, new: str, where: str) -> None:
        if old not in m or old == new:
            return
        if new in m:
            self.drop(m, old, where, f"`{new}` is also set and takes precedence")
            return
        pos = list(m).index(old)
        value = m[old]
        slot = m.ca.items.pop(old, None)
        del m[old]
        m.insert(pos, new, value)
        if slot is not None:
            m.ca.items[new] = slot
        self.m.changed.append(f"{where}.{old} -> {new}".lstrip("."))

    def assign(self, m: CommentedMap, key: str, value: Any, where: str) -> None:
        old = m.get(key)
        if yaml_rt.plain(old) != yaml_rt.plain(value):
            m[key] = value
            self.m.changed.append(f"{where}.{key}: {_summary(old)} -> {_summary(value)}".lstrip("."))

    def _remove(self, m: CommentedMap, key: Any, lines: list[str]) -> None:
        keys = list(m)
        i = keys.index(key)
        value = m[key]
        inner = {id(n) for n in _containers(value)}
        carried = [p for p in self.pending if id(p.container) in inner]
        self.pending = [p for p in self.pending if id(p.container) not in inner]
        lines = lines + [ln for p in carried for ln in p.lines]
        del m[key]
        if lines:
            self.pending.append(_Pending(m, keys[i + 1:], lines))

    def drop(self, m: CommentedMap, key: str, where: str, reason: str) -> None:
        """Remove a setting; a note and the comments that were attached to it take its place."""
        if key not in m:
            return
        path = f"{where}.{key}".lstrip(".")
        value = m[key]
        self.m.not_carried.append(NotCarried(path, _summary(value), reason))
        lines = [f"# {MARK}: not carried `{key}: {_summary(value)}`: {reason}"]
        lines += _token_lines(m.ca.items.pop(key, None)) + _subtree_comments(value)
        self._remove(m, key, lines)

    def flatten(self, m: CommentedMap, key: str) -> None:
        """Remove a sub-section whose values were copied up; its comments stay."""
        if key in m:
            self._remove(m, key, _token_lines(m.ca.items.pop(key, None)) + _subtree_comments(m[key]))

    def move(self, src: CommentedMap, key: str, dst: CommentedMap, new: str, src_where: str, dst_where: str,
             after: str | None = None) -> None:
        """Move a setting to another section; an end-of-line comment goes with it."""
        if key not in src:
            return
        if new in dst:
            self.drop(src, key, src_where, f"`{dst_where}.{new}` is also set and takes precedence")
            return
        value = src[key]
        lines = _token_lines(src.ca.items.pop(key, None))
        self._remove(src, key, lines[1:])
        pos = list(dst).index(after) + 1 if after in dst else len(dst)
        dst.insert(pos, new, value)
        if lines:
            dst.yaml_add_eol_comment(lines[0], new)
        self.m.changed.append(f"{src_where}.{key} -> {dst_where}.{new}".lstrip("."))

    def drop_unless(self, m: CommentedMap, keep: set[str], where: str, reason: str | dict[str, str]) -> None:
        for key in [k for k in list(m) if k not in keep]:
            why = reason if isinstance(reason, str) else reason.get(key, "no counterpart here")
            self.drop(m, key, where, why)

    def flush(self, root: CommentedMap, layout: tuple[int, int, int]) -> None:
        """Place every pending comment, now that the tree has its final shape."""
        where = _positions(root, layout)
        for p in self.pending:
            self._place(p.container, p.after, p.lines, where)
        self.pending = []

    def _place(self, m: Any, after: list[Any], lines: list[str], where: dict[int, tuple[Any, Any, int]]) -> None:
        info = where.get(id(m))
        if info is None:  # the container itself was removed later: its comments went with it
            self.orphans += lines
            return
        parent, key, col = info
        if isinstance(m, CommentedMap) and not _is_flow(m):
            keys = list(m)
            nxt = next((k for k in after if k in keys), None)
            if nxt is not None:
                m.yaml_set_comment_before_after_key(nxt, before="\n".join(ln.lstrip("#").removeprefix(" ") for ln in lines), indent=col)
                return
            if keys:
                target = _trailing_slot(m)
                if target is not None:
                    _append_after(target, lines, col)
                    return
        if parent is None:
            self.orphans += lines
            return
        siblings = list(parent) if isinstance(parent, CommentedMap) else list(range(len(parent)))
        self._place(parent, siblings[siblings.index(key) + 1:], lines, where)


def _containers(node: Any) -> list[Any]:
    out = [node] if isinstance(node, (CommentedMap, CommentedSeq)) else []
    if isinstance(node, CommentedMap):
        for v in node.values():
            out += _containers(v)
    elif isinstance(node, CommentedSeq):
        for v in node:
            out += _containers(v)
    return out


def _positions(root: CommentedMap, layout: tuple[int, int, int]) -> dict[int, tuple[Any, Any, int]]:
    """For every container: (parent, key in parent, column of its keys) as the document will be written."""
    mapping, _sequence, offset = layout
    out: dict[int, tuple[Any, Any, int]] = {}

    def walk(node: Any, parent: Any, key: Any, col: int) -> None:
        if not isinstance(node, (CommentedMap, CommentedSeq)):
            return
        out[id(node)] = (parent, key, col)
        if isinstance(node, CommentedMap):
            for k, v in node.items():
                walk(v, node, k, col + mapping)
        else:
            for i, v in enumerate(node):
                walk(v, node, i, col - mapping + offset + 2)

    out[id(root)] = (None, None, 0)
    for k, v in root.items():
        walk(v, root, k, mapping)
    return out


def _section(parent: CommentedMap, key: str) -> CommentedMap | None:
    value = parent.get(key)
    return value if isinstance(value, CommentedMap) else None


# -- the mapping ------------------------------------------------------------------------------------

def migrate_config(path: str | Path, output: str | Path | None = None) -> Migration:
    """Convert an incumbent (schema 2.x) config file; `output` is where it will be written (for paths).

    Returns the new text and the report. Raises ConfigError when the file is not an incumbent
    config, or ConfigProblems when the converted config does not validate (nothing to write).
    """
    src = Path(path).expanduser().resolve()
    doc = yaml_rt.load(src)
    data = doc.data
    if not isinstance(data, CommentedMap):
        raise ConfigError(f"{src}: the config must be a YAML mapping")
    if "densegen" not in data:
        if data.get("schema_version") == SCHEMA_VERSION:
            raise ConfigError(f"{src} is already a config of this dense (schema_version {SCHEMA_VERSION})", hint="nothing to migrate")
        raise ConfigError(f"{src} is not a config of the previous DenseGen (no `densegen:` section)",
                          hint="dense config migrate reads schema 2.x configs such as demo_tfbs_baseline/config.yaml")
    dg = data["densegen"]
    if not isinstance(dg, CommentedMap):
        raise ConfigError(f"{src}: `densegen` must be a mapping")
    version = str(dg.get("schema_version", ""))
    if not version.startswith("2."):
        raise ConfigError(f"{src}: densegen.schema_version is {version or 'missing'}; this converter reads 2.x",
                          hint="upgrade the config with the previous DenseGen first, or port it by hand (docs/dense-config.md)")
    mig = Migration(src, version)
    ed = _Editor(mig)
    new = _hoist(data, dg, ed)
    ed.assign(new, "schema_version", SCHEMA_VERSION, "")
    _run(new, ed)
    _inputs(new, ed)
    _output(new, ed)
    _generation(new, ed)
    _solver_runtime(new, ed)
    _small_sections(new, ed)
    _plots(new, ed)
    _drop_unknown(new, ed, src)
    if output is not None:
        _rebase_paths(new, src.parent, Path(output).expanduser().resolve().parent, ed)
    ed.flush(new, doc.layout)
    header = (f"# Converted by `{MARK}` from {src.name} (DenseGen schema {version}) on {utc_now_iso()[:10]}.\n"
              f"# Settings with no counterpart here are marked `{MARK}: not carried`; see docs/migrate.md.\n")
    if ed.orphans:
        header += "# Comments of settings that were not carried:\n" + "".join(f"{ln}\n" for ln in ed.orphans)
    out = yaml_rt.Document(new, *doc.layout)
    mig.text = out.dump(header)
    parse_config(yaml_rt.plain(yaml_rt.loads(mig.text).data), Path(output) if output else src)
    return mig


def _key_col(m: CommentedMap, key: Any) -> int:
    try:
        return int(m.lc.key(key)[1])
    except (AttributeError, KeyError, TypeError, IndexError):
        return 0


def _hoist(data: CommentedMap, dg: CommentedMap, ed: _Editor) -> CommentedMap:
    """The `densegen:` settings at the top level (comments kept), `plots` after them."""
    new = CommentedMap()
    new.ca.comment = data.ca.comment
    head = _token_lines(data.ca.items.get("densegen"))
    delta = min((_key_col(dg, k) for k in dg), default=0)
    for key in list(dg):
        new[key] = dg[key]
        if key in dg.ca.items:
            new.ca.items[key] = dg.ca.items[key]
    _dedent(new, delta)
    if head and len(new):
        new.yaml_set_comment_before_after_key(next(iter(new)), before="\n".join(ln.lstrip("#").removeprefix(" ") for ln in head))
    for key in list(data):
        if key == "densegen":
            continue
        if key == "plots":
            new["plots"] = data["plots"]
            if key in data.ca.items:
                new.ca.items["plots"] = data.ca.items[key]
        else:
            new[key] = data[key]
            ed.drop(new, key, "", "not a section of the incumbent config either")
    return new


def _run(new: CommentedMap, ed: _Editor) -> None:
    run = _section(new, "run")
    if run is None:
        return
    rid = run.get("id")
    if isinstance(rid, str) and rid != rid.lower():
        ed.assign(run, "id", rid.lower(), "run")
    ed.drop_unless(run, {"id", "root", "description"}, "densegen.run", "no counterpart here")


def _inputs(new: CommentedMap, ed: _Editor) -> None:
    inputs = new.get("inputs")
    if not isinstance(inputs, CommentedSeq):
        return
    for k, inp in enumerate(inputs):
        if not isinstance(inp, CommentedMap):
            continue
        where = f"densegen.inputs[{k}]"
        kind = inp.get("type")
        if kind in ("binding_sites", "sequence_library"):
            _table_input(inp, where, ed)
        elif kind == "usr_sequences":
            _usr_input(inp, where, ed)
        elif kind == "background_pool":
            _background_input(inp, where, ed)
        elif kind in PWM_FORMATS:
            _pwm_input(inp, str(kind), where, ed)
        elif kind == "pwm_matrix_csv":
            raise ConfigError(f"{where} ({inp.get('name')!r}) is a pwm_matrix_csv input, which has no counterpart here",
                              hint="convert the matrix to JASPAR or a JSON artifact (docs/dense-config.md, PWM formats) and migrate again")


def _table_input(inp: CommentedMap, where: str, ed: _Editor) -> None:
    fmt = inp.get("format")
    if fmt == "xlsx":
        raise ConfigError(f"{where} ({inp.get('name')!r}) reads an Excel sheet, which dense does not read",
                          hint="save the sheet as CSV, point `path` at it, and migrate again")
    cols = _section(inp, "columns")
    if cols is not None:
        ed.drop(cols, "source", f"{where}.columns", "site sources are not recorded here")
    keep = {"type", "name", "path", "format", "columns", "sequence_column", "regulators", "length", "skip_invalid",
            "regulator_column", "regulator", "limit"}
    ed.drop_unless(inp, keep, where, "no counterpart here")


def _usr_input(inp: CommentedMap, where: str, ed: _Editor) -> None:
    ds = inp.get("dataset")
    if isinstance(ds, str) and "/" not in ds:
        with contextlib.suppress(DatasetIdError):  # an id with no mapping is named by validation
            ed.assign(inp, "dataset", map_dataset_id(ds), where)
    ed.drop_unless(inp, {"type", "name", "dataset", "root", "limit", "regulator"}, where,
                   {"root_scope": "roots are given explicitly, relative to the config"})


def _background_input(inp: CommentedMap, where: str, ed: _Editor) -> None:
    sampling = _section(inp, "sampling")
    if sampling is None:
        return
    s_where = f"{where}.sampling"
    for key in ("n_sites",):
        if key in sampling:
            inp[key] = sampling[key]
    length = _section(sampling, "length")
    if length is not None:
        if length.get("policy") == "exact" and length.get("exact") is not None:
            inp["length"] = yaml_rt.sequence([length["exact"], length["exact"]], flow=True)
        elif length.get("range") is not None:
            inp["length"] = length["range"]
    gc = _section(sampling, "gc")
    if gc is not None:
        inp["gc"] = yaml_rt.mapping({k: gc[k] for k in ("min", "max") if k in gc})
        inp["gc"].fa.set_flow_style()
    budget = _section(_section(sampling, "mining") or CommentedMap(), "budget")
    if budget is not None and budget.get("candidates") is not None:
        inp["max_candidates"] = budget["candidates"]
    filters = _section(sampling, "filters")
    if filters is not None:
        rules = _kmer_rules(filters.get("forbid_kmers"), f"{s_where}.filters.forbid_kmers", ed)
        if rules:
            inp["forbid_kmers"] = rules
        fimo = _section(filters, "fimo_exclude")
        if fimo is not None and fimo.get("pwms_input"):
            excl = yaml_rt.mapping({"inputs": fimo["pwms_input"]})
            if fimo.get("max_score_norm") is not None:
                excl["max_score_norm"] = fimo["max_score_norm"]
            inp["exclude_pwm_hits"] = excl
            excl.fa.set_flow_style()
        for key in ("include_reverse_complements", "strands"):
            if key in filters:
                ed.drop(filters, key, f"{s_where}.filters", WHY["strands"])
        if fimo is not None:
            ed.drop_unless(fimo, {"pwms_input", "max_score_norm"}, f"{s_where}.filters.fimo_exclude", WHY["fimo"])
    handled = {"n_sites", "length", "gc", "mining", "filters"}
    ed.drop_unless(sampling, handled, s_where, {"uniqueness": "background sites are always distinct, on both strands"})
    if budget is not None:
        ed.drop_unless(budget, {"candidates"}, f"{s_where}.mining.budget", "the candidate budget is fixed here: max_candidates")
    mining = _section(sampling, "mining")
    if mining is not None:
        ed.drop_unless(mining, {"budget"}, f"{s_where}.mining", "mining batches are internal here")
    _replace_section(inp, "sampling", where, ed)


def _kmer_rules(items: Any, where: str, ed: _Editor) -> CommentedSeq | None:
    """Incumbent forbid_kmers (literals or {patterns_from_motif_sets, ...}) as forbid_kmers here."""
    if not isinstance(items, list):
        return None
    out = CommentedSeq()
    for k, item in enumerate(items):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, CommentedMap):
            rule = yaml_rt.mapping()
            sets = item.get("patterns_from_motif_sets")
            if sets:
                rule["motif_sets"] = sets
            kmers = item.get("patterns") or item.get("kmers")
            if kmers:
                rule["kmers"] = kmers
            for key in [x for x in item if x not in ("patterns_from_motif_sets", "patterns", "kmers")]:
                why = WHY["strands"] if key in ("include_reverse_complements", "strands") else "rules have no names here"
                ed.m.not_carried.append(NotCarried(f"{where}[{k}].{key}", _summary(item[key]), why))
            if rule:
                rule.fa.set_flow_style()
                out.append(rule)
    return out


def _replace_section(inp: CommentedMap, key: str, where: str, ed: _Editor) -> None:
    """Remove a sub-section whose carried values were copied up; its comments stay as notes."""
    if isinstance(inp.get(key), CommentedMap):
        ed.flatten(inp, key)
        ed.m.changed.append(f"{where}.{key}.* -> {where}.* (flattened)")


def _pwm_input(inp: CommentedMap, kind: str, where: str, ed: _Editor) -> None:
    ed.assign(inp, "type", "pwm", where)
    inp.insert(list(inp).index("type") + 1, "format", PWM_FORMATS[kind])
    ed.rename(inp, "motif_ids", "motifs", where)
    if kind == "pwm_artifact_set":
        ed.drop(inp, "overrides_by_motif_id", where, WHY["fimo"])
    sampling = _section(inp, "sampling")
    if sampling is not None:
        s_where = f"{where}.sampling"
        strategy = sampling.get("strategy")
        if strategy == "background":
            ed.drop(sampling, "strategy", s_where, "background-model sampling has no counterpart (stochastic is used)")
        budget = _section(_section(sampling, "mining") or CommentedMap(), "budget")
        if budget is not None:
            cand = budget.get("candidates") if budget.get("mode", "fixed_candidates") == "fixed_candidates" else budget.get("max_candidates")
            if cand is not None:
                sampling["candidates"] = cand
        selection = _section(sampling, "selection")
        pool = _section(selection, "pool") if selection is not None else None
        if pool is not None and pool.get("min_score_norm") is not None:
            sampling["min_score_norm"] = pool["min_score_norm"]
        trimming = _section(sampling, "trimming")
        if trimming is not None and trimming.get("window_length") is not None:
            sampling["trim_to"] = trimming["window_length"]
        ed.drop_unless(sampling, {"strategy", "n_sites", "candidates", "min_score_norm", "trim_to"}, s_where, WHY["fimo"])
    ed.drop_unless(inp, {"type", "name", "format", "path", "paths", "motifs", "sampling"}, where, WHY["fimo"])


def _output(new: CommentedMap, ed: _Editor) -> None:
    out = _section(new, "output")
    if out is None:
        return
    schema = _section(out, "schema")
    if schema is not None:
        odd = {k: v for k, v in schema.items() if (k, v) not in (("bio_type", "dna"), ("alphabet", "dna_4"))}
        ed.drop(out, "schema", "densegen.output", "designs are always dna / dna_4" + (f"; {odd} cannot be carried" if odd else ""))
    pq_ = _section(out, "parquet")
    if pq_ is not None:
        ed.drop_unless(pq_, {"path", "deduplicate"}, "densegen.output.parquet", WHY["sink"])
    usr = _section(out, "usr")
    if usr is not None:
        ds = usr.get("dataset")
        if isinstance(ds, str):
            with contextlib.suppress(DatasetIdError):  # an id with no mapping is named by validation
                ed.assign(usr, "dataset", map_dataset_id(ds), "densegen.output.usr")
        runtime = new.setdefault("runtime", CommentedMap())
        ed.move(usr, "health_event_interval_seconds", runtime, "health_interval_s", "densegen.output.usr", "runtime")
        ed.drop_unless(usr, {"dataset", "root"}, "densegen.output.usr", {
            "root_scope": "the USR root is given explicitly, relative to the config",
            "chunk_size": WHY["sink"], "npz_fields": "every field is stored in the densegen overlay (no npz side files)",
            "npz_root": "every field is stored in the densegen overlay (no npz side files)"})


def _generation(new: CommentedMap, ed: _Editor) -> None:
    gen = _section(new, "generation")
    if gen is None:
        return
    w = "densegen.generation"
    expansion = _section(gen, "expansion")
    if expansion is not None and expansion.get("max_plans") is not None:
        gen["max_plans"] = expansion["max_plans"]
        _replace_section(gen, "expansion", w, ed)
    sampling = _section(gen, "sampling")
    if sampling is not None:
        sw = f"{w}.sampling"
        ed.rename(sampling, "library_sampling_strategy", "strategy", sw)
        if sampling.get("strategy") in STRATEGY:
            ed.assign(sampling, "strategy", STRATEGY[str(sampling["strategy"])], sw)
        ed.rename(sampling, "coverage_boost_alpha", "coverage_alpha", sw)
        ed.drop_unless(sampling, {"library_size", "strategy", "cover_all_regulators", "unique_binding_sites",
                                  "unique_binding_cores", "max_sites_per_regulator", "coverage_alpha"}, sw, {
            "pool_strategy": WHY["pool"], "library_source": WHY["pool"], "library_artifact_path": WHY["pool"],
            "iterative_max_libraries": WHY["pool"], "iterative_min_new_solutions": WHY["pool"],
            "relax_on_exhaustion": WHY["pool"], "coverage_boost_power": WHY["feedback"],
            "avoid_failed_motifs": WHY["feedback"], "failure_penalty_alpha": WHY["feedback"],
            "failure_penalty_power": WHY["feedback"]})
    ed.rename(gen, "plan", "plans", w)
    plans = gen.get("plans")
    if isinstance(plans, CommentedSeq):
        for k, plan in enumerate(plans):
            if isinstance(plan, CommentedMap):
                _plan(plan, f"{w}.plan[{k}]", ed)
    sc = _section(gen, "sequence_constraints")
    if sc is not None:
        scw = f"{w}.sequence_constraints"
        if "forbid_kmers" in sc:
            rules = _kmer_rules(sc["forbid_kmers"], f"{scw}.forbid_kmers", ed)
            if rules is not None:
                sc["forbid_kmers"] = rules
        ed.drop_unless(sc, {"forbid_kmers", "gc"}, scw, {"allowlist": WHY["allowlist"]})


def _plan(plan: CommentedMap, where: str, ed: _Editor) -> None:
    sampling = _section(plan, "sampling")
    if sampling is not None and "include_inputs" in sampling:
        ed.move(sampling, "include_inputs", plan, "include_inputs", f"{where}.sampling", where, after="sequences")
        if not len(sampling):
            _replace_section(plan, "sampling", where, ed)
    template = plan.get("expanded_name_template")
    if isinstance(template, str):
        ed.rename(plan, "expanded_name_template", "name_template", where)
        fixed = template.replace("{base}", "{plan}")
        unsupported = [p for p in ("{up_seq}", "{down_seq}", "{spacer}") if p in fixed]
        if unsupported:
            ed.drop(plan, "name_template", where, f"placeholders {', '.join(unsupported)} have no counterpart ({{plan}} {{up}} {{down}} only)")
        else:
            ed.assign(plan, "name_template", fixed, where)
    fe = _section(plan, "fixed_elements")
    if fe is not None:
        pcs = fe.get("promoter_constraints")
        if isinstance(pcs, CommentedSeq):
            for j, pc in enumerate(pcs):
                if isinstance(pc, CommentedMap):
                    ed.rename(pc, "spacer_length", "spacer", f"{where}.fixed_elements.promoter_constraints[{j}]")
        matrix = _section(fe, "fixed_element_matrix")
        if matrix is not None:
            mw = f"{where}.fixed_elements.fixed_element_matrix"
            ed.rename(matrix, "spacer_length", "spacer", mw)
            ed.rename(matrix, "upstream_variant_ids", "upstream_variants", mw)
            ed.rename(matrix, "downstream_variant_ids", "downstream_variants", mw)
            pairing = _section(matrix, "pairing")
            if pairing is not None:
                mode, pairs = pairing.get("mode"), pairing.get("pairs")
                pos = list(matrix).index("pairing")
                slot = matrix.ca.items.pop("pairing", None)
                del matrix["pairing"]
                if mode is not None:
                    matrix.insert(pos, "pairing", mode)
                    if slot is not None:
                        matrix.ca.items["pairing"] = slot
                if pairs:
                    matrix.insert(pos + 1, "pairs", pairs)
                ed.m.changed.append(f"{mw}.pairing.mode -> pairing, pairing.pairs -> pairs")


def _solver_runtime(new: CommentedMap, ed: _Editor) -> None:
    solver = _section(new, "solver")
    runtime = _section(new, "runtime")
    if solver is not None:
        w = "densegen.solver"
        ed.drop(solver, "backend", w, WHY["solver"])
        strategy = solver.get("strategy")
        mapped = {"iterate": "optimal", "optimal": "optimal", "diverse": "diverse", "approximate": "optimal"}.get(str(strategy))
        if strategy is not None and mapped is not None:
            ed.assign(solver, "strategy", mapped, w)
            if strategy == "approximate":
                ed.m.not_carried.append(NotCarried(f"{w}.strategy", "approximate",
                                                   "the greedy approximation has no counterpart; CP-SAT solves exactly (optimal)"))
        ed.rename(solver, "solver_attempt_timeout_seconds", "time_limit_s", w)
        ed.rename(solver, "threads", "workers", w)
    if runtime is not None:
        w = "densegen.runtime"
        if solver is None:
            solver = new.setdefault("solver", CommentedMap())
        ed.move(runtime, "max_accepted_per_library", solver, "solutions_per_library", w, "solver")
        ed.rename(runtime, "random_seed", "seed", w)
        ed.rename(runtime, "max_consecutive_no_progress_resamples", "max_stalled_libraries", w)
        if runtime.get("max_failed_solutions") == 0:
            ed.assign(runtime, "max_failed_solutions", None, w)
        ed.drop_unless(runtime, {"seed", "round_robin", "max_failed_solutions", "max_stalled_libraries", "checkpoint_every",
                                 "checkpoint_interval_s", "health_interval_s", "max_seconds"}, w, {
            "min_count_per_tf": "use regulator_constraints.min_count_by_regulator in each plan",
            "max_duplicate_solutions": WHY["dup"], "no_progress_seconds_before_resample": WHY["stall"],
            "max_failed_solutions_per_target": "the failure cap is one number for the run: runtime.max_failed_solutions",
            "leaderboard_every": WHY["logging"]})


def _small_sections(new: CommentedMap, ed: _Editor) -> None:
    post = _section(new, "postprocess")
    if post is not None:
        if "fasta" not in post:
            ed.drop(new, "postprocess", "densegen", WHY["pad"])
        else:
            ed.drop_unless(post, {"fasta"}, "densegen.postprocess", {"pad": WHY["pad"]})
    log = _section(new, "logging")
    if log is not None:
        w = "densegen.logging"
        ed.rename(log, "progress_style", "progress", w)
        if log.get("progress") in PROGRESS:
            ed.assign(log, "progress", PROGRESS[str(log["progress"])], w)
        ed.drop_unless(log, {"level", "progress"}, w, WHY["logging"])


def _plots(new: CommentedMap, ed: _Editor) -> None:
    plots = _section(new, "plots")
    if plots is None:
        return
    fmt = plots.get("format")
    if isinstance(fmt, str) and "formats" not in plots:
        pos = list(plots).index("format")
        slot = plots.ca.items.pop("format", None)
        del plots["format"]
        plots.insert(pos, "formats", yaml_rt.sequence([fmt], flow=True))
        if slot is not None:
            plots.ca.items["formats"] = slot
        ed.m.changed.append(f"plots.format: {fmt} -> plots.formats: [{fmt}]")
    default = plots.get("default")
    if isinstance(default, list):
        ours = list(dict.fromkeys(PLOT_IDS[p] for p in default if p in PLOT_IDS))
        gone = [p for p in default if p not in PLOT_IDS]
        for p in gone:
            ed.m.not_carried.append(NotCarried("plots.default", p, "no equivalent plot here (see `dense ls-plots`)"))
        if ours != list(default):
            seq = yaml_rt.sequence(ours, flow=_is_flow(default))
            ed.assign(plots, "default", seq, "plots")
    ed.drop_unless(plots, {"default", "formats"}, "plots", WHY["plots"])


def _drop_unknown(new: CommentedMap, ed: _Editor, src: Path) -> None:
    """Settings this converter does not know (typos in the old file, newer 2.x keys): dropped and listed."""
    for _ in range(50):
        try:
            parse_config(yaml_rt.plain(new), src)
            return
        except ConfigProblems as exc:
            unknown = [p for p in exc.problems if p.message.startswith("unknown key")]
            if not unknown:
                raise ConfigProblems(src, [Problem(p.where, f"after conversion: {p.message}", p.hint) for p in exc.problems]) from None
            for p in unknown:
                parent, key = _locate(new, p.where)
                if parent is not None:
                    ed.drop(parent, key, _old_path(p.where), "not a setting this converter knows (a typo, or a newer 2.x key)")


def _locate(root: CommentedMap, where: str) -> tuple[CommentedMap | None, str]:
    import re

    parts = [p for p in re.split(r"\.|\[(\d+)\]", where) if p]
    node: Any = root
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() and isinstance(node, list) else node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None, parts[-1]
    return (node if isinstance(node, CommentedMap) else None), parts[-1]


def _old_path(where: str) -> str:
    top = where.split(".")[0].split("[")[0]
    parent = where.rsplit(".", 1)[0] if "." in where else ""
    return parent if top == "plots" else f"densegen.{parent}".rstrip(".")


def _rebase_paths(new: CommentedMap, old_dir: Path, new_dir: Path, ed: _Editor) -> None:
    """Keep relative paths pointing at the same files when the config is written to another directory."""
    if old_dir == new_dir:
        return

    def rebase(m: CommentedMap, key: str, where: str) -> None:
        value = m.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            ed.assign(m, key, os.path.relpath(old_dir / value, new_dir), where)

    run = _section(new, "run")
    if run is not None:
        rebase(run, "root", "run")
    for k, inp in enumerate(new.get("inputs") or []):
        if isinstance(inp, CommentedMap):
            rebase(inp, "path", f"inputs[{k}]")
            rebase(inp, "root", f"inputs[{k}]")
            paths = inp.get("paths")
            if isinstance(paths, list):
                for j, p in enumerate(paths):
                    if isinstance(p, str) and not Path(p).expanduser().is_absolute():
                        paths[j] = os.path.relpath(old_dir / p, new_dir)
    out = _section(new, "output")
    for sub, key in (("parquet", "path"), ("usr", "root")):
        node = _section(out, sub) if out is not None else None
        if node is not None:
            rebase(node, key, f"output.{sub}")
