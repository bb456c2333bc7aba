#!/usr/bin/env python3
"""Reads results/{bambo,botorch}-PROBLEM-SEED.json (written by compare.sh) and prints RESULTS.md."""
import glob
import json
import os
import statistics
import sys

results = sys.argv[1]
runs = {}
for path in sorted(glob.glob(os.path.join(results, "*.json"))):
    side, rest = os.path.basename(path)[:-5].split("-", 1)
    problem, seed = rest.rsplit("-", 1)
    with open(path) as f:
        runs.setdefault((problem, side), {})[int(seed)] = json.load(f)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


print("# Optimizer benchmark: BAMBO vs BoTorch\n")
print("Settings (issue 4): initial Sobol design 8 points, 20 iterations of q = 4 (sequential greedy), qEHVI,")
print("128 QMC samples, 10 restarts, 512 raw samples; reference points and maximal hypervolumes are BAMBO's")
print("(`TestProblems`), used by both sides. Gap = log10(maxHV − HV) after the last iteration (lower is")
print("better); step = seconds per proposal step (GP fit + acquisition optimization), median over all steps")
print("of all seeds. Produced by `Benchmarks/optimizer/compare.sh` (commands below) on the shared 2-core")
print("development machine (other builds running at the same time: timings are indicative).\n")
print("| problem | iterations × q | seeds | BAMBO median gap | BoTorch median gap | BAMBO s/step | BoTorch s/step | speed-up |")
print("|---|---|---|---|---|---|---|---|")
problems = sorted({p for p, _ in runs}, key=lambda p: ["branin-currin", "zdt1", "dtlz2"].index(p) if p in ["branin-currin", "zdt1", "dtlz2"] else 9)
for problem in problems:
    ours, theirs = runs.get((problem, "bambo"), {}), runs.get((problem, "botorch"), {})
    seeds = sorted(set(ours) & set(theirs))
    if not seeds:
        continue
    gap_ours = med([ours[s]["finalLogHypervolumeGap"] for s in seeds])
    gap_theirs = med([theirs[s]["finalLogHypervolumeGap"] for s in seeds])
    step_ours = med([t for s in seeds for t in ours[s]["stepSeconds"]])
    step_theirs = med([t for s in seeds for t in theirs[s]["stepSeconds"]])
    r = ours[seeds[0]]
    name = f"{problem} (d={r['dim']}, M={r['objectives']})"
    print(f"| {name} | {r['iterations']} × {r['batch']} | {','.join(map(str, seeds))} | {gap_ours:.3f} | {gap_theirs:.3f} | {step_ours:.3f} | "
          f"{step_theirs:.2f} | {step_theirs / step_ours:.0f}× |")
print("\nPer seed (final log10 gap, BAMBO / BoTorch):\n")
for problem in problems:
    ours, theirs = runs.get((problem, "bambo"), {}), runs.get((problem, "botorch"), {})
    seeds = sorted(set(ours) & set(theirs))
    cells = [f"seed {s}: {ours[s]['finalLogHypervolumeGap']:.3f} / {theirs[s]['finalLogHypervolumeGap']:.3f}" for s in seeds]
    if cells:
        print(f"- {problem}: " + "; ".join(cells))
print("""
Commands:

```sh
swift build -c release --product bambo
python3 -m venv /tmp/botorch-venv
/tmp/botorch-venv/bin/pip install torch==2.13.0   # CPU wheel
/tmp/botorch-venv/bin/pip install botorch
Benchmarks/optimizer/compare.sh 0 1 2 3 4
# one BAMBO run, e.g.:
.build/release/bambo bench optimizer --problem zdt1 --dim 8 --initial 8 --iterations 20 --batch 4 \\
  --acquisition qehvi --mc-samples 128 --restarts 10 --raw-samples 512 --seed 0 --json
# the same on BoTorch:
/tmp/botorch-venv/bin/python Benchmarks/optimizer/botorch_run.py --problem zdt1 --dim 8 --initial 8 \\
  --iterations 20 --batch 4 --acquisition qehvi --mc-samples 128 --restarts 10 --raw-samples 512 --seed 0 \\
  --max-hv 120.66666666666667
```""")
