"""Cluster-wide rate limits through the balancer: three nodes share one Redis bucket
(`[rate_limit] store = "redis"`), so the limit holds over the fleet however HAProxy spreads
the calls; with Redis gone `on_store_error = "deny"` answers 503 on every node; with Redis
back on the same port the limit holds again, no node restarted.

(The per-node behaviour, `allow`, the metrics and the password's secrecy are
`tests/rate_limit_redis.rs`; this is the same limit seen by clients of the fleet.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from clients import CALL_TIMEOUT_S, Recorder, stateless_call
from harness import Fleet, Proc, free_port, pyh

PLAIN_2026 = {"content-type": "application/json", "accept": "application/json, text/event-stream",
              "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "demo__echo"}
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "demo__echo", "arguments": {"message": "x"},
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {}}}}
PER_S = 5.0
BURST = 5
WINDOW_S = 2.0
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """redis-server on 127.0.0.1 with a password and no persistence, registered with the
    fleet so it is stopped and reaped with it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port("127.0.0.1")
        self.password = f"o1m-fleet-{os.getpid()}"
        self.workdir = workdir
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, fleet: Fleet) -> None:
        log = self.workdir / "redis.log"
        with open(log, "ab") as out:
            p = subprocess.Popen(
                [REDIS, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--requirepass", self.password, "--dir", str(self.workdir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.proc = Proc("redis", p, log)
        fleet.register(self.proc)
        deadline = time.monotonic() + 10
        while not self.answers():
            assert p.poll() is None and time.monotonic() < deadline, f"redis-server did not come up\n{pyh.tail(log)}"
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                pw = self.password.encode()
                s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(pw), pw))
                got = b""
                while not got.endswith(b"+PONG\r\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        return False
                    got += chunk
                return True
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.stop(None if self.proc.proc.poll() is not None else 9, 5.0)


def burst_of_calls(url: str, rec: Recorder, seconds: float, client: str) -> list[int]:
    """Stateless calls as fast as one client goes for `seconds` (bounded in count too)."""
    statuses = []
    deadline = time.monotonic() + seconds

    async def body() -> None:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as c:
            for n in range(5000):
                if time.monotonic() > deadline:
                    return
                r = await stateless_call(c, url, client, n, rec)
                statuses.append(r.status or 0)

    pyh.run(body)
    return statuses


def test_one_limit_over_the_fleet_and_redis_outages(driver: str, make_fleet, tmp_path: Path) -> None:
    if not Path(REDIS).exists():
        if os.environ.get("ONLY1MCP_REQUIRE_REDIS") == "1":
            pytest.fail(f"redis-server not found at {REDIS}")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis = Redis(tmp_path)
    extra = (f"[rate_limit]\nrequests_per_s = {PER_S}\nburst = {BURST}\nstore = \"redis\"\n"
             f"redis_url = \"{redis.url}\"\non_store_error = \"deny\"\nredis_timeout_ms = 1000\n\n")
    fleet = make_fleet(driver, extra=extra, before=redis.start)
    rec = Recorder()
    time.sleep(BURST / PER_S + 0.2)  # the warm-up's requests took tokens: let the bucket refill

    # 1. One limit over three nodes, however HAProxy spreads the calls.
    t0 = time.monotonic()
    statuses = burst_of_calls(fleet.url, rec, WINDOW_S, "r1")
    took = time.monotonic() - t0
    accepted, limited = statuses.count(200), statuses.count(429)
    summary = f"{accepted} accepted, {limited} limited in {took:.2f}s: {sorted(set(statuses))}"
    assert accepted + limited == len(statuses), summary
    assert accepted <= BURST + PER_S * took + 2, summary
    assert accepted >= BURST + PER_S * took * 0.5 and limited > 0, summary
    served = {r.served for r in rec.of("2026")}
    assert len(served) >= 2, f"{summary}: all on {served}"
    refused = [r for r in rec.of("2026") if r.status == 429]
    assert all("rate limit exceeded" in r.detail for r in refused), refused[:2]

    # 2. Redis gone: every node refuses with 503 (deny), at once.
    redis.kill()
    statuses = burst_of_calls(fleet.url, rec, 1.0, "r2")
    late = statuses[len(statuses) // 2:]
    assert late and all(s == 503 for s in late), statuses
    down = [r for r in rec.of("2026") if r.client == "r2" and r.status == 503]
    assert {r.served for r in down} >= {r.served for r in rec.of("2026") if r.client == "r1"} - {None}, down[:3]
    assert all("rate limit store unreachable" in r.detail for r in down), down[:2]

    # 3. Redis back on the same port: limits resume, no node restarted.
    redis.start(fleet)
    deadline = time.monotonic() + 10
    with httpx.Client(timeout=CALL_TIMEOUT_S) as c:
        # Redis decides again on every node (200 or 429, no 503) for six calls in a row.
        decided = 0
        while decided < 6:
            assert time.monotonic() < deadline, f"still refused 10 s after Redis came back: {statuses}"
            status = c.post(fleet.url, headers=PLAIN_2026, json=CALL).status_code
            decided = decided + 1 if status in (200, 429) else 0
            time.sleep(0.1)
    time.sleep(BURST / PER_S + 0.2)
    statuses = burst_of_calls(fleet.url, rec, 1.0, "r4")
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses, statuses
    assert all(n.alive() and n.starts == 1 for n in fleet.nodes)
