"""Shared DenseGen test fixtures: packaged demo workspaces copied into tmp_path, config writers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKSPACES = REPO / "workspaces"


@pytest.fixture
def workspaces_root() -> Path:
    """The repository's packaged workspaces directory."""
    return WORKSPACES


@pytest.fixture
def demo_workspace(tmp_path: Path) -> Callable[..., Path]:
    """Copy a packaged workspace (default `demo_sites`) into tmp_path; returns its config.yaml.

    `edit` (optional) is a function that receives the parsed YAML dict and may change it in place;
    the edited config is written back before the path is returned.
    """

    def make(name: str = "demo_sites", *, edit: Callable[[dict], Any] | None = None, dest: str | None = None) -> Path:
        target = tmp_path / (dest or name)
        shutil.copytree(WORKSPACES / name, target, ignore=shutil.ignore_patterns("outputs"))
        cfg = target / "config.yaml"
        if edit is not None:
            raw = yaml.safe_load(cfg.read_text())
            edit(raw)
            cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
        return cfg

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config (dict or YAML text) to tmp_path/<name>; returns its path."""

    def make(content: dict | str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return make


@pytest.fixture
def sites_csv(tmp_path: Path) -> Path:
    """A small binding-site CSV (real RegulonDB rows from the demo workspace, first 60 rows)."""
    lines = (WORKSPACES / "demo_sites" / "inputs" / "regulondb_sites.csv").read_text().splitlines()
    path = tmp_path / "sites.csv"
    path.write_text("\n".join(lines[:61]) + "\n")
    return path


def minimal_config(sites_path: str = "sites.csv", **over: Any) -> dict:
    """A small valid config dict over a binding-sites CSV; keyword args replace top-level sections."""
    cfg = {
        "schema_version": 1,
        "run": {"id": "t"},
        "inputs": [{"name": "sites", "type": "binding_sites", "path": sites_path}],
        "generation": {
            "sequence_length": 60,
            "sampling": {"library_size": 8},
            "plans": [{"name": "p", "sequences": 3, "include_inputs": ["sites"]}],
        },
    }
    cfg.update(over)
    return cfg


@pytest.fixture
def minimal(write_config, sites_csv) -> Callable[..., Path]:
    """Write `minimal_config()` (optionally edited) next to `sites_csv`; returns the config path."""

    def make(edit: Callable[[dict], Any] | None = None, name: str = "config.yaml") -> Path:
        raw = minimal_config()
        if edit is not None:
            edit(raw)
        return write_config(raw, name)

    return make
