#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test, checks every shell
# script with shellcheck and runs the multi-host test (network namespaces; needs root, else SKIPPED).
set -euo pipefail
cd "$(dirname "$0")/.."
bash cluster/bootstrap.sh
# The real-server tests (EvaluationTests) find Python here; without it they are skipped.
BAMBO_PYTHON="$(bash cluster/python-env.sh)"
export BAMBO_PYTHON
swift build
# Two passes. Swift Testing runs tests on the cooperative thread pool, which has one thread per core:
# on 2 cores, process tests that wait synchronously (a coordinator run to its budget) starve the async
# socket and HTTP tests beside them until their hang guards fire. So the parallel pass leaves out the
# async process tests (the worker's and the harness's suites) and the torch-loading demo, and the
# second pass runs those one at a time.
heavy='^(WorkerTests|EvaluationTests)\.|DemoCLITests|BenchCoordinatorCLITests'
swift test --skip "$heavy" 2>&1 | tee .build/test.log
swift test --no-parallel --filter "$heavy" 2>&1 | tee .build/test-heavy.log

# Every shell script under cluster/ and .ci/ (by its #! line) is shellcheck clean.
scripts=()
while IFS= read -r -d '' file; do
  if head -n1 "$file" | grep -Eq '^#!.*\b(ba)?sh\b'; then scripts+=("$file"); fi
done < <(find cluster .ci -type f -print0 | sort -z)
echo "shellcheck: ${#scripts[@]} scripts"
shellcheck "${scripts[@]}"

bambo="$(swift build --show-bin-path)/bambo"
# The systemd units load (offline check; where systemd-analyze exists).
if command -v systemd-analyze >/dev/null 2>&1; then bash cluster/systemd/verify.sh "$bambo"; fi
# The launch recipes run real studies: local.sh (to the budget, SIGTERM, resume) and the Slurm
# scripts as Slurm would start them (in a network namespace; root).
bash cluster/test-local.sh "$bambo"
bash cluster/slurm/smoke-test.sh "$bambo"
# Coordinator and workers on separate network hosts, with a link cut, a coordinator kill -9 and an
# intruder (cluster/test-multihost.sh says what it checks).
bash cluster/test-multihost.sh "$bambo"

# One closing line for CI: the Swift Testing counts of both passes (the runs above stopped this
# script had any test failed).
count=0
for log in .build/test.log .build/test-heavy.log; do
  n="$(grep -Eo 'Test run with [0-9]+ tests' "$log" | tail -n1 | grep -Eo '[0-9]+' || true)"
  count=$((count + ${n:-0}))
done
echo "tests: ${count} passed, 0 failed"
