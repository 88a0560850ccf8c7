#!/usr/bin/env python3
"""The guide's connection check, run for real.

"Set up a Layer-7 Load Balancer for Milvus on AWS" ends with a pymilvus snippet that connects
through the balancer. This script runs that snippet as written (host, port, secure=True,
server_name), adding only server_pem_path so that a test CA is trusted, and then does real
work through the same endpoint twice:

  1. the ORM API the snippet imports (FieldSchema, CollectionSchema, Collection, utility);
  2. the MilvusClient API with uri="https://ADDRESS:PORT".

Each does create collection (dim 8), insert, create index, load, search, query, delete, drop.
One line per step, then a final "guide_check: PASS ..." line; any failure prints
"guide_check: FAIL ..." and exits 1.

    guide_check.py --host 127.0.0.1 --port 443 --ca CertificateChain.pem \
        --server-name milvus-demo.milvus.io
    guide_check.py --host 127.0.0.1 --port 19530 --plain     # straight to milvus-lite
"""

import argparse
import os
import random
import sys
import time
import traceback
import warnings

# The guide's import, verbatim.
from pymilvus import (
    connections,
    utility,
    FieldSchema,
    CollectionSchema,
    DataType,
    Collection,
)
from pymilvus import MilvusClient

# pymilvus 3.0 warns on every ORM call that the ORM goes away in 3.1; the guide uses it, so
# it is exercised here on purpose and the warnings would only bury the result lines.
warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API.*")

DIM = 8
ROWS = 100


