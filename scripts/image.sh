#!/usr/bin/env bash
# Builds the milvus-lb container image from this checkout, without a container daemon and
# without pulling anything: the release binaries (scripts/release.sh) on top of nothing
# (FROM scratch), one image per platform (linux/amd64, linux/arm64) under one index, run as
# user 65532:65532 with entrypoint /usr/bin/milvus-lb, labelled with the version, commit and
# source (tools/imagebuild assembles it with go-containerregistry). Every timestamp is
# SOURCE_DATE_EPOCH, by default the commit's time: two builds of one commit with one Go
# toolchain give the same digest.
#
#   scripts/image.sh [--out DIR]
#
# writes (DIR defaults to dist/):
#   DIR/image/                        the OCI image layout, tagged <version>
#   DIR/milvus-lb-<version>-image.tar the same layout as one file (an oci-archive)
#   DIR/milvus-lb-<version>-<os>-<arch>, DIR/SHA256SUMS   the binaries inside it
# and prints the index's digest (sha256:...) on stdout. Push it to a registry of your own:
#   skopeo copy --all --preserve-digests oci:DIR/image:<version> docker://registry.example.com/milvus-lb:<version>
#   (cd tools && go tool crane push ../DIR/image registry.example.com/milvus-lb:<version>)
# COMMIT, MODIFIED and SOURCE_DATE_EPOCH override what git says (for a build without .git).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out=$ROOT/dist
case "${1:-}" in
--out) out=$2 ;;
"") ;;
*) die "usage: $0 [--out DIR]" ;;
esac
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(release_version)
release_stamp # for release.sh and the revision label alike
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct)}
module=$(awk '$1 == "module" { print $2; exit }' "$ROOT/go.mod")

mapfile -t binaries < <("$ROOT/scripts/release.sh" --out "$out")

tool=$(mktemp -d "${TMPDIR:-/tmp}/milvus-lb-imagebuild.XXXXXX")
trap 'rm -rf "$tool"' EXIT
(cd "$ROOT/tools" && go build -o "$tool/imagebuild" ./imagebuild)
args=()
for bin in "${binaries[@]}"; do
	platform=${bin##*/milvus-lb-"$version"-} # linux-amd64
	args+=(-binary "${platform%%-*}/${platform#*-}=$bin")
done
start=$(now_s)
digest=$("$tool/imagebuild" -out "$out/image" -archive "$out/milvus-lb-$version-image.tar" \
	-version "$version" -revision "$COMMIT" -source "https://$module" -epoch "$epoch" "${args[@]}")
log "image: milvus-lb:$version $digest assembled in $(since "$start") s"
log "image: $out/image (OCI layout) and $out/milvus-lb-$version-image.tar (oci-archive); push with"
log "  skopeo copy --all --preserve-digests oci:$out/image:$version docker://registry.example.com/milvus-lb:$version"
printf '%s\n' "$digest"
