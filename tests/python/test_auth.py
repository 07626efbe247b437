"""Inbound auth of the HTTP front (issue 6; the contract is the auth spec mirrored in
docs/security.md): JWT resource-server validation, API keys, protected resource metadata,
per-principal RBAC over tools/prompts/resources, session binding, rate limits, audit log,
and "the client's token never reaches a backend". Real gateway binary, both drivers; the
official Python SDK where a client is needed, httpx for raw HTTP. Keys and tokens are made
in the test (authkit.py), the JWKS is served by a thread in this process.

How "nothing reaches a backend" is proven: the attacks call `web__echo`, a tool of a demo
HTTP backend this module starts itself with `DEMO_VERBOSE=1`. That backend logs every
JSON-RPC request it receives (`demo-server: request tools/call echo`), so its own log is the
ground truth of what reached it, independent of the gateway's accounting. Each attack is sent
twice: as a stateless 2026-07-28 `tools/call` (which a gateway without auth would forward at
once) and inside a 2025-era session that a valid token opened (so only the token is wrong).
`test_backend_log_sees_authorized_calls` is the positive control: the same call with a valid
token does show up in that log.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from authkit import (
    ISSUER,
    METADATA_URL,
    RESOURCE,
    Audit,
    DemoHttpBackend,
    JwksServer,
    Raw,
    SigningKey,
    api_key,
    api_key_block,
    bearer,
    claims,
    demo_http_backend,
    ec_key,
    ed_key,
    hs256,
    hs256_with_public_pem,
    message_of,
    parse_challenge,
    role_block,
    rsa_key,
    sdk_session,
    tampered,
    toml_list,
    unsigned_token,
)
from conftest import (
    BIN,
    DRIVERS,
    Gateway,
    config_text,
    demo_stdio,
    run,
    running_gateway,
    server_block,
    text_of,
    toml_str,
)

# --------------------------------------------------------------------------------------------
# Keys, secrets and principals of the JWT gateway
# --------------------------------------------------------------------------------------------

RSA = rsa_key("rsa-1")
EC = ec_key("ec-1")
ED = ed_key("ed-1")
STRANGER = rsa_key("stranger")  # never in any JWKS
HS_SECRET_ENV = "O1M_TEST_JWT_SECRET"
HS_SECRET = secrets.token_urlsafe(48)
os.environ[HS_SECRET_ENV] = HS_SECRET  # the gateways started below inherit it

REQUIRED = ["mcp:tools", "mcp:read"]
SCOPE = " ".join(REQUIRED)
ALT_AUDIENCE = "urn:only1mcp:test-alt"
ROLES_CLAIM = "realm_access.roles"  # Keycloak's shape: a dotted path
MAX_TOKEN_BYTES = 4096
BACKEND_SECRET = "backend-own-credential-7f3a"


@dataclass(frozen=True)
class Role:
    """An `[[auth.roles]]` entry and, in Python, the spec's rule for it."""

    name: str
    servers: tuple[str, ...] = ("*",)
    tools: tuple[str, ...] = ("*",)
    prompts: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)
    deny_servers: tuple[str, ...] = ()
    deny_tools: tuple[str, ...] = ()
    deny_prompts: tuple[str, ...] = ()
    deny_resources: tuple[str, ...] = ()

    def toml(self) -> str:
        keys = {k: list(getattr(self, k)) for k in (
            "servers", "tools", "prompts", "resources",
            "deny_servers", "deny_tools", "deny_prompts", "deny_resources")}
        return role_block(self.name, **keys)


