#!/usr/bin/env bash
# Installs Debian's chromium for the admin page test (test/adminpage), which loads the
# page in a real headless browser. apt-get runs only when chromium is missing.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

if command -v chromium >/dev/null; then
	exit 0
fi
[[ $(id -u) == 0 ]] || die "need root to install chromium (or install Debian's chromium package yourself)"
export DEBIAN_FRONTEND=noninteractive
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >&2 ||
	die "apt-get install chromium failed"
command -v chromium >/dev/null || die "chromium is not on PATH after installing it"
