# shellcheck shell=bash
# Helpers shared by scripts/setup.sh (and its scripts/setup.d hooks), scripts/demo.sh and
# scripts/test.sh. Source it; it defines functions and a few variables and runs nothing.

# ROOT is the repository root, whatever directory the script was started from.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# CACHE survives between runs on the same machine (a fresh clone in CI reuses what an earlier
# run built). internal/testkit/testenv computes the same path: keep the two rules identical.
if [[ -n "${MILVUS_LB_CACHE:-}" ]]; then
	CACHE=$MILVUS_LB_CACHE
elif [[ $(id -u) == 0 ]]; then
	CACHE=/var/cache/milvus-lb
else
	CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/milvus-lb
fi
VENV=$CACHE/venv
REQUIREMENTS=$ROOT/test/clients/requirements.txt

log() { printf '%s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# now_s prints seconds since the epoch with millisecond precision, for durations.
now_s() { date +%s.%3N; }
# since START prints the seconds elapsed since START (a now_s value), one decimal.
since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# free_port prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# port_free PORT succeeds if nothing listens on 127.0.0.1:PORT and we may bind it.
port_free() {
	python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# wait_port PORT PID SECONDS waits until 127.0.0.1:PORT accepts connections, failing early if
# process PID has exited.
wait_port() {
	local port=$1 pid=$2 deadline=$((SECONDS + $3))
	while ((SECONDS < deadline)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# stop_pid PID [SECONDS] sends SIGINT (milvus-lite only shuts down cleanly on SIGINT; milvus-lb
# treats it like SIGTERM), waits, then kills.
stop_pid() {
	local pid=$1 deadline=$((SECONDS + ${2:-10}))
	kill -INT "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$pid" 2>/dev/null || true
}

# gen_certs DIR NAME writes, with openssl, a test CA and a leaf for NAME signed by it, as the
# guide's three files: DIR/Certificate.pem (the leaf), DIR/CertificateChain.pem (the CA),
# DIR/PrivateKey.pem (the leaf's key). Clients trust DIR/CertificateChain.pem.
gen_certs() {
	local dir=$1 name=$2
	mkdir -p "$dir"
	(
		cd "$dir" || exit 1
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
			-subj "/CN=milvus-lb test CA" -keyout ca.key -out CertificateChain.pem \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=$name" -keyout PrivateKey.pem -out leaf.csr 2>/dev/null &&
			printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' "$name" >leaf.ext &&
			openssl x509 -req -in leaf.csr -CA CertificateChain.pem -CAkey ca.key -CAcreateserial \
				-days 30 -extfile leaf.ext -out Certificate.pem 2>/dev/null &&
			rm -f leaf.csr leaf.ext CertificateChain.srl &&
			chmod 600 PrivateKey.pem ca.key
	) || die "openssl could not make the test certificates in $dir"
}

# say STEP STATUS prints one setup progress line: "setup: python venv ... ok (cached)".
say() { printf 'setup: %s ... %s\n' "$1" "$2" >&2; }

# DRY_RUN=1 makes ensure_packages and ensure_venv say what they would install or build,
# after the same checks, and change nothing (scripts/setup.sh --dry-run).
DRY_RUN=${DRY_RUN:-0}

# have CMD succeeds if the command is installed (also in sbin, which a non-root PATH may
# lack). "python3-venv" stands for Python's venv and ensurepip modules.
have() {
	if [[ $1 == python3-venv ]]; then
		python3 -c 'import ensurepip, venv' 2>/dev/null
		return
	fi
	command -v "$1" >/dev/null || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]
}

# ensure_packages STEP "command package"...: installs, with apt-get, the Debian package of
# each pair whose command is missing, and records what it installed in
# $CACHE/setup-installed. Package scripts must not start daemons (the tests start their
# own, on loopback ports of their choosing): a policy-rc.d refuses while apt runs.
ensure_packages() {
	local step=$1 pair cmd pkg wanted=() missing=() t
	shift
	t=$(now_s)
	for pair in "$@"; do
		cmd=${pair% *} pkg=${pair#* }
		wanted+=("$pkg")
		have "$cmd" || missing+=("$pkg")
	done
	if ((${#missing[@]} == 0)); then
		say "$step" "ok (present: ${wanted[*]})"
		return 0
	fi
	if ((DRY_RUN)); then
		say "$step" "would install ${missing[*]}"
		return 0
	fi
	say "$step" "installing ${missing[*]}"
	[[ $(id -u) == 0 ]] || die "need root to install ${missing[*]} (or install them yourself)"
	local policy='' status=0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
	fi
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	} >&2 || status=$?
	[[ -n $policy ]] && rm -f "$policy"
	((status == 0)) || die "apt-get install ${missing[*]} failed"
	mkdir -p "$CACHE"
	printf '%s\n' "${missing[@]}" >>"$CACHE/setup-installed"
	say "$step" "ok ($(since "$t")s)"
}

# disable_at_boot [--root DIR] UNIT...: policy-rc.d keeps a package from starting its
# daemon, not from enabling it at boot, so nginx and Caddy would take ports 80 and 443
# after the next reboot. systemctl disable works without a running systemd (it edits the
# symlinks), and Debian's deb-systemd-helper then keeps the unit disabled on upgrades.
disable_at_boot() {
	local root=()
	if [[ ${1:-} == --root ]]; then
		root=(--root="$2")
		shift 2
	fi
	command -v systemctl >/dev/null || return 0
	systemctl "${root[@]}" --quiet disable "$@" 2>/dev/null || true
}

# ensure_venv builds the Python venv with milvus-lite (a real Milvus gRPC server) and
# pymilvus, pinned in test/clients/requirements.txt, at $VENV, and rebuilds it when that
# file changes.
ensure_venv() {
	local t want stamp
	t=$(now_s)
	want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
	stamp=$VENV/.milvus-lb-requirements
	if [[ -f $stamp && $(<"$stamp") == "$want" && -x $VENV/bin/milvus-lite ]]; then
		say "python venv (milvus-lite, pymilvus)" "ok (cached)"
		return 0
	fi
	if ((DRY_RUN)); then
		say "python venv (milvus-lite, pymilvus)" "would build in $VENV"
		return 0
	fi
	say "python venv (milvus-lite, pymilvus)" "building in $VENV"
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	# --no-compile: pip would byte-compile every module of numpy, pandas and pyarrow, most
	# of which nothing here imports (20 s of CPU). Importing what the demo and the tests use
	# compiles just that, and proves the pair imports: milvus-lite needs pymilvus' stubs at
	# run time.
	"$VENV/bin/pip" install --quiet --no-compile --disable-pip-version-check -r "$REQUIREMENTS" >&2
	"$VENV/bin/python" -c 'import milvus_lite.cmdline, pymilvus' >&2
	# The stamp goes last, so an interrupted build is redone next time.
	printf '%s' "$want" >"$stamp"
	say "python venv (milvus-lite, pymilvus)" "ok ($(since "$t")s)"
}

# release_version prints the release version, the one line of internal/version/VERSION that
# the binary embeds: the image tag and the Helm chart's appVersion.
release_version() {
	local v
	read -r v <"$ROOT/internal/version/VERSION" && [[ -n $v ]] || die "internal/version/VERSION is empty"
	printf '%s\n' "$v"
}

# release_stamp sets and exports COMMIT (the commit built) and MODIFIED (true if the tree has
# uncommitted changes), asking git for those not already set: a build without .git (the
# Dockerfile's) passes them in, and an empty COMMIT stands for unknown.
release_stamp() {
	export COMMIT=${COMMIT-$(git -C "$ROOT" rev-parse HEAD)}
	if [[ -z ${MODIFIED:-} ]]; then
		MODIFIED=false
		[[ -z $(git -C "$ROOT" status --porcelain) ]] || MODIFIED=true
	fi
	export MODIFIED
}
