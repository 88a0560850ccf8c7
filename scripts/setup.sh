#!/usr/bin/env bash
# Installs everything the demo and the tests need, on a fresh Debian 12 machine as root, and is
# fast when it has nothing to do:
#   - Debian packages (openssl, etcd, nginx, haproxy, caddy, h2load, kubectl), apt-get only
#     when one is missing;
#   - a Python venv with milvus-lite (a real Milvus gRPC server) and pymilvus, pinned in
#     test/clients/requirements.txt, at $CACHE/venv, rebuilt when that file changes;
#   - the Node SDK from test/node/package-lock.json, at $CACHE/node/<lock hash>, linked as
#     test/node/node_modules;
#   - the Go client test program (test/goclient, its own module), built once so that the
#     tests find the module and build caches warm.
# $CACHE is $MILVUS_LB_CACHE, else /var/cache/milvus-lb as root, else ~/.cache/milvus-lb.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start=$(now_s)
mkdir -p "$CACHE"
# Two setups at once (a developer's shell and a test run) would build the same venv twice.
exec 9>"$CACHE/setup.lock"
flock 9

# say STEP STATUS prints one progress line: "setup: python venv ... ok (cached)".
say() { printf 'setup: %s ... %s\n' "$1" "$2" >&2; }

# --- Debian packages -------------------------------------------------------------------------
# Each entry is "command package": the package is wanted only when its command is missing.
# gcc is for go test -race (the race detector needs cgo).
# kubectl comes from kubernetes-client only where no kubectl exists: on some machines another
# package ships /usr/bin/kubectl and conflicts with Debian's.
t=$(now_s)
missing=()
for pair in "openssl openssl" "etcd etcd-server" "nginx nginx-light" "haproxy haproxy" \
	"caddy caddy" "h2load nghttp2-client" "kubectl kubernetes-client" "flock util-linux" "gcc gcc"; do
	cmd=${pair% *} pkg=${pair#* }
	if ! command -v "$cmd" >/dev/null && [[ ! -x /usr/sbin/$cmd && ! -x /sbin/$cmd ]]; then
		missing+=("$pkg")
	fi
done
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
	missing+=(python3-venv)
fi
if ((${#missing[@]} == 0)); then
	say "debian packages" "ok (present)"
else
	say "debian packages" "installing ${missing[*]}"
	[[ $(id -u) == 0 ]] || die "need root to install ${missing[*]} (or install them yourself)"
	export DEBIAN_FRONTEND=noninteractive
	# etcd, nginx and haproxy are tools the tests start themselves, on loopback ports of their
	# choosing; keep their packages from starting system daemons on the default ports.
	policy=''
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
	fi
	status=0
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 || status=$?
	[[ -n $policy ]] && rm -f "$policy"
	((status == 0)) || die "apt-get install ${missing[*]} failed"
	say "debian packages" "ok ($(since "$t")s)"
fi

for tool in go node npm python3; do
	command -v "$tool" >/dev/null || die "$tool is not installed; this project needs Go >= 1.26, Node >= 20 and Python >= 3.10"
done

# --- Python venv: milvus-lite + pymilvus -----------------------------------------------------
t=$(now_s)
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
stamp=$VENV/.milvus-lb-requirements
if [[ -f $stamp && $(<"$stamp") == "$want" && -x $VENV/bin/milvus-lite ]]; then
	say "python venv" "ok (cached)"
else
	say "python venv" "building in $VENV"
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2
	# Prove the pair imports: milvus-lite needs pymilvus' stubs at run time.
	"$VENV/bin/python" -c 'import milvus_lite, pymilvus' >&2
	# The stamp goes last, so an interrupted build is redone next time.
	printf '%s' "$want" >"$stamp"
	say "python venv" "ok ($(since "$t")s)"
fi

# --- Node SDK --------------------------------------------------------------------------------
t=$(now_s)
lock=$ROOT/test/node/package-lock.json
nodedir=$CACHE/node/$(cat "$ROOT/test/node/package.json" "$lock" | sha256sum | cut -c1-16)
if [[ -f $nodedir/.ok ]]; then
	state="ok (cached)"
else
	rm -rf "$nodedir"
	mkdir -p "$nodedir"
	cp "$ROOT/test/node/package.json" "$lock" "$nodedir/"
	(cd "$nodedir" && npm ci --no-audit --no-fund --loglevel=error >&2)
	touch "$nodedir/.ok"
	state="ok ($(since "$t")s)"
fi
link=$ROOT/test/node/node_modules
if [[ -e $link && ! -L $link ]]; then
	rm -rf "$link" # a developer's own npm install; the cached one is the pinned one
fi
ln -sfn "$nodedir/node_modules" "$link"
say "node sdk" "$state"

# --- Go client -------------------------------------------------------------------------------
t=$(now_s)
(cd "$ROOT/test/goclient" && CGO_ENABLED=0 go build -o "$CACHE/bin/milvus-goclient" . >&2)
say "go client" "ok ($(since "$t")s)"

t=$(now_s)
(cd "$ROOT" && go mod download >&2)
say "go modules" "ok ($(since "$t")s)"

# --- Extra setup steps of other suites ------------------------------------------------------
# HOOK: every executable scripts/setup.d/*.sh runs here, in name order, with CACHE exported.
export CACHE
for hook in "$ROOT"/scripts/setup.d/*.sh; do
	[[ -x $hook ]] || continue
	t=$(now_s)
	"$hook" >&2
	say "${hook#"$ROOT"/}" "ok ($(since "$t")s)"
done

log "setup: done in $(since "$start")s (cache $CACHE)"
