#!/usr/bin/env bash
# BAMBO alone, qEHVI vs qLogEHVI (or any acquisitions) on the issue-4 settings: initial design 8 points,
# 20 iterations of q = 4, 128 QMC samples, 10 restarts, 512 raw samples, on ZDT1 (d=8), DTLZ2 (d=6, M=2)
# and BraninCurrin. Writes results-acquisitions/ACQ-PROBLEM-SEED.json and prints mean ± sd of the final
# log10 HV gap and of the seconds per proposal step (mean over steps per run, then over seeds).
#
# Usage: Benchmarks/optimizer/acquisitions.sh [seed ...]     (default seeds: 0 1 2 3 4)
# Environment: BAMBO (default .build/release/bambo), ACQUISITIONS (default "qehvi qlogehvi").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bambo="${BAMBO:-$root/.build/release/bambo}"
read -r -a acquisitions <<< "${ACQUISITIONS:-qehvi qlogehvi}"
if [ "$#" -gt 0 ]; then seeds=("$@"); else seeds=(0 1 2 3 4); fi
results="$here/results-acquisitions"
mkdir -p "$results"
for seed in "${seeds[@]}"; do
  for problem in zdt1 dtlz2 branin-currin; do
    case "$problem" in zdt1) extra=(--dim 8) ;; dtlz2) extra=(--dim 6 --objectives 2) ;; *) extra=() ;; esac
    for acq in "${acquisitions[@]}"; do
      out="$results/$acq-$problem-$seed.json"
      [ -s "$out" ] && continue
      echo "$acq $problem seed $seed" >&2
      "$bambo" bench optimizer --problem "$problem" "${extra[@]}" --initial 8 --iterations 20 --batch 4 \
        --acquisition "$acq" --mc-samples 128 --restarts 10 --raw-samples 512 --seed "$seed" --json > "$out.tmp"
      mv "$out.tmp" "$out"
    done
  done
done
python3 - "$results" <<'PY'
import glob, json, os, statistics, sys
runs = {}
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    r = json.load(open(path))
    runs.setdefault((r["problem"], r["acquisition"]), []).append(r)
def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
print("| problem | acquisition | seeds | final log10 gap, mean ± sd | median | s/step, mean ± sd |")
print("|---|---|---|---|---|---|")
for (problem, acq), rs in sorted(runs.items()):
    rs.sort(key=lambda r: r["seed"])
    gaps = [r["finalLogHypervolumeGap"] for r in rs]
    steps = [statistics.mean(r["stepSeconds"]) for r in rs]
    print(f"| {problem} | {acq} | {','.join(str(r['seed']) for r in rs)} | {ms(gaps)} | {statistics.median(gaps):.3f} | {ms(steps)} |")
print()
for (problem, acq), rs in sorted(runs.items()):
    print(f"- {problem} {acq}: " + ", ".join(f"seed {r['seed']}: {r['finalLogHypervolumeGap']:.3f}" for r in sorted(rs, key=lambda r: r["seed"])))
PY
