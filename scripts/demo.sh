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
# started is stopped when it exits (Ctrl-C included).
#
#   scripts/demo.sh          run the demo and exit with the check's status
#   scripts/demo.sh --keep   leave milvus-lb and milvus-lite running until Ctrl-C
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep=false
case "${1:-}" in
--keep) keep=true ;;
"") ;;
*) die "usage: $0 [--keep]" ;;
esac

HOST=milvus-demo.milvus.io
bold='' green='' red='' plain=''
if [[ -t 1 ]]; then
	bold=$'\033[1m' green=$'\033[1;32m' red=$'\033[1;31m' plain=$'\033[0m'
fi
banner() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; }

bash "$ROOT/scripts/setup.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/milvus-lb-demo.XXXXXX")
lite_pid='' lb_pid=''
cleanup() {
	local status=$?
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

banner "building milvus-lb"
(cd "$ROOT" && go build -o "$work/bin/milvus-lb" ./cmd/milvus-lb)
export PATH=$work/bin:$PATH
cd "$work"

banner "0. a Milvus is running: milvus-lite, the Service milvus/milvus-demo"
lite_port=$(free_port)
PYTHONUNBUFFERED=1 "$VENV/bin/python" "$ROOT/test/clients/milvus_lite_server.py" --data-dir "$work/milvus-data" \
	--host 127.0.0.1 --port "$lite_port" >"$work/milvus-lite.log" 2>&1 &
lite_pid=$!
wait_port "$lite_port" "$lite_pid" 60 || die "milvus-lite did not start"
echo "milvus-lite listening on 127.0.0.1:$lite_port"

banner "1. import the certificate"
gen_certs "$work" "$HOST"
echo "made Certificate.pem, CertificateChain.pem and PrivateKey.pem for $HOST (test CA)"
show milvus-lb cert import --certificate fileb://Certificate.pem --certificate-chain fileb://CertificateChain.pem --private-key fileb://PrivateKey.pem
import=$(milvus-lb cert import --certificate fileb://Certificate.pem \
	--certificate-chain fileb://CertificateChain.pem \
	--private-key fileb://PrivateKey.pem --state-dir "$work/state")
echo "$import"
arn=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["CertificateArn"])' <<<"$import")

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
show milvus-lb serve -f ingress.yaml -f milvus.yaml --admin-addr "$admin" --bind-address 127.0.0.1 --advertise-address 127.0.0.1
milvus-lb serve -f ingress.yaml -f milvus.yaml --state-dir "$work/state" --admin-addr "$admin" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 >"$work/milvus-lb.log" 2>&1 &
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
show milvus-lb get ingress
milvus-lb get ingress --admin-addr "$admin"

banner "4. the guide's pymilvus check through milvus-lb"
show python guide_check.py --host "$address" --port "$port" --server-name "$HOST" --ca CertificateChain.pem
set +e
"$VENV/bin/python" "$ROOT/test/clients/guide_check.py" --host "$address" --port "$port" \
	--server-name "$HOST" --ca "$work/CertificateChain.pem"
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
	echo "try: $VENV/bin/python $ROOT/test/clients/guide_check.py --host $address --port $port --ca $work/CertificateChain.pem"
	echo "press Ctrl-C to stop everything"
	wait "$lb_pid"
fi
