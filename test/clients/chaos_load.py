#!/usr/bin/env python3
"""Steady pymilvus load through milvus-lb for the chaos tests, counted per phase.

Prepares the same collection, with the same rows, on every Milvus given with --direct
(independent clusters: a read through the balancer must find it on whichever one
answers). Then reader threads (Search and Query in turn) and writer threads (an Insert
of one row) call through the balancer over TLS with server_name, as the guide connects,
until told to stop. A read that answers no row fails too.

pymilvus retries nothing here, so that every failure the balancer lets through is
counted:

- its retry decorator (pymilvus/decorators.py, retry_on_rpc_failure) retries every gRPC
  error but DEADLINE_EXCEEDED, PERMISSION_DENIED, UNAUTHENTICATED, INVALID_ARGUMENT,
  ALREADY_EXISTS, RESOURCE_EXHAUSTED and UNIMPLEMENTED, up to 75 times with backoff
  from 10 ms to 3 s, and Milvus's rate-limit replies; with a call's `timeout` it retries
  until that time is spent instead. retry_times=0 on every call, and no timeout, makes
  it raise the first error;
- pymilvus turns gRPC's own retries on (`grpc.enable_retries: 1` in its channel options),
  which retry by themselves, unseen, a call the server did not process (a refused
  stream, one above a GOAWAY's last stream id). grpc_options turn them off.

What pymilvus still does, and is left as it is: after an UNAVAILABLE error its connection
manager opens a new channel for the client (pymilvus/client/connection_manager.py,
handle_error), while the call that got the error fails and is counted; an Insert the
server refuses for a changed schema is sent once more with the schema read again
(retry_on_schema_mismatch: a reply of the server, which no fault here causes).

Commands on standard input, one a line, each answered by one line on standard output:

  phase NAME   the calls started from now on count for phase NAME  -> chaos_load: phase NAME
  count        -> chaos_load: count N (calls finished so far, every phase)
  stop         stop, wait for the calls in flight                  -> chaos_load: result JSON

The JSON maps each phase to {"search": [calls, failed], "query": [...], "insert": [...],
"errors": [the first few failures]} and "hung" to the number of threads whose call did
not end within a minute of the stop.

    chaos_load.py --host 127.0.0.1 --port 443 --server-name milvus-demo.milvus.io \
        --ca CertificateChain.pem --direct 127.0.0.1:19530,127.0.0.1:19531,127.0.0.1:19532
"""

import argparse
import json
import sys
import threading
import time
import warnings

from pymilvus import DataType, MilvusClient

warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API.*")

COLLECTION = "chaos"
DIM = 4
ROWS = 100
VECTOR = [0.1, 0.2, 0.3, 0.4]
NO_RETRY = {"retry_times": 0}
FIRST_ERRORS = 5


def say(msg):
    print(f"chaos_load: {msg}", flush=True)


def prepare(addr):
    """Creates the collection and its rows on one Milvus, directly.

    Without an index: milvus-lite loads such a collection whenever it opens its data, so
    the collection is loaded again after a restart, as a Milvus cluster's collections
    stay loaded while its proxies restart. (milvus-lite opens a collection with an index
    released, and a read would fail until someone loads it.)
    """
    c = MilvusClient(uri=f"http://{addr}")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    c.create_collection(COLLECTION, schema=schema)
    c.insert(COLLECTION, [{"id": i, "vector": [i / ROWS, 0.2, 0.3, 0.4]} for i in range(ROWS)])
    c.load_collection(COLLECTION)
    got = c.query(COLLECTION, filter="id >= 0", output_fields=["id"], limit=ROWS + 1)
    if len(got) != ROWS:
        raise AssertionError(f"{addr} has {len(got)} rows after inserting {ROWS}")
    c.close()


class Counts:
    """Calls and failures by phase and operation; safe for concurrent use."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = "start"
        self.phases = {}
        self.done = 0

    def current(self):
        with self.lock:
            return self.phase

    def begin(self, name):
        with self.lock:
            self.phase = name

    def record(self, phase, op, err):
        with self.lock:
            p = self.phases.setdefault(phase, {"search": [0, 0], "query": [0, 0], "insert": [0, 0], "errors": []})
            p[op][0] += 1
            if err is not None:
                p[op][1] += 1
                if len(p["errors"]) < FIRST_ERRORS:
                    p["errors"].append(f"{op}: {err}"[:400])
            self.done += 1

    def finished(self):
        with self.lock:
            return self.done


def describe(e):
    code = getattr(e, "code", None)
    code = code() if callable(code) else code
    return f"{type(e).__name__} code={code}: {getattr(e, 'message', None) or e}"


def call(counts, op, fn):
    phase = counts.current()
    err = None
    try:
        if not fn():
            err = "no row in the answer"
    except Exception as e:  # noqa: BLE001 - any failure of the call is counted
        err = describe(e)
    counts.record(phase, op, err)


def reader(client, counts, stopping):
    ops = (
        ("search", lambda: client.search(COLLECTION, data=[VECTOR], limit=3, **NO_RETRY)[0]),
        ("query", lambda: client.query(COLLECTION, filter="id < 10", output_fields=["id"], **NO_RETRY)),
    )
    n = 0
    while not stopping.is_set():
        op, fn = ops[n % 2]
        call(counts, op, fn)
        n += 1


def writer(client, counts, stopping, first_id):
    n = 0
    while not stopping.is_set():
        row = {"id": first_id + n, "vector": VECTOR}
        call(counts, "insert", lambda: client.insert(COLLECTION, [row], **NO_RETRY)["insert_count"] == 1)
        n += 1


def serve_commands(counts):
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "phase" and len(cmd) == 2:
            counts.begin(cmd[1])
            say(f"phase {cmd[1]}")
        elif cmd[0] == "count":
            say(f"count {counts.finished()}")
        elif cmd[0] == "stop":
            return
        else:
            say(f"unknown command {line.strip()!r}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--server-name", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--direct", required=True, help="comma-separated host:port of each Milvus")
    p.add_argument("--readers", type=int, default=3)
    p.add_argument("--writers", type=int, default=1)
    args = p.parse_args()

    for addr in args.direct.split(","):
        prepare(addr)
    say(f"prepared {COLLECTION} with {ROWS} rows on {args.direct}")

    client = MilvusClient(
        uri=f"https://{args.host}:{args.port}",
        secure=True,
        server_pem_path=args.ca,
        server_name=args.server_name,
        grpc_options={"grpc.enable_retries": 0},
    )
    counts, stopping = Counts(), threading.Event()
    threads = [threading.Thread(target=reader, args=(client, counts, stopping)) for _ in range(args.readers)]
    threads += [
        threading.Thread(target=writer, args=(client, counts, stopping, 1_000_000 * (i + 1))) for i in range(args.writers)
    ]
    for t in threads:
        t.daemon = True  # a hung call must not keep the process after the result
        t.start()
    say(f"running {args.readers} readers and {args.writers} writers")

    serve_commands(counts)
    stopping.set()
    deadline = time.monotonic() + 60
    hung = 0
    for t in threads:
        t.join(timeout=max(0, deadline - time.monotonic()))
        hung += t.is_alive()
    with counts.lock:
        result = dict(counts.phases, hung=hung)
    say("result " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
