"""A stdio MCP server that speaks 2026-07-28 only and is slow to start.

A stand-in (a mock, said so on purpose): real servers show this shape, e.g. mcp-server-time on
a loaded machine takes more than the gateway's 3 s era probe to start and then refuses
`initialize` with -32022, but how long they take depends on the machine, so they cannot make
a test that fails reliably. This one sleeps SLOW_START_S (default 4) before it reads stdin,
answers a `server/discover` that arrives after that, refuses `initialize` the way such a
server does, lists one tool and echoes. Standard library only.
"""

import json
import os
import sys
import time

VERSION = "2026-07-28"
TOOL = {"name": "echo", "description": "Returns the message.",
        "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}},
                        "required": ["message"]}}


def send(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def result(rid, body: dict) -> None:
    send({"jsonrpc": "2.0", "id": rid, "result": {"resultType": "complete", **body}})


def main() -> None:
    time.sleep(float(os.environ.get("SLOW_START_S", "4")))
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        rid, method = msg.get("id"), msg.get("method")
        if rid is None:
            continue
        if method == "server/discover":
            result(rid, {"supportedVersions": [VERSION], "capabilities": {"tools": {}},
                         "serverInfo": {"name": "slow-modern", "version": "1"},
                         "ttlMs": 0, "cacheScope": "public"})
        elif method == "initialize":
            send({"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32022, "message": "Unsupported protocol version",
                "data": {"supported": [VERSION], "requested": msg.get("params", {}).get("protocolVersion")}}})
        elif method == "tools/list":
            result(rid, {"tools": [TOOL], "ttlMs": 0, "cacheScope": "public"})
        elif method == "tools/call":
            text = msg.get("params", {}).get("arguments", {}).get("message", "")
            result(rid, {"content": [{"type": "text", "text": text}]})
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"unknown method {method}"}})


if __name__ == "__main__":
    main()
