#!/usr/bin/env bash
# Builds the conformance tools pinned in tools/go.mod (scripts/tools.sh), so that the first
# test run does not wait minutes for them.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
if ((DRY_RUN)); then
	say "conformance tools" "would build (scripts/tools.sh) unless cached"
	exit 0
fi
exec "$(dirname "${BASH_SOURCE[0]}")/../tools.sh" >/dev/null
