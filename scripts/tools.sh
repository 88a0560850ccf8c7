#!/usr/bin/env bash
# Builds the test-only tools pinned in tools/go.mod (a module of its own, so the project's
# go.mod never depends on them) into $CACHE/tools-<key>/ and does nothing when they are
# there already:
#   h2spec                HTTP/2 conformance (github.com/summerwind/h2spec)
#   grpc-interop-client   gRPC interop test client (google.golang.org/grpc/interop/client)
#   grpc-interop-server   gRPC interop test server (google.golang.org/grpc/interop/server)
#   ghz                   gRPC load generator (github.com/bojand/ghz)
#   grpc-health-probe     grpc.health.v1 client (github.com/grpc-ecosystem/grpc-health-probe)
#   otelcol               OpenTelemetry Collector with the OTLP receiver and the file exporter
#                         (tools/otelcol, the main package the collector's builder would write)
# <key> is the first 16 hex digits of sha256(tools/go.mod + tools/go.sum +
# tools/otelcol/main.go): pinning another version gives another directory. test/conformance
# computes the same key to find them. Prints the directory on stdout; with --dir, only
# prints it, building nothing (test/otelcol finds the collector so).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mod=$ROOT/tools
key=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/otelcol/main.go" | sha256sum | cut -c1-16)
dir=$CACHE/tools-$key
if [[ ${1:-} == --dir ]]; then
	printf '%s\n' "$dir"
	exit 0
fi
names=(h2spec grpc-interop-client grpc-interop-server ghz grpc-health-probe otelcol)

complete() {
	local n
	for n in "${names[@]}"; do
		[[ -x $dir/$n ]] || return 1
	done
	[[ -f $dir/.ok ]]
}

if complete; then
	log "tools: ok (cached in $dir)"
	printf '%s\n' "$dir"
	exit 0
fi

mkdir -p "$CACHE"
# Two runs at once (setup and a test run) would build the same tools twice.
exec 9>"$CACHE/tools.lock"
flock 9
if complete; then
	printf '%s\n' "$dir"
	exit 0
fi

start=$(now_s)
log "tools: building into $dir (a few minutes when the module cache is cold)"
tmp=$(mktemp -d "$CACHE/tools-tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# -trimpath keeps the build machine's paths out of the binaries. The interop client finds
# its default CA through runtime.Caller; the tests always pass --ca_file, so that is fine.
(cd "$mod" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$tmp/" tool ./otelcol >&2)
# `go build tool` names the interop binaries after their directories; give them names that
# say what they are.
mv "$tmp/client" "$tmp/grpc-interop-client"
mv "$tmp/server" "$tmp/grpc-interop-server"
for n in "${names[@]}"; do
	[[ -x $tmp/$n ]] || die "tools: $n was not built"
done
chmod 755 "$tmp"
touch "$tmp/.ok"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "tools: ok ($(since "$start")s)"
printf '%s\n' "$dir"
