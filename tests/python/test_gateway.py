"""The official MCP Python SDK through the gateway to four real backends, on both drivers.

Backends (see conftest.main_config): @modelcontextprotocol/server-everything (stdio),
mcp-server-time (stdio), the built-in demo server over HTTP (`demohttp`) and over stdio
(`demo`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

from conftest import (
    DEMO_TOOLS,
    EVERYTHING_BIN,
    MAIN_BACKENDS,
    Gateway,
    list_all_tools,
    mcp_session,
    run,
    text_of,
)

# What the demo server's `image` tool returns (see demo/src/tools.rs).
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4n8YAAAPNAWbDbP9aAAAAAElFTkSuQmCC"
WAV_B64 = "UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA=="


async def call(gateway: Gateway, name: str, arguments: dict[str, Any] | None = None) -> Any:
    async with mcp_session(gateway.url) as session:
        return await session.call_tool(name, arguments or {})


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


async def _everything_direct_tools(client_capabilities: bool) -> set[str]:
    """server-everything's own tool names, asked directly over stdio (no gateway). It lists
    some tools (trigger-sampling-request, ...) only to clients that declare sampling,
    elicitation or roots, so ask both without and with those capabilities."""

    async def never_called(*_args: Any) -> Any:
        raise AssertionError("server-everything sent a request while listing tools")

    callbacks = (
        dict(sampling_callback=never_called, elicitation_callback=never_called,
             list_roots_callback=never_called)
        if client_capabilities else {}
    )
    params = StdioServerParameters(command=str(EVERYTHING_BIN), args=["stdio"])
    async with stdio_client(params) as (read, write), ClientSession(read, write, **callbacks) as session:
        await session.initialize()
        return {t.name for t in await list_all_tools(session)}


@pytest.fixture(scope="module")
def everything_direct() -> tuple[set[str], set[str]]:
    """(tools for a client without capabilities, tools for one with sampling/elicitation/roots)."""
    return run(_everything_direct_tools, False), run(_everything_direct_tools, True)


def test_list_tools_merges_all_backends(gateway: Gateway,
                                        everything_direct: tuple[set[str], set[str]]) -> None:
    async def body() -> list[Any]:
        async with mcp_session(gateway.url) as session:
            return await list_all_tools(session)

    tools = run(body)
    names = [t.name for t in tools]
    assert len(names) == len(set(names)), f"duplicate tool names: {sorted(names)}"

    by_backend: dict[str, set[str]] = {}
    for name in names:
        server, sep, tool = name.partition("__")
        assert sep and server in MAIN_BACKENDS, f"tool {name!r} lacks a known `<id>__` prefix"
        by_backend.setdefault(server, set()).add(tool)

    # The demo server pages its tools/list 3 at a time: all 10 must be there, on both transports.
    assert by_backend["demo"] == set(DEMO_TOOLS)
    assert by_backend["demohttp"] == set(DEMO_TOOLS)
    assert {"get_current_time", "convert_time"} <= by_backend["time"]
    # The tools server-everything lists when asked directly: at least those of a plain client,
    # at most those of a client with every capability (the gateway relays the ones it can).
    minimal, maximal = everything_direct
    assert "echo" in minimal and minimal < maximal
    assert minimal <= by_backend["everything"] <= maximal, sorted(by_backend["everything"] ^ minimal)

    # /health agrees with what was listed.
    health = gateway.health()
    assert health["status"] == "ok"
    assert health["tools"] == len(names)
    for backend in health["backends"]:
        assert backend["tools"] == len(by_backend[backend["id"]]), backend

    # Definitions pass through: schemas, output schemas and annotations of the backend.
    add = next(t for t in tools if t.name == "demo__add")
    assert add.input_schema["required"] == ["a", "b"]
    assert add.output_schema == {
        "type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]
    }
    assert add.annotations is not None and add.annotations.read_only_hint is True
    tz = next(t for t in tools if t.name == "time__get_current_time")
    assert "timezone" in tz.input_schema["properties"]


# --------------------------------------------------------------------------------------------
# Calls to each backend
# --------------------------------------------------------------------------------------------


def test_everything_echo(gateway: Gateway) -> None:
    message = "hello through the gateway \u2713"
    result = run(call, gateway, "everything__echo", {"message": message})
    assert result.is_error is False
    assert text_of(result) == f"Echo: {message}"


def test_time_get_current_time_utc(gateway: Gateway) -> None:
    result = run(call, gateway, "time__get_current_time", {"timezone": "UTC"})
    assert result.is_error is False
    data = json.loads(text_of(result))
    assert data["timezone"] == "UTC"
    assert data["datetime"].endswith("+00:00"), data
    assert data["is_dst"] is False
    if result.structured_content is not None:
        assert result.structured_content["timezone"] == "UTC"


@pytest.mark.parametrize("server", ["demo", "demohttp"])
def test_demo_add_structured_content(gateway: Gateway, server: str) -> None:
    async def body() -> list[Any]:
        async with mcp_session(gateway.url) as session:
            return [
                await session.call_tool(f"{server}__add", {"a": 2, "b": 40}),
                await session.call_tool(f"{server}__add", {"a": 0.5, "b": -2.25}),
            ]

    ints, floats = run(body)
    assert ints.structured_content == {"sum": 42}
    assert text_of(ints) == "42"
    assert floats.structured_content == {"sum": -1.75}


@pytest.mark.parametrize("server", ["demo", "demohttp"])
def test_demo_echo_awkward_text_round_trips(gateway: Gateway, server: str) -> None:
    message = 'quote " backslash \\ newline \n tab \t unicode \u00e9\u4e2d\U0001f600 {"id": 7}'
    result = run(call, gateway, f"{server}__echo", {"message": message})
    assert text_of(result) == message
    assert result.structured_content == {"message": message}


DEMO_URI = "demo://files/hello.txt"


def assert_same_resource(uri: str, server: str) -> None:
    """The demo's resource URI, as sent or namespaced by the gateway for `server` (it may
    rewrite resource URIs so that resources/read through it finds the right backend)."""
    assert uri == DEMO_URI or (uri.endswith("/" + DEMO_URI) and f"/{server}/" in uri), uri


@pytest.mark.parametrize("server", ["demo", "demohttp"])
def test_demo_image_keeps_every_content_type(gateway: Gateway, server: str) -> None:
    result = run(call, gateway, f"{server}__image")
    assert result.is_error is False
    assert [b.type for b in result.content] == ["image", "audio", "resource_link", "resource"]
    image, audio, link, embedded = result.content
    assert image.data == PNG_B64 and image.mime_type == "image/png"
    assert image.annotations is not None
    assert image.annotations.audience == ["user"] and image.annotations.priority == 0.5
    assert audio.data == WAV_B64 and audio.mime_type == "audio/wav"
    assert_same_resource(str(link.uri), server)
    assert link.name == "hello.txt" and link.mime_type == "text/plain"
    assert link.description == "A linked text file."
    assert_same_resource(str(embedded.resource.uri), server)
    assert embedded.resource.mime_type == "text/plain"
    assert embedded.resource.text == "hello from the demo server"


@pytest.mark.parametrize("server", ["demo", "demohttp"])
def test_demo_fail_is_a_tool_error_not_a_protocol_error(gateway: Gateway, server: str) -> None:
    async def body() -> list[Any]:
        async with mcp_session(gateway.url) as session:
            return [
                await session.call_tool(f"{server}__fail", {"message": "custom failure text"}),
                await session.call_tool(f"{server}__fail", {}),
            ]

    custom, default = run(body)
    assert custom.is_error is True and text_of(custom) == "custom failure text"
    assert default.is_error is True and text_of(default) == "this tool always fails"


@pytest.mark.parametrize("server", ["demo", "demohttp"])
def test_demo_big_result(gateway: Gateway, server: str) -> None:
    result = run(call, gateway, f"{server}__big", {"kb": 700})
    text = text_of(result)
    assert len(text) == 700 * 1024 and set(text) == {"x"}


def test_whoami_reaches_the_right_backend(gateway: Gateway) -> None:
    async def body() -> list[str]:
        async with mcp_session(gateway.url) as session:
            return [text_of(await session.call_tool(n, {})) for n in ("demo__whoami", "demohttp__whoami")]

    assert run(body) == ["demo", "demohttp"]


def test_unknown_tool_is_invalid_params(gateway: Gateway) -> None:
    async def body() -> None:
        async with mcp_session(gateway.url) as session:
            for name in ("demo__no_such_tool", "nosuchserver__echo", "echo"):
                with pytest.raises(MCPError) as err:
                    await session.call_tool(name, {})
                assert err.value.code == -32602, (name, err.value.error)
                assert name in err.value.message
            # The session survives protocol errors.
            assert text_of(await session.call_tool("demo__whoami", {})) == "demo"

    run(body)


# --------------------------------------------------------------------------------------------
# Concurrency and shards
# --------------------------------------------------------------------------------------------


def test_concurrent_sessions(gateway: Gateway) -> None:
    sessions, calls_per_session, in_flight = 6, 24, 4

    async def one_session(sid: int) -> int:
        done = 0
        async with mcp_session(gateway.url) as session:
            for start in range(0, calls_per_session, in_flight):
                batch = []
                for i in range(start, start + in_flight):
                    kind = i % 3
                    if kind == 0:
                        batch.append(("add", i, session.call_tool("demo__add", {"a": sid, "b": i})))
                    elif kind == 1:
                        msg = f"s{sid}-c{i}"
                        batch.append(("echo", msg, session.call_tool("demohttp__echo", {"message": msg})))
                    else:
                        msg = f"e{sid}-{i}"
                        batch.append(("everything", msg,
                                      session.call_tool("everything__echo", {"message": msg})))
                results = await asyncio.gather(*(c for _, _, c in batch))
                for (kind, expect, _), result in zip(batch, results):
                    assert result.is_error is False, (kind, expect, result)
                    if kind == "add":
                        assert result.structured_content == {"sum": sid + expect}
                    elif kind == "echo":
                        assert result.structured_content == {"message": expect}
                    else:
                        assert text_of(result) == f"Echo: {expect}"
                    done += 1
        return done

    async def body() -> list[int]:
        return await asyncio.gather(*(one_session(s) for s in range(sessions)))

    assert run(body) == [calls_per_session] * sessions


MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def jsonrpc(client: httpx.Client, url: str, body: dict[str, Any],
            session_id: str | None = None, version: str | None = None) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if session_id:
        headers["Mcp-Session-Id"] = session_id
    if version:
        headers["MCP-Protocol-Version"] = version
    return client.post(url, json=body, headers=headers)


def response_message(response: httpx.Response, request_id: Any) -> dict[str, Any]:
    """The JSON-RPC response for `request_id`, from a JSON or an SSE body."""
    ctype = response.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        message = response.json()
        assert message.get("id") == request_id, message
        return message
    assert ctype.startswith("text/event-stream"), ctype
    for event in response.text.split("\n\n"):
        data = "\n".join(l[5:].lstrip() for l in event.splitlines() if l.startswith("data:"))
        if data:
            message = json.loads(data)
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message
    raise AssertionError(f"no response with id {request_id} in {response.text!r}")


def shard_of(client: httpx.Client, gateway: Gateway) -> int:
    """Which shard serves this client's (single, keep-alive) connection."""
    return client.get(f"{gateway.base}/health").json()["shard"]


