"""The official Python SDK's high-level `Client` in its 2026-07-28 mode (`mode="auto"`:
`server/discover` first) against the gateway, on both drivers: it must find the gateway
modern, and list and call tools statelessly, while a 2025 session works beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp.client.client import Client

from conftest import DRIVERS, config_text, demo_stdio, mcp_session, run, running_gateway, text_of


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


def test_sdk_client_speaks_2026_to_the_gateway(driver: str, tmp_path: Path) -> None:
    cfg = config_text(demo_stdio("demo"))
    with running_gateway(driver, cfg, tmp_path, "modern", {"demo": "ready"}, []) as gw:
        async def body() -> None:
            async with Client(gw.url, mode="auto") as client:
                # Discovery succeeded: the client adopted a modern version, no session.
                session = client.session
                assert session.discover_result is not None, "the SDK fell back to initialize"
                assert "2026-07-28" in session.discover_result.supported_versions
                tools = await client.list_tools()
                names = {t.name for t in tools.tools}
                assert "demo__echo" in names and "demo__add" in names, names
                result = await client.call_tool("demo__echo", {"message": "stateless"})
                assert text_of(result) == "stateless"
                added = await client.call_tool("demo__add", {"a": 20, "b": 22})
                assert added.structured_content == {"sum": 42}
            # The same gateway still serves a 2025 session.
            async with mcp_session(gw.url) as legacy:
                assert text_of(await legacy.call_tool("demo__echo", {"message": "old"})) == "old"

        run(body)
