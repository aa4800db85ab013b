#!/usr/bin/env bash
# Push the small JSON summaries of a finished run (hpc-ci/artifacts/) to the results branch
# (HPC_RESULTS_REMOTE, HPC_RESULTS_BRANCH default hpc-results). The driver does this itself when
# HPC_RESULTS_REMOTE is set; this script is for a separate publish step (seed phase 3).
#   ci/hpc/push_to_hpc_results_branch.sh [ARTIFACTS_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ART=$(cd "${1:-$REPO/hpc-ci/artifacts}" 2>/dev/null && pwd) || { echo "push_to_hpc_results_branch.sh: no artifacts directory ${1:-hpc-ci/artifacts}. Run ci/hpc/run_hpc_ci.sh first." >&2; exit 1; }
cd "$REPO"
exec uv run --frozen --quiet python -m ci.hpc push "$ART"
