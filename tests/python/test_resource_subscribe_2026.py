"""A 2025 session of the official Python SDK client subscribes to a resource of a backend that
speaks 2026-07-28 only (the demo's conformance fixture, `DEMO_LEGACY=0`, which has no
`resources/subscribe`): the gateway carries the subscription on a `subscriptions/listen`
toward the backend, the SDK hears `notifications/resources/updated` on its GET stream, and
hears nothing more once it unsubscribed. Both drivers.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway

PERIOD_S = 3.0  # the demo updates a watched resource this often


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_2025_sdk_session_hears_a_2026_only_backends_resource_updates(
    driver: str, tmp_path: Path
) -> None:
    cfg = config_text(demo_stdio("fx") + 'env = { DEMO_CONFORMANCE = "1", DEMO_LEGACY = "0" }\n')
    heard: list[tuple[float, str]] = []

    async def on_message(message: Any) -> None:
        inner = getattr(message, "root", message)
        if isinstance(inner, types.ResourceUpdatedNotification):
            heard.append((time.monotonic(), inner.params.uri))

    async def body(url: str) -> None:
        async with streamable_http_client(url) as (r, w), \
                ClientSession(r, w, message_handler=on_message) as session:
            init = await session.initialize()
            assert init.capabilities.resources and init.capabilities.resources.subscribe, init
            uris = [str(res.uri) for res in (await session.list_resources()).resources]
            watched = next(u for u in uris if u.endswith("test://watched-resource"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the SDK marks the 2025 method deprecated
                await session.subscribe_resource(watched)
            with anyio.fail_after(PERIOD_S + 3):
                while not heard:
                    await anyio.sleep(0.05)
            assert {u for _, u in heard} == {watched}, heard
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the SDK marks the 2025 method deprecated
                await session.unsubscribe_resource(watched)
            stopped = time.monotonic()
            await anyio.sleep(PERIOD_S + 1)
            late = [u for t, u in heard if t > stopped + 0.5]
            assert not late, f"updates after unsubscribing: {late}"

    with running_gateway(driver, cfg, tmp_path, "rsub", {"fx": "ready"}, ["--name fx"]) as gw:
        run(body, gw.url)
