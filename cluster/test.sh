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
swift test 2>&1 | tee .build/test.log

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

# One closing line for CI: the Swift Testing count (the run above stopped this script had any failed).
count="$(grep -Eo 'Test run with [0-9]+ tests' .build/test.log | tail -n1 | grep -Eo '[0-9]+' || true)"
echo "tests: ${count:-0} passed, 0 failed"
