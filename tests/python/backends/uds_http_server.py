"""A real MCP server built with the official Python SDK (`MCPServer`, Streamable HTTP) served by
uvicorn on a unix socket (`uds=`), for the gateway's `unix:` backends.

The tools say which process answered (`whoami`: its pid, so a test sees a restarted server)
and take time (`slow`), so concurrent calls through the gateway overlap.

The gateway sends `Host: localhost` (no port) on a unix socket, as nginx and curl do. The
SDK's automatic DNS-rebinding check allows only `localhost:*`-style hosts with a port, so a
unix-socket deployment of an SDK server lists `localhost` itself, as here.

With `json` after the path it answers requests with JSON bodies (`json_response=True`)
instead of a short SSE stream each; with `sse` it serves the deprecated HTTP+SSE transport
(2024-11-05: GET /sse, POST /messages/), to test the gateway's fallback over a socket.

Usage: python uds_http_server.py SOCKET_PATH [json|sse]   (endpoint /mcp, or /sse)
"""

import os
import sys

import anyio
import uvicorn

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

server = MCPServer("uds")


@server.tool()
def echo(message: str) -> str:
    """Returns the message."""
    return message


@server.tool()
def whoami() -> str:
    """The pid of the server process."""
    return f"pid={os.getpid()}"


@server.tool()
async def slow(ms: int) -> str:
    """Sleeps `ms` milliseconds, then answers."""
    await anyio.sleep(ms / 1000)
    return f"slept {ms}ms"


if __name__ == "__main__":
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["localhost"],
        allowed_origins=[],
    )
    if sys.argv[2:] == ["sse"]:
        app = server.sse_app(transport_security=security)
    else:
        app = server.streamable_http_app(
            streamable_http_path="/mcp",
            json_response=sys.argv[2:] == ["json"],
            transport_security=security,
        )
    uvicorn.run(app, uds=sys.argv[1], log_level="warning")
