#!/usr/bin/env python3
"""Searches over a milvus-lb rate limit with pymilvus, which must ride through it.

Creates collection COLLECTION (dimension 8, 100 rows) on Milvus directly (--direct), then
through milvus-lb over TLS searches it once (the client's schema cache is then warm) and
prints "ratelimit_load: ready". When a line comes on standard input it searches from
--threads threads until standard input ends, each search with pymilvus's default
retries: over the limit, milvus-lb answers as Milvus does (a Status with code 8, the
legacy error_code RateLimit), and pymilvus backs off and tries again (decorators.py,
retry_on_rpc_failure: up to 75 times, 10 ms then 3× longer each time, at most 3 s).

It prints "ratelimit_load: load started", at the end the searches that succeeded and
failed, and "ratelimit_load: PASS" when every one succeeded (else FAIL, exit 1).

    ratelimit_load.py --host 127.0.0.1 --port 443 --server-name milvus-demo.milvus.io \
        --ca CertificateChain.pem --direct 127.0.0.1:19530 --collection rl
"""

import argparse
import sys
import threading
import time
import traceback

from pymilvus import MilvusClient

DIM = 8


def say(msg):
    print(f"ratelimit_load: {msg}", flush=True)


def search_once(client, collection):
    vec = [i / DIM for i in range(DIM)]
    hits = client.search(collection, data=[vec], limit=3, consistency_level="Strong")
    if len(hits) != 1 or not hits[0]:
        raise AssertionError(f"search returned {hits}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--server-name", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--direct", required=True)
    p.add_argument("--collection", required=True)
    p.add_argument("--threads", type=int, default=4)
    args = p.parse_args()

    direct = MilvusClient(uri=f"http://{args.direct}")
    direct.create_collection(args.collection, dimension=DIM)
    direct.insert(args.collection, [{"id": i, "vector": [(i + j) % 7 / 7 for j in range(DIM)]} for i in range(100)])
    client = MilvusClient(uri=f"https://{args.host}:{args.port}", server_name=args.server_name, server_pem_path=args.ca)
    search_once(client, args.collection)
    say("ready")
    sys.stdin.readline()

    done = threading.Event()
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}
    errors = []

    def work():
        while not done.is_set():
            try:
                search_once(client, args.collection)
                with lock:
                    counts["ok"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    counts["failed"] += 1
                    errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(args.threads)]
    start = time.monotonic()
    for t in threads:
        t.start()
    say("load started")
    sys.stdin.read()  # until the test closes it
    done.set()
    for t in threads:
        t.join()
    say(f"{counts['ok']} searches succeeded, {counts['failed']} failed in {time.monotonic() - start:.1f} s")
    if errors:
        raise AssertionError(f"{len(errors)} searches failed, the first: {errors[0]}")
    say("PASS")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is the check's failure
        traceback.print_exc()
        say(f"FAIL {e}")
        sys.exit(1)
