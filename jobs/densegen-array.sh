#!/bin/bash -l
# DenseGen array job for SGE (qsub -t) and Slurm (sbatch --array). Submit it from anywhere.
#
# One config, N tasks (the usual case): every task runs the same workspace; together they fill each
# plan's quota exactly once into one dataset. Each task has its own seed stream and state
# (outputs/meta/tasks/task-NNNN); a task that dies leaves its share to the others or to a resubmission.
#
#   qsub   -t 1-16 -v DENSEGEN_CONFIG=/project/me/runs/demo/config.yaml jobs/densegen-array.sh
#   sbatch --array=1-16 --export=ALL,DENSEGEN_CONFIG=/project/me/runs/demo/config.yaml jobs/densegen-array.sh
#
# One workspace per task (independent runs): DENSEGEN_CONFIG_TEMPLATE with {task} in place of DENSEGEN_CONFIG:
#   qsub   -t 1-16 -v "DENSEGEN_CONFIG_TEMPLATE=/project/$USER/runs/task_{task}/config.yaml" jobs/densegen-array.sh
#
# Variables: DENSEGEN_CONFIG or DENSEGEN_CONFIG_TEMPLATE, DENSEGEN_RUN_ARGS (default --no-plot),
# DNADESIGN_REPO (the dnadesign checkout; default: the submit directory or a parent, when it is one).
# Stopping (qdel, scancel, time limit): see jobs/densegen-cpu.sh; every task commits what it accepted,
# writes job_finished (cancelled, with the signal) and exits 128+signal; resubmitting completes the quotas.
#$ -N densegen_array
#$ -cwd
#$ -j y
#$ -o densegen_array.$JOB_ID.$TASK_ID.out
#$ -l h_rt=04:00:00
#$ -notify
#SBATCH --job-name=densegen_array
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
#SBATCH --output=densegen_array.%A_%a.out
#SBATCH --signal=B:TERM@120
set -euo pipefail
TASK=${SLURM_ARRAY_TASK_ID:-${SGE_TASK_ID:-}}
if [ -z "$TASK" ] || [ "$TASK" = "undefined" ]; then
  echo "densegen-array.sh: not an array task (submit with sbatch --array or qsub -t)" >&2
  exit 2
fi
if [ -n "${DENSEGEN_CONFIG_TEMPLATE:-}" ]; then
  CONFIG=${DENSEGEN_CONFIG_TEMPLATE//\{task\}/$TASK}
else
  : "${DENSEGEN_CONFIG:?set DENSEGEN_CONFIG (one config for every task) or DENSEGEN_CONFIG_TEMPLATE (with {task})}"
  CONFIG=$DENSEGEN_CONFIG
fi
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
REPO=$(find_repo) || { echo "densegen-array.sh: cannot find the dnadesign checkout; submit from inside it or set DNADESIGN_REPO (qsub -v DNADESIGN_REPO=... / sbatch --export=ALL,DNADESIGN_REPO=...)" >&2; exit 2; }
UV=$(PATH="$PATH:$HOME/.local/bin:$HOME/.cargo/bin:${SGE_O_PATH:-}" command -v uv) || { echo "densegen-array.sh: uv is not on PATH (install it: pip install uv)" >&2; exit 2; }

# The task is detected from SLURM_ARRAY_* / SGE_TASK_*; `exec` lets the scheduler's signal reach dense.
# shellcheck disable=SC2086
exec "$UV" run --project "$REPO" dense run -c "$CONFIG" $RUN_ARGS
