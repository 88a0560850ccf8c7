#!/usr/bin/env bash
# Installs what the demo and the tests need, on a fresh Debian 12 machine as root, and is
# fast when it has nothing to do.
#
#   scripts/setup.sh              everything the tests need (what follows, and every
#                                 executable scripts/setup.d/*.sh in name order)
#   scripts/setup.sh --demo       only what scripts/demo.sh runs: openssl, Python's venv
#                                 module, and a venv with milvus-lite and pymilvus
#   scripts/setup.sh --dry-run    say what would be installed or built, change nothing
#
# The venv is at $CACHE/venv, pinned by test/clients/requirements.txt and rebuilt when that
# file changes. $CACHE is $MILVUS_LB_CACHE, else /var/cache/milvus-lb as root, else
# ~/.cache/milvus-lb.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

demo=false
for arg in "$@"; do
	case $arg in
	--demo) demo=true ;;
	--dry-run) DRY_RUN=1 ;;
	*) die "usage: $0 [--demo] [--dry-run]" ;;
	esac
done
export DRY_RUN

start=$(now_s)
mkdir -p "$CACHE"
# Two setups at once (a developer's shell and a test run) would build the same venv twice.
exec 9>"$CACHE/setup.lock"
flock 9

# --- What the demo runs ----------------------------------------------------------------------
# openssl makes the demo's certificates; milvus-lite and pymilvus come from pip into the venv.
ensure_packages "debian packages (demo)" "openssl openssl" "python3-venv python3-venv"
for tool in go python3; do
	have "$tool" || die "$tool is not installed; this project needs Go >= 1.26 and Python >= 3.10"
done
ensure_venv

# --- What only the tests use -----------------------------------------------------------------
# HOOK: every executable scripts/setup.d/*.sh runs here, in name order, with CACHE and
# DRY_RUN exported: add a file there rather than editing this script.
if ! $demo; then
	export CACHE
	for hook in "$ROOT"/scripts/setup.d/*.sh; do
		[[ -x $hook ]] || continue
		t=$(now_s)
		"$hook" >&2
		say "${hook#"$ROOT"/}" "ok ($(since "$t")s)"
	done
fi

log "setup: done in $(since "$start")s (cache $CACHE)"