def glob(patterns: tuple[str, ...], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def server_of(kind: str, name: str) -> str:
    if kind == "resources":
        m = re.match(r"^o1m://([^/]+)/", name)
        assert m, f"not a gateway resource URI: {name}"
        return m.group(1)
    return name.split("__", 1)[0]


def allowed(roles: list[Role], kind: str, name: str) -> bool:
    """Allowed = some role allows it (server and item patterns) and no role denies it."""
    server = server_of(kind, name)
    allow = any(glob(r.servers, server) and glob(getattr(r, kind), name) for r in roles)
    deny = any(glob(r.deny_servers, server) or glob(getattr(r, f"deny_{kind}"), name) for r in roles)
    return allow and not deny


ROLES = {
    r.name: r
    for r in (
        Role("admin"),
        Role("reader", servers=("demo", "fx"),
             tools=("demo__echo", "demo__whoami", "demo__headers", "fx__test_*"),
             deny_tools=("fx__test_error_handling",),
             prompts=("fx__test_simple_prompt", "fx__test_prompt_with_*"),
             deny_prompts=("fx__test_prompt_with_image",),
             resources=("o1m://fx/test://static-*",),
             deny_resources=("o1m://fx/test://static-binary",)),
        Role("ops", servers=("demo", "web"), deny_tools=("demo__crash", "demo__garbage")),
        Role("auditor", deny_servers=("fx",), tools=("*__whoami", "fx__test_simple_text")),
        Role("guest", tools=("demo__whoami",), prompts=(), resources=()),
    )
}


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: Any  # the claim's value: a list, a space-separated string, or None (no claim)

    def role_list(self) -> list[Role]:
        if self.roles is None:
            return [ROLES["guest"]]  # default_roles
        names = self.roles.split() if isinstance(self.roles, str) else self.roles
        return [ROLES[n] for n in names]

    def token(self, key: SigningKey = RSA, **over: Any) -> str:
        return key.sign(claims(self.sub, roles=self.roles, scope=SCOPE, roles_path=ROLES_CLAIM, **over))


ALICE = Principal("alice", ["admin"])
ALICIA = Principal("alicia", ["admin"])  # same role as alice, another principal
BOB = Principal("bob", ["reader"])
OLGA = Principal("olga", "ops")  # roles as a space-separated string
MALLORY = Principal("mallory", ["reader", "auditor"])  # auditor's deny_servers beats reader
GUS = Principal("gus", None)  # no roles claim: default_roles = ["guest"]
MATRIX = [ALICE, BOB, OLGA, MALLORY, GUS]


# --------------------------------------------------------------------------------------------
# Gateways
# --------------------------------------------------------------------------------------------


def fixture_stdio(server_id: str) -> str:
    """The demo server with its conformance fixture: tools, prompts and resources."""
    return demo_stdio(server_id) + 'env = { DEMO_CONFORMANCE = "1", DEMO_PAGE_SIZE = "100" }\n'


def web_server(backend: DemoHttpBackend, server_id: str = "web") -> str:
    return (server_block(server_id, transport="http", url=backend.url)
            + f'headers = {{ "X-Backend-Key" = {toml_str(BACKEND_SECRET)} }}\n')


def jwt_config(jwks_url: str, backend: DemoHttpBackend) -> str:
    auth = f"""
[auth]
mode = "jwt"
resource = {toml_str(RESOURCE)}
authorization_servers = [{toml_str(ISSUER)}]
scopes_supported = {toml_list(REQUIRED)}
required_scopes = {toml_list(REQUIRED)}
default_roles = ["guest"]
roles_claim = {toml_str(ROLES_CLAIM)}

[auth.jwt]
algorithms = ["RS256", "ES256", "EdDSA"]
issuer = {toml_str(ISSUER)}
audience = [{toml_str(ALT_AUDIENCE)}]
jwks_url = {toml_str(jwks_url)}
leeway_s = 30
max_token_bytes = {MAX_TOKEN_BYTES}

""" + "\n".join(r.toml() for r in ROLES.values())
    return config_text(demo_stdio("demo"), fixture_stdio("fx"), web_server(backend)) + auth


@dataclass
class JwtGateway:
    gw: Gateway
    jwks: JwksServer
    backend: DemoHttpBackend

    @property
    def url(self) -> str:
        return self.gw.url


def wait_accepted(url: str, token: str, timeout_s: float = 10.0) -> None:
    """Poll until the gateway accepts `token` (its first JWKS fetch may still be under way
    when it starts listening)."""
    deadline = time.monotonic() + timeout_s
    with Raw(url, token) as raw:
        while True:
            r = raw.modern("tools/list")
            if r.status_code == 200:
                return
            assert time.monotonic() < deadline, f"valid token refused: {r.status_code} {r.text}"
            time.sleep(0.1)


@pytest.fixture(scope="module", params=DRIVERS)
def jwtgw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[JwtGateway]:
    workdir = tmp_path_factory.mktemp(f"auth-jwt-{request.param}")
    jwks = JwksServer([RSA, EC, ED])
    try:
        with demo_http_backend(workdir, "web") as backend:
            cfg = jwt_config(jwks.url, backend)
            with running_gateway(request.param, cfg, workdir, "jwt",
                                 {"demo": "ready", "fx": "ready", "web": "ready"},
                                 ["--name demo", "--name fx"]) as gw:
                jwks.wait_fetches(1)
                wait_accepted(gw.url, ALICE.token())
                settle_catalog(gw.url)
                yield JwtGateway(gw, jwks, backend)
    finally:
        jwks.close()


def settle_catalog(url: str, timeout_s: float = 15.0) -> None:
    """The fixture server adds a dynamic tool, prompt and resource 2 s after it starts, and
    the gateway picks them up on list_changed: wait until admin's view stops changing."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, time.monotonic()
    with Raw(url, ALICE.token()) as raw:
        while time.monotonic() < deadline:
            view = tuple(sorted(n for n in names(raw.list_all("tools", modern=True))))
            view += tuple(sorted(p["name"] for p in raw.list_all("prompts", modern=True)))
            if view != last:
                last, stable_since = view, time.monotonic()
            elif time.monotonic() - stable_since > 3.0 and "fx__test_dynamic_tool" in view:
                return
            time.sleep(0.2)


def names(items: list[dict[str, Any]]) -> list[str]:
    return [t["name"] for t in items]


# --------------------------------------------------------------------------------------------
# Assertions shared by the tests
# --------------------------------------------------------------------------------------------


def challenge(r: httpx.Response) -> tuple[str, dict[str, str]]:
    values = r.headers.get_list("www-authenticate")
    assert len(values) == 1, f"expected one WWW-Authenticate header, got {values!r}"
    scheme, params = parse_challenge(values[0])
    assert scheme.lower() == "bearer", values[0]
    return scheme, params


def assert_401(r: httpx.Response, *, presented: bool, token: str | None = None,
               scope: str | None = SCOPE) -> None:
    """401, the spec's WWW-Authenticate (jwt mode), a -32001 JSON-RPC error body, and the
    token not echoed back."""
    assert r.status_code == 401, (r.status_code, r.headers, r.text[:500])
    _, params = challenge(r)
    want = {"resource_metadata": METADATA_URL}
    if scope:
        want["scope"] = scope
    if presented:
        want["error"] = "invalid_token"
    assert params == want, f"WWW-Authenticate: {r.headers['www-authenticate']!r}"
    body = r.json()
    assert body.get("jsonrpc") == "2.0" and body["error"]["code"] == -32001, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if token:
        assert token not in r.text, "the refused token is echoed in the body"


def assert_backend_untouched(backend: DemoHttpBackend, before: list[str]) -> None:
    time.sleep(0.3)  # a forwarded call would be logged by now (the demo logs on receipt)
    after = backend.calls()
    assert after == before, f"calls reached the backend: {after[len(before):]}"


def rpc_error(r: httpx.Response) -> dict[str, Any]:
    msg = message_of(r)
    assert "error" in msg, f"expected a JSON-RPC error, got {msg}"
    return msg["error"]


def rpc_result(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, (r.status_code, r.text[:500])
    msg = message_of(r)
    assert "result" in msg, f"expected a result, got {msg}"
    return msg["result"]


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


def send_attack(raw: Raw, url: str, header_token: str | None) -> httpx.Response:
    """The stateless 2026 tools/call of web__echo with the attack's credentials."""
    headers = {"Authorization": f"Bearer {header_token}"} if header_token is not None else {}
    raw.token = None
    return raw.modern("tools/call", {"name": "web__echo", "arguments": {"message": "x"}},
                      headers=headers, url=url)


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
# RBAC
# --------------------------------------------------------------------------------------------

KINDS = {"tools": "name", "prompts": "name", "resources": "uri"}


def full_view(raw: Raw, modern: bool) -> dict[str, list[str]]:
    return {kind: sorted(i[key] for i in raw.list_all(kind, modern=modern)) for kind, key in KINDS.items()}


def expected_view(full: dict[str, list[str]], p: Principal) -> dict[str, list[str]]:
    roles = p.role_list()
    return {kind: [n for n in items if allowed(roles, kind, n)] for kind, items in full.items()}


@pytest.fixture(scope="module")
def admin_views(jwtgw: JwtGateway) -> dict[bool, dict[str, list[str]]]:
    """Everything (admin's view), per era. Checked to hold items of every backend and kind,
    so the per-role comparisons below are not vacuous."""
    with Raw(jwtgw.url, ALICE.token()) as raw:
        assert raw.initialize().status_code == 200
        views = {modern: full_view(raw, modern) for modern in (False, True)}
        for modern in (False, True):
            templates = [t["uriTemplate"] for t in raw.list_all("resources/templates", modern=modern)]
            assert any(t.startswith("o1m://fx/") for t in templates), (modern, templates)
    for modern, v in views.items():
        for item in ("demo__echo", "demo__add", "web__whoami", "fx__test_simple_text",
                     "fx__test_error_handling"):
            assert item in v["tools"], (modern, item, v["tools"])
        for item in ("fx__test_simple_prompt", "fx__test_prompt_with_image",
                     "fx__test_prompt_with_arguments"):
            assert item in v["prompts"], (modern, item, v["prompts"])
        for item in ("o1m://fx/test://static-text", "o1m://fx/test://static-binary"):
            assert item in v["resources"], (modern, item, v["resources"])
    return views


@pytest.mark.parametrize("principal", MATRIX, ids=[p.sub for p in MATRIX])
def test_rbac_list_views_per_role(jwtgw: JwtGateway, admin_views: Any, principal: Principal) -> None:
    """tools/list, prompts/list and resources/list hold exactly what the principal's roles
    allow (2025 session and 2026 stateless), and resources/templates/list nothing of a
    server the roles exclude."""
    with Raw(jwtgw.url, principal.token()) as raw:
        assert raw.initialize().status_code == 200
        for modern in (False, True):
            got = full_view(raw, modern)
            want = expected_view(admin_views[modern], principal)
            for kind in KINDS:
                assert got[kind] == want[kind], (
                    f"{principal.sub} ({'2026' if modern else '2025'}) {kind}: "
                    f"extra {sorted(set(got[kind]) - set(want[kind]))}, "
                    f"missing {sorted(set(want[kind]) - set(got[kind]))}")
            roles = principal.role_list()
            for t in raw.list_all("resources/templates", modern=modern):
                server = server_of("resources", t["uriTemplate"])
                assert any(glob(r.servers, server) for r in roles), (principal.sub, t)
                assert not any(glob(r.deny_servers, server) for r in roles), (principal.sub, t)


CALLS = [
    ("demo__echo", {"message": "m"}),
    ("demo__whoami", {}),
    ("demo__add", {"a": 1, "b": 2}),
    ("web__whoami", {}),
    ("fx__test_simple_text", {}),
    ("fx__test_error_handling", {}),
]
PROMPT_GETS = [
    ("fx__test_simple_prompt", {}),
    ("fx__test_prompt_with_arguments", {"arg1": "a", "arg2": "b"}),
    ("fx__test_prompt_with_image", {}),
]
READS = ["o1m://fx/test://static-text", "o1m://fx/test://static-binary"]


def same_error(denied: httpx.Response, unknown: httpx.Response, denied_name: str,
               unknown_name: str, swaps: list[tuple[str, str]] = ()) -> None:
    """The denied item's answer equals the unknown item's, names swapped: same HTTP status,
    same JSON-RPC code, message and data."""
    assert denied.status_code == unknown.status_code, (denied.status_code, unknown.status_code)
    d, u = rpc_error(denied), rpc_error(unknown)
    text = json.dumps(u, sort_keys=True).replace(unknown_name, denied_name)
    for a, b in swaps:
        text = text.replace(a, b)
    assert json.dumps(d, sort_keys=True) == text, f"denied: {d}\nunknown: {u}"


@pytest.mark.parametrize("principal", MATRIX, ids=[p.sub for p in MATRIX])
def test_rbac_calls_gets_and_reads(jwtgw: JwtGateway, principal: Principal) -> None:
    """tools/call, prompts/get, resources/read: allowed ones work; a denied one gets exactly
    what an unknown one gets (denial does not reveal existence), on both eras."""
    roles = principal.role_list()
    with Raw(jwtgw.url, principal.token()) as raw:
        assert raw.initialize().status_code == 200
        for send in (raw.legacy, raw.modern):
            for name, args in CALLS:
                r = send("tools/call", {"name": name, "arguments": args})
                if allowed(roles, "tools", name):
                    rpc_result(r)
                else:
                    server = name.split("__")[0]
                    unknown = f"{server}__no_such_tool_{secrets.token_hex(3)}"
                    u = send("tools/call", {"name": unknown, "arguments": args})
                    assert rpc_error(u)["code"] == -32602, rpc_error(u)
                    assert rpc_error(u)["message"] == f"unknown tool: {unknown}", rpc_error(u)
                    same_error(r, u, name, unknown)
            for name, args in PROMPT_GETS:
                r = send("prompts/get", {"name": name, "arguments": args})
                if allowed(roles, "prompts", name):
                    rpc_result(r)
                else:
                    unknown = f"fx__no_such_prompt_{secrets.token_hex(3)}"
                    same_error(r, send("prompts/get", {"name": unknown, "arguments": args}), name, unknown)
            for uri in READS:
                r = send("resources/read", {"uri": uri})
                if allowed(roles, "resources", uri):
                    assert rpc_result(r)["contents"], uri
                else:
                    unknown = f"o1m://fx/test://no-such-{secrets.token_hex(3)}"
                    same_error(r, send("resources/read", {"uri": unknown}), uri, unknown,
                               [(unknown.removeprefix("o1m://fx/"), uri.removeprefix("o1m://fx/"))])


def test_rbac_cached_views_never_leak_across_roles(jwtgw: JwtGateway, admin_views: Any) -> None:
    """Alternate principals of different roles many times in a row, on long-lived sessions,
    new sessions and stateless requests: every list is each principal's own, every time."""
    order = MATRIX + list(reversed(MATRIX)) + [BOB, ALICE, BOB, GUS, ALICE, GUS, OLGA, MALLORY, OLGA]
    sessions: dict[str, Raw] = {}
    try:
        for p in MATRIX:
            sessions[p.sub] = Raw(jwtgw.url, p.token())
            assert sessions[p.sub].initialize().status_code == 200
        for rnd in range(6):
            for p in order:
                fresh = rnd % 3 == 2
                raw = Raw(jwtgw.url, p.token()) if fresh else sessions[p.sub]
                try:
                    if fresh:
                        assert raw.initialize().status_code == 200
                    for modern in (False, True):
                        want = expected_view(admin_views[modern], p)
                        for kind, key in KINDS.items():
                            got = sorted(i[key] for i in raw.list_all(kind, modern=modern))
                            assert got == want[kind], (
                                f"round {rnd}, {p.sub}, {kind}, {'2026' if modern else '2025'}: "
                                f"extra {sorted(set(got) - set(want[kind]))} "
                                f"missing {sorted(set(want[kind]) - set(got))}")
                finally:
                    if fresh:
                        raw.close()
    finally:
        for raw in sessions.values():
            raw.close()


# --------------------------------------------------------------------------------------------
# Sessions, headers
# --------------------------------------------------------------------------------------------


def test_session_is_bound_to_its_principal(jwtgw: JwtGateway) -> None:
    """alice's Mcp-Session-Id with another principal's valid token (even one with the same
    role) is an unknown session (404) for every method, and alice's session survives."""
    with Raw(jwtgw.url, ALICE.token()) as alice:
        assert alice.initialize().status_code == 200
        sid = alice.session_id
        before = jwtgw.backend.calls()
        for thief in (BOB, ALICIA):
            with Raw(jwtgw.url, thief.token()) as t:
                r = t.legacy("tools/list", {}, session_id=sid)
                assert r.status_code == 404, (thief.sub, r.status_code, r.text)
                r = t.legacy("tools/call", {"name": "web__echo", "arguments": {"message": "x"}},
                             session_id=sid)
                assert r.status_code == 404, (thief.sub, r.status_code, r.text)
                r = t.client.get(jwtgw.url, headers={**bearer(thief.token()), **t.session_headers(sid),
                                                     "Accept": "text/event-stream"})
                assert r.status_code == 404, (thief.sub, "GET", r.status_code)
                r = t.client.delete(jwtgw.url, headers={**bearer(thief.token()), **t.session_headers(sid)})
                assert r.status_code == 404, (thief.sub, "DELETE", r.status_code)
        assert_backend_untouched(jwtgw.backend, before)
        result = rpc_result(alice.legacy("tools/call", {"name": "demo__whoami", "arguments": {}}))
        assert result["content"][0]["text"] == "demo"


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


# --------------------------------------------------------------------------------------------
# JWKS rotation and the unknown-kid refetch limit
# --------------------------------------------------------------------------------------------

MIN_REFETCH_S = 2


@dataclass
class RotGateway:
    gw: Gateway
    jwks: JwksServer
    key: SigningKey
    ci_key: str
    ready_fetches: int = 0


@pytest.fixture(scope="module", params=DRIVERS)
def rotgw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotGateway]:
    workdir = tmp_path_factory.mktemp(f"auth-rot-{request.param}")
    key = rsa_key("rot-a")
    jwks = JwksServer([key])
    ci_key, ci_sha = api_key()
    cfg = config_text(demo_stdio("demo")) + f"""
[auth]
mode = "jwt"
resource = {toml_str(RESOURCE)}
authorization_servers = [{toml_str(ISSUER)}]
default_roles = ["all"]

[auth.jwt]
algorithms = ["RS256"]
issuer = {toml_str(ISSUER)}
jwks_url = {toml_str(jwks.url)}
jwks_min_refetch_s = {MIN_REFETCH_S}

{role_block("all")}
{api_key_block("ci-bot", ci_sha, ["all"])}
"""
    try:
        with running_gateway(request.param, cfg, workdir, "rot", {"demo": "ready"}, ["--name demo"]) as gw:
            jwks.wait_fetches(1)
            wait_accepted(gw.url, key.sign(claims("alice")))
            yield RotGateway(gw, jwks, key, ci_key, len(jwks.fetches()))
    finally:
        jwks.close()


