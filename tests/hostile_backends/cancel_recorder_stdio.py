"""A stdio MCP server that records what the gateway tells it about cancellation, for
tests/http_edges.rs: a `tools/call` of `hold` is never answered, and its request id (the one
the gateway chose for the backend) is appended to the file named by RECORD as `call <id>`;
each `notifications/cancelled` is appended as `cancel <requestId>`. Only the Python standard
library.
"""
import json
import os
import sys

RECORD = os.environ["RECORD"]


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def record(line):
    with open(RECORD, "a") as f:
        f.write(line + "\n")


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    method, mid = msg.get("method"), msg.get("id")
    if method == "notifications/cancelled":
        record("cancel " + json.dumps(msg.get("params", {}).get("requestId")))
        continue
    if mid is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "cancel-recorder", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [
            {"name": "hold", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        record("call " + json.dumps(mid))
    else:
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
