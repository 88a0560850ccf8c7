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
  5. the latency of an uncached search (Strong) and a cached one (Eventually, repeated),
     p50 over N calls each, printed for docs/benchmarks.md (not asserted).

One line per step, then "cache_check: PASS ..."; a failure prints "cache_check: FAIL ...".

    cache_check.py --host 127.0.0.1 --port 443 --ca CertificateChain.pem \
        --server-name milvus-demo.milvus.io
"""

import argparse
import random
import statistics
import sys
import time
import traceback

from pymilvus import MilvusClient

from guide_check import DIM, expect, vectors  # beside this file

ROWS = 200


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

        uncached = p50_ms(lambda: client.search(name, data=probe, limit=5, consistency_level="Strong"), args.timing)
        client.search(name, data=probe, limit=5, consistency_level="Eventually")
        cached = p50_ms(lambda: client.search(name, data=probe, limit=5, consistency_level="Eventually"), args.timing)
        say(f"search p50: uncached (Strong) {uncached:.3f} ms, cached (Eventually) {cached:.3f} ms, "
            f"{uncached / cached:.1f}x")
    finally:
        client.drop_collection(name)
        client.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--server-name", default="milvus-demo.milvus.io")
    p.add_argument("--ca")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--timing", type=int, default=200)
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
