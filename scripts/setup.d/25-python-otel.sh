#!/usr/bin/env bash
# OpenTelemetry for Python (test/clients/otel-requirements.txt), for the end-to-end tracing
# test: installed with --no-deps into $CACHE/pyotel-<hash of that file>, beside the venv and
# on the test client's PYTHONPATH, so that the venv (and the demo) stay as they are.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

req=$ROOT/test/clients/otel-requirements.txt
dir=$CACHE/pyotel-$(sha256sum "$req" | cut -c1-16)
if [[ -f $dir/.ok ]]; then
	say "python opentelemetry" "ok (cached)"
	exit 0
fi
if ((DRY_RUN)); then
	say "python opentelemetry" "would install in $dir"
	exit 0
fi
[[ -x $VENV/bin/pip ]] || die "no venv at $VENV: scripts/setup.sh builds it first"
t=$(now_s)
rm -rf "$dir"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$dir" -r "$req" >&2
touch "$dir/.ok"
say "python opentelemetry" "ok ($(since "$t")s)"
