#!/bin/bash
# Bring up a throw-away single-node SLURM cluster (Debian 12, run as root, no systemd).
# Usage: slurm-single-node-start.sh [DIR]      (DIR default: ${TMPDIR:-/tmp}/slurm-single-node)
# Afterwards: export SLURM_CONF=$DIR/slurm.conf  (or rely on the /etc/slurm/slurm.conf link)
set -euo pipefail
DIR=${1:-${TMPDIR:-/tmp}/slurm-single-node}
HOST=$(hostname -s)
CPUS=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc obeys OMP_NUM_THREADS: a test env with 1 would give the node 1 CPU
MEM=$(( $(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo) * 8 / 10 ))

# 1. packages (policy-rc.d / no systemd: postinst does not start anything)
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
fi

mkdir -p "$DIR"/state "$DIR"/spool "$DIR"/log
rm -f "$DIR"/munged.pid

# 2. munge: key is created by the package postinst; create it if missing
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged          # forks; pid in /run/munge/munged.pid
  for i in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$DIR"/munged.pid   # remember: we started this munged
fi

# 3. config
cat > "$DIR"/slurm.conf <<EOF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$DIR/slurm.conf
# let plain `sbatch` (no SLURM_CONF in env) find it too, unless a real config exists
[ -e /etc/slurm/slurm.conf ] || { mkdir -p /etc/slurm; ln -sfn "$DIR"/slurm.conf /etc/slurm/slurm.conf; }  # -e is false for a dangling link

# 4. daemons (both fork and write their pid files)
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"

# 5. wait until the node is idle
for i in $(seq 120); do
  [ "$(sinfo -h -n "$HOST" -o %t 2>/dev/null)" = idle ] && { echo "slurm up: $HOST idle (SLURM_CONF=$SLURM_CONF)"; exit 0; }
  sleep 0.5
done
echo "slurm did not come up; see $DIR/log" >&2; sinfo -R >&2 || true; exit 1
