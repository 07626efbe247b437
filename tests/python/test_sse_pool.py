"""Backend connections whose answers came as SSE streams are reused (`shards/src/upstream/
http/drain.rs`), through the real binary on both drivers, in front of an official Python SDK
server that answers on SSE (`backends/sse_answer_server.py`, uvicorn).

The gateway used to stop reading at the response event; the SDK ends the stream just after
it, usually in a later packet, so the connection was not reusable and was closed: every call
opened a new TCP connection. Connections are counted from /proc/net/tcp: every gateway-side
port toward the backend in any state (a connection the gateway closed stays in TIME_WAIT on
its side for a minute), so the count is the connections opened, not only those still open.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import DRIVERS, config_text, run, running_gateway, server_block, text_of

BACKEND = Path(__file__).parent / "backends" / "sse_answer_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def opened_toward(port: int) -> set[int]:
    """Local ports of the TCP connections (any state) whose remote port is `port`."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            if int(f[2].rsplit(":", 1)[1], 16) == port and f[3] != "0A":  # not a listener
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def sse_backend(tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "sse_answer.log", "wb")
    proc = subprocess.Popen([sys.executable, str(BACKEND), str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the SDK server did not start")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_twenty_calls_to_an_sse_answering_sdk_server_reuse_pooled_connections(
        driver: str, tmp_path: Path, sse_backend: int) -> None:
    port = sse_backend
    url = f"http://127.0.0.1:{port}/mcp"
    cfg = config_text(server_block("py", transport="http", url=url, pool_size=2, health_interval_ms=0))

    async def body(gw_url: str) -> dict:
        out: dict = {}
        async with streamable_http_client(gw_url) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            # Discovery, the upstream session and the first call have opened theirs.
            out["warm"] = text_of(await s.call_tool("py__echo", {"message": "warm"}))
            before = opened_toward(port)
            out["texts"] = [text_of(await s.call_tool("py__echo", {"message": f"m{i}"})) for i in range(20)]
            out["new"] = sorted(opened_toward(port) - before)
        return out

    with running_gateway(driver, cfg, tmp_path, "ssepool", {"py": "ready"}, []) as gw:
        out = run(body, gw.url)

    assert out["warm"] == "warm", out
    assert out["texts"] == [f"m{i}" for i in range(20)], out
    # At most pool_size (2) new connections for 20 calls; before, one per call.
    assert len(out["new"]) <= 2, out
