"""The presets `infer run --preset MODEL/JOB` knows: what each needs, whether it can run here, and its scorer.

A scorer has `outputs` (field name, Arrow type), a `done_output` that is never null once a row
was scored (the write-back skips rows that have it), `params()` for the events, and
`score(values) -> {field: array}` over a batch of sequences. Columns are
`infer__<model>__<field>` in the overlay namespace `infer`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from ..core.errors import InputError, UsageError
from ..core.motifs import Motif, read_motifs
from . import evo2
from .markov import MarkovModel, MarkovScorer
from .pwm_scan import PwmScanner

DATA = Path(__file__).parent / "data"
REGULONDB_PSSM = DATA / "regulondb_pssm_v4.0.txt"
MOTIF_FORMATS = ("meme", "jaspar", "regulondb", "artifact")
MODEL_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")  # no "__": it separates the parts of a column name


class Scorer(Protocol):
    outputs: list[tuple[str, pa.DataType]]
    done_output: str

    def params(self) -> dict[str, Any]: ...

    def score(self, values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]: ...


@dataclass(frozen=True)
class PresetOptions:
    """Everything a preset may need; each preset reads the fields it uses."""

    device: str = "cpu"
    name: str | None = None  # replaces the model part of the column names
    motifs: Path | None = None
    motif_format: str | None = None
    pvalue: float = 1e-4
    train_fasta: Path | None = None
    k: int = 6
    checkpoint: Path | None = None
    evo2_model: str | None = None
    layer: str | None = None


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    outputs: str
    needs: str
    cpu: bool
    batch_size: int  # rows per commit by default
    model_of: Callable[[PresetOptions], str]
    problems: Callable[[PresetOptions], list[str]]  # what this machine lacks to run it
    build: Callable[[PresetOptions], Scorer]  # validates the preset's own inputs

    @property
    def model(self) -> str:
        return self.name.split("/")[0]

    @property
    def job(self) -> str:
        return self.name.split("/")[1]

    def model_name(self, opts: PresetOptions) -> str:
        """The model part of the column names (`--name` wins), validated."""
        name = opts.name or self.model_of(opts)
        if not MODEL_NAME.match(name):
            raise UsageError(f"model name {name!r} cannot be used in column names",
                             hint="use lowercase letters and digits, single '_' between words (e.g. --name ecoli_k12)")
        return name


def detect_motif_format(path: Path, fmt: str | None) -> str:
    """`--motif-format`, else the extension, else a look at the file's first lines."""
    if fmt:
        if fmt not in MOTIF_FORMATS:
            raise UsageError(f"unknown motif format {fmt!r}", hint=f"use one of {', '.join(MOTIF_FORMATS)}")
        return fmt
    ext = {".meme": "meme", ".jaspar": "jaspar", ".pfm": "jaspar", ".json": "artifact"}.get(path.suffix.lower())
    if ext:
        return ext
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        raise InputError(f"motif file {path} cannot be read", hint="check the path given to --motifs") from None
    if "letter-probability matrix" in head or head.lstrip().startswith("MEME version"):
        return "meme"
    if "Transcription Factor ID:" in head:
        return "regulondb"
    if head.lstrip().startswith(("{", "[")):
        return "artifact"
    if head.lstrip().startswith(">"):
        return "jaspar"
    raise InputError(f"cannot tell the format of motif file {path}", hint=f"pass --motif-format ({', '.join(MOTIF_FORMATS)})")


def _load_motifs(path: Path, fmt: str | None) -> list[Motif]:
    if not path.is_file():
        raise InputError(f"motif file {path} does not exist", hint="check the path given to --motifs")
    return read_motifs(path, detect_motif_format(path, fmt))


def _require(path: Path | None, flag: str, preset: str, what: str) -> Path:
    if path is None:
        raise UsageError(f"{preset} needs {flag} FILE", hint=f"pass {what}")
    if not path.is_file():
        raise InputError(f"{flag} {path} does not exist", hint="check the path")
    return path


