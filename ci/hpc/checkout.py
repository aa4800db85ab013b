"""What the CI run tests: the driver's own checkout in place, or a commit in a scratch clone.

With `HPC_CI_COMMIT` and/or `HPC_CI_BRANCH` the driver clones `HPC_CI_REPO` (default: the
driver repository's `origin`, else the driver repository itself) into a scratch directory,
fetches the branch, checks out the commit detached, and builds the commit's own environment
from its `uv.lock` (`uv sync --frozen`). Without them it tests the driver's checkout as it is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dnadesign.core.errors import DnadesignError as CIError

CREDENTIALS_IN_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)


def git(*args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
    """Run git; its stdout, or a CIError naming the command and git's last error line."""
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                             env=dict(env) if env is not None else None, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CIError("git is not installed here", hint="load a git module or install git") from None
    except subprocess.TimeoutExpired:
        raise CIError(f"`git {args[0]}` did not finish in {timeout:.0f} s", hint="check the network and the remote") from None
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise CIError(f"`git {' '.join(args[:2])}` failed: {mask_url(last)}")
    return res.stdout.strip()


def mask_url(text: str) -> str:
    """Hide any `user:password@` part of URLs inside `text`."""
    return re.sub(r"(://)[^/@\s]*:[^/@\s]*@", r"\1***@", text)


def check_remote_url(url: str, what: str) -> None:
    """Refuse URLs that carry a password or token: it would show on command lines and in logs."""
    if CREDENTIALS_IN_URL.match(url):
        raise CIError(f"{what} {mask_url(url)} has credentials in the URL",
                      hint="use an SSH deploy key (GIT_SSH_COMMAND or ~/.ssh/config) or a git credential helper instead")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the code under test: without the driver's own virtualenv settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME")}
    env.update(extra or {})
    return env


@dataclass
class Checkout:
    """The tree under test and the Python environment that runs it."""

    workdir: Path
    commit: str
    branch: str | None
    dirty: bool
    scratch: bool
    python: Path
    source: str | None = None

    def cleanup(self, keep: bool = False) -> None:
        """Remove a scratch clone (never the driver's own checkout)."""
        if self.scratch and not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _in_place(harness: Path, branch: str | None, python: Path) -> Checkout:
    commit = git("rev-parse", "HEAD", cwd=harness)
    current = git("rev-parse", "--abbrev-ref", "HEAD", cwd=harness)
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", cwd=harness))
    return Checkout(harness, commit, branch or (None if current == "HEAD" else current), dirty, False, python)


def default_source(harness: Path) -> str:
    """The driver repository's `origin` URL, else the repository's own path."""
    try:
        url = git("remote", "get-url", "origin", cwd=harness)
    except CIError:
        url = ""
    return url or str(harness)


def prepare(harness: Path, env: Mapping[str, str], python: Path, log) -> Checkout:
    """Resolve what to test (see the module doc); `log(line)` records progress."""
    commit, branch = env.get("HPC_CI_COMMIT") or None, env.get("HPC_CI_BRANCH") or None
    if not commit and not branch:
        co = _in_place(harness, branch, python)
        log(f"testing the driver's checkout in place: {co.commit[:12]}" + (" (uncommitted changes)" if co.dirty else ""))
        return co
    if commit and not re.fullmatch(r"[0-9a-fA-F]{4,40}", commit):
        raise CIError(f"HPC_CI_COMMIT={commit!r} is not a commit SHA", hint="pass a full or abbreviated hex SHA")
    if branch and (branch.startswith("-") or ".." in branch or not re.fullmatch(r"[\w./-]+", branch)):
        raise CIError(f"HPC_CI_BRANCH={branch!r} is not a valid branch name")
    source = env.get("HPC_CI_REPO") or default_source(harness)
    check_remote_url(source, "HPC_CI_REPO")
    workdir = Path(env.get("HPC_CI_WORKDIR") or tempfile.mkdtemp(prefix="hpc-ci-", dir=env.get("TMPDIR") or None))
    if workdir.exists() and any(workdir.iterdir()):
        raise CIError(f"HPC_CI_WORKDIR {workdir} is not empty", hint="point it at a new or empty directory")
    log(f"cloning {mask_url(source)} into {workdir}")
    git("clone", "--quiet", "--no-checkout", source, str(workdir), cwd=harness)
    co = Checkout(workdir, "", branch, False, True, workdir / ".venv" / "bin" / "python", source=mask_url(source))
    try:
        if branch:
            git("fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}", cwd=workdir)
        target = commit or f"origin/{branch}"
        try:
            git("checkout", "--quiet", "--detach", target, cwd=workdir)
        except CIError:
            if not commit:
                raise
            try:  # a commit no branch of the clone has yet
                git("fetch", "--quiet", "origin", commit, cwd=workdir)
                git("checkout", "--quiet", "--detach", commit, cwd=workdir)
            except CIError as exc:
                raise CIError(f"commit {commit} is not in {mask_url(source)}" + (f" (branch {branch})" if branch else ""),
                              hint=f"push it first, or check HPC_CI_COMMIT / HPC_CI_REPO ({exc.message})") from None
        co.commit = git("rev-parse", "HEAD", cwd=workdir)
        if commit and not co.commit.lower().startswith(commit.lower()):
            raise CIError(f"HPC_CI_COMMIT {commit} resolved to {co.commit}", hint="pass the full SHA")
        log(f"checked out {co.commit[:12]}" + (f" of {branch}" if branch else ""))
        sync_environment(workdir, log)
    except BaseException:
        co.cleanup(keep=bool(env.get("HPC_CI_KEEP_WORKDIR")))
        raise
    return co


def sync_environment(workdir: Path, log) -> None:
    """`uv sync --frozen` in the clone: the commit's own locked environment (dev tools included)."""
    uv = shutil.which("uv")
    if uv is None:
        raise CIError("uv is not on PATH", hint="install uv (pip install --user uv) or load its module before running the driver")
    if not (workdir / "uv.lock").exists():
        raise CIError(f"the commit has no uv.lock in {workdir}", hint="HPC CI builds the environment from the committed uv.lock")
    res = subprocess.run([uv, "sync", "--frozen", "--quiet"], cwd=workdir, capture_output=True, text=True, env=child_env(),
                         stdin=subprocess.DEVNULL, timeout=3600)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise CIError(f"`uv sync --frozen` failed in the clone: {last}", hint="check that uv.lock matches pyproject.toml at that commit")
    log("environment synced from uv.lock")
