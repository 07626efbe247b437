"""A 2026-07-28-only stdio server that starts slower than the gateway's 3 s era probe
(`peers/slow_modern_server.py`, a stand-in: see its docstring) is recognised once it is up
(the gateway asks again after `initialize` is refused), instead of being killed and restarted
as a failed handshake. Both drivers, official SDK client.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import DRIVERS, config_text, run, running_gateway, server_block, text_of

PEER = Path(__file__).parent / "peers" / "slow_modern_server.py"


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_slow_2026_only_server_is_recognised_not_restarted(driver: str, tmp_path) -> None:
    # 6 s: well past the 3 s probe even when the gateway sends it late on a loaded machine.
    cfg = config_text(server_block("slow", transport="stdio", command=sys.executable,
                                   args=[str(PEER)], timeout_ms=15000)
                      + 'env = { SLOW_START_S = "6" }\n')

    async def body(url: str) -> tuple[list[str], str]:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            names = [t.name for t in (await s.list_tools()).tools]
            said = text_of(await s.call_tool("slow__echo", {"message": "late but fine"}))
            return names, said

    with running_gateway(driver, cfg, tmp_path, "slowmodern", {"slow": "ready"},
                         ["slow_modern_server.py"]) as gw:
        names, said = run(body, gw.url)
        assert names == ["slow__echo"] and said == "late but fine"
        log = gw.log.read_text()
        # Without the second probe the refused initialize fails the handshake and the server
        # is restarted (and, slow every time, parked as a crash loop).
        assert "failed its handshake" not in log, log[-2000:]
        assert "speaks 2026-07-28" in log, log[-2000:]
