#!/usr/bin/env bash
# Runs the HTTP/2 attack tests without the race detector, so that their rate assertions
# (legitimate clients keep 80% of their calls per second under attack) are enforced: with
# -race, go test ./... runs them too but only logs the rates. See docs/limits.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec go test -count=1 ./test/attacks
