"""Per-role tool names and descriptions (`[[auth.roles]] rename` / `descriptions`) through the
real gateway, both drivers: the official Python SDK on the 2025-era session, and raw
stateless 2026-07-28 requests.

Two API keys: `support` (a role that shows `demo__echo` as `say_back` with its own
description, and gives `demo__add` a new description) and `ops` (no overrides). Proven:
each sees its own names and descriptions with the same input schema; a call by the role's
name reaches the tool; the gateway's name of a renamed tool is unknown to that role, and
the role's name is unknown to everyone else; search mode finds, describes and calls by the
role's names; and a rename onto a name the catalog already has is not applied.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

pytest.register_assert_rewrite("authkit")

from authkit import Raw, rpc_error, rpc_result  # noqa: E402
from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway, text_of  # noqa: E402

SUPPORT, OPS = "k-support-0123456789", "k-ops-0123456789"


def auth_config() -> str:
    def key(name: str, secret: str, role: str) -> str:
        return (f'[[auth.api_keys]]\nname = "{name}"\n'
                f'sha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"\nroles = ["{role}"]\n')

    return (
        '[auth]\nmode = "api_key"\n'
        + key("support", SUPPORT, "support") + key("ops", OPS, "ops")
        + '[[auth.roles]]\nname = "support"\nservers = ["demo"]\n'
        + '[auth.roles.rename]\n"demo__echo" = "say_back"\n"demo__whoami" = "demo__add"\n'
        + '[auth.roles.descriptions]\n"demo__echo" = "Repeat the customer\'s message word for word."\n'
        + '"demo__add" = "Add two numbers for an invoice."\n'
        + '[[auth.roles]]\nname = "ops"\n'
    )


async def sdk(url: str, key: str, mode: str = "full") -> dict:
    client = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {key}", "X-MCP-Discovery": mode}, timeout=20)
    async with client, streamable_http_client(url, http_client=client) as (r, w), \
            ClientSession(r, w) as s:
        await s.initialize()
        out: dict = {"tools": {t.name: t for t in (await s.list_tools()).tools}, "errors": {}}
        if mode == "search":
            found = await s.call_tool("search_tools", {"query": "echo message back", "limit": 3})
            out["found"] = found.structured_content["tools"]
            schema = await s.call_tool("get_tool_schema", {"name": "say_back"})
            out["schema"] = schema.structured_content or text_of(schema)
            said = await s.call_tool("call_tool", {"name": "say_back", "arguments": {"message": "via meta"}})
            out["said"] = text_of(said)
            calls = [("get_tool_schema", {"name": "demo__echo"}),
                     ("call_tool", {"name": "demo__echo", "arguments": {"message": "x"}})]
        else:
            calls = [(n, {"message": "hi"}) for n in ("say_back", "demo__echo")]
        for name, args in calls:
            try:
                out[name] = text_of(await s.call_tool(name, args))
            except MCPError as e:
                out["errors"][name] = e.message
        return out


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_role_sees_and_calls_its_own_names(driver: str, tmp_path) -> None:
    cfg = auth_config() + config_text(demo_stdio("demo"))
    with running_gateway(driver, cfg, tmp_path, "rolenames", {"demo": "ready"}, ["--name demo"]) as gw:
        sup = run(sdk, gw.url, SUPPORT)
        ops = run(sdk, gw.url, OPS)
        # support: echo is say_back with the role's description, same schema; add has only a
        # new description; whoami keeps its name (demo__add exists: that rename is skipped).
        assert "say_back" in sup["tools"] and "demo__echo" not in sup["tools"]
        assert sup["tools"]["say_back"].description == "Repeat the customer's message word for word."
        assert sup["tools"]["say_back"].input_schema == ops["tools"]["demo__echo"].input_schema
        assert sup["tools"]["demo__add"].description == "Add two numbers for an invoice."
        assert "demo__whoami" in sup["tools"]
        assert sup["say_back"] == "hi"
        assert sup["errors"] == {"demo__echo": "unknown tool: demo__echo"}
        # ops: the catalog as it is; support's name means nothing to it.
        assert "say_back" not in ops["tools"]
        assert ops["tools"]["demo__add"].description != "Add two numbers for an invoice."
        assert ops["demo__echo"] == "hi"
        assert ops["errors"] == {"say_back": "unknown tool: say_back"}

        # The same on stateless 2026-07-28 requests.
        with Raw(gw.url, SUPPORT) as raw:
            names = {t["name"] for t in raw.list_all("tools", modern=True)}
            assert "say_back" in names and "demo__echo" not in names
            r = rpc_result(raw.modern("tools/call", {"name": "say_back", "arguments": {"message": "m"}}))
            assert r["content"][0]["text"] == "m"
            err = rpc_error(raw.modern("tools/call", {"name": "demo__echo", "arguments": {"message": "m"}}))
            assert err["message"] == "unknown tool: demo__echo"


@pytest.mark.parametrize("driver", DRIVERS)
def test_search_mode_uses_the_roles_names(driver: str, tmp_path) -> None:
    cfg = auth_config() + config_text(demo_stdio("demo"))
    with running_gateway(driver, cfg, tmp_path, "rolesearch", {"demo": "ready"}, ["--name demo"]) as gw:
        sup = run(sdk, gw.url, SUPPORT, "search")
        names = [t["name"] for t in sup["found"]]
        assert names[0] == "say_back", sup["found"]
        assert "demo__echo" not in names
        assert sup["found"][0]["description"] == "Repeat the customer's message word for word."
        schema = sup["schema"]
        schema = schema if isinstance(schema, dict) else json.loads(schema)
        assert schema["name"] == "say_back" and "message" in schema["inputSchema"]["properties"]
        assert sup["said"] == "via meta"
        assert sup["errors"] == {"get_tool_schema": "unknown tool: demo__echo",
                                 "call_tool": "unknown tool: demo__echo"}
