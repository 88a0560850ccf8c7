#!/usr/bin/env bash
# Builds kube-apiserver for the controller tests (internal/testkit/kubetest) and caches the binary.
#
# kube-apiserver is not published as a Go-installable command: k8s.io/kubernetes points its
# k8s.io/* staging modules at ./staging/src with replace directives, which do not apply when
# it is a dependency. So we build it from a throwaway module that requires k8s.io/kubernetes
# and replaces every staging module with its published v0.X twin (v1.37.2 -> v0.37.2), the
# same version as our k8s.io/api and k8s.io/client-go.
#
# Cold: about five minutes on two cores (it is niced and runs one compile at a time so that
# the rest of the machine stays usable). Cached: instant.
#
#   MILVUS_LB_CACHE   cache root (default /var/cache/milvus-lb as root, else
#                     ~/.cache/milvus-lb); the binary goes to <cache>/bin/kube-apiserver-v1.37.2
#   KUBE_VERSION      k8s.io/kubernetes version (default v1.37.2)
set -euo pipefail

version="${KUBE_VERSION:-v1.37.2}"
# The cache rule of scripts/lib.sh and internal/testkit/kubetest.
if [[ -n "${MILVUS_LB_CACHE:-}" ]]; then
	cache=$MILVUS_LB_CACHE
elif [[ $(id -u) == 0 ]]; then
	cache=/var/cache/milvus-lb
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/milvus-lb
fi
bin="$cache/bin/kube-apiserver-$version"

if [[ -x "$bin" ]]; then
	echo "kube-apiserver $version: cached at $bin"
	exit 0
fi

# v1.37.2 -> v0.37.2: the staging modules are versioned v0.<minor>.<patch>.
staging_version="v0.${version#v1.}"

mkdir -p "$cache/bin" "$cache/build"

# One build at a time (setup.sh and test.sh may both start one): a second run waits for
# the first and then finds the binary cached.
exec 9>"$cache/build/kube-apiserver.lock"
if ! flock -n 9; then
	echo "kube-apiserver.sh: another build is running; waiting for it" >&2
	flock 9
fi
if [[ -x "$bin" ]]; then
	echo "kube-apiserver $version: cached at $bin"
	exit 0
fi

work="$(mktemp -d "$cache/build/kube-apiserver-$version.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

start=$(date +%s)
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

go mod init milvus-lb.local/kube-apiserver-build >/dev/null 2>&1

# The list of staging modules is the replace block of k8s.io/kubernetes's own go.mod.
gomod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
if [[ -z "$gomod" || ! -f "$gomod" ]]; then
	echo "kube-apiserver.sh: cannot download the go.mod of k8s.io/kubernetes@$version" >&2
	exit 1
fi
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#\1#p' "$gomod")
if ((${#staging[@]} == 0)); then
	echo "kube-apiserver.sh: no staging replace directives found in $gomod" >&2
	exit 1
fi
edits=()
for m in "${staging[@]}"; do
	edits+=("-replace=$m=$m@$staging_version")
done
go mod edit "${edits[@]}"
go mod edit -require="k8s.io/kubernetes@$version"

# Resolve the rest of the build list from the packages kube-apiserver imports.
nice -n 15 go get "k8s.io/kubernetes/cmd/kube-apiserver@$version"

# The version variables are what `kube-apiserver --version` and /version report; the binary
# version drives the emulation-version checks, so it must be the real one.
pkg=k8s.io/component-base/version
minor="${version#v1.}"
minor="${minor%%.*}"
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
nice -n 15 go build -p 1 -trimpath -ldflags "$ldflags" -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
mv "$work/kube-apiserver" "$bin"

echo "kube-apiserver $version: built in $(($(date +%s) - start)) s at $bin"
"$bin" --version
