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
# name|method and parameters: per-block values (one per block: embedding, B1…B3, head) become
# filter lists per slice (density) or slice-level parameters (lambda) in the mergekit YAML.
for spec in "linear|linear" "task_arithmetic|task_arithmetic --param lambda=0.9" "ties|ties --param density=0.5" \
            "task_arithmetic-per-block-lambda|task_arithmetic --param lambda=0.5,1.5,1,0.8,1.2" \
            "ties-per-block-density|ties --param density=0.3,0.9,0.5,0.7,0.6"; do
  name="${spec%%|*}"
  spec="${spec#*|}"
  method="${spec%% *}"
  extra=()
  [ "$spec" != "$method" ] && read -r -a extra <<< "${spec#* }"
  base=()
  [ "$method" != linear ] && base=(--base fam/base)
  "$bambo" merge --model fam/instruct --model fam/thinking "${base[@]}" --partition p.json --weights "$weights" \
    --method "$method" "${extra[@]}" --no-fsync --out "bambo-$name" --emit-mergekit "$name.yaml" >/dev/null 2>&1
  "$venv/bin/mergekit-yaml" "$name.yaml" "mergekit-$name" >/dev/null 2>&1
  printf '%-32s ' "$name"
  "$venv/bin/python" "$here/compare_checkpoints.py" "bambo-$name" "mergekit-$name"
done
