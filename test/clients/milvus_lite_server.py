"""Runs `milvus-lite server ARGS...` with SIGINT handled, whatever the parent did.

milvus-lite shuts down cleanly (server.stop, database closed) only on KeyboardInterrupt,
i.e. SIGINT. A process started as a background job of a non-interactive shell, or by a
parent that ignores SIGINT, inherits SIGINT as *ignored*, and Python then never raises
KeyboardInterrupt: the server could only be killed. Restoring the default handler here makes
SIGINT work for scripts/milvus-lite.sh, scripts/demo.sh and internal/testkit/testenv alike.

    python milvus_lite_server.py --data-dir D --host 127.0.0.1 --port P
"""

import signal
import sys

signal.signal(signal.SIGINT, signal.default_int_handler)

from milvus_lite.cmdline import main  # noqa: E402  (after the handler, on purpose)

if __name__ == "__main__":
    sys.exit(main(["server", *sys.argv[1:]]))
