#!/usr/bin/env bash
# HPC CI driver: extended tests with coverage, benchmarks, and small JSON artifacts for badges and
# status checks, written under hpc-ci/artifacts/. Run it on a compute node (jobs/hpc-ci.sh), from
# cron on a login node, or from a facility GitLab/Jacamar runner. See docs/hpc-ci.md.
#
#   ci/hpc/run_hpc_ci.sh [--tests-only | --benchmarks-only] [--no-codecov] [--no-push]
#                        [--update-baseline] [--fail-on-regression] [--output DIR]
#
# Environment: HPC_CI_COMMIT / HPC_CI_BRANCH (test that commit in a scratch clone of HPC_CI_REPO),
# HPC_CI_PYTEST_ARGS (test selection), HPC_CI_BENCH_SELECTION, HPC_CI_BASELINE, HPC_CI_REGRESSION_PCT,
# HPC_CI_OUTPUT, CODECOV_TOKEN + HPC_CI_CODECOV_FLAG, HPC_RESULTS_REMOTE + HPC_RESULTS_BRANCH.
# Exit: 0 all phases passed, 1 a phase failed, 2 usage.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
command -v uv >/dev/null 2>&1 || { echo "run_hpc_ci.sh: uv is not on PATH. Install it (pip install --user uv) or load its module." >&2; exit 1; }
cd "$REPO"
# The driver's own environment (from the committed uv.lock); the commit under test gets its own in the scratch clone.
exec uv run --frozen --quiet python -m ci.hpc "$@"