def test_session_used_from_the_other_shard(gateway: Gateway) -> None:
    """A session minted on shard A, used over a connection that landed on shard B (handoff)."""
    one_conn = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    owner = httpx.Client(limits=one_conn, timeout=10.0)
    others: list[httpx.Client] = []
    try:
        shard_a = shard_of(owner, gateway)
        init = jsonrpc(owner, gateway.url, {
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "handoff-test", "version": "1"}},
        })
        assert init.status_code == 200, init.text
        session_id = init.headers["mcp-session-id"]
        version = response_message(init, 1)["result"]["protocolVersion"]
        ack = jsonrpc(owner, gateway.url, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                      session_id, version)
        assert ack.status_code == 202, ack.text
        assert shard_of(owner, gateway) == shard_a, "keep-alive connection moved shards"

        other = None
        for _ in range(64):  # SO_REUSEPORT spreads new connections over the shards
            client = httpx.Client(limits=one_conn, timeout=10.0)
            others.append(client)
            if shard_of(client, gateway) != shard_a:
                other = client
                break
        assert other is not None, "64 new connections all landed on one shard"

        for i in range(5):
            r = jsonrpc(other, gateway.url, {
                "jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                "params": {"name": "demo__add", "arguments": {"a": i, "b": 1000}},
            }, session_id, version)
            assert r.status_code == 200, r.text
            assert response_message(r, 10 + i)["result"]["structuredContent"] == {"sum": 1000 + i}
        assert shard_of(other, gateway) != shard_a

        # And back on the owner's connection it still works.
        r = jsonrpc(owner, gateway.url, {"jsonrpc": "2.0", "id": 99, "method": "tools/list"},
                    session_id, version)
        names = {t["name"] for t in response_message(r, 99)["result"]["tools"]}
        assert "demo__add" in names

        r = owner.delete(gateway.url, headers={"Mcp-Session-Id": session_id,
                                               "MCP-Protocol-Version": version})
        assert r.status_code in (200, 204), r.text
    finally:
        owner.close()
        for client in others:
            client.close()


