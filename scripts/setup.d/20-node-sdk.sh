#!/usr/bin/env bash
# The Node SDK (@zilliz/milvus2-sdk-node) from test/node/package-lock.json, at
# $CACHE/node/<hash of package.json and the lock>, linked as test/node/node_modules.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

for tool in node npm; do
	have "$tool" || die "$tool is not installed; the tests need Node >= 20"
done
lock=$ROOT/test/node/package-lock.json
nodedir=$CACHE/node/$(cat "$ROOT/test/node/package.json" "$lock" | sha256sum | cut -c1-16)
if [[ -f $nodedir/.ok ]]; then
	say "node sdk" "ok (cached)"
elif ((DRY_RUN)); then
	say "node sdk" "would install in $nodedir"
	exit 0
else
	t=$(now_s)
	rm -rf "$nodedir"
	mkdir -p "$nodedir"
	cp "$ROOT/test/node/package.json" "$lock" "$nodedir/"
	(cd "$nodedir" && npm ci --no-audit --no-fund --loglevel=error >&2)
	touch "$nodedir/.ok"
	say "node sdk" "ok ($(since "$t")s)"
fi
link=$ROOT/test/node/node_modules
if [[ -e $link && ! -L $link ]]; then
	rm -rf "$link" # a developer's own npm install; the cached one is the pinned one
fi
ln -sfn "$nodedir/node_modules" "$link"
