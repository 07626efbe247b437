"""A stdio MCP server that takes its time to exit: when its stdin closes (the gateway stopping
it), it waits `SLOW_EXIT_S` seconds (default 4) before exiting, as a server that flushes
state would, and it ignores SIGTERM (the gateway's SIGKILL ends it about 1.5 s after it began
stopping it). Used by tests/drain_keepalive.rs to hold a stopping shard open after its grace,
so what the shard does with a request arriving then can be seen. One tool, `ping`. Only the
Python standard library.
"""
import json
import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


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
            "serverInfo": {"name": "slow-exit", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [
            {"name": "ping", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "content": [{"type": "text", "text": "pong"}]}})
    else:
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
time.sleep(float(os.environ.get("SLOW_EXIT_S", "4")))
