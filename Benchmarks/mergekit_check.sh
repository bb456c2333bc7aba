#!/usr/bin/env bash
# Checks `bambo merge --emit-mergekit` against mergekit itself: for each method, bambo merges a small
# synthetic family block-wise and writes the mergekit YAML; mergekit-yaml runs that YAML; the script
# prints the max abs difference between the two merged models (compare_checkpoints.py).
#
# Opt-in (not part of ./cluster/test.sh): needs a venv with mergekit, e.g.
#   python3 -m venv /tmp/mkvenv && /tmp/mkvenv/bin/pip install torch==2.13.0 mergekit
#   MERGEKIT_VENV=/tmp/mkvenv Benchmarks/mergekit_check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${MERGEKIT_VENV:-/tmp/mkvenv}"
bambo="${BAMBO_BIN:-$repo/.build/release/bambo}"
[ -x "$bambo" ] || bambo="$repo/.build/debug/bambo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bambo" synthesize --out fam --layers 8 --hidden 256 --shard-mb 2 >/dev/null 2>&1
"$bambo" partition --model fam/instruct --model fam/thinking --blocks 3 --out p.json >/dev/null 2>&1
"$venv/bin/python" -c "import mergekit, importlib.metadata as m; print('mergekit', m.version('mergekit'))"
weights="0.1,0.3,0.5,0.8,0.6"
for spec in "linear" "task_arithmetic --param lambda=0.9" "ties --param density=0.5"; do
  method="${spec%% *}"
  extra=()
  [ "$spec" != "$method" ] && read -r -a extra <<< "${spec#* }"
  base=()
  [ "$method" != linear ] && base=(--base fam/base)
  "$bambo" merge --model fam/instruct --model fam/thinking "${base[@]}" --partition p.json --weights "$weights" \
    --method "$method" "${extra[@]}" --no-fsync --out "bambo-$method" --emit-mergekit "$method.yaml" >/dev/null 2>&1
  "$venv/bin/mergekit-yaml" "$method.yaml" "mergekit-$method" >/dev/null 2>&1
  printf '%-16s ' "$method"
  "$venv/bin/python" "$here/compare_checkpoints.py" "bambo-$method" "mergekit-$method"
done
