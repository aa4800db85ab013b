"""Phase 2 of the seed: push the small JSON summaries of a run to a results branch (default `hpc-results`).

Layout of the branch: `<commit>/{tests,benchmarks,meta,hpc-results}.json` per run, and at the
top `latest-{tests,benchmarks,meta}.json` plus `badges/{tests,benchmarks}.json` (shields.io
endpoint files that a Pages site or raw URL serves). Only JSON files smaller than 1 MB are pushed;
logs stay on the cluster. The branch is created (orphan) when the remote has none. Concurrent
runs are handled by rebasing and retrying the push. Credentials never go on a command line:
use a deploy key (GIT_SSH_COMMAND / ~/.ssh/config) or a credential helper.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from dnadesign.core.errors import DnadesignError as CIError

from .checkout import check_remote_url, git, mask_url

MAX_FILE_BYTES = 1 << 20
PUSH_ATTEMPTS = 4
PER_COMMIT = {"tests/summary.json": "tests.json", "benchmarks/summary.json": "benchmarks.json", "meta.json": "meta.json",
              "hpc-results.json": "hpc-results.json"}
LATEST = {"tests/summary.json": "latest-tests.json", "benchmarks/summary.json": "latest-benchmarks.json",
          "latest-meta.json": "latest-meta.json", "badges/tests.json": "badges/tests.json",
          "badges/benchmarks.json": "badges/benchmarks.json"}


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GIT_AUTHOR_NAME", "dnadesign HPC CI")
    env.setdefault("GIT_AUTHOR_EMAIL", "hpc-ci@localhost")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def _copy(art: Path, rel: str, dest: Path) -> bool:
    src = art / rel
    if not src.is_file() or src.stat().st_size > MAX_FILE_BYTES:
        return False
    json.loads(src.read_text())  # only well-formed JSON leaves the cluster
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return True


def push_results(art: Path, remote: str, branch: str = "hpc-results", log=print) -> str:
    """Commit this run's summaries to `branch` of `remote` and push; returns the pushed commit."""
    check_remote_url(remote, "HPC_RESULTS_REMOTE")
    if not re.fullmatch(r"[\w./-]+", branch) or branch.startswith("-"):
        raise CIError(f"HPC_RESULTS_BRANCH={branch!r} is not a valid branch name")
    meta = json.loads((art / "meta.json").read_text())
    commit = meta.get("commit") or "unknown"
    env = _git_env()
    with tempfile.TemporaryDirectory(prefix="hpc-results-") as tmp:
        work = Path(tmp)
        git("init", "--quiet", str(work), cwd=work, env=env)
        git("remote", "add", "origin", remote, cwd=work, env=env)
        has_branch = bool(git("ls-remote", "--heads", "origin", branch, cwd=work, env=env))
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            if has_branch:
                git("fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}", cwd=work, env=env)
                git("checkout", "--quiet", "-B", branch, f"origin/{branch}", cwd=work, env=env)
            else:
                git("checkout", "--quiet", "--orphan", branch, cwd=work, env=env)
                (work / "README.md").write_text("# HPC CI results\n\nSmall JSON summaries pushed by `ci/hpc/run_hpc_ci.sh`; see docs/hpc-ci.md.\n")
            copied = [_copy(art, rel, work / commit / name) for rel, name in PER_COMMIT.items()]
            copied += [_copy(art, rel, work / name) for rel, name in LATEST.items()]
            if not any(copied):
                raise CIError(f"no summaries to push in {art}", hint="run the driver first")
            git("add", "-A", cwd=work, env=env)
            git("commit", "--quiet", "--allow-empty", "-m", f"HPC results for {commit[:12]} ({meta.get('generated_at')})", cwd=work, env=env)
            try:
                git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work, env=env)
                pushed = git("rev-parse", "HEAD", cwd=work, env=env)
                log(f"results pushed to {mask_url(remote)} {branch} ({pushed[:12]})")
                return pushed
            except CIError as exc:
                if attempt == PUSH_ATTEMPTS:
                    raise CIError(f"pushing results to {mask_url(remote)} failed after {attempt} attempts: {exc.message}") from None
                log(f"push rejected ({exc.message}); fetching and retrying")
                has_branch = True
                git("reset", "--quiet", "--hard", cwd=work, env=env)
    raise CIError("unreachable")  # pragma: no cover
