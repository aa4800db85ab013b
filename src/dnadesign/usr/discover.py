"""Helping users find their data: close matches for a mistyped dataset id, and datasets that live
outside the root they asked (DenseGen workspaces keep theirs in `<workspace>/outputs/usr_datasets`).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..core.errors import NotFoundError
from .incumbent import find_incumbent_datasets
from .layout import MANIFEST, ROOT_ENV, list_dataset_ids

WORKSPACE_ROOT = Path("outputs") / "usr_datasets"  # where `dense` writes a workspace's own USR root
SEARCH_DEPTH = 3  # directories below the start searched for workspace roots


def close_matches(dataset_id: str, known: list[str], n: int = 3) -> list[str]:
    """Known ids that look like `dataset_id` (a typo, a missing `s`, another namespace)."""
    hits = difflib.get_close_matches(dataset_id, known, n=n, cutoff=0.75)
    name = dataset_id.split("/")[-1]
    hits += [k for k in known if k.split("/")[-1] == name and k not in hits]
    return hits[:n]


def workspace_roots(start: Path) -> list[Path]:
    """USR roots of DenseGen workspaces at or below `start` (a few levels), that hold datasets."""
    found: list[Path] = []
    if not start.is_dir():
        return found
    patterns = [str(WORKSPACE_ROOT)] + ["/".join(["*"] * k + [str(WORKSPACE_ROOT)]) for k in range(1, SEARCH_DEPTH)]
    for pattern in patterns:
        for p in sorted(start.glob(pattern)):
            if any(part.startswith(".") for part in p.relative_to(start).parts) or not p.is_dir():
                continue
            if next(p.glob(f"*/*/{MANIFEST}"), None) is not None:
                found.append(p)
    return found


def display(path: Path, cwd: Path) -> str:
    """A path relative to the working directory when it is below it (shorter to copy)."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def dataset_not_found(root: Path, dataset_id: str, cwd: Path | None = None) -> NotFoundError:
    """The error for a dataset that is not under `root`, with the most useful next step."""
    cwd = cwd or Path.cwd()
    if not root.is_dir():
        return NotFoundError(f"dataset {dataset_id} not found: the USR root {root} does not exist",
                             hint=f"check --root (or ${ROOT_ENV}); `usr ls` lists what a root holds")
    matches = close_matches(dataset_id, list_dataset_ids(root))
    if matches:
        return NotFoundError(f"dataset {dataset_id} does not exist under {root}",
                             hint=f"did you mean {' or '.join(matches)}?")
    old = [ref for ref in find_incumbent_datasets(root) if ref.new_id == dataset_id]
    if old:
        return NotFoundError(f"{old[0].path} holds {dataset_id} as a dataset of the previous usr, not yet converted",
                             hint=f"convert it with `usr --root {root} migrate {old[0].old_id}` (see docs/migrate.md)")
    for ws in workspace_roots(cwd):
        here = [dataset_id] if (ws / dataset_id / MANIFEST).exists() else close_matches(dataset_id, list_dataset_ids(ws), n=1)
        if here:
            what = "has it" if here[0] == dataset_id else f"has {here[0]}"
            return NotFoundError(f"dataset {dataset_id} is not under {root}, but the workspace root {display(ws, cwd)} {what}",
                                 hint=f"use `usr --root {display(ws, cwd)} <command> {here[0]}`")
    return NotFoundError(f"dataset {dataset_id} does not exist under {root}",
                         hint=f"`usr --root {root} ls` lists its datasets; `usr init {dataset_id}` creates an empty one")
