"""The `search` discovery mode through the real gateway with the official MCP Python SDK,
both drivers: a client that asks for it (`X-MCP-Discovery: search`) lists three meta tools
instead of every schema, finds a tool by words, reads its schema and calls it; a client
that does not ask still gets the full list; and `[proxy] discovery = "search"` makes search
the default that a client may turn off with `X-MCP-Discovery: full`.
"""

from __future__ import annotations

import json

import httpx
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway, text_of

META = ["search_tools", "get_tool_schema", "call_tool"]


async def tools_and_calls(url: str, header: str | None) -> dict:
    headers = {"X-MCP-Discovery": header} if header else {}
    client = httpx.AsyncClient(headers=headers, timeout=20)
    async with client, streamable_http_client(url, http_client=client) as (r, w), \
            ClientSession(r, w) as session:
        await session.initialize()
        names = [t.name for t in (await session.list_tools()).tools]
        out: dict = {"names": names}
        if "search_tools" in names:
            found = await session.call_tool("search_tools", {"query": "add two numbers", "limit": 3})
            out["found"] = [t["name"] for t in found.structured_content["tools"]]
            schema = await session.call_tool("get_tool_schema", {"name": "demo__add"})
            out["schema"] = json.loads(text_of(schema))
            summed = await session.call_tool("call_tool", {"name": "demo__add", "arguments": {"a": 2, "b": 3}})
            out["sum"] = text_of(summed)
            try:
                await session.call_tool("get_tool_schema", {"name": "demo__nope"})
                out["unknown"] = None
            except MCPError as e:  # the same error as a tools/call of an unknown tool
                out["unknown"] = (e.code, e.message)
        return out


@pytest.mark.parametrize("driver", DRIVERS)
def test_search_mode_finds_describes_and_calls(driver: str, tmp_path) -> None:
    cfg = config_text(demo_stdio("demo"), demo_stdio("other"))
    with running_gateway(driver, cfg, tmp_path, "disc", {"demo": "ready", "other": "ready"},
                         ["--name demo"]) as gw:
        s = run(tools_and_calls, gw.url, "search")
        assert s["names"] == META
        assert s["found"][0] == "demo__add", s["found"]
        assert s["schema"]["name"] == "demo__add"
        assert s["schema"]["inputSchema"]["required"] == ["a", "b"]
        assert s["sum"] == "5"
        assert s["unknown"] == (-32602, "unknown tool: demo__nope")
        full = run(tools_and_calls, gw.url, None)
        assert "demo__add" in full["names"] and "search_tools" not in full["names"]
        assert len(full["names"]) == 2 * 11


