#!/usr/bin/env bash
# Sourced by the cluster tests: writes a small study over synthesized checkpoints that any machine can
# run in seconds (the `exec` evaluator with a deterministic script, no GPU, no model server).
#
# synthetic_study DIR BAMBO NAME ITERATIONS [CHECK]
#   DIR/ckpt/{instruct,thinking} (bambo synthesize: 4 layers, hidden 64), DIR/eval.py and
#   DIR/study.yaml (2 blocks, linear merge, Sobol proposals: 4 initial + ITERATIONS batches of 2).
#   The evaluator sleeps $EVAL_SECONDS (default 0) and runs CHECK, a Python statement, first (for
#   example an assertion on the environment a launch recipe gives it).
synthetic_study() {
  local dir=$1 bambo=$2 name=$3 iterations=$4 check=${5:-pass} python
  python=$(python3 -c 'import sys; print(sys.executable)')
  mkdir -p "$dir"
  "$bambo" synthesize --out "$dir/ckpt" --layers 4 --hidden 64 >/dev/null 2>&1 || {
    echo "synthetic_study: bambo synthesize failed in $dir" >&2
    return 1
  }
  cat >"$dir/eval.py" <<PY
import json, os, time
w = json.loads(os.environ["BAMBO_WEIGHTS"])
$check
time.sleep(${EVAL_SECONDS:-0})
m = sum(w) / len(w)
print(json.dumps({"benchmarks": {"b": {"accuracy": 0.3 + 0.5 * m, "tokens": 10 + 30 * m * m}}}))
PY
  cat >"$dir/study.yaml" <<YAML
study: $name
models:
  - {name: instruct, path: ckpt/instruct}
  - {name: thinking, path: ckpt/thinking}
partition: {blocks: 2}
merge: {method: linear, dtype: bfloat16}
evaluator: {kind: exec, command: ["$python", "$dir/eval.py"], timeout: 60}
objectives:
  - {name: reasoning, metric: accuracy, expert: thinking, base: instruct}
  - {name: efficiency, metric: tokens, expert: instruct, base: thinking}
optimizer: {initial: 4, iterations: $iterations, batch: 2, acquisition: sobol, seed: 0}
YAML
}
