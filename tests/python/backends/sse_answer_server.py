"""A real MCP server built with the official Python SDK (`MCPServer.run(transport=
"streamable-http")`) that answers every POST on an SSE stream (`json_response=False`, the
SDK's default, spelled out): the response event, then the end of the stream.

Usage: python sse_answer_server.py PORT   (listens on 127.0.0.1:PORT, endpoint /mcp)
"""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("sseanswer")


@server.tool()
def echo(message: str) -> str:
    """Returns its message."""
    return message


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]),
               json_response=False)
