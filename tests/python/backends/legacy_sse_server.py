"""A real MCP server on the deprecated HTTP+SSE transport (2024-11-05), built with the
official Python SDK (`MCPServer.run(transport="sse")`), for testing the gateway's fallback.

Usage: python legacy_sse_server.py PORT   (listens on 127.0.0.1:PORT, SSE at /sse)
"""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("legacy-sse")


@server.tool()
def shout(text: str) -> str:
    """Upper-cases the text."""
    return text.upper()


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


if __name__ == "__main__":
    server.run(transport="sse", host="127.0.0.1", port=int(sys.argv[1]))
