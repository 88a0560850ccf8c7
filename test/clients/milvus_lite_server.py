"""Runs a milvus-lite server that stops gracefully on SIGTERM or SIGINT, whatever the parent did.

    python milvus_lite_server.py --data-dir D --host 127.0.0.1 --port P

milvus-lite's own `milvus-lite server` (milvus_lite.adapter.grpc.server.run_server) handles
neither signal well for a stand-in of a Milvus proxy:

- SIGTERM, what Kubernetes and service managers send, has no handler: Python's default
  ends the process at once, as SIGKILL would (no GOAWAY, calls in flight cut, the
  database not closed).
- SIGINT (KeyboardInterrupt) calls server.stop(grace=5) and then db.close() at once:
  grpc's stop with a grace returns without waiting, so the database closes under the
  calls it meant to drain. And a process started as a background job of a
  non-interactive shell, or by a parent that ignores SIGINT, inherits SIGINT as ignored:
  Python then never raises KeyboardInterrupt and the server could only be killed.

So this script builds the same server with milvus-lite's start_server_in_thread and,
on either signal, stops it as a Milvus proxy stops on SIGTERM: no new calls (gRPC
GOAWAY, the listening socket closed), calls in flight finish (up to 5 s, milvus-lite's
own grace), then the database closes. scripts/milvus-lite.sh, scripts/demo.sh and
internal/testkit/testenv start milvus-lite through it.

With --when-free it waits, its imports done, until no other process holds the data
directory, and then serves: a restart that starts the next process before it stops the
running one costs the stop and the opening of the data, not Python's imports (seconds,
tens of seconds on a busy machine). The running one holds the data until its listening
socket is closed, so the two never listen at once.
"""

import argparse
import os
import signal
import sys
import threading

from milvus_lite.adapter.grpc.server import DEFAULT_MAX_WORKERS, start_server_in_thread
from milvus_lite.exceptions import DataDirLockedError

GRACE_SECONDS = 5  # milvus-lite's run_server drains for up to 5 s too
WAITING = "waiting until the data directory is free"  # internal/testkit/testenv waits for it

stopping = threading.Event()
serving = threading.Event()


def on_signal(signum, _frame):
    # A process that does not serve yet (waiting for the data directory, or opening it)
    # has no call to drain: it ends at once. Waiting for it would wait for the opening of
    # the data, which after a crash replays the log (more than 15 s for a killed 16 MiB
    # Insert on a loaded machine), and Python's own exit joins whatever threads the
    # opening started.
    if not serving.is_set():
        os._exit(0)
    stopping.set()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-workers", type=int, default=DEFAULT_MAX_WORKERS)
    p.add_argument("--when-free", action="store_true", help="wait until no other process holds the data directory")
    args = p.parse_args()
    # Before the server starts, so that a signal at any time after it listens is handled.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    waiting = False
    while True:
        try:
            server, db, port = start_server_in_thread(args.data_dir, args.host, args.port, args.max_workers)
            break
        except DataDirLockedError:
            if not args.when_free:
                raise
            if not waiting:
                print(WAITING, flush=True)
                waiting = True
            if stopping.wait(0.05):
                os._exit(0)
    serving.set()
    print(f"MilvusLite gRPC server listening on {args.host}:{port} (data_dir={args.data_dir!r})", flush=True)
    # A timed wait: the main thread runs signal handlers only between its waits.
    while not stopping.wait(0.2):
        pass
    print("Shutting down: no new calls, waiting for the calls in flight", flush=True)
    server.stop(grace=GRACE_SECONDS).wait()
    db.close()
    print("Stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
