"""Where things live: the USR root and the files inside one dataset directory.

```
<root>/<namespace>/<name>/
  manifest.json            current state: the part files (sha256, rows) and overlays; replaced atomically
  records/part-*.parquet   immutable base record parts
  _derived/<ns>/part-*.parquet   immutable overlay parts (id + <ns>__field columns)
  _snapshots/<name>.json   saved manifests (no data copied)
  _index/<part>.ids        sorted sha1 digests of a part's ids (a cache, rebuilt when missing)
  .events.log  .events.lock  .usr.lock  meta.md
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import NotFoundError
from ..core.ids import validate_dataset_id

ROOT_ENV = "DNADESIGN_USR_ROOT"
MANIFEST = "manifest.json"
RECORDS_DIR = "records"
DERIVED_DIR = "_derived"
SNAPSHOTS_DIR = "_snapshots"
INDEX_DIR = "_index"
EVENTS_LOG = ".events.log"
EVENTS_LOCK = ".events.lock"
DATASET_LOCK = ".usr.lock"
META = "meta.md"
# Files that belong to the running host only: never synced, never listed as dataset content.
LOCAL_ONLY = (EVENTS_LOCK, DATASET_LOCK, INDEX_DIR)


def default_root() -> Path:
    """`$DNADESIGN_USR_ROOT`, else `$XDG_DATA_HOME/dnadesign/usr` (`~/.local/share/dnadesign/usr`)."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "dnadesign" / "usr"


def resolve_root(root: str | Path | None) -> Path:
    """The USR root to use: an explicit one, else the default (see `default_root`)."""
    return Path(root).expanduser().resolve() if root else default_root().resolve()


@dataclass(frozen=True)
class DatasetPaths:
    """Paths of one dataset; `dataset_id` is validated before any path is built."""

    root: Path
    dataset_id: str

    def __post_init__(self) -> None:
        validate_dataset_id(self.dataset_id)

    @property
    def dir(self) -> Path:
        return self.root / self.dataset_id

    @property
    def manifest(self) -> Path:
        return self.dir / MANIFEST

    @property
    def records_dir(self) -> Path:
        return self.dir / RECORDS_DIR

    @property
    def derived_dir(self) -> Path:
        return self.dir / DERIVED_DIR

    @property
    def snapshots_dir(self) -> Path:
        return self.dir / SNAPSHOTS_DIR

    @property
    def index_dir(self) -> Path:
        return self.dir / INDEX_DIR

    @property
    def events_log(self) -> Path:
        return self.dir / EVENTS_LOG

    @property
    def lock(self) -> Path:
        return self.dir / DATASET_LOCK

    @property
    def meta(self) -> Path:
        return self.dir / META

    def file(self, relpath: str) -> Path:
        return self.dir / relpath

    def require(self) -> DatasetPaths:
        if not self.manifest.exists():
            raise NotFoundError(
                f"dataset {self.dataset_id} does not exist under {self.root}",
                hint=f"create it with `usr --root {self.root} init {self.dataset_id}` or check --root / ${ROOT_ENV}",
            )
        return self


def list_dataset_ids(root: Path) -> list[str]:
    """Dataset ids under a root (directories `<ns>/<name>` holding a manifest)."""
    if not root.is_dir():
        return []
    return sorted(f"{m.parent.parent.name}/{m.parent.name}" for m in root.glob(f"*/*/{MANIFEST}"))
