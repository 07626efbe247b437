"""A 2026-07-28 backend on the official Python SDK (`peers/dynamic_tools_server.py`) adds a
tool at run time and announces it only on its `subscriptions/listen` streams. Through the
gateway (which holds its own listen toward the backend), the SDK's 2026 client hears it on its
listen stream and a 2025 SDK session on its GET stream, each within a second of the call, and
both then list and call the new tool. Both drivers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ToolsListChanged

from conftest import DRIVERS, config_text, run, running_gateway, server_block, text_of

PEER = Path(__file__).parent / "peers" / "dynamic_tools_server.py"


def method_of(message: Any) -> str | None:
    inner = getattr(message, "root", message)
    return getattr(inner, "method", None)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_2026_backends_new_tool_reaches_both_eras_clients_within_a_second(
    driver: str, tmp_path: Path
) -> None:
    cfg = config_text(server_block("dyn", transport="stdio", command=sys.executable,
                                   args=[str(PEER)]))
    legacy_heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if method_of(message) == "notifications/tools/list_changed":
            legacy_heard.set()

    async def body(url: str) -> None:
        async with Client(url, mode="auto") as modern, \
                streamable_http_client(url) as (r, w), \
                ClientSession(r, w, message_handler=on_message) as legacy:
            await legacy.initialize()
            before = {t.name for t in (await modern.list_tools()).tools}
            assert before == {"dyn__add_tool"}, before
            async with modern.listen(tools_list_changed=True) as sub:
                assert sub.honored.tools_list_changed, sub.honored
                said = await modern.call_tool("dyn__add_tool", {"name": "late"})
                assert text_of(said) == "added late"
                called = time.monotonic()
                with anyio.fail_after(1.0):
                    event = await sub.__anext__()
                assert isinstance(event, ToolsListChanged), event
                with anyio.fail_after(max(0.05, 1.0 - (time.monotonic() - called))):
                    await legacy_heard.wait()
            names = {t.name for t in (await modern.list_tools()).tools}
            assert names == {"dyn__add_tool", "dyn__late"}, names
            legacy_names = {t.name for t in (await legacy.list_tools()).tools}
            assert legacy_names == names, legacy_names
            echoed = await legacy.call_tool("dyn__late", {"message": "from 2025"})
            assert text_of(echoed) == "from 2025"

    with running_gateway(driver, cfg, tmp_path, "ulisten", {"dyn": "ready"},
                         ["dynamic_tools_server.py"]) as gw:
        # The gateway's listen toward the backend is open before the client acts.
        deadline = time.monotonic() + 10
        while "upstream subscriptions/listen open" not in gw.log.read_text():
            assert time.monotonic() < deadline, gw.log.read_text()[-2000:]
            time.sleep(0.05)
        run(body, gw.url)
