"""A tiny MCP backend that tells what trace context it received (tests/otel.rs).

`--http`: a 2025-era Streamable HTTP server on 127.0.0.1:0 (prints `listening on PORT`);
`--stdio`: the same over stdin/stdout. Tools:
- `where`: its result's text is a JSON object with the `traceparent` and `tracestate`
  HTTP headers it got (null on stdio) and the request's `params._meta`.
- `fail`: answers a JSON-RPC error (-32000, "boom").
`server/discover` and anything else unknown get -32601, so the gateway speaks 2025 to it.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOLS = [
    {"name": "where", "description": "tells the trace context it got", "inputSchema": {"type": "object"}},
    {"name": "fail", "description": "always a JSON-RPC error", "inputSchema": {"type": "object"}},
]


def answer(msg, headers):
    """The response to one message (None for a notification)."""
    if "id" not in msg:
        return None
    mid, method = msg["id"], msg.get("method")
    params = msg.get("params") or {}
    if method == "initialize":
        result = {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "recorder", "version": "1"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and params.get("name") == "where":
        seen = {
            "traceparent": headers.get("traceparent"),
            "tracestate": headers.get("tracestate"),
            "meta": params.get("_meta"),
        }
        result = {"content": [{"type": "text", "text": json.dumps(seen)}]}
    elif method == "tools/call" and params.get("name") == "fail":
        return {"jsonrpc": "2.0", "id": mid, "error": {"code": -32000, "message": "boom"}}
    else:
        return {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "no " + str(method)}}
    return {"jsonrpc": "2.0", "id": mid, "result": result}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        msg = json.loads(body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        out = answer(msg, headers)
        if out is None:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    if sys.argv[1:] == ["--stdio"]:
        for line in sys.stdin:
            if not line.strip():
                continue
            out = answer(json.loads(line), {})
            if out is not None:
                sys.stdout.write(json.dumps(out) + "\n")
                sys.stdout.flush()
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