def test_jwks_rotation_new_key_accepted_after_refetch(rotgw: RotGateway) -> None:
    """A key added to the JWKS after start: its tokens are refused while unknown, then
    accepted once an unknown-kid refetch (at most one per jwks_min_refetch_s) picked it up."""
    new = rsa_key(f"rot-{secrets.token_hex(4)}")
    token = new.sign(claims("alice"))
    with Raw(rotgw.gw.url, token) as raw:
        r = raw.modern("tools/list")
        assert_401(r, presented=True, scope=None)
        rotgw.jwks.set_keys([rotgw.key, new])
        deadline = time.monotonic() + MIN_REFETCH_S + 8
        while (r := raw.modern("tools/list")).status_code != 200:
            assert r.status_code == 401, (r.status_code, r.text)
            assert time.monotonic() < deadline, (
                f"a token of the rotated-in key is still refused; JWKS fetches: {len(rotgw.jwks.fetches())}")
            time.sleep(0.2)
        assert "demo__echo" in names(rpc_result(r)["tools"])
        # The old key still works.
        assert raw.modern("tools/list", token=rotgw.key.sign(claims("bob"))).status_code == 200


def test_unknown_kid_flood_fetches_jwks_at_most_once_per_interval(rotgw: RotGateway) -> None:
    """Tokens with ever-new unknown kids for 5 s from 4 connections: each one 401, and the
    JWKS fetches during the flood are at least jwks_min_refetch_s apart."""
    duration = 5.0
    errors: list[str] = []
    count = [0]
    before = rotgw.jwks.fetches()
    start = time.monotonic()

    base = STRANGER.sign(claims("eve"))

    def flood() -> None:
        with Raw(rotgw.gw.url) as raw:
            while time.monotonic() - start < duration:
                token = _with_kid(base, f"flood-{secrets.token_hex(6)}")
                r = raw.modern("tools/list", token=token)
                count[0] += 1
                if r.status_code != 401:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.5)
    assert not errors, errors[:5]
    assert count[0] > 50, f"only {count[0]} requests in {duration}s"
    after = rotgw.jwks.fetches()
    during = [t for t in after if t >= start]
    spaced = ([before[-1]] if before else []) + during
    gaps = [b - a for a, b in zip(spaced, spaced[1:])]
    assert all(g >= MIN_REFETCH_S - 0.25 for g in gaps), (
        f"{len(during)} JWKS fetches during a {duration}s flood of {count[0]} unknown-kid tokens; "
        f"gaps {[round(g, 2) for g in gaps]}s, min allowed {MIN_REFETCH_S}s")
    assert len(during) <= int(duration // MIN_REFETCH_S) + 1, len(during)


def _with_kid(token: str, kid: str) -> str:
    """`token` re-headed with another kid (the signature no longer matters: the kid is
    unknown, so the key lookup fails first)."""
    head, payload, sig = token.split(".")
    h = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    h["kid"] = kid
    new_head = base64.urlsafe_b64encode(json.dumps(h).encode()).rstrip(b"=").decode()
    return f"{new_head}.{payload}.{sig}"


def test_api_key_is_also_accepted_in_jwt_mode(rotgw: RotGateway) -> None:
    with Raw(rotgw.gw.url, rotgw.ci_key) as raw:
        assert "demo__echo" in names(rpc_result(raw.modern("tools/list"))["tools"])
        r = raw.modern("tools/list", token=rotgw.ci_key[:-1] + ("0" if rotgw.ci_key[-1] != "0" else "1"))
        assert_401(r, presented=True, scope=None)


# --------------------------------------------------------------------------------------------
# HS256 (shared secret from the environment)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=DRIVERS)
def hsgw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp(f"auth-hs-{request.param}")
    cfg = config_text(demo_stdio("demo")) + f"""
[auth]
mode = "jwt"
resource = {toml_str(RESOURCE)}
authorization_servers = [{toml_str(ISSUER)}]

[auth.jwt]
algorithms = ["HS256"]
issuer = {toml_str(ISSUER)}
secret_env = {toml_str(HS_SECRET_ENV)}
"""
    with running_gateway(request.param, cfg, workdir, "hs", {"demo": "ready"}, ["--name demo"]) as gw:
        yield gw


def test_hs256_token_works_with_the_sdk(hsgw: Gateway) -> None:
    """HS256 with the secret the gateway read from `secret_env` (never from the file)."""
    token = hs256(HS_SECRET, claims("alice"))
    assert HS_SECRET not in (hsgw.workdir / f"hs-{hsgw.driver}.toml").read_text()

    async def body() -> None:
        async with sdk_session(hsgw.url, token) as session:
            assert "demo__echo" in {t.name for t in (await session.list_tools()).tools}
            assert text_of(await session.call_tool("demo__echo", {"message": "hs"})) == "hs"

    run(body)


def test_hs256_gateway_refuses_other_tokens(hsgw: Gateway) -> None:
    """Wrong secret, the RSA public key PEM as secret, an RS256 token, `alg: none`: 401."""
    c = claims("alice")
    with Raw(hsgw.url) as raw:
        for what, token in {"wrong secret": hs256("not-the-secret-" * 4, c),
                            "public pem as secret": hs256_with_public_pem(RSA, c),
                            "RS256": RSA.sign(c),
                            "alg none": unsigned_token(c, RSA.kid),
                            "expired": hs256(HS_SECRET, claims("alice", exp_in=-3600)),
                            "wrong audience": hs256(HS_SECRET, claims("alice", aud="https://x.test/mcp"))}.items():
            r = raw.modern("tools/list", token=token)
            assert r.status_code == 401, (what, r.status_code, r.text)
            assert_401(r, presented=True, token=token, scope=None)


# --------------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------------


@dataclass
class KeyGateway:
    gw: Gateway
    backend: DemoHttpBackend
    key: str
    sha: str
    config_path: Path


@pytest.fixture(scope="module", params=DRIVERS)
def keygw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyGateway]:
    workdir = tmp_path_factory.mktemp(f"auth-key-{request.param}")
    key, sha = api_key()
    with demo_http_backend(workdir, "web") as backend:
        cfg = config_text(demo_stdio("demo"), web_server(backend)) + f"""
[auth]
mode = "api_key"

{api_key_block("ci-bot", sha, ["all"])}
{role_block("all")}
"""
        with running_gateway(request.param, cfg, workdir, "key", {"demo": "ready", "web": "ready"},
                             ["--name demo"]) as gw:
            yield KeyGateway(gw, backend, key, sha, workdir / f"key-{request.param}.toml")


