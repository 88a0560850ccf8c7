"""pymilvus through milvus-lb with mutual TLS (alb.ingress.kubernetes.io/mutual-authentication
mode verify): with a client certificate (client_pem_path, client_key_path, ca_pem_path) a
whole collection round trip works; with --expect-refused and no client certificate the
connection must fail. Prints "mtls_check: PASS" on success, exits non-zero otherwise."""

import argparse
import sys
import time

from pymilvus import MilvusClient, connections, utility


def say(msg):
    print(f"mtls_check: {msg}", flush=True)


def with_certificate(args):
    # pymilvus uses the client certificate only when server_pem_path is NOT given: the CA
    # goes in ca_pem_path.
    connections.connect(
        "default",
        host=args.host,
        port=str(args.port),
        secure=True,
        server_name=args.server_name,
        client_pem_path=args.cert,
        client_key_path=args.key,
        ca_pem_path=args.ca,
        timeout=20,
    )
    say(f"connected with a client certificate, server {utility.get_server_version()}")
    connections.disconnect("default")

    client = MilvusClient(
        uri=f"https://{args.host}:{args.port}",
        secure=True,
        server_name=args.server_name,
        client_pem_path=args.cert,
        client_key_path=args.key,
        ca_pem_path=args.ca,
        timeout=20,
    )
    name = f"mtls_{int(time.time() * 1000) % 1000000}"
    client.create_collection(name, dimension=4)
    client.insert(name, [{"id": i, "vector": [float(i), 0.5, 0.25, 1.0]} for i in range(10)])
    hits = client.search(name, data=[[3.0, 0.5, 0.25, 1.0]], limit=3)
    if not hits or not hits[0] or hits[0][0]["id"] != 3:
        raise SystemExit(f"mtls_check: unexpected search result {hits}")
    client.drop_collection(name)
    say("MilvusClient create/insert/search/drop ok")


def without_certificate(args):
    try:
        connections.connect(
            "default",
            host=args.host,
            port=str(args.port),
            secure=True,
            server_name=args.server_name,
            server_pem_path=args.ca,
            timeout=5,
        )
        utility.get_server_version()
    except Exception as e:  # pymilvus raises MilvusException on a failed handshake
        say(f"refused as expected: {type(e).__name__}: {str(e)[:200]}")
        return
    raise SystemExit("mtls_check: FAIL: connected without a client certificate")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server-name", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--expect-refused", action="store_true")
    args = p.parse_args()
    if args.expect_refused:
        without_certificate(args)
    else:
        with_certificate(args)
    say("PASS")


if __name__ == "__main__":
    sys.exit(main())
