#!/usr/bin/env bash
# The guide "Set up a Layer-7 Load Balancer for Milvus on AWS", done on this machine with
# milvus-lb and a real Milvus (milvus-lite), step by step:
#   0. a Milvus is running (milvus-lite on a loopback port, the Service milvus-demo);
#   1. make Certificate.pem, CertificateChain.pem and PrivateKey.pem for milvus-demo.milvus.io
#      (a throwaway CA, with openssl) and import them: `milvus-lb cert import` prints the ARN;
#   2. write the guide's ingress.yaml with that ARN;
#   3. `milvus-lb serve -f ingress.yaml -f milvus.yaml`, then `milvus-lb get ingress` until
#      ADDRESS fills in;
#   4. run the guide's pymilvus check through it, with TLS and server_name.
# Everything lives in a temporary directory and listens on 127.0.0.1 only; everything it
# started is stopped when it exits (Ctrl-C included). Each command it runs is printed first,
# as it runs it, from that directory.
#
# It installs only what it runs (scripts/setup.sh --demo): openssl, Python's venv module,
# and a venv with milvus-lite and pymilvus; Go builds milvus-lb.
#
#   scripts/demo.sh            run the demo and exit with the check's status
#   scripts/demo.sh --keep     leave milvus-lb and milvus-lite running until Ctrl-C
#   scripts/demo.sh --dry-run  say what it would install, and stop
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep=false
case "${1:-}" in
--keep) keep=true ;;
--dry-run) exec bash "$ROOT/scripts/setup.sh" --demo --dry-run ;;
"") ;;
*) die "usage: $0 [--keep|--dry-run]" ;;
esac

HOST=milvus-demo.milvus.io
bold='' green='' red='' plain=''
if [[ -t 1 ]]; then
	bold=$'\033[1m' green=$'\033[1;32m' red=$'\033[1;31m' plain=$'\033[0m'
fi
banner() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
# show CMD... prints a command as the demo runs it, each word shell-quoted if it must be.
show() {
	printf '$'
	printf ' %q' "$@"
	printf '\n'
}

