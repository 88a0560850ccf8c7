#!/usr/bin/env bash
# Builds (or finds cached) helm for test/controller's chart test (helm lint, helm template):
# <cache>/bin/helm-v3.22.0, from the Go module proxy. Cold: a few minutes; cached: instant.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

version=v3.22.0
bin=$CACHE/bin/helm-$version
[[ -x $bin ]] && exit 0

mkdir -p "$CACHE/bin" "$CACHE/build"
exec 9>"$CACHE/build/helm.lock"
flock 9
[[ -x $bin ]] && exit 0

work=$(mktemp -d "$CACHE/build/helm-$version.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(now_s)
# helm's go.mod has no replace directives, so `go install module@version` builds it as
# released, outside our go.mod.
GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 GOBIN=$work \
	nice -n 15 go install -p 1 -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$version" >&2
mv "$work/helm" "$bin"
log "helm $version: built in $(since "$start") s at $bin"
