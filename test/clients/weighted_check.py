#!/usr/bin/env python3
"""Weighted forward between two Milvus clusters, and a weight change, checked with pymilvus.

Two Milvus servers stand for two clusters, blue (A) and green (B), each with a collection
"shared" holding one row: id 1 on A, id 2 on B, so a search tells which cluster answered.
The Ingress forwards by the ALB's weighted forward action (--weights, in percent). This
script, through milvus-lb over TLS:

  --phase split: prepares the clusters, searches --calls times and counts the answers of
     each cluster: each share is within 5 % of its weight's (relative: 80/20 over 2,000
     calls is 1,520-1,680 and 380-420);
  --phase change: starts --threads threads searching and querying without pause, renames
     --next-ingress over --ingress (as an editor saves a file: the weights change to
     --next-weights, say 0,100), waits until the searches follow the new weights, keeps
     the load two seconds longer, and checks that no call of any thread failed, and that
     the searches after the change follow the new weights (within 5 % again).

One line per step, then "weighted_check: PASS" or "weighted_check: FAIL ..." (exit 1).

    weighted_check.py --phase split --host 127.0.0.1 --port 443 \\
        --server-name milvus-demo.milvus.io --ca CertificateChain.pem \\
        --direct-a 127.0.0.1:19530 --direct-b 127.0.0.1:19531 --weights 80,20
    weighted_check.py --phase change ... --weights 80,20 --next-weights 0,100 \\
        --ingress ingress.yaml --next-ingress next.yaml
"""

import argparse
import os
import sys
import threading
import time
import traceback

from pymilvus import MilvusClient

VEC = [[0.1, 0.2, 0.3, 0.4]]


def say(msg):
    print(f"weighted_check: {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def prepare(direct_a, direct_b):
    for i, addr in enumerate((direct_a, direct_b)):
        c = MilvusClient(uri=f"http://{addr}")
        c.create_collection("shared", dimension=4)
        c.insert("shared", [{"id": i + 1, "vector": VEC[0]}])
    say("prepared: shared holds row 1 on A, row 2 on B")


def cluster(client):
    """The cluster that answered a search: 0 for A, 1 for B."""
    hits = client.search("shared", data=VEC, limit=1, consistency_level="Strong")
    return hits[0][0]["id"] - 1


def within(counts, weights, what):
    total = sum(counts)
    for name, got, w in zip("AB", counts, weights):
        want = total * w / 100
        expect(abs(got - want) <= 0.05 * want, f"{what}: {name} answered {got} of {total}, want {want:.0f} within 5 %")
    say(f"{what}: A answered {counts[0]}, B {counts[1]} of {total} (weights {weights[0]}/{weights[1]})")


class Load:
    """Threads calling without pause, each on its own client; failures are counted."""

    def __init__(self, uri, tls, threads):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []  # (time, cluster) of every search, in order of completion
        self.calls = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.run, args=(MilvusClient(uri=uri, **tls),)) for _ in range(threads)]

    def run(self, client):
        while not self.stop.is_set():
            try:
                c = cluster(client)
                # The query is routed on its own: either cluster, each holding one row.
                rows = client.query("shared", filter="id > 0", output_fields=["id"], consistency_level="Strong")
                expect(len(rows) == 1 and rows[0]["id"] in (1, 2), f"query answered {rows}")
                with self.lock:
                    self.answers.append((time.monotonic(), c))
                    self.calls += 2
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.calls += 2
                    self.failures.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def since(self, t0):
        with self.lock:
            return [c for t, c in self.answers if t >= t0]


def change(args, next_weights, load):
    """Renames the next Ingress over the served one and waits until the calls follow it."""
    time.sleep(1)  # load before the edit
    before = load.calls
    os.replace(args.next_ingress, args.ingress)
    edited = time.monotonic()
    say(f"renamed the Ingress with weights {next_weights[0]}/{next_weights[1]} over the served one, under load ({before} calls so far)")
    # Followed once a full period of the new order (100 searches) matches the weights.
    deadline = edited + 60
    while True:
        recent = load.since(edited)[-100:]
        if len(recent) == 100 and all(abs(recent.count(i) - w) <= 5 for i, w in enumerate(next_weights)):
            break
        expect(time.monotonic() < deadline, f"60 s after the edit the calls do not follow {next_weights}: {recent}")
        time.sleep(0.1)
    followed = time.monotonic()
    say(f"the calls follow the new weights {followed - edited:.1f} s after the edit")
    time.sleep(2)  # and keep going on the new weights
    return followed


def main():
    p = argparse.ArgumentParser()
    for a in ("host", "port", "server-name", "ca", "direct-a", "direct-b", "weights"):
        p.add_argument(f"--{a}", required=True)
    p.add_argument("--phase", choices=("split", "change"), required=True)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--next-weights")
    p.add_argument("--ingress")
    p.add_argument("--next-ingress")
    args = p.parse_args()
    weights = [int(w) for w in args.weights.split(",")]
    uri = f"https://{args.host}:{args.port}"
    tls = dict(server_name=args.server_name, server_pem_path=args.ca)

    if args.phase == "split":
        prepare(args.direct_a, args.direct_b)
        client = MilvusClient(uri=uri, **tls)
        counts = [0, 0]
        for _ in range(args.calls):
            counts[cluster(client)] += 1
        within(counts, weights, f"{args.calls} searches")
    else:
        next_weights = [int(w) for w in args.next_weights.split(",")]
        with Load(uri, tls, args.threads) as load:
            followed = change(args, next_weights, load)
        expect(not load.failures, f"{len(load.failures)} of {load.calls} calls failed during the change: {load.failures[:5]}")
        say(f"0 of {load.calls} calls failed across the change ({args.threads} threads, a search and a query each round)")
        after = load.since(followed)
        within([after.count(0), after.count(1)], next_weights, "searches after the change")
    say("PASS")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is the check's failure
        traceback.print_exc()
        say(f"FAIL {e}")
        sys.exit(1)
