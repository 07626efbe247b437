"""A real OTLP/HTTP trace receiver for the tests (tests/otel.rs, perf/trace_cost.sh).

POST /v1/traces: the body is decoded with the `opentelemetry-proto` package
(ExportTraceServiceRequest), every span is kept as a JSON object, and an empty
ExportTraceServiceResponse is returned. GET /spans returns the spans kept so far as a JSON
list; GET /count returns how many. Prints `listening on PORT` once it listens on
127.0.0.1 (port 0 unless given). `--status N` answers every POST with status N instead
(an endpoint that refuses).
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SPANS = []
POSTS = [0]
LOCK = threading.Lock()
STATUS = 200


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def decode(body):
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    out = []
    for rs in req.resource_spans:
        resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    {
                        "resource": resource,
                        "scope": ss.scope.name,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "trace_state": s.trace_state,
                        "name": s.name,
                        "kind": s.kind,
                        "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano,
                        "attributes": {kv.key: value(kv.value) for kv in s.attributes},
                        "status_code": s.status.code,
                        "status_message": s.status.message,
                        "links": [
                            {"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex()}
                            for l in s.links
                        ],
                    }
                )
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with LOCK:
            POSTS[0] += 1
        if STATUS != 200:
            return self.reply(STATUS, "text/plain", b"refused")
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
            return self.reply(415, "text/plain", b"want protobuf on /v1/traces")
        spans = decode(body)
        with LOCK:
            SPANS.extend(spans)
        self.reply(200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString())

    def do_GET(self):
        with LOCK:
            if self.path == "/spans":
                body = json.dumps(SPANS).encode()
            else:
                body = json.dumps({"spans": len(SPANS), "posts": POSTS[0]}).encode()
        self.reply(200, "application/json", body)


def main():
    global STATUS
    port = 0
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--port":
            port = int(args.pop(0))
        elif a == "--status":
            STATUS = int(args.pop(0))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
