"""Position weight matrices: the tool-neutral motif model and its file formats.

Parsers and writers for MEME, JASPAR, RegulonDB PSSM and a JSON artifact, plus the probability
smoothing shared by every scorer. `dense` samples sites from these matrices and `infer` scans
sequences with them; both read motif files through this module, so a file one accepts the other
accepts too.

A `Motif` holds a count or probability matrix over A, C, G, T (one row per position).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

BASES = "ACGT"


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
        cols = [list(x) for x in zip(*(rows[b] for b in BASES), strict=True)]
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
        motifs.append(Motif(default_name, _check_matrix([list(x) for x in zip(*bare, strict=True)], default_name, where), source=where))
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
        cols = [list(x) for x in zip(*(rows[b] for b in BASES), strict=True)]
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
        raise InputError(f"motif file {path} not found", hint="check the path (relative paths are resolved against the config file or the working directory)") from None
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