@pytest.mark.parametrize("driver", DRIVERS)
def test_search_as_the_default_and_full_on_request(driver: str, tmp_path) -> None:
    cfg = config_text(demo_stdio("demo")).replace("[proxy]\n", '[proxy]\ndiscovery = "search"\n')
    with running_gateway(driver, cfg, tmp_path, "disc2", {"demo": "ready"}, ["--name demo"]) as gw:
        assert run(tools_and_calls, gw.url, None)["names"] == META
        assert "demo__echo" in run(tools_and_calls, gw.url, "full")["names"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_search_mode_respects_roles(driver: str, tmp_path) -> None:
    import hashlib

    key = "k-reader-only-echo"
    auth = (
        '[auth]\nmode = "api_key"\n[[auth.api_keys]]\nname = "reader"\n'
        f'sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\nroles = ["echo-only"]\n'
        '[[auth.roles]]\nname = "echo-only"\ntools = ["demo__echo"]\n'
    )
    cfg = auth + config_text(demo_stdio("demo"))

    async def body(url: str) -> dict:
        client = httpx.AsyncClient(
            headers={"X-MCP-Discovery": "search", "Authorization": f"Bearer {key}"}, timeout=20
        )
        async with client, streamable_http_client(url, http_client=client) as (r, w), \
                ClientSession(r, w) as session:
            await session.initialize()
            found = await session.call_tool("search_tools", {"query": "add two numbers echo message"})
            names = [t["name"] for t in found.structured_content["tools"]]
            errors = []
            for tool, args in [("get_tool_schema", {"name": "demo__add"}),
                               ("call_tool", {"name": "demo__add", "arguments": {"a": 1, "b": 2}})]:
                try:
                    await session.call_tool(tool, args)
                    errors.append(None)
                except MCPError as e:
                    errors.append(e.message)
            return {"names": names, "errors": errors}

    with running_gateway(driver, cfg, tmp_path, "disc3", {"demo": "ready"}, ["--name demo"]) as gw:
        r = run(body, gw.url)
        assert r["names"] == ["demo__echo"], r
        assert r["errors"] == ["unknown tool: demo__add"] * 2, r


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("overflow", ["search", "truncate"])
def test_a_tool_ceiling_applies_its_overflow_policy(driver: str, overflow: str, tmp_path) -> None:
    cfg = config_text(demo_stdio("demo"), demo_stdio("other")).replace(
        "[proxy]\n", f'[proxy]\nmax_tools = 5\ntools_overflow = "{overflow}"\n'
    )

    async def body(url: str) -> tuple[list[str], str]:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as session:
            await session.initialize()
            names = [t.name for t in (await session.list_tools()).tools]
            # Beyond the ceiling every tool stays callable by name ...
            echoed = await session.call_tool("other__echo", {"message": "still callable"})
            if overflow == "search":
                # ... and the meta tools work for a client switched to search.
                found = await session.call_tool("search_tools", {"query": "echo message back"})
                assert found.structured_content["tools"], found
            return names, text_of(echoed)

    with running_gateway(driver, cfg, tmp_path, f"ceil-{overflow}", {"demo": "ready", "other": "ready"},
                         ["--name demo"]) as gw:
        names, echoed = run(body, gw.url)
        if overflow == "search":
            assert names == META, names
        else:
            assert len(names) == 5 and all(n.startswith("demo__") for n in names), names
        assert echoed == "still callable"


@pytest.mark.parametrize("driver", DRIVERS)
def test_hybrid_lists_pinned_and_most_used_tools_within_the_budget(driver: str, tmp_path) -> None:
    cfg = config_text(demo_stdio("demo")).replace(
        "[proxy]\n", '[proxy]\nhybrid_pinned = ["demo__echo"]\nhybrid_most_used = 1\n'
    )

    async def body(url: str, header: str) -> tuple[list[str], list[str]]:
        client = httpx.AsyncClient(headers={"X-MCP-Discovery": header}, timeout=20)
        async with client, streamable_http_client(url, http_client=client) as (r, w), \
                ClientSession(r, w) as session:
            await session.initialize()
            before = [t.name for t in (await session.list_tools()).tools]
            for _ in range(3):
                await session.call_tool("call_tool", {"name": "demo__add", "arguments": {"a": 1, "b": 1}})
            await session.call_tool("demo__whoami", {})
            after = [t.name for t in (await session.list_tools()).tools]
            return before, after

    with running_gateway(driver, cfg, tmp_path, "hybrid", {"demo": "ready"}, ["--name demo"]) as gw:
        before, after = run(body, gw.url, "hybrid")
        assert before == META + ["demo__echo"], before
        # The most used tool joins (3 calls of add beat 1 of whoami; hybrid_most_used = 1).
        assert after == META + ["demo__echo", "demo__add"], after

    tight = cfg.replace("hybrid_most_used = 1\n", "hybrid_most_used = 1\nhybrid_token_budget = 10\n")
    with running_gateway(driver, tight, tmp_path, "hybrid2", {"demo": "ready"}, ["--name demo"]) as gw:
        before, _ = run(body, gw.url, "hybrid")
        assert before == META, before  # nothing fits in 10 tokens


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", ["search", "hybrid"])
def test_list_changed_reaches_search_and_hybrid_clients(driver: str, mode: str, tmp_path) -> None:
    import anyio
    from mcp import types

    before = config_text(demo_stdio("demo"))
    after = config_text(demo_stdio("demo"), demo_stdio("arrive"))
    name = f"disc-lc-{mode}"

    async def body(url: str) -> list[str]:
        changed = anyio.Event()

        async def on_message(message: object) -> None:
            inner = getattr(message, "root", message)
            if isinstance(inner, types.ToolListChangedNotification):
                changed.set()

        client = httpx.AsyncClient(headers={"X-MCP-Discovery": mode}, timeout=20)
        async with client, streamable_http_client(url, http_client=client) as (r, w), \
                ClientSession(r, w, message_handler=on_message) as session:
            await session.initialize()
            assert [t.name for t in (await session.list_tools()).tools][:3] == META
            await anyio.sleep(0.5)  # the SDK's GET stream opens
            (tmp_path / f"{name}-{driver}.toml").write_text(after)
            with anyio.fail_after(15):
                await changed.wait()
            # The new server's tools are found once it has listed them.
            with anyio.fail_after(15):
                while True:
                    found = await session.call_tool("search_tools", {"query": "echo message", "limit": 20})
                    names = [t["name"] for t in found.structured_content["tools"]]
                    if "arrive__echo" in names:
                        return names
                    await anyio.sleep(0.2)

    with running_gateway(driver, before, tmp_path, name, {"demo": "ready"}, ["--name demo"]) as gw:
        names = run(body, gw.url)
        assert "demo__echo" in names and "arrive__echo" in names
