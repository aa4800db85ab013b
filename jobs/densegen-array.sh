#!/bin/bash -l
# DenseGen array job: task N runs the workspace whose config path is DENSEGEN_CONFIG_TEMPLATE with
# {task} replaced by N. Each task should write its own dataset (or its own workspace); several tasks
# appending to one USR dataset is also safe (the dataset lock serialises the commits).
#
#   qsub   -t 1-16 -v DENSEGEN_CONFIG_TEMPLATE='/project/me/runs/task_{task}/config.yaml' jobs/densegen-array.sh
#   sbatch --array=1-16 --export=ALL,DENSEGEN_CONFIG_TEMPLATE='/project/me/runs/task_{task}/config.yaml' jobs/densegen-array.sh
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
set -euo pipefail
: "${DENSEGEN_CONFIG_TEMPLATE:?set DENSEGEN_CONFIG_TEMPLATE, e.g. runs/task_{task}/config.yaml}"
TASK=${SLURM_ARRAY_TASK_ID:-${SGE_TASK_ID:-}}
if [ -z "$TASK" ] || [ "$TASK" = "undefined" ]; then
  echo "densegen-array.sh: not an array task (submit with sbatch --array or qsub -t)" >&2
  exit 2
fi
CONFIG=${DENSEGEN_CONFIG_TEMPLATE//\{task\}/$TASK}
RUN_ARGS=${DENSEGEN_RUN_ARGS:---no-plot}
cd "${DNADESIGN_REPO:-${SLURM_SUBMIT_DIR:-${SGE_O_WORKDIR:-$PWD}}}"

uv run dense validate-config --probe-solver -c "$CONFIG"
# shellcheck disable=SC2086
uv run dense run -c "$CONFIG" $RUN_ARGS
