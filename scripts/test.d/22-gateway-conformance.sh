#!/usr/bin/env bash
# Builds (or finds cached) the upstream Gateway API conformance suite, its echo server and
# CRDs before the Go tests run: test/gatewayconformance fails, telling the user to run
# scripts/gateway-conformance.sh, when they are missing. Cold: about three minutes.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../gateway-conformance.sh" >/dev/null
