"""JASPAR matrices by id or by TF name and taxon, read offline from a JASPAR SQLite database.

The databases ship inside the PyPI package `pyjaspar` (one `JASPAR<year>.sqlite` per release,
under `pyjaspar/data/`); this module only locates that directory and reads the files read-only
with `sqlite3`, so nothing touches the network. A user-supplied JASPAR SQLite file (same schema,
e.g. a newer release) can be named instead.

Keys: a matrix id with version (`MA0139.2`), a base id (`MA0139`: its latest version in the
release), or a TF name (case-insensitive; the latest version of each matching profile in the
collection, narrowed by `taxon` when given: a species name, e.g. `Homo sapiens`, which also
takes its strains, an NCBI tax id, e.g. `9606`, or a JASPAR supergroup, e.g. `fungi`). A name
that matches several profiles is an error naming the candidate ids. Matrices come back as `Motif`s (counts, rows = positions), named
by the TF name, so they flow through the same log-odds sampling as every other PWM input.

Note: the JASPAR releases that pyjaspar ships hold eukaryotic profiles only (no bacteria); an
E. coli regulator is best taken from the RegulonDB PSSM input.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import InputError, NotFoundError
from ...core.motifs import BASES, Motif

_ID = re.compile(r"^([A-Z]{2}\d{4})(?:\.(\d+))?$")
_RELEASE = re.compile(r"^JASPAR(\d{4})\.sqlite$")


_NO_TAXON = ("give a species name such as 'Homo sapiens', an NCBI tax id such as 9606 or a group such as fungi; "
             "the JASPAR releases pyjaspar ships hold eukaryotic profiles only, so take bacterial regulators "
             "from a RegulonDB PSSM or MEME file (format: regulondb or meme)")


@dataclass(frozen=True)
class JasparMatrix:
    """One resolved JASPAR profile: its id, TF name, species and the motif (counts)."""

    matrix_id: str  # "MA0139.2"
    tf_name: str
    species: tuple[str, ...]
    motif: Motif


def packaged_releases() -> dict[str, Path]:
    """Release name (e.g. `JASPAR2026`) -> SQLite file shipped by pyjaspar, oldest first."""
    spec = importlib.util.find_spec("pyjaspar")  # locate without importing (no side effects)
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError("the JASPAR databases are not installed (package pyjaspar is missing)",
                            hint="run `uv sync` in the project, or give the input a `path:` to a JASPAR SQLite file")
    found: dict[str, Path] = {}
    for loc in spec.submodule_search_locations:
        data = Path(loc) / "data"
        if data.is_dir():
            for f in data.iterdir():
                if _RELEASE.match(f.name) and f.stat().st_size > 0:
                    found[f.stem] = f
    return dict(sorted(found.items()))


def database_path(release: str | None = None, path: Path | None = None) -> tuple[str, Path]:
    """(label, file) of the database to read: `path` when given, else `release` (default: the latest)."""
    if path is not None:
        if not path.is_file():
            raise NotFoundError(f"JASPAR database {path} does not exist", hint="check the input's `path:`")
        return path.name, path
    releases = packaged_releases()
    if not releases:
        raise NotFoundError("pyjaspar ships no JASPAR database files", hint="reinstall it with `uv sync --reinstall-package pyjaspar`")
    if release is None:
        release = list(releases)[-1]
    if release not in releases:
        raise InputError(f"JASPAR release {release!r} is not available", hint=f"use one of {', '.join(releases)}")
    return release, releases[release]


class JasparDb:
    """A read-only JASPAR SQLite database (open with `JasparDb.open`)."""

    def __init__(self, label: str, conn: sqlite3.Connection):
        self.label = label
        self.conn = conn

    @classmethod
    def open(cls, release: str | None = None, path: Path | None = None) -> JasparDb:
        """Open a packaged release (default: the latest) or a JASPAR SQLite file, read-only."""
        label, file = database_path(release, path)
        uri = file.resolve().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True)
            conn.execute("SELECT ID, BASE_ID, VERSION, NAME, COLLECTION FROM MATRIX LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise InputError(f"{file}: cannot be read as a JASPAR SQLite database ({exc})",
                             hint="give a JASPAR release file such as JASPAR2024.sqlite") from None
        return cls(label, conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> JasparDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookups ------------------------------------------------------------------------------

    def versions(self, base_id: str) -> list[int]:
        """Versions of `base_id` in this database, ascending."""
        rows = self.conn.execute("SELECT VERSION FROM MATRIX WHERE BASE_ID = ? ORDER BY VERSION", (base_id,))
        return [int(v) for (v,) in rows]

    def by_id(self, key: str) -> JasparMatrix:
        """The matrix `MA0139.2`, or the latest version of `MA0139`; unknown ids raise one clear error."""
        m = _ID.match(key.strip().upper())
        if not m:
            raise InputError(f"{key!r} is not a JASPAR matrix id", hint="ids look like MA0139.2 or MA0139")
        base, version = m.group(1), m.group(2)
        versions = self.versions(base)
        if not versions:
            raise InputError(f"JASPAR matrix {key!r} is not in {self.label}",
                             hint="check the id (e.g. MA0139.2), or name the TF with its taxon instead")
        if version is None:
            version = str(versions[-1])
        elif int(version) not in versions:
            raise InputError(f"JASPAR matrix {key!r} is not in {self.label}",
                             hint=f"{base} has version(s) {', '.join(f'{base}.{v}' for v in versions)}")
        row = self.conn.execute("SELECT ID, NAME FROM MATRIX WHERE BASE_ID = ? AND VERSION = ?", (base, int(version))).fetchone()
        return self._matrix(int(row[0]), f"{base}.{version}", str(row[1]))

    def by_name(self, name: str, *, taxon: str | None = None, collection: str | None = "CORE") -> JasparMatrix:
        """The one profile (latest version) of TF `name` in `collection`, narrowed by `taxon`.

        No match or several matches raise one error naming the key and what to do (the candidate
        ids, the taxa the name exists for, or close names).
        """
        group = str(taxon).strip().lower() if taxon is not None and str(taxon).strip().lower() in self.tax_groups() else None
        tax_ids = self.tax_ids(taxon) if taxon is not None and group is None else None
        where = f"{self.label}{f' {collection}' if collection else ''}"
        for_taxon = f" for taxon {taxon!r}" if taxon is not None else ""
        if tax_ids is not None and not (tax_ids and self._taxon_has_matrices(tax_ids)):
            raise InputError(f"TF name {name!r} not found: {self.label} has no matrices for taxon {taxon!r}", hint=_NO_TAXON)
        candidates = self._latest_by_name(name, collection)
        all_species = {iid: self._species(iid) for iid, _, _ in candidates}
        if group is not None:
            chosen = [c for c in candidates if self._tax_group(c[0]) == group]
        elif tax_ids is not None:
            chosen = [c for c in candidates if set(all_species[c[0]][0]) & tax_ids]
        else:
            chosen = candidates
        if len(chosen) == 1:
            iid, mid, tf = chosen[0]
            return self._matrix(iid, mid, tf)
        if len(chosen) > 1:
            ids = ", ".join(f"{mid} ({'/'.join(all_species[iid][1]) or '?'})" for iid, mid, _ in chosen[:12])
            more = f" and {len(chosen) - 12} more" if len(chosen) > 12 else ""
            hint = "name one by its matrix id" + ("" if taxon is not None else ", or set `taxon`")
            raise InputError(f"TF name {name!r} matches {len(chosen)} matrices in {where}{for_taxon}: {ids}{more}", hint=hint)
        if candidates:  # the name exists, but not for this taxon
            taxa = sorted({s for iid, _, _ in candidates for s in all_species[iid][1]})
            ids = ", ".join(mid for _, mid, _ in candidates[:12])
            raise InputError(f"TF name {name!r} has no matrix{for_taxon} in {where}",
                             hint=f"it exists for {', '.join(taxa[:8]) or 'other taxa'} ({ids}); fix `taxon` or use one of these ids")
        names = {n.lower(): n for n in self._names(collection)}
        close = [names[c] for c in difflib.get_close_matches(name.strip().lower(), list(names), n=5, cutoff=0.75)]
        raise InputError(f"TF name {name!r} not found in {where}",
                         hint=(f"close names: {', '.join(close)}" if close else "check the spelling, or give the matrix id"))

    def tax_ids(self, taxon: str) -> set[int]:
        """NCBI tax ids for `taxon`: the id itself, or species whose name is it (or it plus a strain)."""
        t = str(taxon).strip()
        if t.isdigit():
            return {int(t)}
        low = t.lower()
        rows = self.conn.execute("SELECT TAX_ID FROM TAX WHERE lower(SPECIES) = ? OR lower(SPECIES) LIKE ? ESCAPE '\\'",
                                 (low, _like_prefix(low) + " %"))
        return {int(r[0]) for r in rows}

    def tax_groups(self) -> set[str]:
        """JASPAR's taxonomic supergroups in this release (e.g. vertebrates, plants, fungi), lower-case."""
        rows = self.conn.execute("SELECT DISTINCT lower(VAL) FROM MATRIX_ANNOTATION WHERE TAG = 'tax_group'")
        return {str(v) for (v,) in rows if v}

    # -- internals ----------------------------------------------------------------------------

    def _tax_group(self, internal_id: int) -> str | None:
        row = self.conn.execute("SELECT lower(VAL) FROM MATRIX_ANNOTATION WHERE ID = ? AND TAG = 'tax_group'",
                                (internal_id,)).fetchone()
        return str(row[0]) if row and row[0] else None

    def _latest_by_name(self, name: str, collection: str | None) -> list[tuple[int, str, str]]:
        sql = ("SELECT m.ID, m.BASE_ID, m.VERSION, m.NAME FROM MATRIX m WHERE lower(m.NAME) = ?"
               + (" AND m.COLLECTION = ?" if collection else "")
               + " AND m.VERSION = (SELECT max(VERSION) FROM MATRIX x WHERE x.BASE_ID = m.BASE_ID) ORDER BY m.BASE_ID")
        args: tuple = (name.strip().lower(), collection) if collection else (name.strip().lower(),)
        return [(int(i), f"{b}.{v}", str(n)) for i, b, v, n in self.conn.execute(sql, args)]

    def _species(self, internal_id: int) -> tuple[list[int], list[str]]:
        rows = self.conn.execute("SELECT s.TAX_ID, t.SPECIES FROM MATRIX_SPECIES s LEFT JOIN TAX t ON t.TAX_ID = s.TAX_ID "
                                 "WHERE s.ID = ?", (internal_id,)).fetchall()
        ids = [int(t) for t, _ in rows if str(t).strip().isdigit()]
        return ids, [str(sp) if sp else str(t) for t, sp in rows]

    def _taxon_has_matrices(self, tax_ids: set[int]) -> bool:
        marks = ",".join("?" * len(tax_ids))
        row = self.conn.execute(f"SELECT 1 FROM MATRIX_SPECIES WHERE CAST(TAX_ID AS INTEGER) IN ({marks}) LIMIT 1",
                                tuple(tax_ids)).fetchone()
        return row is not None

    def _names(self, collection: str | None) -> list[str]:
        sql = "SELECT DISTINCT NAME FROM MATRIX" + (" WHERE COLLECTION = ?" if collection else "")
        return [str(n) for (n,) in self.conn.execute(sql, (collection,) if collection else ())]

    def _matrix(self, internal_id: int, matrix_id: str, tf_name: str) -> JasparMatrix:
        cells = self.conn.execute("SELECT row, col, val FROM MATRIX_DATA WHERE ID = ?", (internal_id,)).fetchall()
        width = max((int(c) for _, c, _ in cells), default=0)
        grid = [[0.0] * 4 for _ in range(width)]
        seen = set()
        for base, col, val in cells:
            b = str(base).upper()
            if b not in BASES or val is None:
                continue
            grid[int(col) - 1][BASES.index(b)] = float(val)
            seen.add(b)
        if width == 0 or seen != set(BASES):
            raise InputError(f"JASPAR matrix {matrix_id} in {self.label} has no complete A/C/G/T count matrix",
                             hint="choose another matrix")
        if any(sum(r) <= 0 for r in grid):
            raise InputError(f"JASPAR matrix {matrix_id} in {self.label} has an empty column", hint="choose another matrix")
        _, species = self._species(internal_id)
        motif = Motif(tf_name, tuple(tuple(r) for r in grid), source=f"{self.label}:{matrix_id}", nsites=sum(grid[0]))
        return JasparMatrix(matrix_id, tf_name, tuple(species), motif)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def is_matrix_id(key: str) -> bool:
    """True for JASPAR-style ids (`MA0139`, `MA0139.2`, `PB0001.1`, ...)."""
    return bool(_ID.match(key.strip().upper()))


def fetch(keys: Sequence[str], *, taxon: str | None = None, collection: str | None = "CORE",
          release: str | None = None, path: Path | None = None) -> list[JasparMatrix]:
    """Resolve each key (matrix id, base id or TF name) to one matrix, in order."""
    with JasparDb.open(release, path) as db:
        return [db.by_id(k) if is_matrix_id(k) else db.by_name(k, taxon=taxon, collection=collection) for k in keys]
