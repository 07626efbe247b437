"""The upstream connection pool (`pool_size`, `shards/src/upstream/http/pool.rs`) through the
real binary, both drivers, in front of its own demo HTTP backend process (so no other
gateway's pooled connections are counted).

- With `pool_size = 2`, eight concurrent slow calls (official Python SDK, one session: one
  shard) all succeed while the gateway holds at most 2 connections for calls to the backend
  (besides its unpooled ones: discovery, the GET listening stream): the other six wait for a
  connection to come back instead of opening their own. Counted from /proc/net/tcp (ESTABLISHED toward the backend's port).
- A call queued behind a busy pool still honours its own timeout: it fails with the
  gateway's timeout error naming the backend, and the pool is whole afterwards (the next
  calls succeed on the pooled connection).
- Many calls in a row reuse one connection (no connection per call).
- `/metrics` shows the pool: `only1mcp_backend_pool_connections` (at most 2 per shard) and
  `only1mcp_backend_pool_waits_total` (the calls that queued).
- Pooled connections the backend closed while idle (its keep-alive timeout; uvicorn's is 5 s)
  cost nothing: after six connections went stale together, every call succeeds, each on a
  fresh connection in the stale one's slot (before, a retry took the next pooled connection,
  stale too, and the third stale one in a row failed the call).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import (BIN, CORES, DEMO_READY_RE, DRIVERS, _stdout_lines, _stop, _wait_line,  # noqa: F401
                      config_text, run, running_gateway, server_block, text_of)


def established_to(port: int) -> int:
    """TCP connections in state ESTABLISHED whose remote port is `port` (the gateway's side)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def start_backend(workdir: Path, env: dict | None = None) -> tuple[subprocess.Popen, str, int]:
    import os

    log = workdir / "backend.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([str(BIN), "demo-server", "--http", "127.0.0.1:0", "--name", "pooled"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, **(env or {})})
    m = _wait_line(proc, _stdout_lines(proc), DEMO_READY_RE, 10.0, log)
    url = m.group(1)
    return proc, url, int(url.rsplit(":", 1)[1].split("/")[0])


@pytest.mark.parametrize("driver", DRIVERS)
def test_calls_beyond_pool_size_wait_for_a_pooled_connection(driver: str, tmp_path: Path) -> None:
    backend, url, port = start_backend(tmp_path)
    try:
        cfg = config_text(
            server_block("demo", transport="http", url=url, pool_size=2, health_interval_ms=0)
            + "tool_timeouts = { echo = 400 }\n"
        )

        async def body(gw_url: str) -> dict:
            out: dict = {"peak": 0}
            async with streamable_http_client(gw_url) as (r, w), ClientSession(r, w) as s:
                await s.initialize()
                await s.call_tool("demo__echo", {"message": "warm"})
                # The control thread's discovery session and the shard's GET listening stream
                # are not pooled; the pool may already hold the connection the warm-up used.
                out["base"] = established_to(port)
                texts: list = [None] * 8

                async def one(i: int) -> None:
                    res = await s.call_tool("demo__big", {"kb": 1, "delay_ms": 700})
                    texts[i] = (res.is_error, len(text_of(res)))

                async def watch() -> None:
                    for _ in range(40):
                        out["peak"] = max(out["peak"], established_to(port))
                        await anyio.sleep(0.05)

                started = time.monotonic()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch)
                    for i in range(8):
                        tg.start_soon(one, i)
                out["elapsed"] = time.monotonic() - started
                out["texts"] = texts
                # Both pooled connections busy for 1.5 s; `echo` (400 ms) queues and times out.
                async with anyio.create_task_group() as tg:
                    for _ in range(2):
                        tg.start_soon(s.call_tool, "demo__big", {"kb": 1, "delay_ms": 1500})
                    await anyio.sleep(0.2)
                    try:
                        res = await s.call_tool("demo__echo", {"message": "queued"})
                        out["queued"] = ("answered", text_of(res))
                    except MCPError as e:
                        out["queued"] = (e.error.code, e.error.message)
                # The pool is whole again: calls in a row succeed on pooled connections.
                out["after"] = [text_of(await s.call_tool("demo__echo", {"message": f"n{i}"})) for i in range(20)]
                out["conns_after"] = established_to(port)
            return out

        with running_gateway(driver, cfg, tmp_path, "pool", {"demo": "ready"}, []) as gw:
            out = run(body, gw.url)
            time.sleep(1.2)  # the shards' next 500 ms report
            metrics = httpx.get(f"{gw.base}/metrics", timeout=5.0).text
    finally:
        _stop(backend, 5.0)

    # The pool's own figures in /metrics: at most 2 connections, and the calls that queued
    # (six of the eight, then the `echo` behind the two slow calls).
    fams = {f.name: f for f in text_string_to_metric_families(metrics)}
    samples = lambda name: [x for x in fams[name].samples if x.labels.get("server") == "demo"]  # noqa: E731
    conns = samples("only1mcp_backend_pool_connections")
    waits = [x for x in samples("only1mcp_backend_pool_waits") if x.name.endswith("_total")]
    # Summed over the gateway's shards (`--cores 2`): at most pool_size = 2 on each.
    assert len(conns) == 1 and 1 <= conns[0].value <= 2 * CORES, conns
    assert len(waits) == 1 and waits[0].value >= 7, waits
    assert out["texts"] == [(False, 1024)] * 8, out["texts"]
    # At most 2 pooled connections on top of the unpooled ones (and of at most 2 pooled ones
    # already open at `base`); without the bound, eight calls opened eight connections.
    assert out["base"] <= out["peak"] <= out["base"] + 2, out
    # Four waves of two 700 ms calls cannot finish in under 2.8 s on two connections.
    assert out["elapsed"] >= 2.7, out
    # -32001: the backend timeout, naming the backend and the 400 ms that expired.
    assert out["queued"] == (-32001, "backend `demo` did not answer within 400 ms"), out["queued"]
    assert out["after"] == [f"n{i}" for i in range(20)]
    assert out["conns_after"] <= out["base"] + 2, out


