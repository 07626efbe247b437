"""A stdio MCP server that lies in the ways a broken or hostile backend does.

Used by tests/hostile.rs (a real process behind the real gateway; no mock of the gateway).
It answers the handshake and lists three tools, then for a call of:
  nullid  -> a JSON-RPC parse error with id null (what servers answer to a line they
             could not read), instead of a result
  deep    -> a reply with the right id whose result nests 5,000 levels deep
  echo    -> a normal result (to show the gateway still serves after the two above)
Only the Python standard library.
"""
import json
import sys


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


TOOLS = [
    {"name": n, "inputSchema": {"type": "object"}} for n in ("nullid", "deep", "echo")
]

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    method, mid = msg.get("method"), msg.get("id")
    if mid is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "lying", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        name = msg["params"]["name"]
        if name == "nullid":
            send({"jsonrpc": "2.0", "id": None,
                  "error": {"code": -32700, "message": "Parse error"}})
        elif name == "deep":
            sys.stdout.write('{"jsonrpc":"2.0","id":%s,"result":{"x":%s%s}}\n'
                             % (json.dumps(mid), "[" * 5000, "]" * 5000))
            sys.stdout.flush()
        else:
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "content": [{"type": "text", "text": "still here"}]}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": mid,
              "error": {"code": -32601, "message": "no such method"}})
