#!/usr/bin/env bash
# Checks the unit files offline with `systemd-analyze verify`: syntax, known keys and values, and that
# ExecStart points at an executable (the installed path is replaced by BAMBO for the check).
# Any warning is a failure. Usage: cluster/systemd/verify.sh [path/to/bambo]   (default .build/debug/bambo)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bambo=$(realpath "${1:-.build/debug/bambo}")
[ -x "$bambo" ] || { echo "systemd-verify: no bambo executable at $bambo" >&2; exit 1; }
command -v systemd-analyze >/dev/null 2>&1 || { echo "systemd-verify: SKIPPED: no systemd-analyze" >&2; exit 0; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/usr/local/bin/bambo#$bambo#" "$here/bambo-coordinator.service" >"$work/bambo-coordinator.service"
# A template is checked through an instance.
sed "s#/usr/local/bin/bambo#$bambo#" "$here/bambo-worker@.service" >"$work/bambo-worker@0.service"
output=$(cd "$work" && systemd-analyze verify ./bambo-coordinator.service ./bambo-worker@0.service 2>&1) || {
  echo "systemd-verify: FAIL:" >&2
  echo "$output" >&2
  exit 1
}
if [ -n "$output" ]; then
  echo "systemd-verify: FAIL (warnings):" >&2
  echo "$output" >&2
  exit 1
fi
echo "systemd-verify: bambo-coordinator.service and bambo-worker@.service are valid"
