"""`usr remotes doctor`: every check sync depends on, each with a fix when it fails."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...core.errors import RemoteError
from . import scripts
from .remotes import RemoteProfile
from .ssh import Connection

_FIX_TOOL = {
    "rsync": "install rsync on the remote (e.g. `module load rsync` or ask the admins)",
    "flock": "install util-linux (it provides flock) on the remote",
    "sha256sum": "install coreutils on the remote (sha256sum is needed for --verify hash)",
    "mv": "install coreutils on the remote",
    "mkdir": "install coreutils on the remote",
    "stat": "install GNU coreutils on the remote (stat -c is used for file listings)",
    "find": "install findutils on the remote",
    "head": "install GNU coreutils on the remote",
    "tail": "install GNU coreutils on the remote",
    "wc": "install GNU coreutils on the remote",
    "grep": "install grep on the remote",
    "sed": "install sed on the remote",
    "awk": "install an awk (e.g. gawk or mawk) on the remote",
    "base64": "install GNU coreutils on the remote (base64 carries the manifest and events to it)",
    "python3": "optional: not needed by sync",
}


def _check(name: str, ok: bool, detail: str, fix: str = "", optional: bool = False) -> dict[str, Any]:
    return {"check": name, "ok": ok, "detail": detail, "fix": "" if ok else fix, "optional": optional}


def _path_doctor(profile: RemoteProfile, checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A remote that is a path: the directory exists, is writable, and takes flock (some NFS mounts do not)."""
    base = Path(os.path.expanduser(profile.base_dir))
    exists = base.is_dir()
    checks.append(_check("base_dir exists", exists, str(base), f"mount the filesystem, or create it: mkdir -p {base}"))
    if not exists:
        return checks
    try:
        fd, tmp = tempfile.mkstemp(prefix=".usr-doctor.", dir=base)
    except OSError as exc:
        checks.append(_check("base_dir writable", False, f"{base}: {exc.strerror}",
                             "fix its permissions, or choose another path with `usr remotes add --force`"))
        return checks
    try:
        checks.append(_check("base_dir writable", True, str(base)))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            ok, detail = True, "lock taken and released"
        except OSError as exc:
            ok, detail = False, f"flock failed: {exc.strerror}"
        checks.append(_check("flock works in base_dir", ok, detail,
                             "this filesystem has no working flock (some NFS mounts); use a local, Lustre or GPFS path, or an SSH remote"))
    finally:
        os.close(fd)
        os.unlink(tmp)
    return checks


def run_doctor(profile: RemoteProfile) -> list[dict[str, Any]]:
    """Every check sync depends on for this remote, in order; each failed one carries a fix."""
    checks = []
    if profile.type == "path":
        path = shutil.which("rsync")
        checks.append(_check("local rsync", bool(path), path or "not found", "install rsync on this machine"))
        return _path_doctor(profile, checks)
    for tool in ("ssh", "rsync"):
        path = shutil.which(tool)
        checks.append(_check(f"local {tool}", bool(path), path or "not found",
                             f"install {'openssh-client' if tool == 'ssh' else 'rsync'} on this machine"))
    if not all(c["ok"] for c in checks):
        return checks
    conn = Connection(profile)
    try:
        conn.ensure_master()
        checks.append(_check("ssh connection + authentication", True, f"{profile.destination} (one authenticated master connection)"))
    except RemoteError as exc:
        checks.append(_check("ssh connection + authentication", False, exc.message, exc.hint or ""))
        return checks
    tok = scripts.token()
    res = conn.run_script(scripts.DOCTOR, [tok, profile.base_dir], check=False)
    lines = res.stdout.decode(errors="replace").splitlines()
    facts: dict[tuple[str, ...], str] = {}
    for ln in lines:
        parts = ln.split(" ", 2)
        if len(parts) >= 2:
            facts[(parts[0], parts[1])] = parts[2] if len(parts) > 2 else ""
            if parts[0] == "host":
                facts[("host",)] = " ".join(parts[1:])
    for tool in ("rsync", "flock", "sha256sum", "mv", "mkdir", "stat", "find", "head", "tail", "wc", "grep", "sed", "awk", "base64", "python3"):
        ok = ("tool", tool) in facts and facts[("tool", tool)] == "ok"
        checks.append(_check(f"remote {tool}", ok, "found" if ok else "missing", _FIX_TOOL[tool], optional=(tool == "python3")))
    exists = ("base", "exists") in facts
    checks.append(_check("base_dir exists", exists, profile.base_dir,
                         f"create it on the remote: ssh {profile.destination} mkdir -p {profile.base_dir}"))
    writable = ("base", "writable") in facts
    checks.append(_check("base_dir writable", writable, profile.base_dir,
                         "fix its permissions on the remote, or choose another base_dir with `usr remotes add --force`"))
    if ("tool", "flock") in facts and facts[("tool", "flock")] == "ok" and exists:
        ok = ("flock", "ok") in facts
        checks.append(_check("remote flock works in base_dir", ok, "lock taken and released" if ok else "flock failed",
                             "base_dir may be on a filesystem without flock support (some NFS mounts); use a local or Lustre/GPFS path"))
    if ("host",) in facts:
        checks.append(_check("remote host", True, facts[("host",)]))
    return checks
