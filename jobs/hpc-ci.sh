#!/bin/bash -l
# HPC CI on a compute node, for SGE (qsub) and Slurm (sbatch): each scheduler reads its own header
# lines and treats the other's as comments. Runs ci/hpc/run_hpc_ci.sh (extended tests with
# coverage, benchmarks) and leaves its artifacts under hpc-ci/artifacts/ (or $HPC_CI_OUTPUT).
# Driver flags go after the script name; settings go through the environment:
#
#   sbatch --export=ALL,HPC_CI_COMMIT=<sha>,HPC_CI_BRANCH=main jobs/hpc-ci.sh
#   qsub   -v HPC_CI_COMMIT=<sha>,HPC_CI_BRANCH=main jobs/hpc-ci.sh --tests-only
#   nightly from cron on a login node:
#   0 2 * * * cd /project/me/dnadesign && git fetch -q && sbatch --export=ALL,HPC_CI_BRANCH=main jobs/hpc-ci.sh
#
# Optional: HPC_CI_PYTEST_ARGS (test selection), CODECOV_TOKEN (kept in the environment, never on a
# command line), HPC_RESULTS_REMOTE (push the small JSON summaries to its hpc-results branch; use a
# deploy key). The parallel environment name (`omp` below) is site-specific: BU SCC uses `omp`, others `smp`.
#$ -N hpc_ci
#$ -cwd
#$ -j y
#$ -o hpc_ci.$JOB_ID.out
#$ -l h_rt=03:00:00
#$ -pe omp 4
#$ -notify
#SBATCH --job-name=hpc_ci
#SBATCH --cpus-per-task=4
#SBATCH --time=03:00:00
#SBATCH --output=hpc_ci.%j.out
#SBATCH --signal=B:TERM@120
set -euo pipefail
cd "${DNADESIGN_REPO:-${SLURM_SUBMIT_DIR:-${SGE_O_WORKDIR:-$PWD}}}"
if [ ! -x ci/hpc/run_hpc_ci.sh ]; then
  echo "hpc-ci.sh: $PWD is not a dnadesign checkout (no ci/hpc/run_hpc_ci.sh); submit from the repository or set DNADESIGN_REPO" >&2
  exit 2
fi
# exec: the scheduler's TERM (time limit, scancel, qdel -notify's USR2) goes straight to the driver,
# which stops the running phase and still writes its artifacts.
exec ci/hpc/run_hpc_ci.sh "$@"
