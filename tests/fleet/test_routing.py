"""Routing through the shipped HAProxy config: a 2025 session's every request reaches the node
that minted it (its id names the node; the node says who it is in `X-Served-By`), 2026
stateless calls spread over the nodes, and ids that no node should honour get a 4xx with a
clear body, never a 5xx or a hang."""

from __future__ import annotations

import base64
import os
import time

import httpx

from checks import assert_pinned_and_spread, pinning_scenario
from clients import node_of
from harness import HOST_HEADER, Fleet

PLAIN = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
LIST = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}


def b64url(n: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(n)).decode().rstrip("=")


def test_sessions_stay_on_their_node_and_stateless_calls_spread(fleet: Fleet) -> None:
    assert_pinned_and_spread(pinning_scenario(fleet.url))


def raw(url: str, sid: str | None, method: str = "POST", headers: dict | None = None) -> tuple[httpx.Response, float]:
    h = {**PLAIN, **(headers or {})}
    if sid is not None:
        h["mcp-session-id"] = sid
    t0 = time.monotonic()
    r = httpx.request(method, url, headers=h, json=LIST if method == "POST" else None, timeout=10.0)
    return r, time.monotonic() - t0


def assert_refused(r: httpx.Response, took: float, what: str, status: int | tuple[int, ...] = 404) -> None:
    want = status if isinstance(status, tuple) else (status,)
    assert r.status_code in want, f"{what}: {r.status_code} {r.text[:200]}"
    assert took < 5.0, f"{what}: took {took:.1f}s"
    assert r.text.strip(), f"{what}: empty body"
    if r.status_code == 404:
        assert r.json()["error"]["code"] == -32600, f"{what}: {r.text}"
        assert "session" in r.json()["error"]["message"], f"{what}: {r.text}"


def test_ids_no_node_holds_are_refused(fleet: Fleet) -> None:
    g1, g2 = fleet.nodes[0], fleet.nodes[1]
    # A real session of g1, made straight at g1.
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = httpx.post(g1.url, headers={**PLAIN, **HOST_HEADER}, json=init, timeout=10.0)
    real = r.headers["mcp-session-id"]
    assert node_of(real) == "g1", real
    _, rand, mac = real.split(".")
    forged_before = g1.metric("only1mcp_session_ids_refused_total", reason="forged")
    malformed_before = g1.metric("only1mcp_session_ids_refused_total", reason="malformed")
    foreign_before = g2.metric("only1mcp_session_ids_refused_total", reason="foreign")

    cases = {
        "forged MAC": f"g1.{rand}.{b64url(12)}",
        "forged random part": f"g1.{b64url(16)}.{mac}",
        "truncated MAC": real[:-3],
        "no MAC": f"g1.{rand}",
        "another node's prefix on a real id": f"g2.{rand}.{mac}",
        "unknown node": f"g9.{rand}.{mac}",
        "no node": f".{rand}.{mac}",
        "over-long (4 KiB)": f"g1.{'A' * 4096}.{mac}",
        "not an id at all": "%%%--not-an-id--%%%",
    }
    for what, sid in cases.items():
        for method in ("POST", "GET", "DELETE"):
            resp, took = raw(fleet.url, sid, method)
            assert_refused(resp, took, f"{what} ({method})")
    # Longer than the balancer's request buffer: the balancer refuses it (400), not a node.
    resp, took = raw(fleet.url, "g1." + "A" * 20000)
    assert_refused(resp, took, "over-long (20 KiB)", (400, 431))
    # Two ids in one request: the balancer cannot route it and refuses it.
    resp, took = raw(fleet.url, None, headers={"mcp-session-id": f"{real}, g2.{rand}.{mac}"})
    assert_refused(resp, took, "two ids", 400)
    # g1's real id sent straight to g2: another node's session, never adopted.
    resp, took = raw(g2.url, real, headers=HOST_HEADER)
    assert_refused(resp, took, "g1's id at g2")
    assert resp.headers["x-served-by"] == "g2"
    # The real id still works (none of the above ended it), through the balancer, on g1.
    resp, _ = raw(fleet.url, real)
    assert resp.status_code == 200 and resp.headers["x-served-by"] == "g1", resp.text
    # The refusals are counted by kind on the node that refused them.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        forged = g1.metric("only1mcp_session_ids_refused_total", reason="forged") - forged_before
        foreign = g2.metric("only1mcp_session_ids_refused_total", reason="foreign") - foreign_before
        malformed = g1.metric("only1mcp_session_ids_refused_total", reason="malformed") - malformed_before
        # g1 saw two forged cases and three malformed ones (truncated, no MAC, over-long), each
        # as POST, GET and DELETE; g2 saw g1's real id.
        if forged >= 2 * 3 and malformed >= 3 * 3 and foreign >= 1:
            break
        time.sleep(0.2)
    assert forged >= 2 * 3 and malformed >= 3 * 3 and foreign >= 1, (forged, malformed, foreign)
