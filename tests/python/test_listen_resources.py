"""The official Python SDK's 2026-07-28 `Client.listen(resource_subscriptions=...)` through the
gateway: the gateway acknowledges the URIs it can carry, subscribes them upstream, and the
SDK's listen yields `ResourceUpdated` for them. Against the demo's conformance fixture in each
era the gateway speaks to it (2025-only: `resources/subscribe` on the shard's session;
2026-only: the shard's own listen toward it), and against server-everything (a server nobody
here wrote, whose updates start when its `toggle-subscriber-updates` tool is called). A URI
no backend serves is left out of the acknowledgment. Both drivers.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp.client.client import Client
from mcp.shared.subscriptions import ResourceUpdated

from conftest import (DRIVERS, EVERYTHING_BIN, config_text, demo_stdio, run, running_gateway,
                      server_block)

FIXTURE_PERIOD_S = 3.0  # the demo updates a watched resource this often
EVERYTHING_PERIOD_S = 5.0  # server-everything: once at once, then this often


async def hear_update(client: Client, uri: str, within_s: float, kick: str | None = None) -> None:
    async with client.listen(resource_subscriptions=[uri, "test://no-such-backend/x"]) as sub:
        honored = list(sub.honored.resource_subscriptions or [])
        assert honored == [uri], sub.honored
        if kick is not None:
            await client.call_tool(kick, {})
        with anyio.fail_after(within_s):
            event = await sub.__anext__()
        assert event == ResourceUpdated(uri=uri), event


@pytest.mark.parametrize("era", ["2025-only", "2026-only"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_2026_sdk_listen_hears_the_fixtures_resource_updates(
    driver: str, era: str, tmp_path: Path
) -> None:
    only = 'DEMO_MODERN = "0"' if era == "2025-only" else 'DEMO_LEGACY = "0"'
    cfg = config_text(demo_stdio("fx") + f'env = {{ DEMO_CONFORMANCE = "1", {only} }}\n')

    async def body(url: str) -> None:
        async with Client(url, mode="auto") as client:
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            watched = next(u for u in uris if u.endswith("test://watched-resource"))
            await hear_update(client, watched, FIXTURE_PERIOD_S + 3)

    with running_gateway(driver, cfg, tmp_path, "lres", {"fx": "ready"}, ["--name fx"]) as gw:
        run(body, gw.url)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_2026_sdk_listen_hears_server_everythings_resource_updates(
    driver: str, tmp_path: Path
) -> None:
    if not EVERYTHING_BIN.exists():
        pytest.fail(f"backend {EVERYTHING_BIN} is not installed; run `bash tests/run-all.sh`")
    cfg = config_text(server_block("everything", transport="stdio", command=str(EVERYTHING_BIN),
                                   args=["stdio"]))

    async def body(url: str) -> None:
        async with Client(url, mode="auto") as client:
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            assert uris, "server-everything lists resources"
            tools = [t.name for t in (await client.list_tools()).tools]
            kick = next(t for t in tools if t.endswith("toggle-subscriber-updates"))
            await hear_update(client, uris[0], EVERYTHING_PERIOD_S + 3, kick=kick)

    with running_gateway(driver, cfg, tmp_path, "lres-ev", {"everything": "ready"},
                         [str(EVERYTHING_BIN)]) as gw:
        run(body, gw.url)
