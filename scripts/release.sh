#!/usr/bin/env bash
# Builds the release binaries of milvus-lb: static (CGO_ENABLED=0), without the build
# machine's paths (-trimpath), stamped with the version (internal/version/VERSION) and the
# commit, for linux/amd64 and linux/arm64, plus SHA256SUMS. The same checkout and Go
# toolchain give the same bytes.
#
#   scripts/release.sh [--out DIR] [--platform OS/ARCH]...
#
#   --out DIR             where to write (default dist/): DIR/milvus-lb-<version>-<os>-<arch>
#                         and DIR/SHA256SUMS (verify with: cd DIR && sha256sum -c SHA256SUMS)
#   --platform OS/ARCH    build only these (repeatable; default linux/amd64 and linux/arm64)
#   COMMIT, MODIFIED      the commit and whether the tree had uncommitted changes
#                         (true/false); by default asked of git. The Dockerfile, which
#                         builds without .git, passes them in (an empty COMMIT: unknown).
# Prints the paths of the binaries on stdout.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out=$ROOT/dist
platforms=()
while (($#)); do
	case $1 in
	--out)
		out=$2
		shift 2
		;;
	--platform)
		platforms+=("$2")
		shift 2
		;;
	*) die "usage: $0 [--out DIR] [--platform OS/ARCH]..." ;;
	esac
done
((${#platforms[@]})) || platforms=(linux/amd64 linux/arm64)

version=$(release_version)
release_stamp
pkg=github.com/milvus-lb/milvus-lb/internal/version
mkdir -p "$out"
out=$(cd "$out" && pwd)

names=()
for platform in "${platforms[@]}"; do
	goos=${platform%/*} goarch=${platform#*/}
	name=milvus-lb-$version-$goos-$goarch
	start=$(now_s)
	# -buildvcs=false: the commit is stamped below, so the bytes do not depend on whether
	# the go command could run git here. GOAMD64/GOARM64 are the baselines whatever the
	# environment asks for. -s -w drop the symbol table and DWARF (panics keep their
	# stack traces).
	(cd "$ROOT" && CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOAMD64=v1 GOARM64=v8.0 \
		go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X $pkg.commit=$COMMIT -X $pkg.modified=$MODIFIED" \
		-o "$out/$name" ./cmd/milvus-lb)
	log "release: $name built in $(since "$start") s"
	names+=("$name")
done
(cd "$out" && sha256sum "${names[@]}" >SHA256SUMS)
log "release: milvus-lb $version (commit ${COMMIT:-unknown}$([[ $MODIFIED == true ]] && echo ', modified')) in $out"
for name in "${names[@]}"; do
	printf '%s\n' "$out/$name"
done
