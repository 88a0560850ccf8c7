#!/usr/bin/env bash
# Builds (or finds cached) kube-apiserver before the Go tests run: the controller tests
# (internal/testkit/kubetest, internal/source, test/controller) fail, telling the user to run
# scripts/kube-apiserver.sh, when it is missing. Cold: about five minutes.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../kube-apiserver.sh" >&2
