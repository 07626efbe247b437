"""Bridged `input_required` across the fleet: a 2025 backend's elicitation reaches a 2026
client as `input_required` with a `requestState` signed with the cluster key. Its retry
completes on any node (a node that does not hold the parked call replays it on its own
backend and answers the elicitation from `inputResponses`); a tampered state, or one past its
expiry, is a JSON-RPC error (-32602) on every node, never a 5xx or a hang."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import time

import httpx

from clients import CALL_TIMEOUT_S, MODERN, Recorder, bridge_first_leg, bridge_retry, modern_request
from harness import HOST_HEADER, Fleet, pyh


def test_bridged_retry_completes_on_another_node(fleet: Fleet) -> None:
    """`input_required` from g1, its retry sent straight to each other node."""
    rec = Recorder()
    g1, others = fleet.nodes[0], fleet.nodes[1:]

    async def body() -> None:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S, headers=HOST_HEADER) as c:
            for n, other in enumerate(others):
                first, state = await bridge_first_leg(c, g1.url, "x", n, rec)
                assert first.ok and state and first.served == g1.id, first
                done = await bridge_retry(c, other.url, "x", n, state, rec)
                assert done.ok, done
                assert done.served == other.id, done

    pyh.run(body)


def flip(s: str, i: int) -> str:
    """`s` with the nearest alphanumeric character at or before `i` changed (same class)."""
    while not s[i].isalnum():
        i -= 1
    c = s[i]
    new = ("1" if c != "1" else "2") if c.isdigit() else ("a" if c != "a" else "b")
    return s[:i] + new + s[i + 1:]


def retry_body(rid: int, message: str, state: str) -> tuple[dict[str, str], bytes]:
    """A retry of `test_elicitation` as exact bytes (its `arguments` bytes are signed)."""
    headers, _ = modern_request(rid, "tools/call", "test_elicitation", {})
    body = ('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"test_elicitation",'
            '"arguments":{"message":%s},'
            '"inputResponses":{"input":{"action":"accept","content":{"response":"late"}}},'
            '"requestState":%s,"_meta":{"io.modelcontextprotocol/protocolVersion":"%s",'
            '"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}}'
            % (rid, json.dumps(message), json.dumps(state), MODERN))
    return headers, body.encode()


def assert_refused_state(r: httpx.Response, took: float, rid: int, what: str, word: str) -> None:
    assert took < 5.0, f"{what}: took {took:.1f}s"
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text}"
    doc = r.json()
    err = doc.get("error")
    assert err and err["code"] == -32602 and doc["id"] == rid, f"{what}: {r.text}"
    assert "requestState" in err["message"] and word in err["message"], f"{what}: {r.text}"


def test_tampered_request_state_is_a_jsonrpc_error(fleet: Fleet) -> None:
    rec = Recorder()

    async def body() -> None:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as c:
            first, state = await bridge_first_leg(c, fleet.url, "t", 1, rec)
            assert first.ok and state, first
            cases = {"altered end": flip(state, len(state) - 1), "altered middle": flip(state, len(state) // 2),
                     "truncated": state[: len(state) // 2]}
            for what, bad in cases.items():
                headers, req = retry_body(9, "t-1?", bad)
                t0 = time.monotonic()
                r = await c.post(fleet.url, headers=headers, content=req)
                assert_refused_state(r, time.monotonic() - t0, 9, what, "")
            # The untouched state still completes the call.
            done = await bridge_retry(c, fleet.url, "t", 1, state, rec)
            assert done.ok, done

    pyh.run(body)


def sign_state(key: bytes, fields: list[str], bind: bytes) -> str:
    """The tag of a `o1m2.` state over its fields (shards/src/route/state.rs, `Fields`)."""
    node, process, shard, n, expires, answers = fields
    m = b""
    for part in (node.encode(), answers.encode()):
        m += struct.pack("<Q", len(part)) + part
    m += struct.pack("<IQQQ", int(process, 16), int(shard), int(n), int(expires)) + bind
    return hmac.new(key, b"o1m-request-state\0" + m, hashlib.sha256).hexdigest()[:32]


def binding(method: str, name: str, arguments: bytes, principal: str) -> bytes:
    h = hashlib.sha256()
    for part in (method.encode(), name.encode(), arguments, principal.encode()):
        h.update(struct.pack("<Q", len(part)) + part)
    return h.digest()


def test_expired_request_state_is_refused_on_every_node(fleet: Fleet) -> None:
    """A state validly signed with the cluster key but past its expiry: refused everywhere.
    (The test holds the key file, so it re-signs a real state with an expiry in the past;
    re-signing it unchanged must give back the node's own tag, which checks the construction.)"""
    g1 = fleet.nodes[0]
    message = "e-1?"
    headers, first = retry_body(1, message, "")
    first = first.replace(b',"requestState":""', b"").replace(
        b',"inputResponses":{"input":{"action":"accept","content":{"response":"late"}}}', b"")
    r = httpx.post(g1.url, headers={**headers, **HOST_HEADER}, content=first, timeout=CALL_TIMEOUT_S)
    state = r.json()["result"]["requestState"]
    prefix, *fields, tag = state.split(".")
    assert prefix == "o1m2" and len(fields) == 6 and fields[0] == "g1", state
    bind = binding("tools/call", "test_elicitation", b'{"message":"e-1?"}', "anonymous")
    key = fleet.keys[0][1]
    assert sign_state(key, fields, bind) == tag, f"re-signing {state} does not give its tag: format changed?"
    fields[4] = str(int(time.time()) - 10)
    expired = ".".join(["o1m2", *fields, sign_state(key, fields, bind)])
    for rid, node in enumerate(fleet.nodes, start=10):
        headers, req = retry_body(rid, message, expired)
        t0 = time.monotonic()
        r = httpx.post(node.url, headers={**headers, **HOST_HEADER}, content=req, timeout=CALL_TIMEOUT_S)
        assert_refused_state(r, time.monotonic() - t0, rid, f"expired at {node.id}", "expired")
    # Through the balancer too, and the real state still completes.
    headers, req = retry_body(20, message, expired)
    t0 = time.monotonic()
    r = httpx.post(fleet.url, headers=headers, content=req, timeout=CALL_TIMEOUT_S)
    assert_refused_state(r, time.monotonic() - t0, 20, "expired via the balancer", "expired")
    headers, req = retry_body(21, message, state)
    r = httpx.post(fleet.url, headers=headers, content=req, timeout=CALL_TIMEOUT_S)
    assert r.json()["result"]["resultType"] == "complete" and "late" in r.text, r.text
