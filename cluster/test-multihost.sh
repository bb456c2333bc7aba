#!/usr/bin/env bash
# Multi-host test: a study across separate network hosts, with faults injected mid-run.
#
# Builds a private network out of Linux network namespaces (all named bmh<PID>-*): a switch namespace
# holding a bridge, and five hosts joined to it by veth pairs: the coordinator (head, 10.77.0.1), three
# workers (w1-w3, 10.77.0.11-13) and an intruder (10.77.0.66). The 10.77.0.0/24 addresses exist only
# inside these namespaces; nothing is added to the machine's own network. It runs a small study
# (synthesized models, the `exec` evaluator with a deterministic script that sleeps a little) with CURVE
# and an allow-list, and checks from the SQLite archive that:
#   (a) when w1's link goes down for longer than the lease, its trial expires, is requeued and is
#       completed by another worker; when the link comes back, w1 rejoins and completes a trial again;
#   (b) when the coordinator is killed with SIGKILL and restarted with --archive, the study completes
#       with exactly the planned number of completed trials and no duplicate result;
#   (c) the intruder, whose key is not on the allow-list, is refused: the coordinator logs it, and it
#       never appears in the worker table nor gets a task.
# Also: `bambo log --follow --connect` from a worker host receives the event stream through CURVE.
#
# Usage: cluster/test-multihost.sh [path/to/bambo]   (or BAMBO_BIN=path; default .build/debug/bambo)
# Needs root, iproute2 (`ip netns`), sqlite3 and python3. If namespaces cannot be created it prints
# "SKIPPED" with the reason and exits 0, except with CI=true, where that is a failure.
# Every namespace (with its veths and bridge), process and file it made is removed on exit, also on
# failure or Ctrl-C (KEEP=1 keeps the work directory for inspection). Exits 1 on any violation.
set -euo pipefail

BAMBO=${1:-${BAMBO_BIN:-.build/debug/bambo}}
HEARTBEAT=${HEARTBEAT:-1}          # seconds; the lease is 3 heartbeats
EVAL_SECONDS=${EVAL_SECONDS:-1.5}  # how long the evaluator sleeps per trial
INITIAL=6 ITERATIONS=10 BATCH=3    # budget: 36 trials
BUDGET=$((INITIAL + ITERATIONS * BATCH))
NET=10.77.0
PREFIX="bmh$$"
SECONDS=0

say() { echo "multihost: $*"; }
fail() { echo "multihost: FAIL: $*" >&2; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then
    fail "cannot run under CI=true: $1"
  fi
  echo "multihost: SKIPPED: $1 (the multi-host test did not run)"
  exit 0
}

# ---- preconditions -------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need CAP_NET_ADMIN)"
command -v ip >/dev/null 2>&1 || skip "no 'ip' command (install iproute2)"
probe="${PREFIX}-probe"
if ! probe_error=$(ip netns add "$probe" 2>&1); then
  skip "cannot create a network namespace: $probe_error"
fi
ip netns del "$probe"
command -v sqlite3 >/dev/null 2>&1 || fail "sqlite3 is not installed (cluster/bootstrap.sh installs it)"
[ -x "$BAMBO" ] || fail "no bambo executable at $BAMBO (build it: swift build --product bambo; or pass its path)"
BAMBO=$(cd "$(dirname "$BAMBO")" && pwd)/$(basename "$BAMBO")
# The real interpreter, not a shim: the evaluator starts once per trial.
PYTHON=$(python3 -c 'import sys; print(sys.executable)') || fail "python3 is not installed"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bambo-multihost.XXXXXX")
ARCHIVE="$WORK/study.sqlite"
NAMESPACES=()
PIDS=()

cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM
  # Every process this script started runs in one of its namespaces (evaluators of killed workers too).
  for ns in "${NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  local left
  left=$(ip netns list 2>/dev/null | grep -c "^${PREFIX}-")
  [ "$left" -eq 0 ] || { echo "multihost: FAIL: $left namespace(s) ${PREFIX}-* could not be removed" >&2; status=1; }
  if [ "$status" -ne 0 ]; then
    for log in "$WORK"/*.log; do
      [ -f "$log" ] || continue
      echo "---- last lines of $(basename "$log") ----" >&2
      tail -n 25 "$log" >&2
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the network ---------------------------------------------------------------------------------
SWITCH="${PREFIX}-sw"
declare -A ADDRESS=([head]="$NET.1" [w1]="$NET.11" [w2]="$NET.12" [w3]="$NET.13" [intruder]="$NET.66")
HEAD="$NET.1"
ns() { echo "${PREFIX}-$1"; }

NAMESPACES+=("$SWITCH")
ip netns add "$SWITCH"
ip -n "$SWITCH" link add br0 type bridge
ip -n "$SWITCH" link set br0 up
for host in head w1 w2 w3 intruder; do
  NAMESPACES+=("$(ns "$host")")
  ip netns add "$(ns "$host")"
  ip -n "$(ns "$host")" link set lo up
  # The switch port is named after the host; the host's end is eth0.
  ip -n "$SWITCH" link add "$host" type veth peer name eth0 netns "$(ns "$host")"
  ip -n "$SWITCH" link set "$host" master br0 up
  ip -n "$(ns "$host")" addr add "${ADDRESS[$host]}/24" dev eth0
  ip -n "$(ns "$host")" link set eth0 up
done
say "network: bridge in $SWITCH; head $HEAD, workers $NET.11-13, intruder $NET.66"

# ---- the study -----------------------------------------------------------------------------------
cd "$WORK"
"$BAMBO" synthesize --out ckpt --layers 4 --hidden 64 >synthesize.log 2>&1 || fail "bambo synthesize failed (synthesize.log)"
mkdir -p keys allowed
for key in server w1 w2 w3 operator intruder; do
  "$BAMBO" keygen --out "keys/$key.key" >/dev/null 2>>keygen.log || fail "bambo keygen failed for $key"
done
for key in w1 w2 w3 operator; do cp "keys/$key.key.pub" allowed/; done   # not the intruder
cat >eval.py <<EOF
import json, os, time
w = json.loads(os.environ["BAMBO_WEIGHTS"])
assert os.path.isfile(os.path.join(os.environ["BAMBO_MODEL_DIR"], "config.json"))
time.sleep($EVAL_SECONDS)
m = sum(w) / len(w)
late = sum(w[len(w) // 2:]) / len(w[len(w) // 2:])
print(json.dumps({"benchmarks": {"arith": {"accuracy": 0.4 + 0.5 * late ** 0.5, "tokens": 5 + 40 * m * m}}}))
EOF
cat >study.yaml <<EOF
study: multihost
models:
  - {name: instruct, path: ckpt/instruct}
  - {name: thinking, path: ckpt/thinking}
partition: {blocks: 2, lambda: 1.0, norm: l2, strategy: hybrid}
merge: {method: linear, dtype: bfloat16}
evaluator: {kind: exec, command: ["$PYTHON", "$WORK/eval.py"], timeout: 120}
objectives:
  - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
  - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
optimizer: {initial: $INITIAL, iterations: $ITERATIONS, batch: $BATCH, acquisition: sobol, seed: 0}
EOF

q() { sqlite3 -cmd '.timeout 10000' "$ARCHIVE" "$1"; }
now() { date +%s.%N; }
# wait_for WHAT SECONDS COMMAND...: polls COMMAND every half second; fails naming WHAT on timeout.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after $limit s waiting for: $what"
    sleep 0.5
  done
}
alive() { kill -0 "$1" 2>/dev/null; }

COORDINATOR_PID=""
start_coordinator() {  # start_coordinator LOG [--study FILE]
  local log=$1
  shift
  ip netns exec "$(ns head)" "$BAMBO" coordinator --archive "$ARCHIVE" "$@" \
    --bind "tcp://$HEAD:5555" --events "tcp://$HEAD:5556" --heartbeat "$HEARTBEAT" \
    --curve-secret keys/server.key --allow-keys allowed >/dev/null 2>"$log" &
  COORDINATOR_PID=$!
  PIDS+=("$COORDINATOR_PID")
  : >"$log"
  listening() { grep -q "listening on tcp://$HEAD:5555" "$log" || { alive "$COORDINATOR_PID" || fail "the coordinator exited at start ($log)"; false; }; }
  wait_for "the coordinator to listen ($log)" 180 listening
}
declare -A WORKER_PID=()
start_worker() {  # start_worker NAME
  ip netns exec "$(ns "$1")" "$BAMBO" worker --connect "tcp://$HEAD:5555" --name "$1" --scratch "$WORK/scratch-$1" \
    --curve-server-key keys/server.key.pub --curve-secret "keys/$1.key" >/dev/null 2>"$1.log" &
  WORKER_PID[$1]=$!
  PIDS+=("$!")
}

start_coordinator coordinator-1.log --study study.yaml
for worker in w1 w2 w3 intruder; do start_worker "$worker"; done
ip netns exec "$(ns w2)" "$BAMBO" log --follow --connect "tcp://$HEAD:5556" \
  --curve-server-key keys/server.key.pub --curve-secret keys/operator.key >follow.out 2>follow.log &
PIDS+=("$!")
say "coordinator and workers w1 w2 w3 intruder started; budget $BUDGET trials, lease $((HEARTBEAT * 3)) s"
all_joined() { [ "$(q "SELECT COUNT(*) FROM worker WHERE state = 'alive' AND name IN ('w1', 'w2', 'w3')")" -eq 3 ]; }
wait_for "w1, w2 and w3 to join" 120 all_joined

# During (a) the study must still be running: a coordinator that exited is a failure, not a wait.
coordinator_up() { alive "$COORDINATOR_PID" || fail "the coordinator exited during (a) (see coordinator-1.log)"; }

# ---- (a) a worker host's link goes down for longer than the lease ---------------------------------
victim_attempt() { coordinator_up; VICTIM=$(q "SELECT trial || ' ' || number FROM attempt WHERE worker = 'w1' AND state = 'dispatched' ORDER BY trial LIMIT 1"); [ -n "$VICTIM" ]; }
wait_for "w1 to hold a trial" 120 victim_attempt
read -r TRIAL ATTEMPT <<<"$VICTIM"
sleep 0.5   # inside its merge or evaluation
ip -n "$SWITCH" link set w1 down
DOWN_AT=$SECONDS
say "(a) w1's link is down while it holds trial $TRIAL (attempt $ATTEMPT)"
expired() { coordinator_up; [ "$(q "SELECT state FROM attempt WHERE trial = $TRIAL AND number = $ATTEMPT")" = expired ]; }
wait_for "the coordinator to expire trial $TRIAL attempt $ATTEMPT of w1" 90 expired
[ "$(q "SELECT state FROM worker WHERE name = 'w1'")" = lost ] || fail "(a) w1 is not marked lost after its lease"
sleep 2
ip -n "$SWITCH" link set w1 up
LINK_UP=$(now)
say "(a) trial $TRIAL expired; w1's link is up again after $((SECONDS - DOWN_AT)) s down"
finished_elsewhere() { coordinator_up; FINISHER=$(q "SELECT worker FROM attempt WHERE trial = $TRIAL AND state = 'completed'"); [ -n "$FINISHER" ]; }
wait_for "trial $TRIAL to be completed after its requeue" 180 finished_elsewhere
[ "$FINISHER" != w1 ] || fail "(a) trial $TRIAL was completed by w1 itself, not by another worker"
rejoined() { coordinator_up; [ "$(q "SELECT COUNT(*) FROM attempt WHERE worker = 'w1' AND state = 'completed' AND dispatched > $LINK_UP")" -ge 1 ]; }
wait_for "w1 to rejoin and complete a trial after its link came back" 180 rejoined
say "(a) ok: trial $TRIAL requeued and completed by $FINISHER; w1 rejoined and completed a trial"

# ---- (b) the coordinator is killed with SIGKILL and restarted -------------------------------------
done_before=$(q "SELECT COUNT(*) FROM trial WHERE state = 'completed'")
[ "$done_before" -lt "$BUDGET" ] || fail "(b) the study finished before the coordinator could be killed (raise ITERATIONS)"
some_dispatched() { [ "$(q "SELECT COUNT(*) FROM attempt WHERE state = 'dispatched'")" -ge 1 ]; }
wait_for "a dispatched trial before the coordinator kill" 60 some_dispatched
kill -KILL "$COORDINATOR_PID"
wait "$COORDINATOR_PID" 2>/dev/null || true
say "(b) coordinator killed with SIGKILL ($done_before of $BUDGET trials completed)"
sleep 2
RESTART=$(now)
start_coordinator coordinator-2.log
grep -q "resuming:" coordinator-2.log || fail "(b) the restarted coordinator did not say it resumed (coordinator-2.log)"
coordinator_done() { ! alive "$COORDINATOR_PID"; }
wait_for "the study to finish after the restart" 300 coordinator_done
status=0
wait "$COORDINATOR_PID" || status=$?
[ "$status" -eq 0 ] || fail "(b) the restarted coordinator exited with status $status"
for worker in w1 w2 w3; do
  worker_done() { ! alive "${WORKER_PID[$worker]}"; }
  wait_for "worker $worker to exit after SHUTDOWN" 60 worker_done
  status=0
  wait "${WORKER_PID[$worker]}" || status=$?
  [ "$status" -eq 0 ] || fail "worker $worker exited with status $status"
done

# ---- checks on the archive -----------------------------------------------------------------------
violations=()
check() {  # check WHAT ACTUAL EXPECTED
  if [ "$2" != "$3" ]; then violations+=("$1: got $2, expected $3"); fi
}
check "(b) study state" "$(q "SELECT state FROM study")" finished
check "(b) trials in the archive" "$(q "SELECT COUNT(*) FROM trial")" "$BUDGET"
check "(b) completed trials" "$(q "SELECT COUNT(*) FROM trial WHERE state = 'completed'")" "$BUDGET"
check "(b) results" "$(q "SELECT COUNT(*) FROM result")" "$BUDGET"
check "(b) trials with a result" "$(q "SELECT COUNT(DISTINCT trial) FROM result")" "$BUDGET"
check "(b) completed attempts" "$(q "SELECT COUNT(*) FROM attempt WHERE state = 'completed'")" "$BUDGET"
check "(b) trial.completed events" "$(q "SELECT COUNT(*) FROM event WHERE kind = 'trial.completed'")" "$BUDGET"
check "(b) trials with a trial.completed event" \
  "$(q "SELECT COUNT(DISTINCT json_extract(data, '$.trial')) FROM event WHERE kind = 'trial.completed'")" "$BUDGET"
check "(b) trial.completed lines in study.events.jsonl" "$(grep -c '"trial.completed"' study.events.jsonl)" "$BUDGET"
check "(b) results received after the restart > 0" "$(q "SELECT COUNT(*) > 0 FROM result WHERE received > $RESTART")" 1
check "(a) expired attempts of trial $TRIAL by w1" \
  "$(q "SELECT COUNT(*) FROM attempt WHERE trial = $TRIAL AND worker = 'w1' AND state = 'expired'")" 1
check "(a) w1 joined again (worker.joined events > 1)" \
  "$(q "SELECT COUNT(*) > 1 FROM event WHERE kind = 'worker.joined' AND json_extract(data, '$.worker') = 'w1'")" 1
check "(c) intruder in the worker table" "$(q "SELECT COUNT(*) FROM worker WHERE name = 'intruder'")" 0
check "(c) attempts given to the intruder" "$(q "SELECT COUNT(*) FROM attempt WHERE worker = 'intruder'")" 0
check "(c) worker.refused events from $NET.66 > 0" \
  "$(q "SELECT COUNT(*) > 0 FROM event WHERE kind = 'worker.refused' AND json_extract(data, '$.address') = '$NET.66'")" 1
check "(c) refusal lines in the coordinator logs > 0" \
  "$(cat coordinator-1.log coordinator-2.log | grep -c "refused a CURVE connection from $NET.66" | sed 's/^[1-9][0-9]*$/yes/')" yes
check "workers in the worker table" "$(q "SELECT group_concat(name) FROM (SELECT name FROM worker ORDER BY name)")" "w1,w2,w3"
check "the intruder is still trying (not admitted, not shut down)" "$(alive "${WORKER_PID[intruder]}" && echo running)" running
check "completions seen by bambo log --connect on w2 > 0" "$(grep -c ' completed by ' follow.out | sed 's/^[1-9][0-9]*$/yes/')" yes
exported=$("$BAMBO" export --archive "$ARCHIVE" --format json)
check "trials in bambo export" "$(printf '%s' "$exported" | "$PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)["trials"]))')" "$BUDGET"

if [ ${#violations[@]} -gt 0 ]; then
  for violation in "${violations[@]}"; do echo "multihost: VIOLATION: $violation" >&2; done
  fail "${#violations[@]} violation(s)"
fi
expired_total=$(q "SELECT COUNT(*) FROM attempt WHERE state = 'expired'")
refusals=$(q "SELECT COUNT(*) FROM event WHERE kind = 'worker.refused'")
say "PASSED in $SECONDS s: $BUDGET/$BUDGET trials completed exactly once across 3 worker hosts;" \
  "(a) trial $TRIAL expired on w1 and was completed by $FINISHER, w1 rejoined;" \
  "(b) coordinator SIGKILLed at $done_before/$BUDGET and resumed; (c) intruder refused $refusals time(s);" \
  "$expired_total expired attempt(s) in all"
