"""A stdio MCP server that floods its client with progress notifications.

Used by tests/slow_client.rs (a real process behind the real gateway). One tool, `flood`:
with a progress token it sends `n` notifications/progress whose message is `size` bytes,
then its result (after `delay_ms`, if given). A client that does not read them must not
make the gateway buffer them all. Only the Python standard library.
"""
import json
import sys
import time


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")


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
            "serverInfo": {"name": "flood", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [
            {"name": "flood", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        params = msg["params"]
        args = params.get("arguments") or {}
        token = (params.get("_meta") or {}).get("progressToken")
        text = "x" * int(args.get("size", 1000))
        time.sleep(min(int(args.get("delay_ms", 0)), 10000) / 1000)
        for i in range(int(args.get("n", 0))):
            send({"jsonrpc": "2.0", "method": "notifications/progress", "params": {
                "progressToken": token, "progress": i, "message": text}})
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "content": [{"type": "text", "text": "flood done"}]}})
    else:
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    sys.stdout.flush()