def assert_401_api_key(r: httpx.Response) -> None:
    assert r.status_code == 401, (r.status_code, r.text[:300])
    scheme, params = challenge(r)
    assert params == {"realm": "only1mcp-uring"}, r.headers["www-authenticate"]
    assert r.json()["error"]["code"] == -32001, r.text


def test_api_key_works_with_the_sdk(keygw: KeyGateway) -> None:
    async def body() -> None:
        async with sdk_session(keygw.gw.url, keygw.key) as session:
            tools = {t.name for t in (await session.list_tools()).tools}
            assert {"demo__echo", "web__echo"} <= tools, sorted(tools)
            assert text_of(await session.call_tool("web__echo", {"message": "key"})) == "key"

    run(body)


def test_wrong_or_missing_api_key_is_401(keygw: KeyGateway) -> None:
    before = keygw.backend.calls()
    wrong = [None, secrets.token_hex(32), keygw.key.upper(), keygw.key + "0", keygw.sha,
             f" {keygw.key}x", ALICE.token()]
    with Raw(keygw.gw.url) as raw:
        for token in wrong:
            r = raw.modern("tools/call", {"name": "web__echo", "arguments": {"message": "x"}},
                           token=token) if token is not None else send_attack(raw, keygw.gw.url, None)
            assert_401_api_key(r)
        r = raw.modern("tools/list", url=f"{keygw.gw.url}?access_token={keygw.key}")
        assert r.status_code == 401, (r.status_code, r.text)
    assert_backend_untouched(keygw.backend, before)
    with httpx.Client(timeout=10) as c:
        for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
            assert c.get(keygw.gw.base + path).status_code == 404, path


