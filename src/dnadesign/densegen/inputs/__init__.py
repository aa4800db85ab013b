"""DenseGen inputs: turn each configured input into a list of candidate sites.

Input types: `binding_sites` (table), `sequence_library` (table), `usr_sequences` (USR dataset),
`pwm` (MEME / JASPAR / RegulonDB PSSM / JSON artifact files, or `jaspar_db`: matrices by id or TF name
from the JASPAR SQLite database pyjaspar ships; sites sampled and scored in-process) and
`background_pool` (random filler). Every loader returns `(sites, notes)`; notes are one-line
remarks for `dense inspect inputs` and validate-config.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ...core.errors import InputError
from . import jaspar
from .pwm import LogOdds, Motif, read_motifs, sample_sites
from .tables import SiteRecord, read_binding_sites, read_sequence_library, read_usr_sequences, site_id

__all__ = ["SiteRecord", "derive_rng", "input_sources", "load_input", "load_motifs"]


def derive_rng(seed: int, *labels: str) -> np.random.Generator:
    """A numpy Generator seeded from `seed` and labels (stable across machines and Python runs)."""
    words = [int(hashlib.sha256(lbl.encode()).hexdigest()[:8], 16) for lbl in labels]
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *words])


def input_sources(cfg, inp) -> list[str]:
    """Human-readable source(s) of an input: resolved file paths or the USR dataset."""
    t = inp.type
    if t in ("binding_sites", "sequence_library"):
        return [str(cfg.resolve(inp.path))]
    if t == "pwm" and inp.format == "jaspar_db":
        return [str(cfg.resolve(inp.path)) if inp.path else f"jaspar:{jaspar.database_path(inp.release)[0]}"]
    if t == "pwm":
        return [str(cfg.resolve(p)) for p in inp.all_paths]
    if t == "usr_sequences":
        root = cfg.resolve(inp.root) if inp.root else None
        return [f"usr:{inp.dataset}" + (f" @ {root}" if root else "")]
    return ["generated"]


def load_motifs(cfg, inp) -> list[Motif]:
    """Motifs of a `pwm` input, filtered to `motifs` when given (error names any missing one)."""
    if inp.format == "jaspar_db":
        return _jaspar_motifs(cfg, inp)
    motifs: list[Motif] = []
    for p in inp.all_paths:
        motifs.extend(read_motifs(cfg.resolve(p), inp.format))
    names = [m.name for m in motifs]
    if inp.motifs is not None:
        missing = [n for n in inp.motifs if n not in names]
        if missing:
            raise InputError(f"input {inp.name!r}: motif(s) {', '.join(missing)} not found in {', '.join(inp.all_paths)}",
                             hint=f"available: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}")
        first: dict[str, Any] = {}
        for m in motifs:
            first.setdefault(m.name, m)
        motifs = [first[n] for n in dict.fromkeys(inp.motifs)]  # requested order, first motif of each name
    names = [m.name for m in motifs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"input {inp.name!r}: motif name(s) {', '.join(dup)} appear more than once",
                         hint="select motifs with `motifs:` or rename them")
    for name in inp.labels:
        if name not in names:
            raise InputError(f"input {inp.name!r}: labels names motif {name!r}, which is not loaded")
    return motifs


def _jaspar_motifs(cfg, inp) -> list[Motif]:
    """The matrices a `jaspar_db` input names, in order; `labels` may be keyed by TF name or matrix id."""
    try:
        found = jaspar.fetch(inp.motifs, taxon=inp.taxon, collection=inp.collection, release=inp.release,
                             path=cfg.resolve(inp.path) if inp.path else None)
    except InputError as exc:
        raise type(exc)(f"input {inp.name!r}: {exc.message}", hint=exc.hint) from None
    by_id = {**{j.matrix_id: j for j in found}, **{j.matrix_id.split(".")[0]: j for j in found}}
    motifs: list[Motif] = []
    for key, j in zip(inp.motifs, found, strict=True):
        keys = (key, j.matrix_id, j.matrix_id.split(".")[0], j.tf_name)
        label = next((inp.labels[k] for k in keys if k in inp.labels), j.tf_name)
        motifs.append(Motif(label, j.motif.matrix, source=j.motif.source, nsites=j.motif.nsites))
    names = [m.name for m in motifs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        ids = ", ".join(j.matrix_id for j in found if j.tf_name in dup or j.matrix_id in dup)
        raise InputError(f"input {inp.name!r}: regulator name(s) {', '.join(dup)} given by more than one matrix ({ids})",
                         hint="keep one of them, or give each its own name with `labels: {MATRIX_ID: name}`")
    known = set(inp.motifs) | set(by_id) | {j.tf_name for j in found}
    for key in inp.labels:
        if key not in known:
            raise InputError(f"input {inp.name!r}: labels names {key!r}, which is none of the matrices loaded",
                             hint=f"key labels by a matrix id or TF name of: {', '.join(j.matrix_id for j in found)}")
    return motifs


def _load_pwm(cfg, inp, seed: int) -> tuple[list[SiteRecord], list[str]]:
    s = inp.sampling
    out: list[SiteRecord] = []
    notes: list[str] = []
    for m in load_motifs(cfg, inp):
        label = m.name if inp.format == "jaspar_db" else inp.labels.get(m.name, m.name)
        if s.trim_to is not None and s.trim_to > m.width:
            notes.append(f"input {inp.name!r}: motif {m.name} is {m.width} bp, narrower than trim_to={s.trim_to}; kept whole")
        rng = derive_rng(seed, "pwm", inp.name, m.name)
        sites = sample_sites(m, n_sites=s.n_sites, strategy=s.strategy, candidates=s.candidates,
                             min_score_norm=s.min_score_norm, rng=rng, pseudocount=s.pseudocount,
                             background=inp.background, trim_to=s.trim_to)
        if not sites:
            raise InputError(f"input {inp.name!r}: motif {m.name} gave no site with score_norm >= {s.min_score_norm} "
                             f"from {s.candidates} candidates", hint="lower sampling.min_score_norm or raise sampling.candidates")
        if len(sites) < s.n_sites:
            notes.append(f"input {inp.name!r}: motif {m.name} gave {len(sites)} of {s.n_sites} requested sites")
        for x in sites:
            out.append(SiteRecord(site_id(inp.name, label, x.sequence), x.sequence, label,
                                  {"source": inp.name, "motif": m.name, "score": round(x.score, 4),
                                   "score_norm": round(x.score_norm, 4)}))
    return out, notes


def _load_background(cfg, inp, seed: int) -> tuple[list[SiteRecord], list[str]]:
    from .background import sample_background

    forbid = cfg.model.expand_kmers(inp.forbid_kmers)
    exclude: list[tuple[str, LogOdds]] = []
    thr = 1.0
    if inp.exclude_pwm_hits:
        thr = inp.exclude_pwm_hits.max_score_norm
        for ref in inp.exclude_pwm_hits.inputs:
            pin = cfg.input_by_name(ref)
            for m in load_motifs(cfg, pin):
                exclude.append((m.name, LogOdds.from_motif(m, pin.sampling.pseudocount, pin.background)))
    rng = derive_rng(seed, "background", inp.name)
    got, drawn = sample_background(n_sites=inp.n_sites, length=tuple(inp.length), gc_min=inp.gc.min, gc_max=inp.gc.max,
                                   forbid=forbid, exclude=exclude, max_score_norm=thr, rng=rng,
                                   max_candidates=inp.max_candidates, name=inp.name)
    out = [SiteRecord(site_id(inp.name, inp.regulator, seq), seq, inp.regulator, {"source": inp.name, **info})
           for seq, info in got]
    notes = []
    if len(out) < inp.n_sites:
        notes.append(f"input {inp.name!r}: {len(out)} of {inp.n_sites} background sites passed the filters "
                     f"in {drawn} candidates")
    return out, notes


def load_input(cfg, inp, *, seed: int) -> tuple[list[SiteRecord], list[str]]:
    """Candidate sites of one input (deterministic for `seed`) and notes."""
    t = inp.type
    if t == "binding_sites":
        return read_binding_sites(inp, cfg.resolve(inp.path))
    if t == "sequence_library":
        return read_sequence_library(inp, cfg.resolve(inp.path))
    if t == "usr_sequences":
        return read_usr_sequences(inp, cfg.resolve(inp.root) if inp.root else None)
    if t == "pwm":
        return _load_pwm(cfg, inp, seed)
    if t == "background_pool":
        return _load_background(cfg, inp, seed)
    raise InputError(f"input {inp.name!r}: unsupported type {t!r}")
