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
  stream, one above a GOAWAY's last stream id). grpc_options turn them off, but for the
  calls of a second client, with pymilvus's own options, which the test chooses while
  it restarts milvus-lb in place (the command `client`, below): there gRPC C core fails a
  call it began on a connection just as a GOAWAY arrived, never sent (0 to 4 calls in
  runs of 60 restarts), which only its transparent retry, as pymilvus has it on, makes
  good. No balancer can: the call never left the client.

What pymilvus still does, and is left as it is: after an UNAVAILABLE error its connection
manager opens a new channel for the client (pymilvus/client/connection_manager.py,
handle_error), while the call that got the error fails and is counted; an Insert the
server refuses for a changed schema is sent once more with the schema read again
(retry_on_schema_mismatch: a reply of the server, which no fault here causes).

Commands on standard input, one a line, each answered by one line on standard output:

  phase NAME   the calls started from now on count for phase NAME; answered once every
               call started before has ended                       -> chaos_load: phase NAME
  count        -> chaos_load: count N (calls finished so far, every phase)
  timeout S    the calls started from now on have a deadline of S seconds (0: none)
                                                                   -> chaos_load: timeout S
  client NAME  the calls started from now on use the client NAME: strict (gRPC's retries
               off, the first) or defaults (pymilvus's gRPC options, its own
               connection)                                         -> chaos_load: client NAME
  pause        no new calls; wait for those in flight              -> chaos_load: paused
  resume       calls again                                         -> chaos_load: resumed
  big-insert   create the collection chaos_big on every Milvus directly, then send one
               Insert of BIG_ROWS rows (16 MiB) through the balancer, in the background
                                                                   -> chaos_load: big-insert FIRST_ID ROWS
  big-result   wait for that Insert's end   -> chaos_load: big-result ok | big-result failed ERROR
  big-rows ADDR  the rows of that Insert that the Milvus at ADDR holds (a direct Query)
                                                                   -> chaos_load: big-rows N
  big-drop     drop chaos_big on every Milvus directly             -> chaos_load: big-dropped
  stop         stop, wait for the calls in flight                  -> chaos_load: result JSON

With a deadline, pymilvus's retry decorator retries every error but DEADLINE_EXCEEDED
and the few others above until the deadline, instead of raising the first: the chaos
test sets one only while one Milvus is a black hole, where no other error is expected.

The JSON maps each phase to {"search": [calls, failed], "query": [...], "insert": [...],
"errors": [the first few failures], "failed_ids": [the row ids of the first failed
Inserts]} and "hung" to the number of threads whose call did not end within a minute of
the stop.

    chaos_load.py --host 127.0.0.1 --port 443 --server-name milvus-demo.milvus.io \
        --ca CertificateChain.pem --direct 127.0.0.1:19530,127.0.0.1:19531,127.0.0.1:19532
"""

import argparse
import json
import sys
import threading
import time
import warnings

import numpy
from pymilvus import DataType, MilvusClient

warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API.*")

COLLECTION = "chaos"
DIM = 4
ROWS = 100
VECTOR = [0.1, 0.2, 0.3, 0.4]
NO_RETRY = {"retry_times": 0}
FIRST_ERRORS = 5
FAILED_IDS = 100  # the ids of the first failed Inserts, whose rows the test looks for
# The large Insert of big-insert: 4,096 rows of 1,024 floats, 16 MiB, which a milvus-lite
# takes seconds to apply, so that it can be killed with the Insert received and unanswered.
BIG_COLLECTION = "chaos_big"
BIG_DIM = 1024
BIG_ROWS = 4096
BIG_FIRST_ID = 50_000_000


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
    """Calls and failures by phase and operation, and what the next call is to do; safe
    for concurrent use."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = "start"
        self.phases = {}
        self.done = 0
        self.options = dict(NO_RETRY)
        self.clients, self.client = {}, None
        self.open = threading.Condition(self.lock)
        self.paused = False
        self.running = {}  # calls in flight by the phase they count for

    def current(self):
        """Waits while paused; returns the phase, the options and the client of a call
        that starts."""
        with self.lock:
            while self.paused:
                self.open.wait()
            self.running[self.phase] = self.running.get(self.phase, 0) + 1
            return self.phase, dict(self.options), self.client

    def use(self, name):
        """Makes the calls from now on use the client name; reports whether there is one."""
        with self.lock:
            if name not in self.clients:
                return False
            self.client = self.clients[name]
            return True

    def set_timeout(self, seconds):
        with self.lock:
            self.options = dict(NO_RETRY)
            if seconds > 0:
                self.options["timeout"] = seconds

    def pause(self):
        with self.lock:
            self.paused = True
            while any(self.running.values()):
                self.open.wait()

    def resume(self):
        with self.lock:
            self.paused = False
            self.open.notify_all()

    def begin(self, name):
        """Makes the calls from now on count for phase name, and waits until the calls
        started before have ended: the fault the test starts next must not meet a call
        that counts for the phase before (a steady Insert cancelled by a milvus-lite
        stopping for the rolling restart would count as a steady failure)."""
        with self.lock:
            self.phase = name
            while any(n for p, n in self.running.items() if p != name):
                self.open.wait()

    def record(self, phase, op, err, key=None):
        with self.lock:
            p = self.phases.setdefault(
                phase, {"search": [0, 0], "query": [0, 0], "insert": [0, 0], "errors": [], "failed_ids": []}
            )
            p[op][0] += 1
            if err is not None:
                p[op][1] += 1
                if key is not None and len(p["failed_ids"]) < FAILED_IDS:
                    p["failed_ids"].append(key)
                if len(p["errors"]) < FIRST_ERRORS:
                    p["errors"].append(f"{op}: {err}"[:400])
            self.done += 1
            self.running[phase] -= 1
            self.open.notify_all()

    def finished(self):
        with self.lock:
            return self.done


