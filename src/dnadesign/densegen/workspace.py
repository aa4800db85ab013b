"""Workspaces: directories holding `config.yaml`, `inputs/` and `outputs/`.

Packaged demo workspaces live in the repository's `workspaces/` directory (next to `src/`), or
wherever `$DENSEGEN_WORKSPACE_ROOT` points. `init_workspace` makes a new workspace from a
packaged one or from any config file.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_text
from ..core.errors import ConfigError, ConflictError, InputError, NotFoundError
from . import yaml_rt
from .config import _RUN_ID, DEFAULT_CONFIG_NAME, parse_config, read_yaml

WORKSPACE_ROOT_ENV = "DENSEGEN_WORKSPACE_ROOT"
OUTPUT_SUBDIRS = ("meta", "tables", "plots", "logs")


def packaged_root() -> Path:
    """Where packaged workspaces live: `$DENSEGEN_WORKSPACE_ROOT`, else the repo's `workspaces/`.

    The repo is found by walking up from this file to a directory that holds both `src/` and
    `workspaces/` (a source checkout or an editable install); a `workspaces/` directory inside
    the installed package is used as a last resort.
    """
    env = os.environ.get(WORKSPACE_ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "workspaces").is_dir() and (parent / "src").is_dir():
            return parent / "workspaces"
    if (here.parent / "workspaces").is_dir():
        return here.parent / "workspaces"
    raise NotFoundError("cannot find the packaged workspaces directory",
                        hint=f"set ${WORKSPACE_ROOT_ENV} to a directory of workspaces (each with a config.yaml)")


@dataclass(frozen=True)
class WorkspaceInfo:
    name: str
    path: Path
    description: str
    has_outputs: bool
    files: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "description": self.description,
                "has_outputs": self.has_outputs, "files": self.files}


def _describe(path: Path) -> str:
    try:
        raw, _ = read_yaml(path / DEFAULT_CONFIG_NAME)
        return str(((raw or {}).get("run") or {}).get("description") or "")
    except (ConfigError, AttributeError):  # unreadable, or not a mapping
        return "(config unreadable)"


def list_workspaces(root: Path | None = None) -> list[WorkspaceInfo]:
    """Workspaces (directories with a config.yaml) under `root` (default: the packaged root)."""
    root = root or packaged_root()
    if not root.is_dir():
        raise NotFoundError(f"workspace root {root} does not exist")
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and (p / DEFAULT_CONFIG_NAME).is_file()):
        outputs = d / "outputs"
        has = outputs.is_dir() and any(outputs.iterdir())
        files = sum(1 for f in d.rglob("*") if f.is_file() and "outputs" not in f.relative_to(d).parts[:1])
        out.append(WorkspaceInfo(d.name, d, _describe(d), has, files))
    return out


def find_packaged(name: str) -> Path:
    root = packaged_root()
    d = root / name
    if not (d / DEFAULT_CONFIG_NAME).is_file():
        names = [w.name for w in list_workspaces(root)] if root.is_dir() else []
        raise NotFoundError(f"no packaged workspace named {name!r} in {root}",
                            hint=f"choose one of: {', '.join(names) or '(none)'}; see `dense workspace list`")
    return d


def _rewrite_inputs(raw: dict, src_dir: Path, dest: Path, copy_inputs: bool) -> list[str]:
    """Point input paths of a config copied from `src_dir` at files usable from `dest`."""
    notes: list[str] = []
    for inp in raw.get("inputs") or []:
        if not isinstance(inp, dict):
            continue
        keys = [k for k in ("path",) if isinstance(inp.get(k), str)]
        for k in keys:
            inp[k] = _place(inp[k], src_dir, dest, copy_inputs, notes)
        if isinstance(inp.get("paths"), list):
            inp["paths"] = [_place(p, src_dir, dest, copy_inputs, notes) for p in inp["paths"]]
        if inp.get("type") == "usr_sequences" and isinstance(inp.get("root"), str):
            q = Path(inp["root"]).expanduser()
            inp["root"] = str(q if q.is_absolute() else (src_dir / q).resolve())
    return notes


def _place(p: str, src_dir: Path, dest: Path, copy_inputs: bool, notes: list[str]) -> str:
    q = Path(p).expanduser()
    src = q if q.is_absolute() else (src_dir / q).resolve()
    if not copy_inputs:
        return str(src)
    if not src.is_file():
        raise InputError(f"input file {src} not found, so it cannot be copied", hint="fix the path in the source config")
    target = dest / "inputs" / src.name
    if target.exists() and target.read_bytes() != src.read_bytes():
        target = dest / "inputs" / f"{src.stem}_{len(notes) + 1}{src.suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        notes.append(f"copied {src} -> {target}")
    return str(target.relative_to(dest))


def init_workspace(ws_id: str, *, root: Path, from_workspace: str | None = None, from_config: Path | None = None,
                   copy_inputs: bool = True, targets: list[str] | None = None,
                   usr_root: Path | None = None) -> tuple[Path, list[str]]:
    """Create `<root>/<ws_id>/` with config.yaml, inputs/ and outputs/; returns (path, notes).

    The config is copied with every comment and its layout kept (round-trip YAML); it gets
    `run.id = ws_id`, `run.root = "."`, and its USR dataset becomes `densegen/<ws_id>` (when one was set). Input paths are rewritten: copied into `inputs/`
    (default) or made absolute (`copy_inputs=False`). `targets` replaces `output.targets`;
    `usr_root` points USR output at a shared root (stored as an absolute path). Refuses to touch
    an existing non-empty directory.
    """
    if targets is not None:
        bad = [t for t in targets if t not in ("usr", "parquet")]
        if bad or not targets:
            raise ConfigError(f"output targets must be usr and/or parquet, got {','.join(targets) or 'nothing'}")
    if (from_workspace is None) == (from_config is None):
        raise ConfigError("give exactly one of --from (a packaged workspace) or --from-config (a config file)")
    if not _RUN_ID.match(ws_id):
        raise ConfigError(f"workspace id {ws_id!r} must be lowercase letters, digits, '_', '.', '-'",
                          hint="it becomes run.id and part of the USR dataset id")
    dest = (root / ws_id).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise ConflictError(f"{dest} already exists and is not empty", hint="choose another id or --root")
    if from_workspace is not None:
        src_cfg = find_packaged(from_workspace) / DEFAULT_CONFIG_NAME
    else:
        assert from_config is not None
        src_cfg = Path(from_config).expanduser().resolve()
    strict, _ = read_yaml(src_cfg)
    if not isinstance(strict, dict):
        raise ConfigError(f"{src_cfg}: the config must be a YAML mapping")
    parse_config(strict, src_cfg)  # validate the source before copying anything
    doc = yaml_rt.load(src_cfg)  # the same document, with its comments, to edit and write back
    raw = doc.data
    dest.mkdir(parents=True, exist_ok=True)
    try:
        (dest / "inputs").mkdir(exist_ok=True)
        for sub in OUTPUT_SUBDIRS:
            (dest / "outputs" / sub).mkdir(parents=True, exist_ok=True)
        notes = _rewrite_inputs(raw, src_cfg.parent, dest, copy_inputs)
        run = raw.setdefault("run", {})
        run["id"] = ws_id
        run["root"] = "."
        out = raw.get("output")
        if isinstance(out, dict) and isinstance(out.get("usr"), dict) and out["usr"].get("dataset"):
            out["usr"]["dataset"] = f"densegen/{ws_id}"
        if isinstance(out, dict) and isinstance(out.get("usr"), dict) and isinstance(out["usr"].get("root"), str):
            q = Path(out["usr"]["root"]).expanduser()
            if not q.is_absolute() and not str(q).startswith("outputs"):
                out["usr"]["root"] = str((src_cfg.parent / q).resolve())
        if targets is not None or usr_root is not None:
            out = raw.setdefault("output", yaml_rt.mapping())
            if targets is not None:
                out["targets"] = yaml_rt.sequence(list(dict.fromkeys(targets)), flow=True)
            if usr_root is not None:
                usr = out.setdefault("usr", yaml_rt.mapping())
                usr["root"] = str(Path(usr_root).expanduser().resolve())
                usr.setdefault("dataset", f"densegen/{ws_id}")
                if "usr" not in out.setdefault("targets", yaml_rt.sequence(["parquet"], flow=True)):
                    out["targets"].append("usr")
        header = (f"# DenseGen workspace {ws_id} (created from {from_workspace or src_cfg}).\n"
                  f"# Paths are relative to this file. Schema: docs/dense-config.md\n")
        text = doc.dump(header)
        parse_config(yaml_rt.plain(yaml_rt.loads(text).data), dest / DEFAULT_CONFIG_NAME)
        atomic_write_text(dest / DEFAULT_CONFIG_NAME, text)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest, notes
