"""Position weight matrices: parsers (MEME, JASPAR, RegulonDB PSSM, JSON artifact), log-odds
scoring and in-process site sampling (no external FIMO).

A `Motif` holds a count or probability matrix over A, C, G, T (one row per position). Scores are
log2-odds against a background: score(s) = sum_i log2(p_i(s_i) / bg(s_i)). The normalised score
(score - min) / (max - min) lies in [0, 1]: 1 for the consensus, 0 for the worst sequence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import InputError

BASES = "ACGT"
_IDX = {b: i for i, b in enumerate(BASES)}


@dataclass(frozen=True)
class Motif:
    """A named matrix; `matrix` rows are positions, columns A, C, G, T (counts or probabilities)."""

    name: str
    matrix: tuple[tuple[float, ...], ...]
    source: str = ""
    nsites: float | None = None  # number of aligned sites behind the matrix, when known

    @property
    def width(self) -> int:
        return len(self.matrix)

    def array(self) -> np.ndarray:
        return np.asarray(self.matrix, dtype=float).reshape(-1, 4)


def _check_matrix(rows: list[list[float]], name: str, where: str) -> tuple[tuple[float, ...], ...]:
    if not rows:
        raise InputError(f"{where}: motif {name!r} has no matrix rows")
    for i, r in enumerate(rows):
        if len(r) != 4:
            raise InputError(f"{where}: motif {name!r} position {i + 1} has {len(r)} values, expected 4 (A, C, G, T)",
                             hint="only the DNA alphabet ACGT is supported")
        if any((not np.isfinite(x)) or x < 0 for x in r):
            raise InputError(f"{where}: motif {name!r} position {i + 1} has a negative or non-numeric value")
        if sum(r) <= 0:
            raise InputError(f"{where}: motif {name!r} position {i + 1} sums to zero")
    return tuple(tuple(float(x) for x in r) for r in rows)


def _floats(tokens: list[str], where: str, line_no: int) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise InputError(f"{where}:{line_no}: expected numbers, got {' '.join(tokens)!r}") from None


# -- MEME ------------------------------------------------------------------------------------

def parse_meme(text: str, where: str = "<meme>") -> list[Motif]:
    """Motifs of a MEME text file (`MOTIF id [alt]` + `letter-probability matrix:` blocks)."""
    lines = text.splitlines()
    alphabet = re.search(r"^ALPHABET\s*=?\s*(\S+)", text, re.M)
    if alphabet and alphabet.group(1).upper() != "ACGT":
        raise InputError(f"{where}: MEME alphabet is {alphabet.group(1)!r}; only ACGT (DNA) is supported")
    motifs: list[Motif] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("MOTIF"):
            parts = line.split()
            if len(parts) < 2:
                raise InputError(f"{where}:{i + 1}: MOTIF line has no id")
            name = parts[1]
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("letter-probability matrix"):
                if lines[j].strip().startswith("MOTIF"):
                    raise InputError(f"{where}:{i + 1}: motif {name!r} has no letter-probability matrix")
                j += 1
            if j >= len(lines):
                raise InputError(f"{where}:{i + 1}: motif {name!r} has no letter-probability matrix")
            header = lines[j]
            w = re.search(r"w=\s*(\d+)", header)
            ns = re.search(r"nsites=\s*([0-9.eE+-]+)", header)
            al = re.search(r"alength=\s*(\d+)", header)
            if al and int(al.group(1)) != 4:
                raise InputError(f"{where}:{j + 1}: motif {name!r} has alength={al.group(1)}; only ACGT is supported")
            rows: list[list[float]] = []
            k = j + 1
            while k < len(lines):
                s = lines[k].strip()
                if not s:
                    if rows:
                        break
                    k += 1
                    continue
                if not re.match(r"^[-+0-9.eE]", s):
                    break
                rows.append(_floats(s.split(), where, k + 1))
                k += 1
                if w and len(rows) == int(w.group(1)):
                    break
            if w and len(rows) != int(w.group(1)):
                raise InputError(f"{where}:{j + 1}: motif {name!r} declares w={w.group(1)} but has {len(rows)} rows")
            motifs.append(Motif(name, _check_matrix(rows, name, where), source=where,
                                nsites=float(ns.group(1)) if ns else None))
            i = k
        else:
            i += 1
    if not motifs:
        raise InputError(f"{where}: no MOTIF blocks found", hint="is this a MEME text file?")
    return motifs


def format_meme(motifs: list[Motif]) -> str:
    """MEME minimal text for `motifs` (probabilities; used by tests and exports)."""
    out = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
           "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in motifs:
        p = probabilities(m, 0.0)
        out.append(f"MOTIF {m.name}")
        out.append(f"letter-probability matrix: alength= 4 w= {m.width} nsites= {int(m.nsites or 20)} E= 0")
        out.extend(" ".join(f"{x:.6f}" for x in row) for row in p)
        out.append("")
    return "\n".join(out)


# -- JASPAR ----------------------------------------------------------------------------------

def parse_jaspar(text: str, where: str = "<jaspar>", default_name: str = "motif") -> list[Motif]:
    """JASPAR count matrices: `>ID NAME` + `A [ ... ]` rows, or a bare 4-row .pfm file."""
    motifs: list[Motif] = []
    name: str | None = None
    rows: dict[str, list[float]] = {}
    bare: list[list[float]] = []

    def flush(line_no: int) -> None:
        nonlocal rows
        if name is None:
            return
        if set(rows) != set(BASES):
            raise InputError(f"{where}:{line_no}: motif {name!r} needs rows A, C, G and T (found {''.join(sorted(rows)) or 'none'})")
        widths = {len(v) for v in rows.values()}
        if len(widths) != 1:
            raise InputError(f"{where}:{line_no}: motif {name!r} rows have different lengths")
        cols = [list(x) for x in zip(*(rows[b] for b in BASES))]
        motifs.append(Motif(name, _check_matrix(cols, name, where), source=where))
        rows = {}

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            flush(n)
            parts = line[1:].split()
            if not parts:
                raise InputError(f"{where}:{n}: header line has no motif id")
            name = parts[1] if len(parts) > 1 else parts[0]
            continue
        m = re.match(r"^([ACGTacgt])\s*\[?(.*?)\]?$", line)
        if m and name is not None:
            base = m.group(1).upper()
            if base in rows:
                raise InputError(f"{where}:{n}: motif {name!r} has row {base} twice")
            rows[base] = _floats(m.group(2).split(), where, n)
            continue
        if m is None and name is None:
            bare.append(_floats(line.split(), where, n))
            continue
        letter = line.split()[0]
        raise InputError(f"{where}:{n}: unexpected row {letter!r}; only A, C, G, T rows are allowed")
    flush(len(text.splitlines()))
    if bare:
        if motifs or len(bare) != 4:
            raise InputError(f"{where}: a bare .pfm file must have exactly 4 numeric rows (A, C, G, T)")
        if len({len(r) for r in bare}) != 1:
            raise InputError(f"{where}: the 4 rows of the .pfm file have different lengths")
        motifs.append(Motif(default_name, _check_matrix([list(x) for x in zip(*bare)], default_name, where), source=where))
    if not motifs:
        raise InputError(f"{where}: no JASPAR motifs found", hint="expected '>ID NAME' headers followed by A/C/G/T rows")
    return motifs


def format_jaspar(motifs: list[Motif]) -> str:
    out = []
    for i, m in enumerate(motifs):
        out.append(f">MA{i:04d}.1 {m.name}")
        arr = m.array()
        for j, b in enumerate(BASES):
            out.append(f"{b} [ " + " ".join(_num(x) for x in arr[:, j]) + " ]")
    return "\n".join(out) + "\n"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


# -- RegulonDB PSSM count format -------------------------------------------------------------

def parse_regulondb(text: str, where: str = "<regulondb>") -> list[Motif]:
    """RegulonDB PSSM v4 text: `Transcription Factor Name:` blocks with A/C/G/T count rows."""
    motifs: list[Motif] = []
    blocks = re.split(r"^Transcription Factor ID:", text, flags=re.M)
    line_base = blocks[0].count("\n") + 1
    for block in blocks[1:]:
        name_m = re.search(r"^Transcription Factor Name:\s*(\S.*?)\s*$", block, re.M)
        name = name_m.group(1) if name_m else f"motif{len(motifs) + 1}"
        nsites_m = re.search(r"^Total of binding sites:\s*(\d+)", block, re.M)
        size_m = re.search(r"^PSSM size:\s*(\d+)", block, re.M)
        rows: dict[str, list[float]] = {}
        for k, raw in enumerate(block.splitlines()):
            m = re.match(r"^([ACGTacgt])[ \t]+(\S.*)$", raw.strip())
            if m:
                base = m.group(1).upper()
                if base in rows:
                    raise InputError(f"{where}:{line_base + k}: motif {name!r} has row {base} twice")
                rows[base] = _floats(m.group(2).split(), where, line_base + k)
        if set(rows) != set(BASES):
            raise InputError(f"{where}:{line_base}: motif {name!r} needs count rows A, C, G and T")
        widths = {len(v) for v in rows.values()}
        if len(widths) != 1:
            raise InputError(f"{where}:{line_base}: motif {name!r} count rows have different lengths")
        if size_m and int(size_m.group(1)) != widths.pop():
            raise InputError(f"{where}:{line_base}: motif {name!r} declares PSSM size {size_m.group(1)} but its rows differ")
        cols = [list(x) for x in zip(*(rows[b] for b in BASES))]
        motifs.append(Motif(name, _check_matrix(cols, name, where), source=where,
                            nsites=float(nsites_m.group(1)) if nsites_m else None))
        line_base += block.count("\n")
    if not motifs:
        raise InputError(f"{where}: no 'Transcription Factor ID:' blocks found",
                         hint="expected the RegulonDB PSSM count format (regulondb_pssm_v4.0.txt)")
    return motifs


def format_regulondb(motifs: list[Motif]) -> str:
    out = ["# RegulonDB-style PSSM export", ""]
    for i, m in enumerate(motifs):
        arr = m.array()
        out += ["", f"Transcription Factor ID: X{i:06d}", f"Transcription Factor Name: {m.name}",
                f"Total of binding sites: {int(m.nsites or 0)}", f"PSSM size: {m.width}", ""]
        for j, b in enumerate(BASES):
            out.append(b + "\t" + "\t".join(_num(x) for x in arr[:, j]))
        out.append("")
    return "\n".join(out) + "\n"


# -- JSON artifact ---------------------------------------------------------------------------

def _artifact_motif(obj: dict, where: str) -> Motif:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: each motif must be a JSON object")
    name = obj.get("motif_id") or obj.get("name")
    if not name:
        raise InputError(f"{where}: a motif has no motif_id")
    alphabet = str(obj.get("alphabet", "ACGT")).upper()
    if alphabet != "ACGT":
        raise InputError(f"{where}: motif {name!r} has alphabet {alphabet!r}; only ACGT is supported")
    for key in ("counts", "probabilities", "matrix"):
        if key in obj:
            rows_in = obj[key]
            break
    else:
        raise InputError(f"{where}: motif {name!r} has none of counts, probabilities, matrix")
    rows: list[list[float]] = []
    for i, r in enumerate(rows_in or []):
        if isinstance(r, dict):
            if set(k.upper() for k in r) != set(BASES):
                raise InputError(f"{where}: motif {name!r} position {i + 1} must have keys A, C, G, T")
            rows.append([float({k.upper(): v for k, v in r.items()}[b]) for b in BASES])
        elif isinstance(r, list):
            try:
                rows.append([float(x) for x in r])
            except (TypeError, ValueError):
                raise InputError(f"{where}: motif {name!r} position {i + 1} is not numeric") from None
        else:
            raise InputError(f"{where}: motif {name!r} position {i + 1} must be a list or an object")
    return Motif(str(name), _check_matrix(rows, str(name), where), source=where, nsites=obj.get("nsites"))


def parse_artifact(text: str, where: str = "<artifact>") -> list[Motif]:
    """JSON artifact: one motif object, a list of them, or {"motifs": [...]}.

    A motif object has `motif_id`, optional `alphabet` ("ACGT") and one of `counts`,
    `probabilities` or `matrix`: rows per position, as [A, C, G, T] lists or {A:..} objects.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: invalid JSON at line {e.lineno}: {e.msg}") from None
    items = data.get("motifs") if isinstance(data, dict) and "motifs" in data else data
    items = items if isinstance(items, list) else [items]
    motifs = [_artifact_motif(o, where) for o in items]
    if not motifs:
        raise InputError(f"{where}: the artifact holds no motifs")
    return motifs


