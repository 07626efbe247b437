"""A real Python MCP SDK server (`MCPServer`, Streamable HTTP under uvicorn with `uds=`) behind
the gateway as a `unix:` backend (`url = "unix:/path/to.sock:/mcp"`), both drivers, with the
official SDK client in front (`backends/uds_http_server.py`).

- tools/list shows the server's tools namespaced, and tools/call answers through the socket.
- With `pool_size = 2`, six concurrent slow calls in one session (one shard) all succeed while
  at most two more connections are open on the socket than before them (counted from
  /proc/net/unix: an accepted connection shows its listener's path, state 03): the others
  waited for a pooled connection instead of opening their own. The server answers with JSON
  bodies here (`json_response=True`): an answer on a short SSE stream whose end has not
  arrived with the response event is not pooled by the gateway (it closes that connection),
  which would blur the count.
- The deprecated HTTP+SSE transport on a socket: the gateway falls back to it and reaches
  the message endpoint over the same socket.
- The server stopped (its socket file left behind, nothing listening): a call fails with the
  gateway's error naming the backend and saying the socket refused the connection. Started
  again on the same path (a new process): calls succeed again in the same client session.

The socket lives in a short temp directory the test creates and removes (a socket path holds
at most 107 bytes; pytest's tmp_path can be longer).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from conftest import DRIVERS, config_text, mcp_session, run, running_gateway, server_block, text_of

BACKEND = Path(__file__).parent / "backends" / "uds_http_server.py"


def connected(sock: Path) -> int:
    """Connections accepted on the socket `sock` and still open (its side of each)."""
    n = 0
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        f = line.split()
        if len(f) >= 8 and f[5] == "03" and f[7] == str(sock):
            n += 1
    return n


def start_backend(sock: Path, log: Path, *mode: str) -> subprocess.Popen:
    """The SDK server on `sock` (`mode`: "json" or "sse", see the server); returns once the
    socket listens."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, str(BACKEND), str(sock), *mode],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(f"{sock}" in l and " 01 " in l for l in Path("/proc/net/unix").read_text().splitlines()):
            return proc
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    stop(proc)
    pytest.fail(f"the SDK server did not listen on {sock}: {log.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(timeout=10)


@pytest.mark.parametrize("driver", DRIVERS)
def test_sdk_server_on_a_unix_socket_pooled_dying_and_back(driver: str, tmp_path: Path) -> None:
    sockdir = Path(tempfile.mkdtemp(prefix="o1u-py-", dir="/tmp"))
    sock = sockdir / "py.sock"
    log = tmp_path / "backend.log"
    backend = start_backend(sock, log, "json")
    try:
        cfg = config_text(server_block("py", transport="http", url=f"unix:{sock}:/mcp",
                                       pool_size=2, health_interval_ms=0))

        async def body(gw_url: str) -> dict:
            nonlocal backend
            out: dict = {"peak": 0}
            async with mcp_session(gw_url) as s:
                tools = sorted(t.name for t in (await s.list_tools()).tools)
                out["tools"] = tools
                out["echo"] = text_of(await s.call_tool("py__echo", {"message": "over uds"}))
                out["pid1"] = text_of(await s.call_tool("py__whoami", {}))
                out["base"] = connected(sock)
                texts: list = [None] * 6

                async def one(i: int) -> None:
                    texts[i] = text_of(await s.call_tool("py__slow", {"ms": 400}))

                async def watch() -> None:
                    for _ in range(60):
                        out["peak"] = max(out["peak"], connected(sock))
                        await anyio.sleep(0.03)

                started = time.monotonic()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch)
                    for i in range(6):
                        tg.start_soon(one, i)
                out["elapsed"] = time.monotonic() - started
                out["texts"] = texts
                # Calls in a row reuse the pooled connections: none opened per call.
                for i in range(20):
                    assert text_of(await s.call_tool("py__echo", {"message": f"n{i}"})) == f"n{i}"
                out["after"] = connected(sock)
                # Stopped: the socket file stays, nothing listens.
                stop(backend)
                try:
                    res = await s.call_tool("py__echo", {"message": "gone"})
                    out["dead"] = ("answered", text_of(res))
                except MCPError as e:
                    out["dead"] = (e.error.code, e.error.message)
                backend = start_backend(sock, log, "json")
                deadline = time.monotonic() + 15
                while True:
                    try:
                        out["back"] = text_of(await s.call_tool("py__whoami", {}))
                        break
                    except MCPError as e:
                        if time.monotonic() > deadline:
                            out["back"] = (e.error.code, e.error.message)
                            break
                        await anyio.sleep(0.2)
            return out

        with running_gateway(driver, cfg, tmp_path, "uds", {"py": "ready"}, []) as gw:
            out = run(body, gw.url)
    finally:
        stop(backend)
        shutil.rmtree(sockdir, ignore_errors=True)

    assert out["tools"] == ["py__echo", "py__slow", "py__whoami"], out["tools"]
    assert out["echo"] == "over uds"
    assert out["texts"] == ["slept 400ms"] * 6, out["texts"]
    # Without the bound, six calls opened six connections.
    assert out["base"] <= out["peak"] <= out["base"] + 2, out
    assert out["after"] <= out["base"] + 2, out
    # Three waves of two 400 ms calls on two connections.
    assert out["elapsed"] >= 1.15, out
    code, msg = out["dead"]
    assert code != "answered", out["dead"]
    assert "py" in msg and f"unix socket {sock}" in msg and "refused the connection" in msg, msg
    assert out["back"].startswith("pid=") and out["back"] != out["pid1"], out


@pytest.mark.parametrize("driver", DRIVERS)
def test_legacy_sse_server_on_a_unix_socket(driver: str, tmp_path: Path) -> None:
    """The deprecated HTTP+SSE transport over a socket: the gateway falls back to it and posts
    to the endpoint the server names (`/messages/?session_id=…`) on the same socket."""
    sockdir = Path(tempfile.mkdtemp(prefix="o1u-sse-", dir="/tmp"))
    sock = sockdir / "sse.sock"
    backend = start_backend(sock, tmp_path / "backend.log", "sse")
    try:
        cfg = config_text(server_block("old", transport="http", url=f"unix:{sock}:/sse"))

        async def body(gw_url: str) -> dict:
            async with mcp_session(gw_url) as s:
                tools = sorted(t.name for t in (await s.list_tools()).tools)
                texts = [text_of(await s.call_tool("old__echo", {"message": f"m{i}"})) for i in range(3)]
                return {"tools": tools, "texts": texts}

        with running_gateway(driver, cfg, tmp_path, "uds-sse", {"old": "ready"}, []) as gw:
            out = run(body, gw.url)
            log = gw.log.read_text()
    finally:
        stop(backend)
        shutil.rmtree(sockdir, ignore_errors=True)
    assert out["tools"] == ["old__echo", "old__slow", "old__whoami"], out
    assert out["texts"] == ["m0", "m1", "m2"], out
    assert "deprecated HTTP+SSE transport" in log, log[-2000:]
