#!/usr/bin/env bash
# Prepares test/e2e's TestImage, which builds the container image with scripts/image.sh,
# pushes it to a registry on loopback with crane and skopeo and runs it with podman:
#   - podman, runc and skopeo from Debian (as root; apt-get only when one is missing);
#   - a first image build, so that the Go build cache the test's builds use,
#     $CACHE/go-build-image (TestImage names the same directory), holds every package for
#     both platforms and the test's two builds only link. Cold: ~10 min a platform on a
#     busy 2-core machine; cached: seconds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

missing=()
for cmd in podman runc skopeo; do
	command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]})); then
	[[ $(id -u) == 0 ]] || die "TestImage needs ${missing[*]} (apt-get install ${missing[*]}, as root)"
	start=$(now_s)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
	log "image: installed ${missing[*]} in $(since "$start") s"
fi

export GOCACHE=$CACHE/go-build-image
mkdir -p "$GOCACHE"
exec 9>"$CACHE/image.lock"
flock 9
out=$(mktemp -d "${TMPDIR:-/tmp}/milvus-lb-image.XXXXXX")
trap 'rm -rf "$out"' EXIT
start=$(now_s)
nice -n 15 "$ROOT/scripts/image.sh" --out "$out" >/dev/null
(cd "$ROOT/tools" && nice -n 15 go build -o "$out/crane" github.com/google/go-containerregistry/cmd/crane)
log "image: built once in $(since "$start") s (Go build cache $GOCACHE)"
