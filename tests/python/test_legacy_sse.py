"""A backend that only speaks the deprecated HTTP+SSE transport (2024-11-05), reached through
the gateway's era probing (server/discover, then Streamable HTTP initialize, then HTTP+SSE).

The backend is a real MCP server built with the official Python SDK (`MCPServer.run(
transport="sse")`, tests/python/backends/legacy_sse_server.py); the client is the official
SDK's Streamable HTTP client talking to the gateway.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import DRIVERS, config_text, mcp_session, run, running_gateway, server_block, text_of

BACKEND = Path(__file__).parent / "backends" / "legacy_sse_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def legacy_sse_backend(tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "legacy-sse.log", "wb")
    proc = subprocess.Popen([sys.executable, str(BACKEND), str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with httpx.stream("GET", f"http://127.0.0.1:{port}/sse", timeout=1.0) as r:
                    if r.status_code == 200:
                        break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the HTTP+SSE backend did not start")
        yield f"http://127.0.0.1:{port}/sse"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_http_sse_backend_is_reached_by_fallback(driver: str, tmp_path: Path, legacy_sse_backend: str) -> None:
    cfg = config_text(server_block("old", transport="http", url=legacy_sse_backend))
    with running_gateway(driver, cfg, tmp_path, "sse", {"old": "ready"}, []) as gw:
        async def body() -> None:
            async with mcp_session(gw.url) as session:
                names = {t.name for t in (await session.list_tools()).tools}
                assert {"old__shout", "old__add"} <= names, names
                result = await session.call_tool("old__shout", {"text": "quiet"})
                assert text_of(result) == "QUIET"
                # Several calls at once: each answer (arriving on the one SSE stream) reaches
                # its own caller.
                import asyncio
                outs = await asyncio.gather(*[session.call_tool("old__add", {"a": i, "b": i}) for i in range(8)])
                assert [text_of(o) for o in outs] == [str(2 * i) for i in range(8)]

        run(body)
