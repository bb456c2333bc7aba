#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cluster/bootstrap.sh
# The real-server tests (EvaluationTests) find Python here; without it they are skipped.
export BAMBO_PYTHON="$(bash cluster/python-env.sh)"
swift build
swift test 2>&1 | tee .build/test.log