def format_artifact(motifs: list[Motif]) -> str:
    return json.dumps({"schema_version": 1, "motifs": [
        {"motif_id": m.name, "alphabet": "ACGT", "counts": [list(r) for r in m.matrix]} for m in motifs]}, indent=1)


PARSERS = {"meme": parse_meme, "jaspar": parse_jaspar, "regulondb": parse_regulondb, "artifact": parse_artifact}


def read_motifs(path: Path, fmt: str) -> list[Motif]:
    """Parse a motif file of format meme | jaspar | regulondb | artifact."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"motif file {path} not found", hint="paths in the config are relative to the config file") from None
    if fmt == "jaspar":
        return parse_jaspar(text, str(path), default_name=path.stem)
    return PARSERS[fmt](text, str(path))


# -- scoring ---------------------------------------------------------------------------------

def probabilities(m: Motif, pseudocount: float = 0.5) -> np.ndarray:
    """Row-normalised probabilities with `pseudocount` added to every cell.

    Rows that already sum to ~1 (probability matrices) get the pseudocount scaled by 1/nsites
    (default 20 sites) so that counts and probabilities are smoothed comparably.
    """
    arr = m.array()
    sums = arr.sum(axis=1, keepdims=True)
    is_prob = bool(np.all(np.abs(sums - 1.0) < 1e-3))
    pc = pseudocount / (m.nsites or 20.0) if is_prob else pseudocount
    arr = arr + pc
    return arr / arr.sum(axis=1, keepdims=True)


def background_array(bg: dict[str, float] | None) -> np.ndarray:
    if not bg:
        return np.full(4, 0.25)
    arr = np.array([bg[b] for b in BASES], dtype=float)
    return arr / arr.sum()


@dataclass(frozen=True)
class LogOdds:
    """A log2-odds scoring matrix (positions x A,C,G,T)."""

    matrix: np.ndarray

    @classmethod
    def from_motif(cls, m: Motif, pseudocount: float = 0.5, background: dict[str, float] | None = None) -> LogOdds:
        p = probabilities(m, pseudocount)
        with np.errstate(divide="ignore"):
            lo = np.log2(p / background_array(background))
        return cls(lo)

    @property
    def width(self) -> int:
        return self.matrix.shape[0]

    @property
    def max_score(self) -> float:
        return float(self.matrix.max(axis=1).sum())

    @property
    def min_score(self) -> float:
        return float(self.matrix.min(axis=1).sum())

    def consensus(self) -> str:
        return "".join(BASES[i] for i in self.matrix.argmax(axis=1))

    def score_encoded(self, X: np.ndarray) -> np.ndarray:
        """Scores of encoded sequences (n x width int array of base indices)."""
        return self.matrix[np.arange(self.width), X].sum(axis=1)

    def score(self, seq: str) -> float:
        if len(seq) != self.width:
            raise ValueError(f"sequence length {len(seq)} != motif width {self.width}")
        return float(self.score_encoded(encode([seq]))[0])

    def normalise(self, scores: np.ndarray | float) -> np.ndarray | float:
        span = self.max_score - self.min_score
        if span <= 0:
            return np.ones_like(scores) if isinstance(scores, np.ndarray) else 1.0
        return (scores - self.min_score) / span

    def best_hit(self, seq: str, both_strands: bool = True) -> float:
        """Best normalised score of any window of `seq` against the motif (either strand).

        When `seq` is shorter than the motif, it is slid along the motif instead and each
        alignment is normalised against that part of the matrix, so a short sequence that looks
        like half a site still scores high.
        """
        w, n = self.width, len(seq)
        seqs = [seq] + ([revcomp(seq)] if both_strands else [])
        best = 0.0
        for s in seqs:
            X = encode([s])[0]
            if n >= w:
                idx = np.arange(n - w + 1)[:, None] + np.arange(w)[None, :]
                best = max(best, float(self.normalise(self.score_encoded(X[idx]).max())))
                continue
            rows = np.arange(w - n + 1)[:, None] + np.arange(n)[None, :]  # one row per offset
            sc = self.matrix[rows, X[None, :]].sum(axis=1)
            lo = self.matrix.min(axis=1)[rows].sum(axis=1)
            hi = self.matrix.max(axis=1)[rows].sum(axis=1)
            span = np.where(hi > lo, hi - lo, 1.0)
            norm = np.where(hi > lo, (sc - lo) / span, 1.0)
            best = max(best, float(norm.max()))
        return best

    def trimmed(self, width: int, probs: np.ndarray, background: np.ndarray) -> tuple[LogOdds, int]:
        """The window of `width` positions with the most information content, and its start."""
        if width >= self.width:
            return self, 0
        info = (probs * np.log2(probs / background)).sum(axis=1)
        sums = np.convolve(info, np.ones(width), mode="valid")
        start = int(np.argmax(sums))
        return LogOdds(self.matrix[start:start + width]), start


_COMP = str.maketrans("ACGT", "TGCA")


def revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def encode(seqs: list[str]) -> np.ndarray:
    """Equal-length ACGT strings -> int array of base indices."""
    table = np.full(256, -1, dtype=np.int64)
    for b, i in _IDX.items():
        table[ord(b)] = i
    arr = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8).reshape(len(seqs), -1)
    out = table[arr]
    if (out < 0).any():
        raise ValueError("sequence contains letters other than ACGT")
    return out


def decode(X: np.ndarray) -> list[str]:
    lut = np.frombuffer(BASES.encode(), dtype=np.uint8)
    return [bytes(lut[row]).decode() for row in X]


@dataclass(frozen=True)
class SampledSite:
    sequence: str
    score: float
    score_norm: float


def sample_sites(m: Motif, *, n_sites: int, strategy: str, candidates: int, min_score_norm: float,
                 rng: np.random.Generator, pseudocount: float = 0.5, background: dict[str, float] | None = None,
                 trim_to: int | None = None) -> list[SampledSite]:
    """Draw sites from motif `m` and score them by log-odds (in-process).

    - `consensus`: the single best-scoring sequence.
    - `stochastic`: draw `candidates` sequences from the PWM probabilities, keep distinct ones
      with normalised score >= `min_score_norm`, and pick `n_sites` of them uniformly at random.
    - `top`: as stochastic, but keep the `n_sites` highest-scoring ones.
    Results are sorted by descending score, then sequence; fewer than `n_sites` come back when too
    few candidates pass the threshold.
    """
    probs = probabilities(m, pseudocount)
    bg = background_array(background)
    lo = LogOdds.from_motif(m, pseudocount, background)
    if trim_to is not None and trim_to < lo.width:
        lo, start = lo.trimmed(trim_to, probs, bg)
        probs = probs[start:start + trim_to]
    if strategy == "consensus":
        c = lo.consensus()
        return [SampledSite(c, lo.max_score, 1.0)]
    w = lo.width
    cum = np.cumsum(probs, axis=1)
    u = rng.random((candidates, w))
    X = (u[:, :, None] > cum[None, :, :]).sum(axis=2).clip(0, 3)
    X = np.unique(X, axis=0)
    scores = lo.score_encoded(X)
    norm = np.asarray(lo.normalise(scores))
    keep = norm >= min_score_norm - 1e-12
    X, scores, norm = X[keep], scores[keep], norm[keep]
    if len(X) > n_sites:
        if strategy == "top":
            order = np.lexsort((np.arange(len(X)), -scores))[:n_sites]
        else:
            order = np.sort(rng.choice(len(X), size=n_sites, replace=False))
        X, scores, norm = X[order], scores[order], norm[order]
    seqs = decode(X)
    out = [SampledSite(s, float(sc), float(nm)) for s, sc, nm in zip(seqs, scores, norm)]
    out.sort(key=lambda x: (-x.score, x.sequence))
    return out
