"""A real 2026-07-28 MCP server built with the official Python SDK (`MCPServer.run(
transport="streamable-http")`) whose tool mirrors arguments into `Mcp-Param-*` headers
(`x-mcp-header`, SEP-2243). The SDK server itself refuses a `tools/call` whose headers do
not match its body (400, -32020), so a call that succeeds through the gateway proves the
gateway sent this server the headers of its own tool.

Usage: python mirrored_http_server.py PORT   (listens on 127.0.0.1:PORT, endpoint /mcp)
"""

import sys
from typing import Annotated

from pydantic import Field

from mcp.server.mcpserver import MCPServer

server = MCPServer("mirrored")


@server.tool()
def locate(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    shard: Annotated[int, Field(json_schema_extra={"x-mcp-header": "Shard"})] = 0,
    note: str = "",
) -> str:
    """Says where the query would run."""
    return f"region={region} shard={shard} note={note}"


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
