#!/usr/bin/env bash
# BAMBO vs BoTorch on the optimizer benchmark of issue 4: initial design 8 points, 20 iterations of
# q = 4, qEHVI, 128 QMC samples, 10 restarts, 512 raw samples, on BraninCurrin, ZDT1 (d=8) and
# DTLZ2 (d=6, M=2). Both sides use BAMBO's maximal hypervolumes. Writes one JSON per run under
# results/ and the table to results/SUMMARY.md (RESULTS.md is the hand-written record that quotes it).
#
# Usage: Benchmarks/optimizer/compare.sh [seed ...]      (default seeds: 0 1 2 3 4)
# Environment: BAMBO (default .build/release/bambo; build with `swift build -c release --product bambo`),
#              PYTHON (default /tmp/botorch-venv/bin/python, a venv with `pip install torch==2.13.0 botorch`),
#              ITERATIONS (default 20), PROBLEMS (default "branin-currin zdt1 dtlz2"),
#              BAMBO_ACQUISITION (default qehvi, like the BoTorch side; qlogehvi is BAMBO's default).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bambo="${BAMBO:-$root/.build/release/bambo}"
python="${PYTHON:-/tmp/botorch-venv/bin/python}"
iterations="${ITERATIONS:-20}"
read -r -a problems <<< "${PROBLEMS:-branin-currin zdt1 dtlz2}"
if [ "$#" -gt 0 ]; then seeds=("$@"); else seeds=(0 1 2 3 4); fi
results="$here/results"
mkdir -p "$results"

[ -x "$bambo" ] || { echo "no bambo binary at $bambo (swift build -c release --product bambo)" >&2; exit 1; }
"$python" -c 'import botorch' 2>/dev/null || { echo "$python cannot import botorch" >&2; exit 1; }

# Problem settings: name, then the flags both sides take.
flags_for() {
  case "$1" in
    branin-currin) echo "" ;;
    zdt1) echo "--dim 8" ;;
    dtlz2) echo "--dim 6 --objectives 2" ;;
    *) echo "unknown problem $1" >&2; exit 1 ;;
  esac
}

common=(--initial 8 --iterations "$iterations" --batch 4 --mc-samples 128 --restarts 10 --raw-samples 512)
bambo_acquisition="${BAMBO_ACQUISITION:-qehvi}"

for seed in "${seeds[@]}"; do
  for problem in "${problems[@]}"; do
    read -r -a extra <<< "$(flags_for "$problem")"
    out="$results/bambo-$problem-$seed.json"
    echo "bambo   $problem seed $seed" >&2
    "$bambo" bench optimizer --problem "$problem" "${extra[@]}" "${common[@]}" --acquisition "$bambo_acquisition" \
      --seed "$seed" --json > "$out.tmp"
    mv "$out.tmp" "$out"
    max_hv="$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["maxHypervolume"])' "$out")"
    out="$results/botorch-$problem-$seed.json"
    echo "botorch $problem seed $seed" >&2
    "$python" "$here/botorch_run.py" --problem "$problem" "${extra[@]}" "${common[@]}" --acquisition qehvi --seed "$seed" \
      --max-hv "$max_hv" > "$out.tmp"
    mv "$out.tmp" "$out"
  done
done

"$python" "$here/summarize.py" "$results" > "$results/SUMMARY.md"
echo "wrote $results/SUMMARY.md" >&2