def test_config_holds_only_the_sha256_of_a_key(keygw: KeyGateway, tmp_path: Path) -> None:
    """The running config holds the SHA-256, never the key; the config model has no place
    for a plaintext key, and a malformed digest is refused by `validate`."""
    text = keygw.config_path.read_text()
    assert keygw.sha in text and keygw.key not in text
    base = config_text(demo_stdio("demo")) + '[auth]\nmode = "api_key"\n\n' + role_block("all")
    good = tmp_path / "good.toml"
    good.write_text(base + api_key_block("ci", keygw.sha, ["all"]))
    r = subprocess.run([str(BIN), "validate", str(good)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    for what, block in {
        "plaintext key": api_key_block("ci", keygw.sha, ["all"]) + f'key = "{keygw.key}"\n',
        "short digest": api_key_block("ci", keygw.sha[:40], ["all"]),
        "not hex": api_key_block("ci", "z" * 64, ["all"]),
    }.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(base + block)
        r = subprocess.run([str(BIN), "validate", str(bad)], capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, f"{what} accepted by validate"
        assert "bad.toml" in r.stderr + r.stdout, (what, r.stderr)


# --------------------------------------------------------------------------------------------
# Rate limits
# --------------------------------------------------------------------------------------------

BURST = 8


@dataclass
class LimitGateway:
    gw: Gateway
    keys: dict[str, str]


@pytest.fixture(scope="module", params=DRIVERS)
def limitgw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitGateway]:
    workdir = tmp_path_factory.mktemp(f"auth-limit-{request.param}")
    keys, blocks = {}, []
    for name in ("carol", "dave", "erin"):
        keys[name], sha = api_key()
        blocks.append(api_key_block(name, sha, ["all"]))
    cfg = config_text(demo_stdio("demo")) + f"""
[auth]
mode = "api_key"

{"".join(blocks)}
{role_block("all")}

[rate_limit]
requests_per_s = 1.0
burst = {BURST}

[rate_limit.tools]
"demo__echo" = {{ requests_per_s = 0.2, burst = 2 }}
"""
    with running_gateway(request.param, cfg, workdir, "limit", {"demo": "ready"}, ["--name demo"]) as gw:
        yield LimitGateway(gw, keys)


def assert_429(r: httpx.Response) -> int:
    assert r.status_code == 429, (r.status_code, r.text[:300])
    retry = r.headers.get("retry-after", "")
    assert re.fullmatch(r"[0-9]+", retry) and int(retry) >= 1, f"Retry-After: {retry!r}"
    err = r.json()["error"]
    assert err["code"] == -32000 and err["message"].startswith("rate limit exceeded"), err
    return int(retry)


def test_rate_limit_burst_then_429_with_retry_after(limitgw: LimitGateway) -> None:
    """One keep-alive connection (so one shard): `burst` requests pass, then 429 with an
    integer Retry-After >= 1; another principal is not affected; after Retry-After the
    principal is served again."""
    whoami = {"name": "demo__whoami", "arguments": {}}
    with Raw(limitgw.gw.url, limitgw.keys["carol"]) as carol:
        statuses = [carol.modern("tools/call", whoami).status_code for _ in range(BURST + 10)]
        assert 429 in statuses, statuses
        ok = statuses.index(429)
        assert all(s == 200 for s in statuses[:ok]), statuses
        assert BURST <= ok <= BURST + 1, f"{ok} requests passed before the first 429: {statuses}"
        retry = assert_429(carol.modern("tools/call", whoami))
        with Raw(limitgw.gw.url, limitgw.keys["erin"]) as erin:
            assert erin.modern("tools/call", whoami).status_code == 200
        assert retry <= 10, retry
        time.sleep(retry + 0.2)
        assert carol.modern("tools/call", whoami).status_code == 200


def test_per_tool_rate_limit_is_independent_of_other_tools(limitgw: LimitGateway) -> None:
    echo = {"name": "demo__echo", "arguments": {"message": "x"}}
    with Raw(limitgw.gw.url, limitgw.keys["dave"]) as dave:
        assert [dave.modern("tools/call", echo).status_code for _ in range(2)] == [200, 200]
        assert_429(dave.modern("tools/call", echo))
        for _ in range(2):
            r = dave.modern("tools/call", {"name": "demo__whoami", "arguments": {}})
            assert r.status_code == 200, (r.status_code, r.text)
        with Raw(limitgw.gw.url, limitgw.keys["erin"]) as erin:
            assert erin.modern("tools/call", echo).status_code == 200, "per principal AND tool"


# --------------------------------------------------------------------------------------------
# Audit log
# --------------------------------------------------------------------------------------------

AUDIT_KEYS = {"ts", "principal", "session", "method", "server", "tool", "outcome", "status",
              "latency_ms", "bytes_in", "bytes_out"}
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def audit_config(key_sha: str, path: Path, extra: str = "") -> str:
    return config_text(demo_stdio("demo")) + f"""
[auth]
mode = "api_key"

{api_key_block("alice", key_sha, ["reader"])}
{role_block("reader", tools=["demo__echo", "demo__now"])}

[rate_limit.tools]
"demo__now" = {{ requests_per_s = 0.1, burst = 1 }}

[audit]
enabled = true
path = {toml_str(path)}
{extra}
"""


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


def test_audit_lines_for_allowed_and_refused_requests(driver: str, tmp_path: Path) -> None:
    """One JSON line per request with the documented fields: allowed (ok), denied by RBAC,
    rate limited, unauthenticated; the key itself never appears."""
    key, sha = api_key()
    audit = Audit(tmp_path / f"audit-{driver}.log")
    with running_gateway(driver, audit_config(sha, audit.path), tmp_path, f"audit-{driver}",
                         {"demo": "ready"}, ["--name demo"]) as gw:
        with Raw(gw.url, key) as raw:
            assert raw.initialize().status_code == 200
            sid = raw.session_id
            ok = raw.legacy("tools/call", {"name": "demo__echo", "arguments": {"message": "a"}})
            rpc_result(ok)
            denied = raw.legacy("tools/call", {"name": "demo__add", "arguments": {"a": 1, "b": 2}})
            assert rpc_error(denied)["code"] == -32602
            first = raw.legacy("tools/call", {"name": "demo__now", "arguments": {}})
            limited = raw.legacy("tools/call", {"name": "demo__now", "arguments": {}})
            assert first.status_code == 200 and limited.status_code == 429, (first.status_code, limited.status_code)
            anon = raw.modern("tools/call", {"name": "demo__echo", "arguments": {"message": "a"}},
                              headers={"Authorization": "Bearer wrong-key"})
            assert anon.status_code == 401

        def line(pred: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
            return audit.wait_for(pred, f"{driver}: {what}")

        is_call = lambda l, tool: l.get("method") == "tools/call" and l.get("tool") in (tool, f"demo__{tool}")  # noqa: E731
        got_ok = line(lambda l: is_call(l, "echo") and l.get("outcome") == "ok", "allowed echo")
        assert got_ok["principal"] == "alice" and got_ok["server"] == "demo" and got_ok["tool"] == "echo", got_ok
        assert got_ok["status"] == 200 and got_ok["session"] == sid, got_ok
        assert got_ok["bytes_in"] > 0 and got_ok["bytes_out"] > 0 and got_ok["latency_ms"] >= 0, got_ok
        got_denied = line(lambda l: l.get("outcome") == "denied", "denied add")
        assert got_denied["principal"] == "alice" and got_denied["method"] == "tools/call", got_denied
        assert got_denied["tool"] in (None, "add", "demo__add"), got_denied
        assert got_denied["server"] in (None, "demo"), got_denied
        assert got_denied["status"] == denied.status_code, got_denied
        got_limited = line(lambda l: l.get("outcome") == "rate_limited", "rate-limited now")
        assert got_limited["principal"] == "alice" and got_limited["status"] == 429, got_limited
        got_anon = line(lambda l: l.get("outcome") == "unauthenticated", "401")
        assert got_anon["principal"] is None and got_anon["status"] == 401, got_anon
        line(lambda l: l.get("method") == "initialize" and l.get("outcome") == "ok", "initialize")
        for entry in audit.lines(strict=True):
            assert set(entry) >= AUDIT_KEYS, f"missing {AUDIT_KEYS - set(entry)} in {entry}"
            assert TS_RE.match(entry["ts"]), entry["ts"]
            assert isinstance(entry["status"], int) and isinstance(entry["latency_ms"], (int, float))
            assert key not in json.dumps(entry), "the API key is in the audit log"


def test_audit_log_rotates(driver: str, tmp_path: Path) -> None:
    """max_bytes/keep: path -> path.1 -> path.2, no path.3; every file whole JSON lines."""
    key, sha = api_key()
    audit = Audit(tmp_path / "audit.log")
    cfg = audit_config(sha, audit.path, "max_bytes = 16384\nkeep = 2")
    with running_gateway(driver, cfg, tmp_path, "audit-rot", {"demo": "ready"}, ["--name demo"]) as gw:
        with Raw(gw.url, key) as raw:
            for i in range(400):
                r = raw.modern("tools/call", {"name": "demo__echo", "arguments": {"message": f"m{i}"}})
                assert r.status_code == 200, r.text
        time.sleep(1.0)
    files = sorted(p.name for p in tmp_path.glob("audit.log*"))
    assert files == ["audit.log", "audit.log.1", "audit.log.2"], files
    for name in files:
        p = tmp_path / name
        assert p.stat().st_size <= 16384 + 1024, (name, p.stat().st_size)
        Audit(p).lines(strict=True)
