"""A 2026-07-28-only stdio MCP server that asks for input the way a careless one might.

Used by tests/input_bridge.rs (a real process behind the real gateway), for what a
well-behaved backend never does. Tools:

- `ask_anyway`: asks for an elicitation (input key `who`) whatever the request declared in
  `clientCapabilities`, with requestState `s-1`; its retry's answer is the text of a JSON
  object holding the `inputResponses`, `requestState` and `clientCapabilities` it received.
- `ask_forever`: answers every request with `input_required` carrying only a requestState
  (`r-<n>`, one more each time), so a client would retry for ever.
- `ask_many`: asks for 17 roots/list inputs in one round.

Only the Python standard library.
"""
import json
import sys

META = "_meta"
CAPS = "io.modelcontextprotocol/clientCapabilities"


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def result(mid, body):
    body.setdefault("resultType", "complete")
    send({"jsonrpc": "2.0", "id": mid, "result": body})


def input_required(mid, requests, state):
    body = {"resultType": "input_required"}
    if requests:
        body["inputRequests"] = requests
    if state is not None:
        body["requestState"] = state
    send({"jsonrpc": "2.0", "id": mid, "result": body})


ELICIT = {
    "method": "elicitation/create",
    "params": {
        "message": "Who?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}

TOOLS = [
    {"name": n, "inputSchema": {"type": "object"}}
    for n in ("ask_anyway", "ask_forever", "ask_many")
]


def call(mid, params):
    name = params.get("name")
    responses = params.get("inputResponses")
    state = params.get("requestState")
    if name == "ask_anyway":
        if responses is None:
            input_required(mid, {"who": ELICIT}, "s-1")
            return
        seen = {
            "inputResponses": responses,
            "requestState": state,
            "clientCapabilities": (params.get(META) or {}).get(CAPS),
        }
        result(mid, {"content": [{"type": "text", "text": json.dumps(seen, sort_keys=True)}]})
    elif name == "ask_forever":
        n = int(state[2:]) + 1 if state else 1
        input_required(mid, None, "r-%d" % n)
    elif name == "ask_many":
        asks = {"root%d" % i: {"method": "roots/list"} for i in range(17)}
        input_required(mid, asks, None)
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "Unknown tool"}})


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    method, mid = msg.get("method"), msg.get("id")
    if mid is None or method is None:
        continue
    params = msg.get("params") or {}
    if method == "server/discover":
        result(mid, {
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "ttlMs": 0,
            "cacheScope": "public",
            META: {"io.modelcontextprotocol/serverInfo": {"name": "asker", "version": "1"}},
        })
    elif method == "tools/list":
        result(mid, {"tools": TOOLS, "ttlMs": 0, "cacheScope": "public"})
    elif method == "tools/call":
        call(mid, params)
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
