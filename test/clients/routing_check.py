#!/usr/bin/env python3
"""Routing on what Milvus calls say, checked with pymilvus through milvus-lb.

Two Milvus servers stand for two clusters: A (Service milvus-demo, the default route) and
B (Service milvus-b). The Ingress sends to B: database tenant_b (milvus-lb's "database"
condition), database tenant_c (the ALB's http-header condition on the dbname metadata),
and collections logs_* (milvus-lb's "collection" condition); and it limits calls naming
collection "limited" (milvus-lb.io/rate-limits); and B is A's standby cluster
(milvus-lb.io/standby): reads that accept stale data (consistency level Bounded or
Eventually) go to it, other reads and writes to A. This script prepares each server
directly, then checks through the balancer that:

  1. MilvusClient(db_name="tenant_b") and the ORM's connections.connect(db_name=...) see
     tenant_b's collections, which only B has; likewise tenant_c;
  2. the default database is A's, and a logs_* collection is B's;
  2b. a search with pymilvus's consistency_level="Eventually" or "Bounded" reaches B,
     "Strong" and "Session" reach A (both have collection "shared", with a different row),
     an Eventually search with a guarantee_timestamp of just now reaches A and one of a
     minute ago B, and an insert into "shared" reaches A;
  3. over the limit, pymilvus raises Milvus's own rate-limit error (code 8) when told not
     to retry, and by default rides through it: it backs off and the call succeeds.

One line per step, then "routing_check: PASS" or "routing_check: FAIL ..." (exit 1).

    routing_check.py --host 127.0.0.1 --port 443 --server-name milvus-demo.milvus.io \
        --ca CertificateChain.pem --direct-a 127.0.0.1:19530 --direct-b 127.0.0.1:19531
"""

import argparse
import sys
import time
import traceback
import warnings

from pymilvus import MilvusClient, MilvusException, connections, utility

warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API.*")

RATE_LIMIT = 8  # Milvus's merr code for a refused rate (ErrorCode.RATE_LIMIT in pymilvus)


def say(msg):
    print(f"routing_check: {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def prepare(direct_a, direct_b):
    a = MilvusClient(uri=f"http://{direct_a}")
    b = MilvusClient(uri=f"http://{direct_b}")
    a.create_collection("only_a", dimension=4)
    a.create_collection("limited", dimension=4)
    b.create_collection("logs_2024", dimension=4)
    for i, c in enumerate((a, b)):
        c.create_collection("shared", dimension=4)
        c.insert("shared", [{"id": i + 1, "vector": [0.1, 0.2, 0.3, 0.4]}])
    for db in ("tenant_b", "tenant_c"):
        b.create_database(db)
        MilvusClient(uri=f"http://{direct_b}", db_name=db).create_collection(f"only_{db}", dimension=4)
    say("prepared: A has only_a, limited, shared with row 1; B has shared with row 2, logs_2024, tenant_b.only_tenant_b, tenant_c.only_tenant_c")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--server-name", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--direct-a", required=True)
    p.add_argument("--direct-b", required=True)
    args = p.parse_args()
    uri = f"https://{args.host}:{args.port}"
    tls = dict(server_name=args.server_name, server_pem_path=args.ca)

    prepare(args.direct_a, args.direct_b)

    for db in ("tenant_b", "tenant_c"):
        got = MilvusClient(uri=uri, db_name=db, **tls).list_collections()
        expect(got == [f"only_{db}"], f"MilvusClient(db_name={db!r}) listed {got}")
        say(f"MilvusClient(db_name={db!r}) reached B: {got}")
        connections.connect(alias=db, uri=uri, db_name=db, secure=True, **tls)
        got = utility.list_collections(using=db)
        expect(got == [f"only_{db}"], f"connections.connect(db_name={db!r}) listed {got}")
        expect(utility.has_collection(f"only_{db}", using=db), f"has_collection in {db}")
        say(f"ORM connections.connect(db_name={db!r}) reached B: {got}")

    client = MilvusClient(uri=uri, **tls)
    got = sorted(client.list_collections())
    expect(got == ["limited", "only_a", "shared"], f"the default database listed {got}")
    say(f"the default database is A's: {got}")
    expect(client.has_collection("logs_2024"), "logs_2024 not found: not routed to B")
    expect(not client.has_collection("logs_2025"), "logs_2025 found")
    expect(client.has_collection("only_a"), "only_a not found: not routed to A")
    say("collection logs_2024 reached B, only_a reached A")

    for level, want in (("Strong", 1), ("Eventually", 2), ("Bounded", 2), ("Session", 1)):
        hits = client.search("shared", data=[[0.1, 0.2, 0.3, 0.4]], limit=1, consistency_level=level)
        got = hits[0][0]["id"] if hits and hits[0] else None
        expect(got == want, f"consistency_level={level!r} found row {got}, want {want}")
        say(f"search with consistency_level={level!r} reached {'AB'[want - 1]}")
    # A guarantee_timestamp (a Milvus hybrid timestamp: milliseconds << 18) that pymilvus
    # passes through with Eventually: one of just now asks for data the standby, up to 5 s
    # behind (the annotation's default staleness), may lack; one of a minute ago does not.
    for age, want in ((0, 1), (60, 2)):
        ts = int((time.time() - age) * 1000) << 18
        hits = client.search("shared", data=[[0.1, 0.2, 0.3, 0.4]], limit=1, consistency_level="Eventually", guarantee_timestamp=ts)
        got = hits[0][0]["id"] if hits and hits[0] else None
        expect(got == want, f"Eventually with a guarantee_timestamp {age} s old found row {got}, want {want}")
        say(f"search with consistency_level='Eventually' and a guarantee_timestamp {age} s old reached {'AB'[want - 1]}")
    client.insert("shared", [{"id": 3, "vector": [0.4, 0.3, 0.2, 0.1]}])
    direct_a = MilvusClient(uri=f"http://{args.direct_a}")
    rows = direct_a.query("shared", filter="id == 3", consistency_level="Strong")
    expect(len(rows) == 1, f"the insert did not reach A (the primary): {rows}")
    say("an insert into shared reached A, the primary")

    client.describe_collection("limited")
    try:
        client.describe_collection("limited", retry_on_rate_limit=False)
        raise AssertionError("the second call within the limit's period was not refused")
    except MilvusException as e:
        expect(e.code == RATE_LIMIT, f"refused with code {e.code}: {e.message}")
        say(f"over the limit, pymilvus raised Milvus's rate-limit error: code {e.code}, {e.message!r}")
    start = time.monotonic()
    name = client.describe_collection("limited")["collection_name"]
    expect(name == "limited", f"described {name}")
    say(f"with its default retries pymilvus rode through the limit: succeeded after {time.monotonic() - start:.1f} s")
    say("PASS")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is the check's failure
        traceback.print_exc()
        say(f"FAIL {e}")
        sys.exit(1)
