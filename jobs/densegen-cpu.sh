#!/bin/bash -l
# DenseGen batch job for SGE (qsub) and Slurm (sbatch): each scheduler reads its own header lines
# and treats the other's as comments. Submit it from anywhere:
#
#   qsub   -v DENSEGEN_CONFIG=/path/to/workspace/config.yaml jobs/densegen-cpu.sh
#   sbatch --export=ALL,DENSEGEN_CONFIG=/path/to/workspace/config.yaml jobs/densegen-cpu.sh
#   resume and extend:  -v DENSEGEN_CONFIG=...,DENSEGEN_RUN_ARGS='--resume --extend-quota 8 --no-plot'
#   as an array (N tasks share ONE config and fill its quotas once):  qsub -t 1-16 ... / sbatch --array=1-16 ...
#
# Variables: DENSEGEN_CONFIG (required; relative paths are from the submit directory),
# DENSEGEN_RUN_ARGS (default --no-plot), DNADESIGN_REPO (the dnadesign checkout; default: the submit
# directory or one of its parents, when it is a checkout).
#
# Stopping: `dense run` commits what it accepted, records the stop and exits 128+signal on
# SIGTERM/SIGINT/SIGUSR1/SIGUSR2, once or repeated by launchers within a few seconds. `exec` below
# makes uv (and through it dense) the job's main process, so the scheduler's signal reaches it and
# the job ends only when dense has finished. SGE: `-notify` sends SIGUSR2 some seconds (the queue's
# `notify` time) before qdel's SIGKILL. Slurm: `--signal=B:TERM@120` sends SIGTERM 120 s before the
# time limit; scancel sends SIGTERM and waits KillWait (default 30 s) before SIGKILL.
# The parallel environment name (`omp` below) is site-specific: BU SCC uses `omp`, others `smp`.
#$ -N densegen
#$ -cwd
#$ -j y
#$ -o densegen.$JOB_ID.out
#$ -l h_rt=04:00:00
#$ -pe omp 4
#$ -notify
#SBATCH --job-name=densegen
#SBATCH --cpus-per-task=4
#SBATCH --time=04:00:00
#SBATCH --output=densegen.%j.out
#SBATCH --signal=B:TERM@120
set -euo pipefail
: "${DENSEGEN_CONFIG:?set DENSEGEN_CONFIG to the workspace config.yaml (qsub -v / sbatch --export)}"
RUN_ARGS=${DENSEGEN_RUN_ARGS:---no-plot}
# quotes that reached us literally (qsub -v "DENSEGEN_RUN_ARGS='--resume --no-plot'") are not part of the arguments
RUN_ARGS=${RUN_ARGS#[\'\"]}; RUN_ARGS=${RUN_ARGS%[\'\"]}

# The dnadesign checkout: $DNADESIGN_REPO, else the submit directory (or a parent) when it is one.
is_repo() { [ -f "$1/pyproject.toml" ] && grep -q '^name = "dnadesign"' "$1/pyproject.toml"; }
find_repo() {
  local d
  if [ -n "${DNADESIGN_REPO:-}" ]; then
    is_repo "$DNADESIGN_REPO" && { echo "$DNADESIGN_REPO"; return 0; }
    echo "DNADESIGN_REPO=$DNADESIGN_REPO is not a dnadesign checkout (no pyproject.toml of dnadesign there)" >&2
    return 1
  fi
  for d in "${SLURM_SUBMIT_DIR:-}" "${SGE_O_WORKDIR:-}" "$PWD"; do
    while [ -n "$d" ] && [ "$d" != "/" ]; do
      is_repo "$d" && { echo "$d"; return 0; }
      d=$(dirname "$d")
    done
  done
  return 1
}
REPO=$(find_repo) || { echo "densegen-cpu.sh: cannot find the dnadesign checkout; submit from inside it or set DNADESIGN_REPO (qsub -v DNADESIGN_REPO=... / sbatch --export=ALL,DNADESIGN_REPO=...)" >&2; exit 2; }
# uv: on PATH, else where its installer puts it, else on the submitting shell's PATH (SGE passes it as SGE_O_PATH).
UV=$(PATH="$PATH:$HOME/.local/bin:$HOME/.cargo/bin:${SGE_O_PATH:-}" command -v uv) || { echo "densegen-cpu.sh: uv is not on PATH (install it: pip install uv)" >&2; exit 2; }

# RUN_ARGS is split into words on purpose (e.g. "--resume --extend-quota 8 --no-plot").
# `dense run` validates the config and inputs first, sizes CP-SAT workers from NSLOTS / SLURM_CPUS_PER_TASK,
# and records job_started/job_finished in the dataset's .events.log (also when it cannot start), so `notify` alerts.
# shellcheck disable=SC2086
exec "$UV" run --project "$REPO" dense run -c "$DENSEGEN_CONFIG" $RUN_ARGS
