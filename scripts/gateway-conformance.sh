#!/usr/bin/env bash
# Builds what test/gatewayconformance runs, from tools/gateway-conformance (a module of its
# own, pinning sigs.k8s.io/gateway-api/conformance), into $CACHE/gateway-conformance-<key>/,
# and does nothing when it is there already:
#   conformance.test   the upstream suite's own test binary (`go test -c` of
#                      sigs.k8s.io/gateway-api/conformance: TestConformance and its flags)
#   echo-basic         the suite's echo server (conformance/echo-basic), patched to listen
#                      on $POD_IP instead of every address, see below
#   crds.yaml          the standard channel's CRDs of the same release
#                      (config/crd/standard of sigs.k8s.io/gateway-api)
# <key> is the first 16 hex digits of sha256(go.mod + go.sum + this script): test/gatewayconformance
# computes the same key. Prints the directory; with --dir, only prints it.
#
# Why echo-basic is patched: in a cluster every Pod has its own network namespace, so each
# echo server listens on :3000 of its own. Here the Pods are local processes sharing one
# (the test's), each given its own address as Pod IP; echo-basic binds ":3000" (every
# address), so a second Pod could not start. The patch changes only the
# listen address of its HTTP, h2c, HTTPS and gRPC servers to $POD_IP; what it answers is
# upstream's.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mod=$ROOT/tools/gateway-conformance
key=$(cat "$mod/go.mod" "$mod/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
dir=$CACHE/gateway-conformance-$key
if [[ ${1:-} == --dir ]]; then
	printf '%s\n' "$dir"
	exit 0
fi

complete() { [[ -x $dir/conformance.test && -x $dir/echo-basic && -s $dir/crds.yaml && -f $dir/.ok ]]; }

if complete; then
	log "gateway conformance: ok (cached in $dir)"
	printf '%s\n' "$dir"
	exit 0
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/gateway-conformance.lock"
flock 9
if complete; then
	printf '%s\n' "$dir"
	exit 0
fi

start=$(now_s)
log "gateway conformance: building into $dir"
tmp=$(mktemp -d "$CACHE/gateway-conformance-tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

cd "$mod"
# go list -m names a module's directory only once it is in the module cache, which on a
# fresh machine it is not yet.
go mod download sigs.k8s.io/gateway-api/conformance sigs.k8s.io/gateway-api
conf=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api/conformance)
api=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
[[ -d $conf && -d $api ]] || die "gateway conformance: module sources not found"

nice -n 10 go test -c -trimpath -o "$tmp/conformance.test" sigs.k8s.io/gateway-api/conformance >&2

# The echo server from a patched copy of the suite's module (see the header).
cp -r "$conf" "$tmp/src"
chmod -R u+w "$tmp/src"
sed -i 's/fmt\.Sprintf(":%s"/fmt.Sprintf(os.Getenv("POD_IP")+":%s"/' "$tmp/src/echo-basic/echo-basic.go"
sed -i 's/fmt\.Sprintf("0\.0\.0\.0:%d"/fmt.Sprintf(os.Getenv("POD_IP")+":%d"/' "$tmp/src/echo-basic/grpc/grpc.go"
n=$(grep -c 'os.Getenv("POD_IP")' "$tmp/src/echo-basic/echo-basic.go" "$tmp/src/echo-basic/grpc/grpc.go" | awk -F: '{s += $2} END {print s}')
((n == 5)) || die "gateway conformance: patching echo-basic's listen addresses changed $n places, want 5 (3 in echo-basic.go, 2 in grpc/grpc.go)"
mkdir "$tmp/echo"
cp go.mod go.sum "$tmp/echo/"
(cd "$tmp/echo" && go mod edit -replace "sigs.k8s.io/gateway-api/conformance=$tmp/src" &&
	nice -n 10 go build -trimpath -o "$tmp/echo-basic" sigs.k8s.io/gateway-api/conformance/echo-basic >&2)
rm -rf "$tmp/src" "$tmp/echo"

for f in "$api"/config/crd/standard/*.yaml; do
	printf -- '---\n'
	cat "$f"
done >"$tmp/crds.yaml"

chmod 755 "$tmp"
touch "$tmp/.ok"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "gateway conformance: ok ($(since "$start")s)"
printf '%s\n' "$dir"
