#!/bin/bash -l
# DenseGen batch job for SGE (qsub) and Slurm (sbatch): each scheduler reads its own header lines
# and treats the other's as comments.
#
#   qsub   -v DENSEGEN_CONFIG=/path/to/workspace/config.yaml jobs/densegen-cpu.sh
#   sbatch --export=ALL,DENSEGEN_CONFIG=/path/to/workspace/config.yaml jobs/densegen-cpu.sh
#   resume and extend:  -v DENSEGEN_CONFIG=...,DENSEGEN_RUN_ARGS='--resume --extend-quota 8 --no-plot'
#
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
cd "${DNADESIGN_REPO:-${SLURM_SUBMIT_DIR:-${SGE_O_WORKDIR:-$PWD}}}"

uv run dense validate-config --probe-solver -c "$DENSEGEN_CONFIG"
# RUN_ARGS is split into words on purpose (e.g. "--resume --extend-quota 8 --no-plot").
# `dense` sizes CP-SAT workers from NSLOTS / SLURM_CPUS_PER_TASK and records job_started/job_finished
# events in the dataset's .events.log, so `notify` can alert on failures.
# shellcheck disable=SC2086
uv run dense run -c "$DENSEGEN_CONFIG" $RUN_ARGS
