#!/usr/bin/env bash
# Builds (or finds cached) the conformance tools before the Go tests run: test/conformance
# fails, telling the user to run scripts/tools.sh, when they are missing.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../tools.sh" >/dev/null