def _pwm_build(opts: PresetOptions) -> Scorer:
    path = _require(opts.motifs, "--motifs", "pwm/scan", "a motif file (MEME, JASPAR, RegulonDB PSSM or JSON artifact)")
    return PwmScanner(_load_motifs(path, opts.motif_format), pvalue=opts.pvalue)


def _markov_build(opts: PresetOptions) -> Scorer:
    path = _require(opts.train_fasta, "--train-fasta", "markov/loglik", "the FASTA to train the background on (e.g. the host genome)")
    return MarkovScorer(MarkovModel.train(path, opts.k))


def _evo2_settings(opts: PresetOptions) -> evo2.Evo2Settings:
    return evo2.Evo2Settings.resolve(opts.evo2_model, opts.checkpoint, opts.device)


def _evo2_build(kind: str) -> Callable[[PresetOptions], Scorer]:
    def build(opts: PresetOptions) -> Scorer:
        settings = _evo2_settings(opts)
        evo2.preflight(f"evo2/{kind}", settings)
        model = evo2.Evo2Model(settings)
        if kind == "extract_logits_ll":
            return evo2.Evo2LoglikScorer(model)
        return evo2.Evo2EmbeddingScorer(model, opts.layer)

    return build


def _none(opts: PresetOptions) -> list[str]:
    return []


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("regulondb/pwm_scan",
           "scan with the 92 E. coli regulator matrices of RegulonDB PSSM v4.0 (bundled): best log-odds score and hits on both strands",
           "<tf>_best (bits), <tf>_hits (p <= --pvalue), hits_total, top_tf, top_pvalue",
           "nothing", True, 20_000,
           lambda o: "regulondb", _none,
           lambda o: PwmScanner(read_motifs(REGULONDB_PSSM, "regulondb"), pvalue=o.pvalue)),
    Preset("pwm/scan",
           "scan with your own matrices (MEME, JASPAR, RegulonDB PSSM or JSON, as `dense` reads): best log-odds score and hits on both strands",
           "<tf>_best (bits), <tf>_hits (p <= --pvalue), hits_total, top_tf, top_pvalue",
           "--motifs FILE", True, 20_000,
           lambda o: "pwm", _none, _pwm_build),
    Preset("markov/loglik",
           "k-mer Markov background model (order k-1, both strands) trained on your FASTA: per-sequence log-likelihood",
           "ll (natural log), ll_per_base",
           "--train-fasta FILE", True, 50_000,
           lambda o: f"markov{o.k}", _none, _markov_build),
    Preset("evo2/extract_logits_ll",
           "Evo2 log-likelihood of each sequence from the model's next-base logits",
           "ll_sum, ll_mean (natural log, per token)",
           f"the evo2 extra, a local checkpoint (--checkpoint or ${evo2.CHECKPOINT_ENV}), a CUDA GPU", False, 256,
           lambda o: _evo2_settings(o).model, lambda o: evo2.problems(_evo2_settings(o)),
           _evo2_build("extract_logits_ll")),
    Preset("evo2/extract_embedding",
           "Evo2 embedding of each sequence: one layer's output averaged over positions",
           "embedding_mean (list<float>)",
           f"the evo2 extra, a local checkpoint (--checkpoint or ${evo2.CHECKPOINT_ENV}), a CUDA GPU", False, 256,
           lambda o: _evo2_settings(o).model, lambda o: evo2.problems(_evo2_settings(o)),
           _evo2_build("extract_embedding")),
]}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a usage error listing the known ones."""
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        raise UsageError(f"unknown preset {name!r}", hint=f"use one of {', '.join(PRESETS)} (see `infer presets`)")
    return preset


def listing(opts: PresetOptions) -> list[dict[str, Any]]:
    """Every preset, whether this machine can run it (evo2 is checked for a CUDA device), and why not."""
    rows = []
    for p in PRESETS.values():
        o = opts if p.cpu or opts.device != "cpu" else replace(opts, device="cuda")
        reasons = p.problems(o)
        rows.append({"preset": p.name, "model": p.model, "job": p.job, "available": not reasons, "reasons": reasons,
                     "device": "cpu" if p.cpu else "cuda", "needs": p.needs, "outputs": p.outputs, "summary": p.summary,
                     "batch_size": p.batch_size})
    return rows
