# shellcheck shell=bash
# Helpers shared by scripts/setup.sh, scripts/demo.sh and scripts/test.sh. Source it; it
# defines functions and a few variables and runs nothing.

# ROOT is the repository root, whatever directory the script was started from.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# CACHE survives between runs on the same machine (a fresh clone in CI reuses what an earlier
# run built). test/testenv computes the same path: keep the two rules identical.
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
