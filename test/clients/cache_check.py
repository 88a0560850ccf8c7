#!/usr/bin/env python3
"""milvus-lb's reply cache, seen by pymilvus (docs/cache.md).

Through a balancer whose Ingress has milvus-lb.io/cache, with MilvusClient:

  1. a collection of ROWS rows, indexed and loaded;
  2. the same Eventually search, repeated: every result identical to the first;
  3. an insert, then a search with Strong and one with Session (pymilvus sends the insert's
     timestamp as the guarantee), each after the same search filled the cache: both see the
     new row at once, every time; a Session query sees every row inserted;
  4. drop and re-create the collection under its name: a search cached before does not
     answer after;
  5. aliases: an Eventually search through an alias, cached, sees a row inserted through
     the alias and one inserted through the collection's name; after the alias is altered
     to another collection, the search through it answers with that collection's rows;
  6. with --direct-port (milvus-lite itself, not through milvus-lb) and --bounded (the
     Ingress's boundedStaleness, in seconds): a row inserted directly, which milvus-lb does
     not see, is seen by every Bounded search through milvus-lb that starts once the bound
     has passed since the insert ended;
  7. the latency of an uncached search (Strong) and a cached one (Eventually, repeated),
     p50 over N calls each, and what bounds the second: pymilvus's own time per call with a
     stub that answers at once (no network), and a raw gRPC call of the same request
     through milvus-lb answered from the cache; printed for docs/benchmarks.md (not asserted);
  8. with --large-rows N[,N...]: the same timing on a collection of realistic size, N rows of
     768-dim vectors (a common text-embedding size) with milvus-lite's AUTOINDEX (HNSW,
     COSINE), flushed and loaded, as a RAG or semantic-cache collection is: an uncached
     search then costs what a search of real data costs. Asserted: the cached answer is
     the uncached one (ids and distances); the times are printed, not asserted.

One line per step, then "cache_check: PASS ..."; a failure prints "cache_check: FAIL ...".

    cache_check.py --host 127.0.0.1 --port 443 --ca CertificateChain.pem \
        --server-name milvus-demo.milvus.io
"""

import argparse
import os
import random
import statistics
import sys
import time
import traceback

from pymilvus import MilvusClient

from guide_check import DIM, expect, vectors  # beside this file

ROWS = 200
LARGE_DIM = 768  # --large-rows: a common text-embedding size
LARGE_BATCH = 5000  # rows per insert: 15 MB messages


def say(msg):
    print(f"cache_check: {msg}", flush=True)


def ids(hits):
    return [h["id"] for h in hits[0]]


