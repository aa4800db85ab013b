#!/bin/bash
# Start a single-node Son of Grid Engine (qmaster + execd) for tests. Root only; safe to rerun.
# Needs Debian's gridengine-master gridengine-exec gridengine-client (see .ci/run for the debconf answers).
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
command -v sge_qmaster >/dev/null || { echo "gridengine is not installed" >&2; exit 2; }
H=$(hostname -s)
getent hosts "$H" >/dev/null || echo "127.0.0.1 $H" >> /etc/hosts
# up means a queue instance with no state flags: a dead execd leaves the queue listed, in state "au"
if pgrep -x sge_execd >/dev/null && qstat -f 2>/dev/null | grep -q "all.q@$H .*lx-amd64 *$"; then exit 0; fi
# 127.0.0.1 reverse-resolves to "localhost": tell SGE that is this host, or clients are refused.
echo "$H localhost" > "$SGE_ROOT/$SGE_CELL/common/host_aliases"
install -d -o sgeadmin -g sgeadmin /var/run/gridengine
pgrep -x sge_qmaster >/dev/null || /usr/sbin/sge_qmaster
for _ in $(seq 1 100); do qstat >/dev/null 2>&1 && break; sleep 0.1; done
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# fast scheduling and accounting for tests; root may submit jobs
qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
  -e 's/^flush_submit_sec .*/flush_submit_sec 1/' -e 's/^flush_finish_sec .*/flush_finish_sec 1/' \
  -e 's/^job_load_adjustments .*/job_load_adjustments NONE/' \
  -e 's/^load_adjustment_decay_time .*/load_adjustment_decay_time 0:0:0/' > "$W/sconf"
qconf -Msconf "$W/sconf" >/dev/null
qconf -sconf global | sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
  -e 's/flush_time=00:00:15/flush_time=00:00:01/' > "$W/global"
qconf -Mconf "$W/global" >/dev/null
qconf -sh 2>/dev/null | grep -qx "$H" || qconf -ah "$H" >/dev/null
qconf -as "$H" >/dev/null 2>&1 || true
if ! qconf -se "$H" >/dev/null 2>&1; then
  printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$H" > "$W/eh"
  qconf -Ae "$W/eh" >/dev/null
fi
if ! qconf -shgrp @allhosts >/dev/null 2>&1; then
  printf 'group_name @allhosts\nhostlist %s\n' "$H" > "$W/hg"
  qconf -Ahgrp "$W/hg" >/dev/null
fi
for pe in smp omp; do
  if ! qconf -sp "$pe" >/dev/null 2>&1; then
    printf 'pe_name %s\nslots 999\nuser_lists NONE\nxuser_lists NONE\nstart_proc_args NONE\nstop_proc_args NONE\nallocation_rule $pe_slots\ncontrol_slaves FALSE\njob_is_first_task TRUE\nurgency_slots min\naccounting_summary FALSE\nqsort_args NONE\n' "$pe" > "$W/pe"
    qconf -Ap "$W/pe" >/dev/null
  fi
done
if ! qconf -sq all.q >/dev/null 2>&1; then
  cat > "$W/qed" <<QED
#!/bin/sh
sed -i -e 's/^pe_list .*/pe_list smp omp/' -e 's/^hostlist .*/hostlist @allhosts/' -e 's/^slots .*/slots ${TEST_SGE_SLOTS:-8}/' \
  -e 's/^shell .*/shell \/bin\/bash/' -e 's/^load_thresholds .*/load_thresholds NONE/' "\$1"
QED
  chmod +x "$W/qed"
  EDITOR="$W/qed" qconf -aq all.q >/dev/null
fi
# jobs inherit execd's environment: start it clean
pgrep -x sge_execd >/dev/null || env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL /usr/sbin/sge_execd
for _ in $(seq 1 150); do
  qstat -f 2>/dev/null | grep -q "all.q@$H .*lx-amd64 *$" && exit 0
  sleep 0.2
done
echo "SGE execd did not come up" >&2
exit 1
