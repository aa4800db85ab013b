"""The invariant every test that writes a dataset ends with: the real `usr validate` says OK."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def assert_dataset_valid(root: str | Path, dataset_id: str, *, env: dict | None = None) -> None:
    """Run `usr --root ROOT validate DATASET` (the console script) and assert it exits 0 with OK."""
    r = run_cli("usr", "--root", str(root), "validate", dataset_id, env=env, timeout=300)
    assert r.returncode == 0 and f"OK: {dataset_id}" in r.stdout, \
        f"usr validate {dataset_id} at {root} failed (exit {r.returncode}):\n{r.stdout}{r.stderr}"


def assert_workspace_valid(ws: str | Path, dataset_id: str = "densegen/demo_sites") -> None:
    """`assert_dataset_valid` for the USR output inside a workspace (`outputs/usr_datasets`)."""
    assert_dataset_valid(Path(ws) / "outputs" / "usr_datasets", dataset_id)
