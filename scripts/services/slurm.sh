#!/usr/bin/env bash
# A one-node Slurm cluster for the Toil-on-Slurm tests: munge, slurmctld and slurmd on loopback, as root.
# Idempotent; root on Debian 12 (slurm-wlm 22.05). Finished jobs are recorded by the job completion plugin
# (jobcomp/filetxt), which `sacct --completion` reads: accounting without slurmdbd and a database.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
SPOOL=/var/lib/slurm
LOGS=/var/log/slurm
RUN=/run/slurm
JOBCOMP=$LOGS/jobcomp.log

step() { echo "[slurm.sh $(date +%T)] $*"; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
  step "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

start_munge() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && { step "munge already running"; return; }
  step "starting munged"
  # munged refuses to start unless its directories belong to the munge user and are private.
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 0755 /run/munge
  chmod 0700 /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create
  runuser -u munge -- munged
  for _ in $(seq 20); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.5
  done
  echo "munged did not start; see /var/log/munge/munged.log" >&2
  exit 1
}

write_config() {  # prints "changed" when the configuration on disk was replaced
  local node host tmp
  # slurmd -C prints this machine's NodeName line (CPUs, sockets, cores, RealMemory) as slurmd will see it.
  node=$(slurmd -C | head -1)
  host=$(hostname -s)
  tmp=$(mktemp)
  cat >"$tmp" <<EOF
# Written by scripts/services/slurm.sh: one node, controller and node daemon on loopback.
ClusterName=mlmkit
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# No cgroups in containers: processes are tracked by parentage.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
  else
    install -m 0644 "$tmp" "$CONF"
    rm -f "$tmp"
    echo changed
  fi
}

stop_daemon() {  # pidfile: stops a daemon this script started before, when its configuration changed
  local pid
  [ -s "$1" ] || return 0
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
}

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -N -o %T 2>/dev/null | head -1; }

start_slurm() {
  local changed=$1 state
  mkdir -p "$SPOOL/slurmctld" "$SPOOL/slurmd" "$LOGS" "$RUN"
  if [ -n "$changed" ]; then
    stop_daemon "$RUN/slurmd.pid"
    stop_daemon "$RUN/slurmctld.pid"
  fi
  running "$RUN/slurmctld.pid" || { step "starting slurmctld"; slurmctld; }
  running "$RUN/slurmd.pid" || { step "starting slurmd"; slurmd; }
  for _ in $(seq 60); do
    state=$(node_state)
    case "$state" in
      idle*|mixed*|allocated*|completing*) return ;;
      down*|drain*) scontrol update NodeName="$(hostname -s)" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 1
  done
  echo "the Slurm node did not become idle (state: ${state:-none}); last lines of $LOGS:" >&2
  tail -n 10 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2
  exit 1
}

install_packages
start_munge
start_slurm "$(write_config)"
step "ready: $(sinfo -h -N -o '%N %T cpus=%c mem=%mMB') (partition $(sinfo -h -o %P))"