@pytest.mark.parametrize("driver", DRIVERS)
def test_pooled_connections_closed_by_the_backend_are_replaced_not_failed(driver: str, tmp_path: Path) -> None:
    # The backend closes keep-alive connections idle for 400 ms.
    backend, url, port = start_backend(tmp_path, {"DEMO_IDLE_TIMEOUT_MS": "400"})
    try:
        cfg = config_text(server_block("demo", transport="http", url=url, health_interval_ms=0))

        async def body(gw_url: str) -> dict:
            out: dict = {}
            async with streamable_http_client(gw_url) as (r, w), ClientSession(r, w) as s:
                await s.initialize()
                # Six calls at once leave six pooled connections behind ...
                async with anyio.create_task_group() as tg:
                    for _ in range(6):
                        tg.start_soon(s.call_tool, "demo__big", {"kb": 1, "delay_ms": 200})
                out["pooled"] = established_to(port)
                # ... which the backend closes while they idle.
                await anyio.sleep(1.2)
                out["after_idle"] = established_to(port)
                texts = []
                for i in range(8):
                    try:
                        texts.append(text_of(await s.call_tool("demo__echo", {"message": f"m{i}"})))
                    except MCPError as e:
                        texts.append((e.error.code, e.error.message))
                out["texts"] = texts
            return out

        with running_gateway(driver, cfg, tmp_path, "stale", {"demo": "ready"}, []) as gw:
            out = run(body, gw.url)
    finally:
        _stop(backend, 5.0)

    assert out["pooled"] >= 6, out
    assert out["after_idle"] < out["pooled"], out  # the backend did close them
    assert out["texts"] == [f"m{i}" for i in range(8)], out