work=$(mktemp -d "${TMPDIR:-/tmp}/milvus-lb-demo.XXXXXX")
lite_pid='' lb_pid='' build_pid=''
cleanup() {
	local status=$?
	[[ -n $build_pid ]] && kill "$build_pid" 2>/dev/null
	[[ -n $lb_pid ]] && stop_pid "$lb_pid" 30
	[[ -n $lite_pid ]] && stop_pid "$lite_pid" 15
	if ((status != 0)); then
		for f in "$work"/*.log; do
			[[ -f $f ]] || continue
			log "----- $(basename "$f") -----"
			tail -n 30 "$f" >&2
		done
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$work"

# milvus-lb builds while setup installs the rest (mostly waiting for pip's downloads). It
# goes into the cache, not the temporary directory: go build does not link again an output
# that is up to date, which saves most of a cached run (15 s of 25 on a busy 2-core machine).
banner "building milvus-lb while setup installs what the demo runs"
have go || die "go is not installed; milvus-lb needs Go >= 1.26"
mkdir -p "$CACHE/demo"
build=(go -C "$ROOT" build -o "$CACHE/demo/milvus-lb" ./cmd/milvus-lb)
show "${build[@]}"
"${build[@]}" >build.log 2>&1 &
build_pid=$!
bash "$ROOT/scripts/setup.sh" --demo
wait "$build_pid" || die "go build failed"
build_pid=''
export PATH=$CACHE/demo:$PATH

banner "0. a Milvus is running: milvus-lite, the Service milvus/milvus-demo"
lite_port=$(free_port)
lite=("$VENV/bin/python" "$ROOT/test/clients/milvus_lite_server.py" --data-dir milvus-data --host 127.0.0.1 --port "$lite_port")
show "${lite[@]}"
PYTHONUNBUFFERED=1 "${lite[@]}" >milvus-lite.log 2>&1 &
lite_pid=$!
wait_port "$lite_port" "$lite_pid" 60 || die "milvus-lite did not start"
echo "milvus-lite listening on 127.0.0.1:$lite_port"

banner "1. import the certificate"
gen_certs "$work" "$HOST"
echo "made Certificate.pem, CertificateChain.pem and PrivateKey.pem for $HOST (test CA)"
# The demo keeps its certificate store in its own directory rather than the user's
# (~/.local/state/milvus-lb): cert import and serve are both told where it is.
import=(milvus-lb cert import --certificate fileb://Certificate.pem --certificate-chain fileb://CertificateChain.pem
	--private-key fileb://PrivateKey.pem --state-dir state)
show "${import[@]}"
out=$("${import[@]}")
echo "$out"
arn=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["CertificateArn"])' <<<"$out")

banner "2. ingress.yaml with that ARN"
if port_free 443; then
	port=443
else
	port=$(free_port)
	echo "note: port 443 is taken or needs root here; listening on $port instead (only listen-ports changes)"
fi
# The guide's file, test/testdata/guide/ingress.yaml, with only the ARN (and, if need be,
# the port) replaced.
sed -e "s|arn:aws:acm:region:account-id:certificate/certificate-id|$arn|" \
	-e "s|'\[{\"HTTPS\":443}\]'|'[{\"HTTPS\":$port}]'|" \
	"$ROOT/test/testdata/guide/ingress.yaml" >ingress.yaml
cat ingress.yaml
# What a cluster has and the guide takes as given: the Service and its endpoints (here, the
# milvus-lite above, where a cluster would list its proxy pods).
cat >milvus.yaml <<EOF
apiVersion: v1
kind: Service
metadata:
  namespace: milvus
  name: milvus-demo
spec:
  ports:
    - name: milvus
      port: 19530
      targetPort: $lite_port
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: milvus
  name: milvus-demo-1
  labels:
    kubernetes.io/service-name: milvus-demo
addressType: IPv4
ports:
  - name: milvus
    port: $lite_port
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
EOF

banner "3. serve it and wait for ADDRESS"
admin=127.0.0.1:$(free_port)
serve=(milvus-lb serve -f ingress.yaml -f milvus.yaml --state-dir state --admin-addr "$admin"
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1)
show "${serve[@]}"
"${serve[@]}" >milvus-lb.log 2>&1 &
lb_pid=$!
address=''
for _ in $(seq 1 150); do
	kill -0 "$lb_pid" 2>/dev/null || die "milvus-lb serve exited"
	if json=$(milvus-lb get ingress milvus-demo -o json --admin-addr "$admin" 2>/dev/null); then
		address=$(python3 -c 'import json, sys; rows = json.load(sys.stdin); print(rows[0]["address"] if rows else "")' <<<"$json")
		[[ -n $address ]] && break
	fi
	sleep 0.2
done
[[ -n $address ]] || die "get ingress never showed an ADDRESS"
get=(milvus-lb get ingress --admin-addr "$admin")
show "${get[@]}"
"${get[@]}"

banner "4. the guide's pymilvus check through milvus-lb"
check=("$VENV/bin/python" "$ROOT/test/clients/guide_check.py" --host "$address" --port "$port"
	--server-name "$HOST" --ca CertificateChain.pem)
show "${check[@]}"
set +e
"${check[@]}"
status=$?
set -e

echo
if ((status == 0)); then
	printf '%sdemo: PASS%s: pymilvus reached Milvus through milvus-lb at %s:%s with TLS (server_name %s)\n' "$green" "$plain" "$address" "$port" "$HOST"
else
	printf '%sdemo: FAIL%s: the pymilvus check failed (status %s); logs follow\n' "$red" "$plain" "$status"
	exit "$status"
fi

if $keep; then
	echo
	echo "milvus-lb is serving on $address:$port (admin http://$admin/); files in $work"
	echo "try, in $work: $(show "${check[@]}")"
	echo "press Ctrl-C to stop everything"
	wait "$lb_pid"
fi
