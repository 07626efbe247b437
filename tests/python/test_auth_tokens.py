"""Inbound auth, the JWT resource server (issue 6; the contract is the auth spec mirrored in
docs/security.md): which bearer tokens the HTTP front accepts and which it refuses, with what
status and challenge, and that an accepted token goes no further than the gateway. Real
gateway binary, both drivers (`jwtgw`, authgw.py); the official Python SDK where a client is
needed, httpx for raw HTTP. Keys and tokens are made in the test (authkit.py), the JWKS is
served by a thread in this process.

- The attack corpus: expired, not yet valid, wrong issuer or audience, `alg: none`, algorithms
  not allowed, RS/HS key confusion, tampered payload or signature, unknown `kid`, garbage,
  oversized, tokens in the query string, wrong auth schemes: each is a 401 with the spec's
  WWW-Authenticate and a -32001 body, and nothing reaches a backend.
- Valid tokens: RS256, ES256 and EdDSA through the official SDK, `aud` lists and extra
  audiences, `scp` instead of `scope`, clock skew within the leeway; a missing required scope
  is a 403 `insufficient_scope`.
- The RFC 9728 protected resource metadata documents; /health open, metrics behind auth.
- The client's credentials never reach a backend, only the backend's own configured header.

How "nothing reaches a backend" is proven: the attacks call `web__echo`, a tool of a demo
HTTP backend `jwtgw` starts itself with `DEMO_VERBOSE=1`. That backend logs every JSON-RPC
request it receives (`demo-server: request tools/call echo`), so its own log is the ground
truth of what reached it, independent of the gateway's accounting. Each attack is sent
twice: as a stateless 2026-07-28 `tools/call` (which a gateway without auth would forward at
once) and inside a 2025-era session that a valid token opened (so only the token is wrong).
`test_backend_log_sees_authorized_calls` is the positive control: the same call with a valid
token does show up in that log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

# Before the imports below: the helpers' asserts then report like the tests' own.
pytest.register_assert_rewrite("authkit", "authgw")

from authgw import (
    ALICE,
    ALT_AUDIENCE,
    BACKEND_SECRET,
    BOB,
    EC,
    ED,
    MAX_TOKEN_BYTES,
    REQUIRED,
    ROLES_CLAIM,
    RSA,
    SCOPE,
    STRANGER,
    JwtGateway,
    assert_401,
    jwtgw,  # noqa: F401 (a module-scoped fixture: this module's own gateways)
    send_attack,
)
from authkit import (
    ISSUER,
    METADATA_URL,
    RESOURCE,
    Raw,
    assert_backend_untouched,
    bearer,
    challenge,
    claims,
    hs256,
    hs256_with_public_pem,
    rpc_result,
    sdk_session,
    tampered,
    unsigned_token,
)
from conftest import run, text_of


# --------------------------------------------------------------------------------------------
# 401: the attack corpus
# --------------------------------------------------------------------------------------------


def _valid_claims(**over: Any) -> dict[str, Any]:
    return claims("alice", **{"roles": ["admin"], "scope": SCOPE, "roles_path": ROLES_CLAIM, **over})


# name -> a function giving (Authorization header value or None, URL suffix, token presented)
# (presented: None = a query-string token, where `error=` may be absent or say why)
ATTACKS: dict[str, Callable[[], tuple[str | None, str, bool | None]]] = {
    "no_token": lambda: (None, "", False),
    "expired": lambda: (RSA.sign(_valid_claims(exp_in=-3600)), "", True),
    "not_yet_valid": lambda: (RSA.sign(_valid_claims(nbf_in=3600)), "", True),
    "wrong_issuer": lambda: (RSA.sign(_valid_claims(iss="https://evil.test/realms/acme")), "", True),
    "wrong_audience": lambda: (RSA.sign(_valid_claims(aud="https://other.test/mcp")), "", True),
    "no_audience": lambda: (RSA.sign({k: v for k, v in _valid_claims().items() if k != "aud"}), "", True),
    "alg_none": lambda: (unsigned_token(_valid_claims(), RSA.kid), "", True),
    "alg_not_allowed_ps256": lambda: (RSA.sign(_valid_claims(), alg="PS256"), "", True),
    "alg_not_allowed_rs512": lambda: (RSA.sign(_valid_claims(), alg="RS512"), "", True),
    "hs256_keyed_with_rsa_public_pem": lambda: (hs256_with_public_pem(RSA, _valid_claims()), "", True),
    "hs256_wrong_secret": lambda: (hs256("not-the-secret-" * 4, _valid_claims()), "", True),
    "tampered_payload": lambda: (tampered(BOB.token(), sub="alice",
                                          realm_access={"roles": ["admin"]}), "", True),
    "tampered_signature": lambda: (RSA.sign(_valid_claims())[:-6] + "AAAAAA", "", True),
    "unknown_kid": lambda: (STRANGER.sign(_valid_claims()), "", True),
    "garbage_jwt_shape": lambda: ("garbage.garbage.garbage", "", True),
    "garbage": lambda: ("this-is-not-a-token", "", True),
    "oversized": lambda: (RSA.sign(_valid_claims(pad="x" * (MAX_TOKEN_BYTES + 512))), "", True),
    "token_in_query_only": lambda: (None, f"?access_token={ALICE.token()}", None),
    "token_in_query_and_header": lambda: (ALICE.token(), f"?access_token={ALICE.token()}", None),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_with_401(jwtgw: JwtGateway, attack: str) -> None:
    """Every bad credential gets 401 with the spec's WWW-Authenticate, on both eras, and no
    call reaches the backend (see the module docstring)."""
    header_token, suffix, presented = ATTACKS[attack]()
    url = jwtgw.url + suffix
    before = jwtgw.backend.calls()
    checks: list[httpx.Response] = []
    with Raw(jwtgw.url) as raw:
        checks.append(send_attack(raw, url, header_token))
        # Inside a session a valid token opened: only the credentials are wrong.
        opener = Raw(jwtgw.url, ALICE.token())
        with opener:
            assert opener.initialize().status_code == 200
            headers = {**opener.session_headers()}
            if header_token is not None:
                headers["Authorization"] = f"Bearer {header_token}"
            body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                    "params": {"name": "web__echo", "arguments": {"message": "x"}}}
            h = {"Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream", **headers}
            checks.append(raw.client.post(url, json=body, headers=h))
            # tools/list too: listing is as protected as calling.
            checks.append(raw.client.post(url, json={"jsonrpc": "2.0", "id": 10,
                                                     "method": "tools/list"}, headers=h))
    for r in checks:
        if presented is None:  # a query-string token: 401 and the metadata pointer
            assert r.status_code == 401, (r.status_code, r.text[:300])
            _, params = challenge(r)
            assert params.get("resource_metadata") == METADATA_URL, params
            assert params.get("scope") == SCOPE, params
            assert params.get("error") in (None, "invalid_token", "invalid_request"), params
            assert r.json()["error"]["code"] == -32001, r.text
        else:
            assert_401(r, presented=presented, token=header_token)
    assert_backend_untouched(jwtgw.backend, before)


def test_wrong_auth_scheme_is_401(jwtgw: JwtGateway) -> None:
    """`Basic` credentials or an empty `Bearer` are not a token."""
    before = jwtgw.backend.calls()
    with httpx.Client(timeout=10) as c:
        for value in ("Basic YWxpY2U6c2VjcmV0", "Bearer", f"Token {ALICE.token()}",
                      f"Bearer  {ALICE.token()}x", f"Bearer {ALICE.token()} {ALICE.token()}"):
            r = c.post(jwtgw.url, headers={"Authorization": value, "Content-Type": "application/json",
                                           "Accept": "application/json, text/event-stream"},
                       json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert r.status_code == 401, (value, r.status_code, r.text)
            _, params = challenge(r)
            assert params["resource_metadata"] == METADATA_URL, (value, params)
    assert_backend_untouched(jwtgw.backend, before)


def test_backend_log_sees_authorized_calls(jwtgw: JwtGateway) -> None:
    """Positive control for the attack tests: a valid token's call does reach the backend
    and shows up in its log."""
    before = jwtgw.backend.calls()
    with Raw(jwtgw.url, ALICE.token()) as raw:
        result = rpc_result(raw.modern("tools/call", {"name": "web__echo", "arguments": {"message": "hi"}}))
        assert result["content"][0]["text"] == "hi"
    deadline = time.monotonic() + 5
    while jwtgw.backend.calls()[len(before):] != ["echo"]:
        assert time.monotonic() < deadline, jwtgw.backend.calls()[len(before):]
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# Valid tokens, scopes, audiences, leeway
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["RS256", "ES256", "EdDSA"])
def test_valid_token_works_with_the_sdk(jwtgw: JwtGateway, key: str) -> None:
    """tools/list and tools/call through the official SDK with a bearer token of each
    allowed algorithm (keys from the JWKS)."""
    c = _valid_claims()
    token = {"RS256": RSA, "ES256": EC, "EdDSA": ED}[key].sign(c)

    async def body() -> None:
        async with sdk_session(jwtgw.url, token) as session:
            tools = {t.name for t in (await session.list_tools()).tools}
            assert {"demo__echo", "web__echo", "fx__test_simple_text"} <= tools, sorted(tools)
            result = await session.call_tool("demo__echo", {"message": f"via {key}"})
            assert text_of(result) == f"via {key}"
            result = await session.call_tool("web__whoami", {})
            assert text_of(result) == "web"

    run(body)


def test_extra_audience_and_scp_claim_are_accepted(jwtgw: JwtGateway) -> None:
    """`aud` may be one of `auth.jwt.audience` or a list containing the resource; scopes may
    come as `scp` (array or string) instead of `scope`."""
    now_tokens = {
        "alt audience": RSA.sign(_valid_claims(aud=ALT_AUDIENCE)),
        "aud list": RSA.sign(_valid_claims(aud=["https://other.test", RESOURCE])),
        "scp array": RSA.sign({**{k: v for k, v in _valid_claims().items() if k != "scope"},
                               "scp": REQUIRED}),
        "scp string": RSA.sign({**{k: v for k, v in _valid_claims().items() if k != "scope"},
                                "scp": SCOPE}),
        "extra scopes": RSA.sign(_valid_claims(scope=f"openid {SCOPE} profile")),
    }
    with Raw(jwtgw.url) as raw:
        for what, token in now_tokens.items():
            r = raw.modern("tools/list", token=token)
            assert r.status_code == 200, (what, r.status_code, r.text)


def test_clock_skew_within_leeway_is_accepted(jwtgw: JwtGateway) -> None:
    with Raw(jwtgw.url) as raw:
        for what, c in {"expired 10 s ago": _valid_claims(exp_in=-10),
                        "valid in 10 s": _valid_claims(nbf_in=10)}.items():
            r = raw.modern("tools/list", token=RSA.sign(c))
            assert r.status_code == 200, (what, r.status_code, r.text)


def test_missing_required_scope_is_403_insufficient_scope(jwtgw: JwtGateway) -> None:
    """A valid token without every required scope: 403 naming all required scopes (the
    granted one included), on both eras; nothing reaches the backend."""
    before = jwtgw.backend.calls()
    for scope in ("mcp:tools", "", "mcp:read other"):
        token = RSA.sign(claims("alice", roles=["admin"], scope=scope, roles_path=ROLES_CLAIM))
        with Raw(jwtgw.url, token) as raw:
            for r in (raw.modern("tools/call", {"name": "web__echo", "arguments": {"message": "x"}}),
                      raw.initialize()):
                assert r.status_code == 403, (scope, r.status_code, r.text)
                _, params = challenge(r)
                assert params == {"error": "insufficient_scope", "scope": SCOPE,
                                  "resource_metadata": METADATA_URL}, (scope, params)
                assert token not in r.text
    assert_backend_untouched(jwtgw.backend, before)


# --------------------------------------------------------------------------------------------
# Metadata and the other endpoints
# --------------------------------------------------------------------------------------------


def test_protected_resource_metadata_documents(jwtgw: JwtGateway) -> None:
    """RFC 9728 documents at the root and path-specific URLs, without any credentials."""
    want = {"resource": RESOURCE, "authorization_servers": [ISSUER],
            "scopes_supported": REQUIRED, "bearer_methods_supported": ["header"]}
    with httpx.Client(timeout=10) as c:
        for path in ("/.well-known/oauth-protected-resource",
                     "/.well-known/oauth-protected-resource/mcp"):
            r = c.get(jwtgw.gw.base + path)
            assert r.status_code == 200, (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/json"), r.headers
            doc = r.json()
            assert {k: doc.get(k) for k in want} == want, (path, doc)


def test_health_is_open_and_metrics_need_auth(jwtgw: JwtGateway) -> None:
    with httpx.Client(timeout=10) as c:
        assert c.get(jwtgw.gw.base + "/health").status_code == 200
        for path in ("/metrics", "/api/v1/admin/metrics"):
            r = c.get(jwtgw.gw.base + path)
            assert r.status_code == 401, (path, r.status_code)
            r = c.get(jwtgw.gw.base + path, headers=bearer(RSA.sign(_valid_claims(exp_in=-3600))))
            assert r.status_code == 401, (path, r.status_code)
            r = c.get(jwtgw.gw.base + path, headers=bearer(ALICE.token()))
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            assert "only1mcp_requests" in r.text


# --------------------------------------------------------------------------------------------
# What reaches a backend
# --------------------------------------------------------------------------------------------


def test_client_credentials_never_reach_the_backend(jwtgw: JwtGateway) -> None:
    """The demo backend's `headers` tool reports what it received: no Authorization, none of
    the client's headers, the token nowhere; only the backend's own configured header."""
    token = ALICE.token()
    seen: list[dict[str, str]] = []

    async def via_sdk() -> None:
        async with sdk_session(jwtgw.url, token) as session:
            seen.append(json.loads(text_of(await session.call_tool("web__headers", {}))))
            assert json.loads(text_of(await session.call_tool("demo__headers", {}))) == {}

    run(via_sdk)
    client_headers = {"X-Client-Secret": "client-secret-123", "Cookie": "sid=client-cookie-456",
                      "X-Forwarded-For": "203.0.113.9", "Proxy-Authorization": "Basic Y2xpZW50"}
    with Raw(jwtgw.url, token) as raw:
        assert raw.initialize().status_code == 200
        for send in (raw.legacy, raw.modern):
            r = send("tools/call", {"name": "web__headers", "arguments": {}}, headers=client_headers)
            seen.append(json.loads(rpc_result(r)["content"][0]["text"]))
        sid = raw.session_id
    assert len(seen) == 3
    for h in seen:
        assert "authorization" not in h, h
        assert "proxy-authorization" not in h and "cookie" not in h and "x-client-secret" not in h, h
        values = " ".join(h.values())
        for secret in (token, token.split(".")[2], "client-secret-123", "client-cookie-456", "Y2xpZW50"):
            assert secret not in values, (secret[:20], h)
        assert sid not in values, "the client's session id was forwarded"
        assert h.get("x-backend-key") == BACKEND_SECRET, h
