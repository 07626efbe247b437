"""Hot reload seen by the official MCP Python SDK, on both drivers: a session that stays
open across a config rewrite gets `notifications/tools/list_changed`, its next `tools/list`
shows the added server and drops the removed one, and a call to the server the reload did
not touch keeps working in the same session. The removed server's process is gone.
"""

from __future__ import annotations

import time

import anyio
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from conftest import (
    DRIVERS,
    backend_pids,
    config_text,
    demo_stdio,
    list_all_tools,
    run,
    running_gateway,
    text_of,
)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_reload_sends_list_changed_and_keeps_the_session(driver: str, tmp_path) -> None:
    before = config_text(demo_stdio("stay"), demo_stdio("leave"))
    after = config_text(demo_stdio("stay"), demo_stdio("arrive"))
    with running_gateway(driver, before, tmp_path, "reload", {"stay": "ready", "leave": "ready"},
                         ["--name stay"]) as gw:
        cfg = tmp_path / f"reload-{driver}.toml"
        assert "leave" in cfg.read_text()
        leave_pids = backend_pids(gw.pid, "--name leave")
        assert leave_pids

        async def body() -> list[str]:
            changed = anyio.Event()

            async def on_message(message: object) -> None:
                # (SDK 2.x hands over the notification itself; 1.x wrapped it in .root)
                inner = getattr(message, "root", message)
                if isinstance(inner, types.ToolListChangedNotification):
                    changed.set()

            async with streamable_http_client(gw.url) as (read, write), ClientSession(
                read, write, message_handler=on_message
            ) as session:
                await session.initialize()
                names = [t.name for t in await list_all_tools(session)]
                assert "leave__echo" in names and "arrive__echo" not in names
                # Give the SDK's GET stream a moment to open before the change.
                await anyio.sleep(0.5)
                cfg.write_text(after)
                with anyio.fail_after(15):
                    await changed.wait()
                # The new server's tools appear once it has listed them.
                with anyio.fail_after(15):
                    while True:
                        names = [t.name for t in await list_all_tools(session)]
                        if "arrive__echo" in names:
                            break
                        await anyio.sleep(0.1)
                r = await session.call_tool("stay__echo", {"message": "still here"})
                assert text_of(r) == "still here"
                return names

        names = run(body)
        assert "leave__echo" not in names, names
        deadline = time.monotonic() + 10
        while backend_pids(gw.pid, "--name leave") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not backend_pids(gw.pid, "--name leave"), "removed server's process still runs"
        assert "config reloaded" in gw.log.read_text()
