#!/usr/bin/env bash
# Runs coordinator.sbatch and workers.sbatch as Slurm would, without Slurm: inside a fresh network
# namespace (only its own loopback: the recipes bind tcp://*:5555), with the Slurm variables a job gets
# (SLURM_JOB_ID, CUDA_VISIBLE_DEVICES for 2 "GPUs") and only the variables the recipes tell users to
# edit (BAMBO, SHARED, STUDY, ADVERTISE, SCRATCH). Checks that the study finishes with its budget.
# Usage: cluster/slurm/smoke-test.sh [path/to/bambo]   (default .build/debug/bambo; root for the namespace,
# else SKIPPED, a failure under CI=true)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bambo=$(realpath "${1:-.build/debug/bambo}")
skip() {
  if [ "${CI:-}" = true ]; then echo "slurm-smoke: FAIL: cannot run under CI=true: $1" >&2; exit 1; fi
  echo "slurm-smoke: SKIPPED: $1"
  exit 0
}
[ "$(id -u)" -eq 0 ] || skip "not root (needs a network namespace)"
[ -x "$bambo" ] || { echo "slurm-smoke: no bambo executable at $bambo" >&2; exit 1; }
ns="bambo-slurm-$$"
ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
work=$(mktemp -d "${TMPDIR:-/tmp}/bambo-slurm.XXXXXX")
cleanup() {
  local status=$?
  set +e
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$ns"
  if [ "$status" -ne 0 ]; then tail -n 20 "$work"/*.out "$work"/shared/run/*.log >&2 2>/dev/null; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ip -n "$ns" link set lo up

# shellcheck source=cluster/lib/synthetic-study.sh
source "$here/../lib/synthetic-study.sh"
synthetic_study "$work/shared" "$bambo" slurm-smoke 2 \
  'assert os.environ.get("CUDA_VISIBLE_DEVICES") in ("0", "1"), os.environ.get("CUDA_VISIBLE_DEVICES")'
cd "$work"
common=(env BAMBO="$bambo" SHARED="$work/shared" ADVERTISE=127.0.0.1)
ip netns exec "$ns" "${common[@]}" STUDY="$work/shared/study.yaml" SLURM_JOB_ID=101 \
  bash "$here/coordinator.sbatch" >coordinator.out 2>&1 &
coordinator=$!
ip netns exec "$ns" "${common[@]}" SLURM_JOB_ID=102 CUDA_VISIBLE_DEVICES=0,1 SCRATCH="$work/scratch" \
  bash "$here/workers.sbatch" >workers.out 2>&1 &
workers=$!
status=0
timeout 240 tail --pid="$coordinator" -f /dev/null || { echo "slurm-smoke: FAIL: the coordinator job did not finish in 240 s" >&2; exit 1; }
wait "$coordinator" || status=$?
[ "$status" -eq 0 ] || { echo "slurm-smoke: FAIL: coordinator.sbatch exited with $status" >&2; exit 1; }
timeout 60 tail --pid="$workers" -f /dev/null || { echo "slurm-smoke: FAIL: the worker job did not exit after the study" >&2; exit 1; }
wait "$workers" || status=$?
[ "$status" -eq 0 ] || { echo "slurm-smoke: FAIL: workers.sbatch exited with $status" >&2; exit 1; }
completed=$(sqlite3 shared/study.sqlite "SELECT COUNT(*) FROM trial WHERE state = 'completed'")
workers_seen=$(sqlite3 shared/study.sqlite "SELECT group_concat(name) FROM (SELECT name FROM worker ORDER BY name)")
[ "$completed" -eq 8 ] || { echo "slurm-smoke: FAIL: $completed of 8 trials completed" >&2; exit 1; }
host=$(hostname -s)
[ "$workers_seen" = "$host-gpu0,$host-gpu1" ] || { echo "slurm-smoke: FAIL: workers $workers_seen, expected $host-gpu0,$host-gpu1" >&2; exit 1; }
[ ! -e shared/run/coordinator.env ] || { echo "slurm-smoke: FAIL: coordinator.env left behind" >&2; exit 1; }
echo "slurm-smoke: coordinator.sbatch + workers.sbatch (2 GPUs): 8/8 trials completed by $workers_seen"
