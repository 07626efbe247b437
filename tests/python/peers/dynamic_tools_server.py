"""A stdio MCP server on the official Python SDK (`MCPServer`) whose tool list changes at run
time: `add_tool(name)` registers an echo tool `name` and announces the change on the
server's `subscriptions/listen` streams (`ctx.notify_tools_changed()`), the only place a
2026-07-28 server announces it. The SDK serves both eras; behind the gateway it is discovered,
and listened to, in 2026-07-28.
"""

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("dynamic")


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Adds an echo tool called `name` and announces the new tool list."""

    def echo(message: str) -> str:
        return message

    server.add_tool(echo, name=name, description=f"echo, added at run time as {name}")
    await ctx.notify_tools_changed()
    return f"added {name}"


if __name__ == "__main__":
    server.run()
