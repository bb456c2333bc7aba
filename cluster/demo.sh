#!/usr/bin/env bash
# The README's main-job command: a whole BAMBO study on this machine, no GPU needed.
#   1. installs what is missing (system packages; the Python venv with torch's CPU build and
#      `transformers serve`, cached in ~/.cache/bambo outside the clone),
#   2. builds bambo,
#   3. runs `bambo demo`: a coordinator and two workers on loopback over the tiny Thinking/Instruct
#      family in cluster/demo, progress the whole time, then the Pareto front as a table and
#      $OUT/study.db, $OUT/front.json.
#
#   OUT=dir ./cluster/demo.sh              (default: ./demo-out; an unfinished study there is resumed)
#   BUDGET=8 ./cluster/demo.sh             (evaluations; default: bambo demo's, see `bambo demo --help`)
#   Any further arguments go to `bambo demo` (e.g. --workers 1, --backend vllm).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-demo-out}
bash cluster/bootstrap.sh
BAMBO_PYTHON="$(bash cluster/python-env.sh)"
export BAMBO_PYTHON
swift build --product bambo
BAMBO=$(swift build --show-bin-path)/bambo
exec "$BAMBO" demo --out "$OUT" ${BUDGET:+--budget "$BUDGET"} "$@"