def p50_ms(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def run(args):
    if args.plain:
        client = MilvusClient(uri=f"http://{args.host}:{args.port}")
    else:
        client = MilvusClient(uri=f"https://{args.host}:{args.port}", server_name=args.server_name,
                              server_pem_path=args.ca)
    name = f"cache_check_{random.randrange(1 << 30)}"
    try:
        client.create_collection(name, dimension=DIM, metric_type="L2", auto_id=False)
        vecs = vectors(ROWS, 1)
        client.insert(name, [{"id": i, "vector": vecs[i]} for i in range(ROWS)])
        client.load_collection(name)
        say(f"collection {name}: {ROWS} rows, loaded")

        probe = [[0.5] * DIM]
        first = client.search(name, data=probe, limit=5, consistency_level="Strong")
        again = [client.search(name, data=probe, limit=5, consistency_level="Eventually") for _ in range(args.repeat)]
        for r in again:
            expect(ids(r) == ids(first), f"a repeated search returned {ids(r)}, the first {ids(first)}")
            expect([h["distance"] for h in r[0]] == [h["distance"] for h in first[0]], "distances differ")
        say(f"{args.repeat} repeated Eventually searches: identical results {ids(first)}")

        # Each new row exactly at a probe of its own: the top hit of a search that sees it.
        for level in ("Strong", "Session"):
            for i in range(3):
                new_id = ROWS + 10 * (level == "Session") + i
                at = [[2.0 + new_id / 100] * DIM]  # outside the [0, 1) cube of the first rows
                client.search(name, data=at, limit=5, consistency_level=level)  # fill the cache
                client.insert(name, [{"id": new_id, "vector": at[0]}])
                hits = client.search(name, data=at, limit=5, consistency_level=level)
                expect(ids(hits)[0] == new_id, f"{level}: after inserting {new_id}, top hit {ids(hits)}")
            say(f"{level}: the row just inserted is the top hit, 3 times of 3")

        rows = client.query(name, filter=f"id >= {ROWS}", output_fields=["id"], consistency_level="Session")
        expect(len(rows) == 6, f"query after the inserts: {len(rows)} rows, want 6")
        say("Session query sees the 6 inserted rows")

        # Drop and re-create the collection under the same name, with other rows: a search
        # cached before must not answer after.
        before = client.search(name, data=probe, limit=5, consistency_level="Eventually")
        client.drop_collection(name)
        client.create_collection(name, dimension=DIM, metric_type="L2", auto_id=False)
        client.insert(name, [{"id": 1000 + i, "vector": v} for i, v in enumerate(vectors(10, 7))])
        client.load_collection(name)
        after = client.search(name, data=probe, limit=5, consistency_level="Eventually")
        expect(all(i >= 1000 for i in ids(after)), f"after drop and re-create, search returned {ids(after)} (before: {ids(before)})")
        say(f"drop and re-create: the search sees the new rows {ids(after)}")

        check_aliases(client, name)
        if args.direct_port:
            check_bounded(client, name, args)
        rows = client.get_collection_stats(name)["row_count"]  # re-created above: a few rows
        timing(client, name, probe, args.timing, f"{rows} rows of {DIM} dims, {client.describe_index(name, 'vector').get('index_type')}")
        for rows in args.large_rows:
            large(client, name + "_large", rows, args)
    finally:
        cleanup(client, name)


def cleanup(client, name):
    """Drops what run made, each step on its own: a failure above is the one reported."""
    for step in (lambda: client.drop_alias(name + "_alias"), lambda: client.drop_collection(name),
                 lambda: client.drop_collection(name + "_b"),
                 lambda: client.drop_collection(name + "_large"), client.close):
        try:
            step()
        except Exception as e:  # noqa: BLE001 - cleanup only
            say(f"cleanup: {e}")


def check_aliases(client, name):
    """An alias of name, then of name_b: what a search through it answers follows every
    write through either name and the alias change."""
    other, alias = name + "_b", name + "_alias"
    client.create_collection(other, dimension=DIM, metric_type="L2", auto_id=False)
    client.insert(other, [{"id": 2000 + i, "vector": v} for i, v in enumerate(vectors(10, 9))])
    client.load_collection(other)
    client.create_alias(name, alias)
    client.describe_collection(alias)  # what milvus-lb learns the alias resolves to
    for i, via in enumerate((alias, name)):
        new_id = 3000 + i
        at = [[3.0 + i / 10] * DIM]
        client.search(alias, data=at, limit=5, consistency_level="Eventually")  # fill the cache
        client.search(name, data=at, limit=5, consistency_level="Eventually")
        client.insert(via, [{"id": new_id, "vector": at[0]}])
        for searched in (alias, name):
            hits = client.search(searched, data=at, limit=5, consistency_level="Eventually")
            expect(ids(hits)[0] == new_id, f"inserted {new_id} through {via}: a search through {searched} has top hit {ids(hits)}")
        say(f"a row inserted through the {'alias' if via == alias else 'name'} is the top hit of the alias's and the name's searches")
    probe = [[0.5] * DIM]
    before = client.search(alias, data=probe, limit=5, consistency_level="Eventually")
    client.alter_alias(other, alias)
    after = client.search(alias, data=probe, limit=5, consistency_level="Eventually")
    expect(all(i >= 2000 for i in ids(after)), f"after the alias swap the search through it returned {ids(after)} (before: {ids(before)})")
    say(f"alias swap: the search through the alias sees the other collection's rows {ids(after)}")


def check_bounded(client, name, args):
    """A write milvus-lb does not see is seen by every Bounded search that starts once the
    bound has passed since it."""
    direct = MilvusClient(uri=f"http://127.0.0.1:{args.direct_port}")
    try:
        new_id, at = 4000, [[4.0] * DIM]
        client.search(name, data=at, limit=5, consistency_level="Bounded")  # fill the cache
        direct.insert(name, [{"id": new_id, "vector": at[0]}])
        inserted = time.monotonic()
        stale = fresh = past = 0
        while past < 5:  # searches that start past the bound
            start = time.monotonic()
            hits = client.search(name, data=at, limit=5, consistency_level="Bounded")
            seen = ids(hits)[0] == new_id
            if start >= inserted + args.bounded:
                expect(seen, f"a Bounded search {start - inserted:.3f} s after a direct insert, past the bound of "
                             f"{args.bounded} s, has top hit {ids(hits)}")
                past += 1
            stale, fresh = stale + (not seen), fresh + seen
            time.sleep(0.02)
        say(f"Bounded ({args.bounded} s): a direct insert, not seen by milvus-lb, is seen by every search past the bound "
            f"({stale} stale answers within it, {fresh} fresh)")
    finally:
        direct.close()


def large(client, name, rows, args):
    """A collection of rows rows of LARGE_DIM dims, indexed, flushed and loaded, and the
    timing step on it."""
    import numpy as np  # pymilvus depends on it
    from pymilvus import DataType

    start = time.monotonic()
    # A schema of its own, as a RAG application declares one: the quick setup's dynamic
    # field makes milvus-lite's searches tens of times slower (1 s at 20,000 rows), which
    # says nothing about Milvus.
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=LARGE_DIM)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    rng = np.random.default_rng(1)
    for first in range(0, rows, LARGE_BATCH):
        vecs = rng.random((min(LARGE_BATCH, rows - first), LARGE_DIM), dtype=np.float32)
        client.insert(name, [{"id": first + i, "vector": v} for i, v in enumerate(vecs)])
    client.flush(name)
    client.load_collection(name)
    probe = [rng.random(LARGE_DIM, dtype=np.float32).tolist()]
    desc = settle(client, name, rows, probe, args.server_pid)
    say(f"collection {name}: {rows} rows of {LARGE_DIM} dims, index {desc.get('index_type')} "
        f"{desc.get('metric_type')}, {desc.get('indexed_rows')} rows indexed, loaded and settled in "
        f"{time.monotonic() - start:.1f} s")
    strong = client.search(name, data=probe, limit=10, consistency_level="Strong")
    client.search(name, data=probe, limit=10, consistency_level="Eventually")
    cached = client.search(name, data=probe, limit=10, consistency_level="Eventually")
    expect(ids(cached) == ids(strong) and [h["distance"] for h in cached[0]] == [h["distance"] for h in strong[0]],
           f"the cached search answered {ids(cached)}, the uncached one {ids(strong)}")
    timing(client, name, probe, args.timing, f"{rows} rows of {LARGE_DIM} dims, {desc.get('index_type')}", limit=10)
    client.drop_collection(name)