def say(msg):
    print(f"guide_check: {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def vectors(n, seed):
    rnd = random.Random(seed)
    return [[rnd.random() for _ in range(DIM)] for _ in range(n)]


def unique(prefix):
    return f"{prefix}_{os.getpid()}_{int(time.time() * 1000) % 1000000}"


def orm_flow(args):
    """The guide's snippet, then hello_milvus with the ORM objects it imports."""
    if args.plain:
        connections.connect("default", host=args.host, port=str(args.port))
    else:
        # The guide's line, with server_pem_path added for the test CA.
        connections.connect(
            "default",
            host=args.host,
            port=str(args.port),
            secure=True,
            server_name=args.server_name,
            server_pem_path=args.ca,
        )
    say(f"orm: connected to {args.host}:{args.port}, server {utility.get_server_version()}")

    name = unique("guide_orm")
    fields = [
        FieldSchema(name="pk", dtype=DataType.INT64, is_primary=True, auto_id=False),
        FieldSchema(name="random", dtype=DataType.DOUBLE),
        FieldSchema(name="embeddings", dtype=DataType.FLOAT_VECTOR, dim=DIM),
    ]
    schema = CollectionSchema(fields, "guide_check ORM flow")
    coll = Collection(name, schema)
    try:
        expect(utility.has_collection(name), "has_collection is false after create")
        say(f"orm: create collection {name} ok")

        vecs = vectors(ROWS, 1)
        res = coll.insert([list(range(ROWS)), [float(i) for i in range(ROWS)], vecs])
        expect(res.insert_count == ROWS, f"inserted {res.insert_count}, want {ROWS}")
        coll.flush()
        say(f"orm: insert {ROWS} ok")

        coll.create_index("embeddings", {"index_type": "AUTOINDEX", "metric_type": "L2", "params": {}})
        say("orm: create index ok")
        coll.load()
        say("orm: load ok")

        hits = coll.search([vecs[7]], "embeddings", {"metric_type": "L2", "params": {}}, limit=3,
                           output_fields=["random"], consistency_level="Strong")
        expect(len(hits) == 1 and len(hits[0]) == 3, f"search returned {hits}")
        expect(hits[0][0].id == 7, f"top hit {hits[0][0].id}, want 7")
        say("orm: search ok (top hit 7)")

        rows = coll.query("random > 89", output_fields=["pk"], consistency_level="Strong")
        expect(sorted(r["pk"] for r in rows) == list(range(90, 100)), f"query returned {rows}")
        say("orm: query ok")

        coll.delete("pk in [90, 91, 92]")
        rows = coll.query("random > 89", output_fields=["pk"], consistency_level="Strong")
        expect(len(rows) == 7, f"after delete, query returned {len(rows)} rows, want 7")
        say("orm: delete ok")
    finally:
        utility.drop_collection(name)
    expect(not utility.has_collection(name), "collection still there after drop")
    say("orm: drop ok")
    connections.disconnect("default")


def client_flow(args):
    """The same work with MilvusClient, as the guide's readers write it today."""
    if args.plain:
        client = MilvusClient(uri=f"http://{args.host}:{args.port}")
    else:
        client = MilvusClient(
            uri=f"https://{args.host}:{args.port}",
            server_name=args.server_name,
            server_pem_path=args.ca,
        )
    name = unique("guide_client")
    try:
        client.create_collection(name, dimension=DIM, metric_type="L2", auto_id=False)
        expect(client.has_collection(name), "has_collection is false after create")
        say(f"client: create collection {name} ok")

        vecs = vectors(ROWS, 2)
        data = [{"id": i, "vector": vecs[i], "color": f"c{i % 5}"} for i in range(ROWS)]
        res = client.insert(name, data)
        expect(res["insert_count"] == ROWS, f"inserted {res}, want {ROWS}")
        say(f"client: insert {ROWS} ok")

        # create_collection(dimension=...) indexes and loads by itself; do it explicitly too,
        # so that CreateIndex and LoadCollection travel through the balancer.
        client.release_collection(name)
        client.drop_index(name, "vector")
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="L2")
        client.create_index(name, params)
        say("client: create index ok")
        client.load_collection(name)
        say("client: load ok")

        hits = client.search(name, data=[vecs[42]], limit=3, output_fields=["color"],
                             consistency_level="Strong")
        expect(len(hits) == 1 and len(hits[0]) == 3, f"search returned {hits}")
        expect(hits[0][0]["id"] == 42, f"top hit {hits[0][0]}, want id 42")
        say("client: search ok (top hit 42)")

        rows = client.query(name, filter='color == "c3"', output_fields=["id"],
                            consistency_level="Strong")
        expect(len(rows) == ROWS // 5, f"query returned {len(rows)} rows, want {ROWS // 5}")
        say("client: query ok")

        client.delete(name, ids=[3, 8, 13])
        rows = client.query(name, filter='color == "c3"', output_fields=["id"],
                            consistency_level="Strong")
        expect(len(rows) == ROWS // 5 - 3, f"after delete, query returned {len(rows)} rows")
        say("client: delete ok")
    finally:
        client.drop_collection(name)
    expect(not client.has_collection(name), "collection still there after drop")
    say("client: drop ok")
    client.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=os.environ.get("MILVUS_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("MILVUS_PORT", "443")))
    p.add_argument("--server-name", default="milvus-demo.milvus.io")
    p.add_argument("--ca", help="PEM file of the CA that signed the balancer's certificate")
    p.add_argument("--plain", action="store_true", default=os.environ.get("MILVUS_PLAIN") == "1",
                   help="no TLS (straight to milvus-lite)")
    args = p.parse_args()
    if not args.plain and not args.ca:
        p.error("--ca is required with TLS (or pass --plain)")

    mode = "plain" if args.plain else f"TLS, server_name={args.server_name}"
    try:
        orm_flow(args)
        client_flow(args)
    except Exception as e:  # any failure, from pymilvus or from an expectation
        traceback.print_exc()
        say(f"FAIL via {args.host}:{args.port} ({mode}): {type(e).__name__}: {e}")
        return 1
    say(f"PASS via {args.host}:{args.port} ({mode}): ORM and MilvusClient flows "
        "(create, insert, index, load, search, query, delete, drop)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
