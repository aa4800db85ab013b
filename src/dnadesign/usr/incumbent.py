"""Reading datasets of the previous `usr` (the incumbent dnadesign) without changing them.

An incumbent dataset is a directory holding one `records.parquet` (the whole base table, possibly
with materialized `<ns>__<field>` columns) next to:

```
_derived/<ns>.parquet              compact overlay (key column + <ns>__* columns)
_derived/<ns>/part-*.parquet       append-only overlay parts (newest wins per key)
_derived/usr.parquet               tombstones (usr__deleted, usr__deleted_at, usr__deleted_reason)
_derived/usr_state.parquet         reserved per-record state (masked, qc_status, split, ...)
_snapshots/records-<stamp>.parquet full copies of records.parquet before each rewrite
.events.log                        its own event line format (timestamp_utc, dataset.name, ...)
meta.md                            `name:` header and a changelog
_registry/ _artifacts/ _views/ .events.archive/   auxiliary files
```

Ids there are flat (`densegen_demo`) or `namespace/name`; `map_dataset_id` turns them into ids
of this store. This module finds incumbent datasets and converts event lines with the standard
library only (`usr ls` uses it); `incumbent_inventory.py` reads their Parquet files and
`migrate.py` builds the new dataset. Nothing here writes.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import DatasetIdError
from ..core.ids import validate_dataset_id
from ..core.secrets import redact
from .layout import MANIFEST

RECORDS_FILE = "records.parquet"
DERIVED = "_derived"
SNAPSHOTS = "_snapshots"
EVENTS = ".events.log"
META = "meta.md"
TOMBSTONES = "usr"
# Runtime files of the incumbent that hold no data.
RUNTIME_FILES = re.compile(r"^(\.usr\.lock|\.events\.lock|\.usr\.transfer\.lock|\.usr\.lease\..*)$")
# Auxiliary content that has no counterpart here, and why it is not carried.
NOT_CARRIED = {
    "_artifacts": "tool internals of the incumbent (DenseGen id index, pending overlays, npz side files)",
    "_registry": "frozen copies of the incumbent's namespace registry (types are recorded in the manifest here)",
    "_views": "sequence-view sidecars of the incumbent's GenBank/construct importers",
    ".events.archive": "event lines the incumbent archived when gardening its log",
}
SNAPSHOT_NAME = re.compile(r"^records-(\d{8}T\d{6,})\.parquet$")
# Flat incumbent ids of DenseGen datasets: densegen_<workspace>.
DENSEGEN_PREFIX = "densegen_"
FALLBACK_NAMESPACE = "imported"
HISTORY_ACTION = "migrated_event"
_EVENT_NS = uuid.UUID("6d1c3a52-8e3b-4b43-9a55-2b1d6f0c9e10")


def is_incumbent_dir(path: Path) -> bool:
    """True for a directory holding an incumbent `records.parquet` and no manifest of this store."""
    return (path / RECORDS_FILE).is_file() and not (path / MANIFEST).exists()


@dataclass(frozen=True)
class IncumbentRef:
    """An incumbent dataset found under a root: where it is, its old id and the id it maps to."""

    path: Path
    old_id: str
    new_id: str | None  # None when the old id cannot be mapped (the user must pass --to)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "old_id": self.old_id, "new_id": self.new_id}


def map_dataset_id(old_id: str) -> str:
    """The id here of an incumbent dataset id.

    - `namespace/name` stays as it is (lower-cased);
    - `densegen_<workspace>` (DenseGen's flat ids) becomes `densegen/<workspace>`;
    - any other flat id `<name>` becomes `imported/<name>`.
    Raises DatasetIdError when the result is not a valid id here (then pass `--to`).
    """
    text = old_id.strip().strip("/").lower()
    parts = text.split("/")
    if len(parts) == 2:
        new = text
    elif len(parts) == 1 and text.startswith(DENSEGEN_PREFIX) and len(text) > len(DENSEGEN_PREFIX):
        new = f"densegen/{text[len(DENSEGEN_PREFIX):]}"
    elif len(parts) == 1 and text:
        new = f"{FALLBACK_NAMESPACE}/{text}"
    else:
        new = text
    try:
        return validate_dataset_id(new)
    except DatasetIdError:
        raise DatasetIdError(f"incumbent dataset id {old_id!r} has no valid id here (got {new!r})",
                             hint="choose one with --to namespace/name (lowercase letters, digits, '_', '.', '-')") from None


def find_incumbent_datasets(root: Path) -> list[IncumbentRef]:
    """Incumbent datasets under a root: `<root>/<id>/` and `<root>/<ns>/<name>/` (not `archived/`)."""
    if not root.is_dir():
        return []
    found = []
    for records in sorted([*root.glob(f"*/{RECORDS_FILE}"), *root.glob(f"*/*/{RECORDS_FILE}")]):
        d = records.parent
        rel = d.relative_to(root).as_posix()
        if rel.split("/")[0] in ("archived", "_incumbent") or rel.startswith(".") or not is_incumbent_dir(d):
            continue
        try:
            new: str | None = map_dataset_id(rel)
        except DatasetIdError:
            new = None
        found.append(IncumbentRef(d, rel, new))
    return found


def incumbent_id(path: Path, root: Path | None) -> str:
    """The incumbent id of a dataset directory: its path under the root, else `name:` in meta.md, else its name."""
    if root is not None:
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
            if rel and rel != ".":
                return rel
        except ValueError:
            pass
    meta = path / META
    if meta.is_file():
        for line in meta.read_text(errors="replace").splitlines()[:20]:
            m = re.match(r"^\s*name:\s*(\S+)\s*$", line)
            if m:
                return m.group(1)
    return path.name


# -- events -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvertedLine:
    line: int  # 1-based line number in the incumbent log
    event: dict[str, Any] | None
    problem: str | None = None


def convert_events(path: Path, dataset_id: str, max_line_bytes: int) -> Iterator[ConvertedLine]:
    """Incumbent event lines as events of this store's contract (action `migrated_event`).

    The original action, args, metrics, actor and time are kept (`args.original_action`, ...);
    the host path the incumbent put in `dataset.root` is dropped and secrets are redacted. The
    event id is derived from the line's content, so a line converts to the same event every time.
    A line that is not a JSON object, or a torn last line, is reported and skipped.
    """
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            if not raw.endswith(b"\n"):
                yield ConvertedLine(n, None, "torn last line (no newline): a write was interrupted")
                continue
            try:
                old = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                yield ConvertedLine(n, None, f"not JSON ({exc})")
                continue
            if not isinstance(old, dict) or not old.get("action"):
                yield ConvertedLine(n, None, "not an event object")
                continue
            event = _convert(old, raw, dataset_id)
            size = len(json.dumps(event, separators=(",", ":"), default=str).encode()) + 1
            if size > max_line_bytes:
                yield ConvertedLine(n, None, f"converted line is {size} bytes, over the {max_line_bytes}-byte limit")
                continue
            yield ConvertedLine(n, event)


def _convert(old: dict[str, Any], raw: bytes, dataset_id: str) -> dict[str, Any]:
    actor: dict[str, Any] = old["actor"] if isinstance(old.get("actor"), dict) else {}
    fingerprint: dict[str, Any] = old["fingerprint"] if isinstance(old.get("fingerprint"), dict) else {}
    args: dict[str, Any] = {"original_action": str(old.get("action")), "migrated_from": "incumbent"}
    for key in ("args", "artifacts", "maintenance"):
        value = old.get(key)
        if value:
            args[f"original_{key}" if key != "args" else "original_args"] = value
    old_ds: dict[str, Any] = old["dataset"] if isinstance(old.get("dataset"), dict) else {}
    if old_ds.get("name"):
        args["original_dataset"] = str(old_ds["name"])
    run_id = str(actor.get("run_id") or "incumbent")
    return {
        "event_version": 1,
        "event_id": uuid.uuid5(_EVENT_NS, raw.decode("utf-8", "replace")).hex,
        "ts": str(old.get("timestamp_utc") or old.get("ts") or ""),
        "action": HISTORY_ACTION,
        "dataset": {"id": dataset_id},
        "actor": {"tool": str(actor.get("tool") or "usr"), "run_id": run_id, "correlation_id": run_id,
                  "host": str(actor.get("host") or ""), "pid": actor.get("pid"), "user": str(actor.get("user") or "")},
        "args": redact(args),
        "metrics": dict(old.get("metrics") or {}) if isinstance(old.get("metrics"), dict) else {},
        "fingerprint": {"rows": fingerprint.get("rows"), "manifest": None},
    }