def describe(e):
    code = getattr(e, "code", None)
    code = code() if callable(code) else code
    return f"{type(e).__name__} code={code}: {getattr(e, 'message', None) or e}"


def call(counts, op, fn, key=None):
    phase, options, client = counts.current()
    err = None
    try:
        if not fn(client, options):
            err = "no row in the answer"
    except Exception as e:  # noqa: BLE001 - any failure of the call is counted
        err = describe(e)
    counts.record(phase, op, err, key)


def reader(counts, stopping):
    ops = (
        ("search", lambda c, o: c.search(COLLECTION, data=[VECTOR], limit=3, **o)[0]),
        ("query", lambda c, o: c.query(COLLECTION, filter="id < 10", output_fields=["id"], **o)),
    )
    n = 0
    while not stopping.is_set():
        op, fn = ops[n % 2]
        call(counts, op, fn)
        n += 1


def writer(counts, stopping, first_id):
    n = 0
    while not stopping.is_set():
        row = {"id": first_id + n, "vector": VECTOR}
        call(counts, "insert", lambda c, o: c.insert(COLLECTION, [row], **o)["insert_count"] == 1, row["id"])
        n += 1


class BigInsert:
    """One large Insert through the balancer, whose rows the test then looks for on each
    Milvus directly."""

    def __init__(self, client, direct):
        self.client, self.direct = client, direct
        self.thread, self.error = None, None

    def start(self):
        for addr in self.direct:
            c = MilvusClient(uri=f"http://{addr}")
            schema = MilvusClient.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=BIG_DIM)
            c.create_collection(BIG_COLLECTION, schema=schema)
            c.load_collection(BIG_COLLECTION)
            c.close()
        vectors = numpy.random.default_rng(1).random((BIG_ROWS, BIG_DIM), dtype=numpy.float32)
        rows = [{"id": BIG_FIRST_ID + i, "vector": vectors[i]} for i in range(BIG_ROWS)]
        self.thread = threading.Thread(target=self.send, args=(rows,), daemon=True)
        self.thread.start()

    def send(self, rows):
        try:
            self.client.insert(BIG_COLLECTION, rows, **NO_RETRY)
        except Exception as e:  # noqa: BLE001 - the test wants to see the failure
            self.error = describe(e)

    def result(self):
        self.thread.join(timeout=120)
        if self.thread.is_alive():
            return "big-result hung"
        return "big-result ok" if self.error is None else f"big-result failed {self.error[:400]}"

    @staticmethod
    def rows(addr):
        c = MilvusClient(uri=f"http://{addr}")
        got = c.query(BIG_COLLECTION, filter=f"id >= {BIG_FIRST_ID}", output_fields=["id"], limit=BIG_ROWS + 1)
        c.close()
        return len(got)

    def drop(self):
        for addr in self.direct:
            c = MilvusClient(uri=f"http://{addr}")
            c.drop_collection(BIG_COLLECTION)
            c.close()


def serve_commands(counts, big):
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "phase" and len(cmd) == 2:
            counts.begin(cmd[1])
            say(f"phase {cmd[1]}")
        elif cmd[0] == "count":
            say(f"count {counts.finished()}")
        elif cmd[0] == "timeout" and len(cmd) == 2:
            counts.set_timeout(float(cmd[1]))
            say(f"timeout {cmd[1]}")
        elif cmd[0] == "client" and len(cmd) == 2 and counts.use(cmd[1]):
            say(f"client {cmd[1]}")
        elif cmd[0] == "pause":
            counts.pause()
            say("paused")
        elif cmd[0] == "resume":
            counts.resume()
            say("resumed")
        elif cmd[0] == "big-insert":
            big.start()
            say(f"big-insert {BIG_FIRST_ID} {BIG_ROWS}")
        elif cmd[0] == "big-result":
            say(big.result())
        elif cmd[0] == "big-rows" and len(cmd) == 2:
            say(f"big-rows {big.rows(cmd[1])}")
        elif cmd[0] == "big-drop":
            big.drop()
            say("big-dropped")
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

    guide = {"uri": f"https://{args.host}:{args.port}", "secure": True, "server_pem_path": args.ca,
             "server_name": args.server_name}
    counts, stopping = Counts(), threading.Event()
    counts.clients["strict"] = MilvusClient(**guide, grpc_options={"grpc.enable_retries": 0})
    # dedicated: pymilvus shares one connection between clients of the same address.
    counts.clients["defaults"] = MilvusClient(**guide, dedicated=True)
    counts.use("strict")
    client = counts.client
    threads = [threading.Thread(target=reader, args=(counts, stopping)) for _ in range(args.readers)]
    threads += [
        threading.Thread(target=writer, args=(counts, stopping, 1_000_000 * (i + 1))) for i in range(args.writers)
    ]
    for t in threads:
        t.daemon = True  # a hung call must not keep the process after the result
        t.start()
    say(f"running {args.readers} readers and {args.writers} writers")

    serve_commands(counts, BigInsert(client, args.direct.split(",")))
    counts.resume()
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