def server_cpu(pid):
    """The CPU seconds the process pid has used (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(client, name, rows, probe, pid):
    """Waits until every row is indexed, milvus-lite (process pid) is idle, and the answer
    to probe has been the same for 4 searches a second apart. After a load milvus-lite
    goes on building its index in the background for minutes on a busy machine, while
    describe_index already counts every row and searches are exact and slow (400 ms of
    CPU at 20,000 rows, 30 ms once the index is built): timing those says nothing."""
    deadline = time.monotonic() + 600
    while True:
        desc = client.describe_index(name, "vector")
        if desc.get("indexed_rows") == rows and not desc.get("pending_index_rows"):
            break
        expect(time.monotonic() < deadline, f"the index of {name} is not finished: {desc}")
        time.sleep(0.2)
    while pid:  # under 5 % of a CPU for 2 s
        before = server_cpu(pid)
        time.sleep(2)
        if server_cpu(pid) - before < 0.1:
            break
        expect(time.monotonic() < deadline, f"milvus-lite is still busy after {name} was loaded")
    last, same = None, 0
    while same < 4:
        hits = client.search(name, data=probe, limit=10, consistency_level="Strong")[0]
        now = [(h["id"], h["distance"]) for h in hits]
        same = same + 1 if now == last else 1
        last = now
        expect(time.monotonic() < deadline, f"the answer of {name} still changes")
        time.sleep(1)
    return desc


def timing(client, name, probe, n, label, limit=5):
    """p50 of uncached and cached searches, and what bounds the cached one."""
    uncached = p50_ms(lambda: client.search(name, data=probe, limit=limit, consistency_level="Strong"), n)
    client.search(name, data=probe, limit=limit, consistency_level="Eventually")
    cached = p50_ms(lambda: client.search(name, data=probe, limit=limit, consistency_level="Eventually"), n)
    say(f"search p50 ({label}): uncached (Strong) {uncached:.3f} ms, cached (Eventually) {cached:.3f} ms, "
        f"{uncached / cached:.1f}x")

    # pymilvus alone: the same call with its stub answering at once with the reply milvus-lb
    # gave (building the request and reading the reply, no network, no server).
    conn = client._get_connection()
    stub, seen = conn._stub, {}

    class Instant:
        def __getattr__(self, attr):
            return getattr(stub, attr)

        def Search(self, request, **kw):
            if "reply" not in seen:
                seen["request"], seen["reply"] = request, stub.Search(request, **kw)
            return seen["reply"]

    conn._stub = Instant()
    try:
        client.search(name, data=probe, limit=limit, consistency_level="Eventually")
        alone = p50_ms(lambda: client.search(name, data=probe, limit=limit, consistency_level="Eventually"), n)
    finally:
        conn._stub = stub
    # gRPC alone: the request pymilvus made, sent as bytes on pymilvus's channel and
    # answered from milvus-lb's cache; the reply not decoded.
    raw = conn._channel.unary_unary("/milvus.proto.milvus.MilvusService/Search")
    body = seen["request"].SerializeToString()
    raw(body)
    wire = p50_ms(lambda: raw(body), n)
    # pymilvus's stub: the same call through its channel's interceptors, the reply decoded
    # into protobuf (what the instant stub above left out).
    via_stub = p50_ms(lambda: stub.Search(seen["request"]), n)
    say(f"cached search p50 {cached:.3f} ms = pymilvus alone {alone:.3f} ms + its stub's call answered from "
        f"the cache {via_stub:.3f} ms (of which the bytes on the wire, a raw gRPC call: {wire:.3f} ms) "
        f"(+{cached - alone - via_stub:.3f}); the most any cache can give: "
        f"{uncached:.3f} / ({alone:.3f} + {via_stub:.3f}) = {uncached / (alone + via_stub):.1f}x; "
        f"with a server and a gRPC stack costing nothing: {uncached / alone:.1f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--server-name", default="milvus-demo.milvus.io")
    p.add_argument("--ca")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--timing", type=int, default=200)
    p.add_argument("--direct-port", type=int, help="milvus-lite's own port, for the Bounded check")
    p.add_argument("--bounded", type=float, default=1.0, help="the Ingress's boundedStaleness, seconds")
    p.add_argument("--server-pid", type=int, help="milvus-lite's process, watched until it is idle after a load")
    p.add_argument("--large-rows", type=lambda v: [int(n) for n in v.split(",")], default=[],
                   help="also time searches on collections of this many 768-dim rows (comma-separated sizes)")
    args = p.parse_args()
    try:
        run(args)
    except Exception:
        traceback.print_exc()
        say("FAIL")
        return 1
    say("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
