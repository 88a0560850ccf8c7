#!/usr/bin/env bash
# Builds the conformance tools pinned in tools/go.mod (scripts/tools.sh), so that the first
# test run does not wait minutes for them.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../tools.sh" >/dev/null
