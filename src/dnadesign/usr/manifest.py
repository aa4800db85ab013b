"""The manifest: a dataset's current state as a small JSON file naming immutable data files.

Data files are never modified after they are written; a mutation writes new files and then swaps
the manifest atomically under the dataset lock. Entries are kept sorted by file name (names start
with a UTC stamp), so two copies that list the same files serialise identically and a union of
two manifests is deterministic.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_bytes
from ..core.errors import ConflictError, IntegrityError
from ..core.ids import sha256_bytes
from ..core.timeutil import utc_now_iso

_LIST_CHILD = re.compile(r"\b(large_list_view|list_view|large_list|list)<[^:<>]+: ")


def type_key(text: str) -> str:
    """A recorded Arrow type text with spelling differences removed (list child names, `large_`
    offsets, view layouts, nullability), so the same logical type compares equal."""
    text = _LIST_CHILD.sub("list<item: ", text)
    return text.replace("large_string", "string").replace("string_view", "string").replace(" not null", "")


FORMAT = "usr-manifest"
VERSION = 1


@dataclass(frozen=True)
class FileEntry:
    """One immutable data file: path relative to the dataset dir, content hash, rows, bytes.

    `replaces` names the files a compaction retired into this one (and, transitively, what those
    had retired): a union with a copy that still lists them drops them instead of reviving them.
    """

    file: str
    sha256: str
    rows: int
    bytes: int
    replaces: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": self.file, "sha256": self.sha256, "rows": self.rows, "bytes": self.bytes}
        if self.replaces:
            d["replaces"] = sorted(self.replaces)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileEntry:
        return cls(str(d["file"]), str(d["sha256"]), int(d["rows"]), int(d["bytes"]),
                   tuple(str(r) for r in d.get("replaces", ())))


@dataclass
class Manifest:
    dataset: str
    created_at: str
    updated_at: str = ""
    parts: list[FileEntry] = field(default_factory=list)
    overlays: dict[str, list[FileEntry]] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)  # derived column -> arrow type string
    bio_types: list[str] = field(default_factory=list)
    # Set when a union merge brought in parts whose ids overlap; reads then keep the first copy.
    dedupe_on_read: bool = False

    # -- (de)serialisation -------------------------------------------------------------------
    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "dataset": self.dataset,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "bio_types": sorted(self.bio_types),
            "columns": dict(sorted(self.columns.items())),
            "dedupe_on_read": self.dedupe_on_read,
            "parts": [e.as_dict() for e in sorted(self.parts, key=lambda e: e.file)],
            "overlays": {ns: [e.as_dict() for e in sorted(es, key=lambda e: e.file)] for ns, es in sorted(self.overlays.items())},
        }
        return (json.dumps(doc, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str = "manifest") -> Manifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
            if int(doc.get("version", 0)) > VERSION:
                raise ValueError(f"version {doc['version']} is newer than this usr understands ({VERSION})")
            return cls(
                dataset=doc["dataset"],
                created_at=doc["created_at"],
                updated_at=doc.get("updated_at", ""),
                parts=[FileEntry.from_dict(d) for d in doc.get("parts", [])],
                overlays={ns: [FileEntry.from_dict(d) for d in es] for ns, es in doc.get("overlays", {}).items()},
                columns=dict(doc.get("columns", {})),
                bio_types=list(doc.get("bio_types", [])),
                dedupe_on_read=bool(doc.get("dedupe_on_read", False)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{where} is not a valid usr manifest: {exc}",
                                 hint="restore it from a snapshot with `usr snapshot restore`") from None

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls.from_json(path.read_bytes(), where=str(path))

    def save(self, path: Path) -> str:
        """Atomically replace the manifest file; returns the sha256 of what was written."""
        self.updated_at = utc_now_iso()
        data = self.to_json()
        atomic_write_bytes(path, data)
        return sha256_bytes(data)

    # -- queries ----------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return sum(e.rows for e in self.parts)

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.all_files())

    def all_files(self) -> list[FileEntry]:
        return [*self.parts, *(e for es in self.overlays.values() for e in es)]

    def namespaces(self) -> list[str]:
        """Namespaces with overlay parts (see `derived_namespaces` for columns folded into the base)."""
        return sorted(ns for ns, es in self.overlays.items() if es)

    def derived_namespaces(self) -> list[str]:
        """Every namespace with a derived column, whether its values live in overlays or in the base."""
        found = {c.split("__", 1)[0] for c in self.columns if "__" in c}
        return sorted(found | set(self.namespaces()))

    def retired(self) -> set[str]:
        """Files that compactions replaced, as recorded on the entries listed here."""
        return {r for e in self.all_files() for r in e.replaces}

    def copy(self) -> Manifest:
        return Manifest.from_json(self.to_json())

    def digest(self) -> str:
        return sha256_bytes(self.to_json())


def union(a: Manifest, b: Manifest) -> Manifest:
    """Merge two copies that may both have grown: every file either side lists is kept.

    Same file name with different hashes, or a derived column with two types, is a conflict.
    A file that an entry of either side `replaces` (a compaction retired it into that entry) is
    dropped rather than revived. When both sides still add parts the other lacks, reads dedupe ids
    (the same sequence may have been added on both sides) until `usr compact`.
    """
    if a.dataset != b.dataset:
        raise ConflictError(f"cannot merge manifests of {a.dataset} and {b.dataset}")

    def merge_entries(xs: list[FileEntry], ys: list[FileEntry]) -> list[FileEntry]:
        by_name = {e.file: e for e in xs}
        for e in ys:
            if e.file in by_name and by_name[e.file].sha256 != e.sha256:
                raise ConflictError(f"{a.dataset}: {e.file} has different content on the two sides",
                                    hint="run `usr validate` on both sides; one copy is corrupted")
            by_name.setdefault(e.file, e)
        return sorted(by_name.values(), key=lambda e: e.file)

    columns = dict(a.columns)
    for col, typ in b.columns.items():
        if col in columns and type_key(columns[col]) != type_key(typ):
            raise ConflictError(f"{a.dataset}: column {col} is {columns[col]} on one side and {typ} on the other")
        columns[col] = typ
    retired = a.retired() | b.retired()
    parts = [e for e in merge_entries(a.parts, b.parts) if e.file not in retired]
    kept = {e.file for e in parts}
    a_only = {e.file for e in a.parts if e.file in kept} - {e.file for e in b.parts}
    b_only = {e.file for e in b.parts if e.file in kept} - {e.file for e in a.parts}
    overlays = {ns: [e for e in merge_entries(a.overlays.get(ns, []), b.overlays.get(ns, [])) if e.file not in retired]
                for ns in set(a.overlays) | set(b.overlays)}
    return Manifest(
        dataset=a.dataset,
        created_at=min(a.created_at, b.created_at),
        updated_at=max(a.updated_at, b.updated_at),
        parts=parts,
        overlays={ns: es for ns, es in overlays.items() if es},
        columns=columns,
        bio_types=sorted(set(a.bio_types) | set(b.bio_types)),
        dedupe_on_read=a.dedupe_on_read or b.dedupe_on_read or bool(a_only and b_only),
    )
