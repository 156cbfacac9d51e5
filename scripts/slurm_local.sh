#!/usr/bin/env bash
# A one-node Slurm on this machine, for trying docs/cluster/ and for
# tests/slurm.rs: `up` starts munged (unless one already answers),
# slurmctld and slurmd as root, from a slurm.conf in a folder of its own;
# `down` stops what `up` started and removes that folder.
#
#   sudo bash scripts/slurm_local.sh up      # prints the SLURM_CONF to export
#   export SLURM_CONF=/tmp/binclass-slurm/slurm.conf
#   sbatch --wrap hostname; squeue
#   sudo bash scripts/slurm_local.sh down
#
# BINCLASS_SLURM_DIR moves the folder (default /tmp/binclass-slurm). Debian's
# slurm-wlm and munge are installed with apt-get when missing. Nothing here
# needs systemd or cgroups: the container this was written in has neither.
set -euo pipefail

DIR=${BINCLASS_SLURM_DIR:-/tmp/binclass-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF
PATH=$PATH:/usr/sbin:/sbin # the daemons live in sbin, often not on a user's PATH

say() { printf 'slurm_local: %s\n' "$*"; }
fail() {
    printf 'slurm_local: %s\n' "$*" >&2
    exit 1
}

# A pid file's process, if it is still alive.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# TERM, then KILL after 10 s: a daemon that ignores TERM must not keep the
# ports (6817, 6818) from the next `up`.
stop() {
    local pidfile=$1 pid
    alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

munge_answers() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

node_state() { sinfo -h -n "$HOST" -o %t 2>/dev/null || true; }

down() {
    if [ ! -d "$DIR" ]; then
        say "not up (no $DIR)"
        return 0
    fi
    # Jobs still running would outlive slurmd as orphaned slurmstepds.
    if alive "$DIR/slurmctld.pid"; then
        scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        sleep 1
    fi
    stop "$DIR/slurmd.pid"
    stop "$DIR/slurmctld.pid"
    # Only a munged that `up` started: one that answered before is not ours.
    stop "$DIR/munged.pid"
    rm -rf "$DIR"
    say "down"
}

install_if_missing() {
    local missing=()
    for cmd in slurmctld slurmd sbatch munged; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    [ ${#missing[@]} = 0 ] && return 0
    command -v apt-get >/dev/null ||
        fail "${missing[*]} not installed, and no apt-get to install slurm-wlm and munge"
    say "installing slurm-wlm and munge (${missing[*]} missing)"
    # A fresh image has no package lists: update once, only when needed.
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q slurm-wlm munge >/dev/null; } ||
        fail "apt-get install slurm-wlm munge failed"
}

start_munge() {
    if munge_answers; then
        return 0
    fi
    # Debian's package makes the key at install time; an image built
    # without running postinst scripts may have none.
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 600 /etc/munge/munge.key
    fi
    # munged refuses to run as root; its folders are the package's, which a
    # tmpfs /run loses at every boot.
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid 9>&- ||
        fail "munged did not start (see /var/log/munge/munged.log)"
    cp /run/munge/munged.pid "$DIR/munged.pid"
    for _ in $(seq 50); do
        munge_answers && return 0
        sleep 0.1
    done
    fail "munged started but does not answer (see /var/log/munge/munged.log)"
}

write_conf() {
    local cpus mem
    cpus=$(nproc)
    # Slurm drains a node that claims more memory than it has: take what
    # the kernel reports, in MiB, less a little for the daemons.
    mem=$(awk '/^MemTotal:/ { print int($2 / 1024) - 256 }' /proc/meminfo)
    mkdir -p "$DIR/state" "$DIR/spool"
    cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a one-node cluster, no cgroups, no
# systemd, no accounting database.
ClusterName=binclass
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# A job whose dependency failed is cancelled, not left pending forever.
DependencyParameters=kill_invalid_depend
# Finished jobs stay visible to scontrol for 10 minutes: without accounting,
# that is the only place their exit state can be read.
MinJobAge=600
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    say "$CONF: node $HOST, $cpus CPUs, $mem MiB"
}

up() {
    if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && [ -n "$(node_state)" ]; then
        say "already up: export SLURM_CONF=$CONF"
        return 0
    fi
    # Whatever a failed or killed `up` left behind goes first.
    if [ -d "$DIR" ]; then down >/dev/null; fi
    install_if_missing
    mkdir -p "$DIR"
    write_conf
    start_munge
    # -c: a cold start, no state from an earlier cluster in this folder. Each
    # daemon is started without the lock's descriptor (9): a daemon holding
    # it would block every later `up` and `down`.
    slurmctld -c 9>&- || fail "slurmctld did not start (see $DIR/slurmctld.log)"
    slurmd 9>&- || fail "slurmd did not start (see $DIR/slurmd.log)"
    local state=
    for _ in $(seq 60); do
        state=$(node_state)
        case $state in
        idle* | mix* | alloc*)
            say "up: export SLURM_CONF=$CONF"
            return 0
            ;;
        esac
        sleep 1
    done
    fail "node $HOST not idle after 60 s (state '${state:-none}'; see $DIR/slurmctld.log and $DIR/slurmd.log)"
}

HOST=$(hostname -s)
case ${1:-} in
up | down) ;;
*)
    printf 'usage: slurm_local.sh up|down\n' >&2
    exit 2
    ;;
esac
[ "$(id -u)" = 0 ] || fail "must run as root: slurmctld, slurmd and munged run as root"
command -v flock >/dev/null || fail "flock (util-linux) is missing"
# Two `up`s at once (CI and a user, two shells) would start the daemons
# twice: one at a time.
exec 9>"$DIR.lock"
flock 9
case $1 in
up) up ;;
down) down ;;
esac
