#!/usr/bin/env bash
# Builds the Go client test program (test/goclient, a module of its own) once, and
# downloads the main module's dependencies, so that the tests find the module and build
# caches warm.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if ((DRY_RUN)); then
	say "go client" "would build $CACHE/bin/milvus-goclient"
	exit 0
fi
t=$(now_s)
(cd "$ROOT/test/goclient" && CGO_ENABLED=0 go build -o "$CACHE/bin/milvus-goclient" . >&2)
say "go client" "ok ($(since "$t")s)"
t=$(now_s)
(cd "$ROOT" && go mod download >&2)
say "go modules" "ok ($(since "$t")s)"
