#!/bin/bash
# Stop the single-node Slurm that slurm_up.sh started, by PID file only (never by name). Root only.
set -uo pipefail
for f in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"  # slurmctld leaves its pidfile behind
done
exit 0
