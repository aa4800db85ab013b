#!/bin/bash
# Stop the single-node SGE that sge_up.sh started (execd, then qmaster), by PID file only. Root only.
set -uo pipefail
for f in /var/spool/gridengine/execd/*/execd.pid /var/spool/gridengine/qmaster/qmaster.pid; do
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
done
exit 0
