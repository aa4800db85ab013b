#!/bin/bash -l
# Long-running notify watcher as a batch job (when login-node processes are not allowed).
# The webhook URL is read from the environment variable named in the profile (never put it here).
#
#   qsub   -v NOTIFY_PROFILE=/path/outputs/notify.profile.json,DENSEGEN_WEBHOOK jobs/notify-watch.sh
#   sbatch --export=ALL,NOTIFY_PROFILE=/path/outputs/notify.profile.json jobs/notify-watch.sh
#$ -N notify_watch
#$ -cwd
#$ -j y
#$ -o notify_watch.$JOB_ID.out
#$ -l h_rt=24:00:00
#SBATCH --job-name=notify_watch
#SBATCH --cpus-per-task=1
#SBATCH --time=24:00:00
#SBATCH --output=notify_watch.%j.out
set -euo pipefail
: "${NOTIFY_PROFILE:?set NOTIFY_PROFILE to the notify profile JSON}"
cd "${DNADESIGN_REPO:-${SLURM_SUBMIT_DIR:-${SGE_O_WORKDIR:-$PWD}}}"
uv run notify profile doctor --profile "$NOTIFY_PROFILE"
exec uv run notify usr-events watch --profile "$NOTIFY_PROFILE" --follow --stop-on-terminal-status
