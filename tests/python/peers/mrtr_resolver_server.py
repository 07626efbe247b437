"""A stdio MCP server on the official Python SDK (`MCPServer`) whose tools ask the client for
input through resolvers (`Elicit`, `Sample`, `ListRoots`). Over stdio the SDK serves one era
per connection, chosen by the first request; behind the gateway, which opens with
`server/discover`, it speaks 2026-07-28 only, so its questions come back as
`InputRequiredResult` (with the SDK's own sealed `requestState`) and the gateway bridges them
to 2025 sessions.
"""

from typing import Annotated

from pydantic import BaseModel

from mcp.server.mcpserver import Elicit, MCPServer, Resolve
from mcp.server.mcpserver.resolve import ListRoots, Sample
from mcp.types import CreateMessageResult, ListRootsResult, SamplingMessage, TextContent

server = MCPServer("mrtr")


class Person(BaseModel):
    name: str


def ask_name() -> Elicit[Person]:
    return Elicit("What is your name?", Person)


def ask_capital() -> Sample:
    question = TextContent(type="text", text="What is the capital of France?")
    return Sample([SamplingMessage(role="user", content=question)], max_tokens=20)


def ask_roots() -> ListRoots:
    return ListRoots()


@server.tool()
async def greet(person: Annotated[Person, Resolve(ask_name)]) -> str:
    """Asks the user's name, then greets them."""
    return f"Hello, {person.name}!"


@server.tool()
async def capital(answer: Annotated[CreateMessageResult, Resolve(ask_capital)]) -> str:
    """Asks the client's LLM for the capital of France."""
    content = answer.content
    return f"The LLM says: {content.text if content.type == 'text' else '?'}"


@server.tool()
async def roots(found: Annotated[ListRootsResult, Resolve(ask_roots)]) -> str:
    """Counts the client's roots."""
    return f"{len(found.roots)} root(s)"


@server.tool()
async def everything(
    person: Annotated[Person, Resolve(ask_name)],
    answer: Annotated[CreateMessageResult, Resolve(ask_capital)],
    found: Annotated[ListRootsResult, Resolve(ask_roots)],
) -> str:
    """Asks for all three."""
    text = answer.content.text if answer.content.type == "text" else "?"
    return f"{person.name}, {text}, {len(found.roots)} root(s)"


if __name__ == "__main__":
    server.run()
