#!/usr/bin/env python3
"""pymilvus calls that put a marker string everywhere a client can put one.

test/e2e/observe_test.go runs this through milvus-lb and then looks for the marker in
everything milvus-lb wrote or serves (access log, its own log at debug level, the admin
page and APIs, metrics, exported spans): it must be in none of them, while the access log
must still name the user, database, collection and method of every call.

The marker goes into:
  - the password (user "observer", password "pw<marker>") and, on a second client, the token;
  - other metadata: every call carries "x-app-tag: <marker>", added by a gRPC client
    interceptor the way an application adds its own metadata;
  - the data: a VARCHAR value and a dynamic field's name and value in every inserted row;
  - the vectors: each is the marker's 32 ASCII bytes read as 8 float32 values, so the
    request holds the marker's bytes verbatim;
  - filter expressions (Search, Query, Delete), one of them invalid (Milvus answers with an
    error whose reason quotes the expression), and output fields;
  - replies: Query and Search return the marked values.

With --otel DIR (OpenTelemetry for Python, test/clients/otel-requirements.txt) the calls
are traced as a user traces them: the SDK with an OTLP/gRPC exporter to --otlp, and the
gRPC client instrumentation, which makes pymilvus send traceparent. Every call runs inside
an application span named "observe_calls"; its trace id is printed as "trace_id <hex>".

Prints one line per step and "observe_calls: PASS" at the end; exits 1 on any failure.
"""

import argparse
import struct
import sys
import traceback

import grpc

DIM = 8
COLLECTION = "observed_books"


def say(msg):
    print(f"observe_calls: {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def add_metadata(key, value):
    """Makes every gRPC channel created from now on send key: value with each call, with a
    client interceptor wrapped around grpc.secure_channel and grpc.insecure_channel (how
    OpenTelemetry's instrumentation reaches pymilvus's channels too)."""
    from pymilvus.client.interceptor import header_adder_interceptor

    for name in ("secure_channel", "insecure_channel"):
        make = getattr(grpc, name)

        def wrapped(*args, _make=make, **kwargs):
            return grpc.intercept_channel(_make(*args, **kwargs), header_adder_interceptor([key], [value]))

        setattr(grpc, name, wrapped)


def start_tracing(otel_dir, endpoint):
    sys.path.insert(0, otel_dir)
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "observe-client"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    trace.set_tracer_provider(provider)
    GrpcInstrumentorClient().instrument()
    return provider, trace.get_tracer("observe_calls")


def marker_vector(marker):
    raw = marker.encode("ascii")
    expect(len(raw) == 4 * DIM, f"the marker must be {4 * DIM} ASCII bytes")
    # ASCII bytes (0x20-0x7e) read as little-endian float32 are finite numbers.
    return list(struct.unpack(f"<{DIM}f", raw))


def calls(args, client_kwargs):
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    m = args.marker
    client = MilvusClient(**client_kwargs, user="observer", password=f"pw{m}")
    if client.has_collection(COLLECTION):
        client.drop_collection(COLLECTION)
    client.create_collection(COLLECTION, dimension=DIM, metric_type="L2", auto_id=False,
                             enable_dynamic_field=True, consistency_level="Strong")
    say("create collection ok")

    vec = marker_vector(m)
    rows = [{"id": i, "vector": [v + i for v in vec], "note": f"note {m} {i}", f"k{m}": f"v{m}"} for i in range(10)]
    res = client.insert(COLLECTION, rows)
    expect(res["insert_count"] == 10, f"inserted {res}")
    say("insert 10 rows ok")

    hits = client.search(COLLECTION, data=[vec], limit=3, filter=f'note like "note {m}%"',
                         output_fields=["note", f"k{m}"], consistency_level="Strong")
    expect(len(hits) == 1 and len(hits[0]) == 3, f"search returned {hits}")
    expect(m in hits[0][0]["entity"]["note"], f"search hit without the marked note: {hits[0][0]}")
    say("search ok")

    got = client.query(COLLECTION, filter=f'note == "note {m} 3"', output_fields=["note", f"k{m}"])
    expect(len(got) == 1 and got[0]["note"] == f"note {m} 3", f"query returned {got}")
    say("query ok")

    try:
        client.query(COLLECTION, filter=f'note === "{m}"')
        raise AssertionError("a filter that does not parse was accepted")
    except MilvusException as e:
        say(f"invalid filter refused ok (code {e.code})")

    client.delete(COLLECTION, filter=f'note == "note {m} 9"')
    say("delete ok")

    other = MilvusClient(**client_kwargs, token=f"tk{m}")
    expect(COLLECTION in other.list_collections(), "the token client does not see the collection")
    say("token client ok")
    other.close()
    client.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server-name", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--marker", required=True)
    p.add_argument("--otel", help="directory of OpenTelemetry for Python: trace the calls")
    p.add_argument("--otlp", help="the collector's OTLP/gRPC host:port")
    args = p.parse_args()

    add_metadata("x-app-tag", args.marker)
    client_kwargs = dict(uri=f"https://{args.host}:{args.port}", server_name=args.server_name, server_pem_path=args.ca)
    provider = None
    try:
        if args.otel:
            provider, tracer = start_tracing(args.otel, args.otlp)
            with tracer.start_as_current_span("observe_calls") as span:
                say(f"trace_id {span.get_span_context().trace_id:032x}")
                calls(args, client_kwargs)
        else:
            calls(args, client_kwargs)
    except Exception:
        traceback.print_exc()
        say("FAIL")
        sys.exit(1)
    finally:
        if provider is not None:
            provider.shutdown()  # sends the spans still queued
    say("PASS")


if __name__ == "__main__":
    main()
