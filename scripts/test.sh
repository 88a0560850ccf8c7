#!/usr/bin/env bash
# Runs every test of milvus-lb on this machine, after installing what they need:
#   1. scripts/setup.sh (Debian packages, the milvus-lite/pymilvus venv, the Node SDK, the Go
#      client; fast when cached);
#   2. gofmt, go vet and go mod tidy -diff on the main module;
#   3. the extra suites: every executable scripts/test.d/*.sh, in name order;
#   4. go test -race -count=1 ./... on the main module, which includes the end-to-end tests
#      (test/e2e: real milvus-lite, real milvus-lb, pymilvus, the Node SDK and the Go client
#      over TLS).
# Prints a summary and exits non-zero if anything failed. .ci/run runs exactly this.
#
#   GO_TEST_FLAGS   extra flags for go test (e.g. "-run TestGuide -v")
#   GO_TEST_PKGS    packages to test (default ./...)
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT" || exit 1

start=$(now_s)
summary=()
failed=0
logdir=$(mktemp -d "${TMPDIR:-/tmp}/milvus-lb-test.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

# step NAME CMD...: runs CMD, streaming its output, and records the result for the summary.
step() {
	local name=$1 t status
	shift
	printf '\n== %s\n' "$name"
	t=$(now_s)
	"$@"
	status=$?
	if ((status == 0)); then
		summary+=("$(printf '  %-34s ok    %6ss' "$name" "$(since "$t")")")
	else
		summary+=("$(printf '  %-34s FAIL  %6ss  (exit %d)' "$name" "$(since "$t")" "$status")")
		failed=$((failed + 1))
	fi
	return "$status"
}

gofmt_check() {
	local files
	# Every tracked Go file, in every module of the repository.
	files=$(git ls-files -z '*.go' | xargs -0 gofmt -l 2>&1)
	if [[ -n $files ]]; then
		echo "not gofmt'ed:"
		echo "$files"
		return 1
	fi
	echo "all files formatted"
}

go_test() {
	# The report is built first, so that its own compile is not counted as a test failure.
	go build -o "$logdir/testreport" ./test/testreport || return 1
	# shellcheck disable=SC2086  # GO_TEST_FLAGS is a list of flags
	go test -race -count=1 -timeout 30m -json ${GO_TEST_FLAGS:-} ${GO_TEST_PKGS:-./...} 2>&1 |
		tee "$logdir/go-test.json" | "$logdir/testreport" | tee "$logdir/go-test.txt"
	local codes=("${PIPESTATUS[@]}")
	# The report decides (it has seen every test); go test's own status catches a stream
	# that ended early.
	((codes[2] == 0 && codes[0] == 0))
}

if ! step "setup" bash scripts/setup.sh; then
	echo "test.sh: setup failed; not running the tests" >&2
	exit 1
fi
step "gofmt" gofmt_check
step "go vet" go vet ./...
# go.mod and go.sum must say exactly what the code imports: a direct import marked
# "// indirect", or a requirement nothing uses, fails here rather than in a later tidy.
step "go mod tidy" go mod tidy -diff
step "go vet (test/goclient)" bash -c 'cd test/goclient && CGO_ENABLED=0 go vet ./...'

# HOOK: extra suites and their preparation. Every executable scripts/test.d/*.sh runs here,
# in name order, from the repository root, with CACHE (scripts/lib.sh) exported; a non-zero
# exit fails the run. Add a file there rather than editing this script.
export CACHE
for hook in scripts/test.d/*.sh; do
	[[ -x $hook ]] || continue
	step "${hook#scripts/}" "$hook"
done

step "go test -race ./..." go_test

printf '\n== summary (%ss in all)\n' "$(since "$start")"
printf '%s\n' "${summary[@]}"
printf 'steps failed: %d of %d\n' "$failed" "${#summary[@]}"
# The last line is the test count, in the form CI reads.
grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$logdir/go-test.txt" 2>/dev/null | tail -n 1 ||
	echo "tests: 0 passed, 1 failed (go test did not report)"
if ((failed > 0)); then
	exit 1
fi
