#!/usr/bin/env bash
# Runs a study on this machine: one `bambo coordinator` and N `bambo worker`s on loopback.
#
#   cluster/local.sh study.yaml [N]        # N workers (default 2)
#
# The archive and the event log go where the coordinator puts them (beside the study file:
# STUDY.sqlite, STUDY.events.jsonl); an existing archive is resumed. The processes' own output goes to
# one directory, printed at start (default: STUDY-logs/ beside the study file). Ctrl-C or SIGTERM stops
# everything this script started (workers first, then the coordinator; SIGKILL after GRACE seconds).
# Exits with the coordinator's status (0 when the budget is spent), or 130/143 when interrupted.
#
# Settings (environment):
#   BAMBO        the bambo executable (default: the package's debug build, else `bambo` on PATH)
#   LOGS         the log directory (default: beside the study file, STUDY-logs)
#   GPUS         comma-separated accelerators, one per worker in order (worker i gets --gpus of item i)
#   PREFETCH     tasks each worker merges ahead (default 0)
#   HEARTBEAT    the coordinator's heartbeat in seconds (default 1)
#   GRACE        seconds to wait for a clean stop before SIGKILL (default 20)
set -euo pipefail

usage() { echo "usage: $0 study.yaml [workers]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
study=$1
workers=${2:-2}
[ -f "$study" ] || { echo "local: no study file at $study" >&2; exit 2; }
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "local: the number of workers must be a positive integer (got \"$workers\")" >&2; exit 2; }

here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${BAMBO:-}" ]; then
  if [ -x "$here/.build/debug/bambo" ]; then BAMBO="$here/.build/debug/bambo"; else BAMBO=$(command -v bambo || true); fi
fi
if [ -z "$BAMBO" ] || [ ! -x "$BAMBO" ]; then
  echo "local: no bambo executable (build it with 'swift build --product bambo' or set BAMBO)" >&2
  exit 2
fi

study_dir="$(cd "$(dirname "$study")" && pwd)"
study_name="$(basename "${study%.*}")"
study="$study_dir/$(basename "$study")"
LOGS=${LOGS:-$study_dir/$study_name-logs}
mkdir -p "$LOGS"
IFS=, read -r -a gpus <<<"${GPUS:-}"
GRACE=${GRACE:-20}

coordinator_pid=""
worker_pids=()
stopping=""

# stop PIDS...: SIGTERM to each process (it stops its own children cleanly); after GRACE seconds,
# SIGKILL to each one's whole process group (it leads one: see setsid below), leftovers included.
stop() {
  local pid waited=0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((GRACE * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# shellcheck disable=SC2317  # called from the INT/TERM traps
interrupted() {
  local status=$1
  [ -z "$stopping" ] || return 0
  stopping=yes
  echo "local: stopping (workers, then the coordinator)" >&2
  stop "${worker_pids[@]}"
  [ -z "$coordinator_pid" ] || stop "$coordinator_pid"
  exit "$status"
}
trap 'interrupted 130' INT
trap 'interrupted 143' TERM
# Whatever ends this script (an error included) takes its processes with it.
trap '[ -n "$stopping" ] || { stopping=yes; stop "${worker_pids[@]}" ${coordinator_pid:+"$coordinator_pid"}; }' EXIT

# Each child gets its own process group (setsid), so a Ctrl-C on the terminal reaches only this script,
# which stops them in order; the workers stop their own evaluators.
# Emptied here, not by the child's redirection, so the wait below never reads an earlier run's log.
: >"$LOGS/coordinator.log"
setsid "$BAMBO" coordinator --study "$study" --bind 'tcp://127.0.0.1:*' --events 'tcp://127.0.0.1:*' \
  --heartbeat "${HEARTBEAT:-1}" >"$LOGS/coordinator.out" 2>"$LOGS/coordinator.log" &
coordinator_pid=$!

endpoint=""
for _ in $(seq 1 3000); do   # the first start profiles the models: allow 5 minutes
  endpoint=$(grep -o 'listening on tcp://127\.0\.0\.1:[0-9]*' "$LOGS/coordinator.log" | head -n1 | sed 's/^listening on //' || true)
  [ -z "$endpoint" ] || break
  if ! kill -0 "$coordinator_pid" 2>/dev/null; then
    status=0
    wait "$coordinator_pid" || status=$?
    echo "local: the coordinator exited with status $status before listening; its log ($LOGS/coordinator.log):" >&2
    tail -n 20 "$LOGS/coordinator.log" >&2
    coordinator_pid=""
    exit "$status"
  fi
  sleep 0.1
done
[ -n "$endpoint" ] || { echo "local: the coordinator did not start listening (see $LOGS/coordinator.log)" >&2; exit 1; }
events=$(grep -o 'events on tcp://127\.0\.0\.1:[0-9]*' "$LOGS/coordinator.log" | head -n1 | sed 's/^events on //' || true)

for ((i = 0; i < workers; i++)); do
  args=(worker --connect "$endpoint" --name "local-$i" --scratch "${TMPDIR:-/tmp}/bambo-$study_name-local-$i" --prefetch "${PREFETCH:-0}")
  if [ -n "${gpus[$i]:-}" ]; then args+=(--gpus "${gpus[$i]}"); fi
  setsid "$BAMBO" "${args[@]}" >"$LOGS/worker-$i.out" 2>"$LOGS/worker-$i.log" &
  worker_pids+=("$!")
done

echo "local: coordinator on $endpoint${events:+ (events $events)} with $workers worker(s)"
echo "local: logs in $LOGS (coordinator.log, worker-N.log)"
echo "local: archive ${study%.*}.sqlite; watch with: $BAMBO log --follow --file ${study%.*}.events.jsonl"

status=0
wait "$coordinator_pid" || status=$?
coordinator_pid=""
# At the budget the workers got SHUTDOWN and exit by themselves; give them GRACE seconds.
stopping=yes
waited=0
for pid in "${worker_pids[@]}"; do
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((GRACE * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
done
stop "${worker_pids[@]}"
echo "local: the coordinator exited with status $status" >&2
exit "$status"
