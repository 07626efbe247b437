"""`/metrics` through the real binary, on both drivers: traffic from the official SDK, then
the scrape parsed by the reference Prometheus client library's OpenMetrics parser (a real
parser, so a malformed line fails the test), and the figures checked against the traffic.

Uses `fault_gateway` (conftest): slow (300 ms timeout), broken (never starts), flaky, steady.
Counters there are shared with the other fault tests, so the checks are lower bounds that
this test's own traffic must raise.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from mcp import MCPError
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import Gateway, mcp_session, run

FAMILIES = {
    "only1mcp_requests": "counter",
    "only1mcp_request_duration_seconds": "histogram",
    "only1mcp_backend_calls": "counter",
    "only1mcp_backend_call_duration_seconds": "histogram",
    "only1mcp_backend_healthy": "gauge",
    "only1mcp_backend_inflight": "gauge",
    "only1mcp_backend_replica_calls": "counter",
    "only1mcp_backend_replica_failures": "counter",
    "only1mcp_breaker_state": "gauge",
    "only1mcp_breaker_opened": "counter",
    "only1mcp_stdio_process_up": "gauge",
    "only1mcp_stdio_restarts": "counter",
    "only1mcp_stdio_parked": "gauge",
    "only1mcp_sessions": "gauge",
    "only1mcp_connections": "gauge",
    "only1mcp_inflight_requests": "gauge",
    "only1mcp_config_reloads": "counter",
    "only1mcp_config_reload_errors": "counter",
    "only1mcp_uptime_seconds": "gauge",
    "only1mcp_build": "info",
}


def scrape(gw: Gateway, path: str = "/metrics") -> dict[str, Any]:
    r = httpx.get(f"{gw.base}{path}", timeout=5.0)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/openmetrics-text"), r.headers
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    """Sum of `sample`'s values whose labels include `labels` (0 when none)."""
    total = 0.0
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def test_metrics_parse_and_count_what_happened(fault_gateway: Gateway) -> None:
    gw = fault_gateway
    before = scrape(gw)
    assert {n: f.type for n, f in before.items() if n in FAMILIES} == FAMILIES

    def ok_calls(f: dict[str, Any]) -> float:
        return value(f, "only1mcp_backend_calls", "only1mcp_backend_calls_total",
                     server="steady", tool="echo", outcome="ok")

    def timeouts(f: dict[str, Any]) -> float:
        return value(f, "only1mcp_backend_calls", "only1mcp_backend_calls_total",
                     server="slow", outcome="backend_timeout")

    def unknown(f: dict[str, Any]) -> float:
        return value(f, "only1mcp_requests", "only1mcp_requests_total",
                     method="tools/call", outcome="client_error")

    async def traffic() -> None:
        async with mcp_session(gw.url) as session:
            for i in range(5):
                await session.call_tool("steady__echo", {"message": f"m{i}"})
            with pytest.raises(MCPError):
                await session.call_tool("slow__sleep", {"ms": 2000})
            with pytest.raises(MCPError):
                await session.call_tool("nobody__nothing", {})

    run(traffic)
    # Shards report every 500 ms and the control thread renders every 500 ms.
    deadline = time.monotonic() + 5.0
    while True:
        after = scrape(gw)
        done = (ok_calls(after) >= ok_calls(before) + 5
                and timeouts(after) >= timeouts(before) + 1
                and unknown(after) >= unknown(before) + 1)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ok_calls(after) >= ok_calls(before) + 5, after["only1mcp_backend_calls"].samples
    assert timeouts(after) >= timeouts(before) + 1, after["only1mcp_backend_calls"].samples
    assert unknown(after) >= unknown(before) + 1, after["only1mcp_requests"].samples
    # The latency histogram saw the echo calls, and the 300 ms timeout lands above 0.25 s.
    count = value(after, "only1mcp_backend_call_duration_seconds",
                  "only1mcp_backend_call_duration_seconds_count", server="steady", tool="echo")
    assert count >= 5
    slow_fast = value(after, "only1mcp_backend_call_duration_seconds",
                      "only1mcp_backend_call_duration_seconds_bucket", server="slow",
                      tool="sleep", le="0.25")
    slow_all = value(after, "only1mcp_backend_call_duration_seconds",
                     "only1mcp_backend_call_duration_seconds_count", server="slow", tool="sleep")
    assert slow_all >= 1 and slow_fast < slow_all
    # Process state: steady runs, broken never started and keeps being restarted.
    assert value(after, "only1mcp_stdio_process_up", "only1mcp_stdio_process_up",
                 server="steady") == 1
    assert value(after, "only1mcp_stdio_process_up", "only1mcp_stdio_process_up",
                 server="broken") == 0
    assert value(after, "only1mcp_backend_healthy", "only1mcp_backend_healthy",
                 server="steady") == 1
    assert value(after, "only1mcp_stdio_restarts", "only1mcp_stdio_restarts_total",
                 server="broken") == 0  # it never ran: failed starts are not restarts
    assert value(after, "only1mcp_sessions", "only1mcp_sessions") >= 0
    assert value(after, "only1mcp_uptime_seconds", "only1mcp_uptime_seconds") >= 0
    assert after["only1mcp_build"].samples[0].labels["version"]
    # The admin alias serves the same families.
    assert set(scrape(gw, "/api/v1/admin/metrics")) == set(after)


def test_metrics_only_answers_get(fault_gateway: Gateway) -> None:
    r = httpx.post(f"{fault_gateway.base}/metrics", content=b"{}", timeout=5.0)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
