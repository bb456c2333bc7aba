#!/usr/bin/env bash
# Tests cluster/local.sh on a small synthesized study: a run to the budget (exit 0), a run stopped with
# SIGTERM mid-study (exit 143, every process it started gone, the archive consistent), and a resumed
# run that completes the rest. No root needed; loopback only.
# Usage: cluster/test-local.sh [path/to/bambo]   (default .build/debug/bambo)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bambo=$(realpath "${1:-.build/debug/bambo}")
[ -x "$bambo" ] || { echo "local-test: no bambo executable at $bambo" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bambo-local-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work"   # local.sh puts the workers' scratch directories there
fail() { echo "local-test: FAIL: $*" >&2; tail -n 15 "$work"/*/study-logs/*.log >&2 2>/dev/null; exit 1; }
# shellcheck source=cluster/lib/synthetic-study.sh
source "$here/lib/synthetic-study.sh"
make_study() { EVAL_SECONDS=1 synthetic_study "$1" "$bambo" local-test 4 || fail "bambo synthesize failed"; }
count() { sqlite3 -cmd '.timeout 5000' "$1/study.sqlite" "SELECT COUNT(*) FROM trial WHERE state = '$2'"; }
# Processes of a run, found by the study's directory or the coordinator's endpoint on their command
# lines (the coordinator, its workers, their evaluators): to check, never to kill.
running() { pgrep -f -- "$1/|$2( |$)" || true; }

# 1. To the budget.
make_study "$work/a"
status=0
BAMBO="$bambo" timeout 300 bash "$here/local.sh" "$work/a/study.yaml" 2 >"$work/a.out" 2>&1 || status=$?
[ "$status" -eq 0 ] || fail "local.sh exited with $status on a study that should finish"
[ "$(count "$work/a" completed)" -eq 12 ] || fail "$(count "$work/a" completed) of 12 trials completed"
grep -q "logs in $work/a/study-logs" "$work/a.out" || fail "local.sh did not print its log directory"
for log in coordinator worker-0 worker-1; do [ -s "$work/a/study-logs/$log.log" ] || fail "no $log.log in $work/a/study-logs"; done

# 2. SIGTERM mid-study, then 3. resume (same log directory: an earlier run's log must not mislead it).
make_study "$work/b"
BAMBO="$bambo" bash "$here/local.sh" "$work/b/study.yaml" 3 >"$work/b.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -f "$work/b/study.sqlite" ] && [ "$(count "$work/b" completed 2>/dev/null || echo 0)" -ge 2 ] && break
  sleep 0.1
done
[ "$(count "$work/b" completed)" -ge 2 ] || fail "the second study made no progress"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 143 ] || fail "local.sh exited with $status after SIGTERM, expected 143"
endpoint=$(grep -o 'tcp://127\.0\.0\.1:[0-9]*' "$work/b.out" | head -n1)
[ -n "$endpoint" ] || fail "local.sh did not print the coordinator's endpoint"
left=$(running "$work/b" "$endpoint")
[ -z "$left" ] || fail "processes left after SIGTERM: $left"
done_before=$(count "$work/b" completed)
[ "$done_before" -lt 12 ] || fail "the study finished before SIGTERM"
[ "$(sqlite3 "$work/b/study.sqlite" "SELECT COUNT(*) FROM attempt WHERE state = 'dispatched'")" -eq 0 ] ||
  fail "attempts still dispatched after a clean stop (workers did not hand them back)"
status=0
BAMBO="$bambo" timeout 300 bash "$here/local.sh" "$work/b/study.yaml" 2 >"$work/b2.out" 2>&1 || status=$?
[ "$status" -eq 0 ] || fail "the resumed run exited with $status"
grep -q "resuming:" "$work/b/study-logs/coordinator.log" || fail "the second run did not resume"
[ "$(count "$work/b" completed)" -eq 12 ] || fail "$(count "$work/b" completed) of 12 trials after resuming"
echo "local-test: local.sh ran a study to its budget, stopped on SIGTERM at $done_before/12 (exit 143, nothing left running) and resumed to 12/12"
