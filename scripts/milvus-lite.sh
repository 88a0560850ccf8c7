#!/usr/bin/env bash
# Runs a milvus-lite server (a real Milvus gRPC server, plaintext h2c) in the foreground from
# the venv that scripts/setup.sh builds. Stop it with SIGINT (Ctrl-C) or SIGTERM: both drain
# its calls and close its data (test/clients/milvus_lite_server.py).
#
#   scripts/milvus-lite.sh [--data-dir DIR] [--port PORT] [--host 127.0.0.1]
# Defaults: a new temporary data dir (removed on exit), port 19530, host 127.0.0.1.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $VENV/bin/python ]] || die "no venv at $VENV: run scripts/setup.sh first"
data='' port=19530 host=127.0.0.1
while (($#)); do
	case $1 in
	--data-dir) data=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--host) host=$2; shift 2 ;;
	*) die "usage: $0 [--data-dir DIR] [--port PORT] [--host HOST]" ;;
	esac
done
if [[ -z $data ]]; then
	data=$(mktemp -d "${TMPDIR:-/tmp}/milvus-lite.XXXXXX")
	trap 'rm -rf "$data"' EXIT
	# Not exec: the trap must run after the server stops.
	PYTHONUNBUFFERED=1 "$VENV/bin/python" "$ROOT/test/clients/milvus_lite_server.py" \
		--data-dir "$data" --host "$host" --port "$port"
else
	PYTHONUNBUFFERED=1 exec "$VENV/bin/python" "$ROOT/test/clients/milvus_lite_server.py" \
		--data-dir "$data" --host "$host" --port "$port"
fi