# --------------------------------------------------------------------------------------------
# Session lifecycle
# --------------------------------------------------------------------------------------------


def test_closed_sdk_session_id_gets_404(gateway: Gateway) -> None:
    seen: list[tuple[str, int, str | None]] = []

    def on_response(response: Any) -> None:
        seen.append((response.request.method, response.status_code,
                     response.headers.get("mcp-session-id")))

    async def body() -> tuple[str, str]:
        async with mcp_session(gateway.url, on_response=on_response) as session:
            assert text_of(await session.call_tool("demo__whoami", {})) == "demo"
            version = session.protocol_version
            session_id = next(sid for method, _, sid in seen if method == "POST" and sid)
            # While open, the id works for a raw client too.
            async with httpx.AsyncClient(timeout=10.0) as raw:
                r = await raw.post(gateway.url, json={"jsonrpc": "2.0", "id": 5, "method": "tools/list"},
                                   headers={**MCP_HEADERS, "Mcp-Session-Id": session_id,
                                            "MCP-Protocol-Version": version})
                assert r.status_code == 200, r.text
                assert any(t["name"] == "demo__whoami"
                           for t in response_message(r, 5)["result"]["tools"])
        return session_id, version

    session_id, version = run(body)
    deletes = [status for method, status, _ in seen if method == "DELETE"]
    assert deletes and deletes[-1] in (200, 204), f"SDK's DELETE got {deletes}"

    with httpx.Client(timeout=10.0) as raw:
        headers = {**MCP_HEADERS, "Mcp-Session-Id": session_id, "MCP-Protocol-Version": version}
        r = raw.post(gateway.url, json={"jsonrpc": "2.0", "id": 6, "method": "tools/list"},
                     headers=headers)
        assert r.status_code == 404, (r.status_code, r.text)
        r = raw.post(gateway.url, json={"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                        "params": {"name": "demo__whoami", "arguments": {}}},
                     headers=headers)
        assert r.status_code == 404, (r.status_code, r.text)
        r = raw.delete(gateway.url, headers={"Mcp-Session-Id": session_id,
                                             "MCP-Protocol-Version": version})
        assert r.status_code == 404, (r.status_code, r.text)
