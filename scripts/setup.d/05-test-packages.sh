#!/usr/bin/env bash
# The Debian packages only the tests use: etcd (for kube-apiserver), nginx, HAProxy and
# Caddy (the benchmarks' peers), h2load (nghttp2-client), kubectl (kubernetes-client, only
# where no kubectl exists: on some machines another package ships /usr/bin/kubectl and
# conflicts with Debian's) and gcc (go test -race needs cgo). The tests start their own
# etcd, nginx, HAProxy and Caddy on loopback ports; the system services of the ones
# installed here are disabled at boot.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ensure_packages "debian packages (tests)" "etcd etcd-server" "nginx nginx-light" "haproxy haproxy" \
	"caddy caddy" "h2load nghttp2-client" "kubectl kubernetes-client" "gcc gcc"

# The units of the daemons this setup installed, now or on an earlier run (a daemon the
# machine had before is the owner's business).
units=()
if [[ -f $CACHE/setup-installed ]]; then
	while read -r pkg; do
		case $pkg in
		etcd-server) units+=(etcd.service) ;;
		nginx-light) units+=(nginx.service) ;;
		haproxy) units+=(haproxy.service) ;;
		caddy) units+=(caddy.service) ;;
		esac
	done <"$CACHE/setup-installed"
fi
if ((${#units[@]} == 0)); then
	exit 0
elif ((DRY_RUN)); then
	say "test daemons" "would disable at boot: ${units[*]}"
else
	disable_at_boot "${units[@]}"
	say "test daemons" "disabled at boot: ${units[*]}"
fi
