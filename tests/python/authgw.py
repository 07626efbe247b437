"""The JWT gateway of the auth tests, and what goes with it.

test_auth_tokens.py and test_auth_rbac.py run against `jwtgw`; test_auth_keys.py reuses its
keys, config pieces and checks. Here:
- the keys: RS256, ES256 and EdDSA key pairs, all in the JWKS a `JwksServer` thread serves to
  the gateway, and `STRANGER`, an RSA key that is never in any JWKS;
- the scopes the gateway requires, its roles (`Role`, `ROLES`: its `[[auth.roles]]`) and the
  principals whose tokens the tests present (`Principal`: a `sub` and a roles claim under
  Keycloak's dotted `realm_access.roles`, or no claim at all);
- `jwtgw`, a module-scoped fixture, once per I/O driver: the gateway in `jwt` mode in front of
  the demo server (`demo`), the demo server with its conformance fixture (`fx`: tools,
  prompts and resources) and a `DemoHttpBackend` (`web`) that logs every request reaching
  it. A test module uses it by importing it; each module that does starts its own gateways;
- `assert_401`, the full check of a jwt-mode refusal, and `send_attack`, the stateless
  `tools/call` of `web__echo` that refused credentials are sent with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from authkit import (
    ISSUER,
    METADATA_URL,
    RESOURCE,
    DemoHttpBackend,
    JwksServer,
    Raw,
    SigningKey,
    challenge,
    claims,
    demo_http_backend,
    ec_key,
    ed_key,
    names,
    role_block,
    rsa_key,
    toml_list,
)
from conftest import (
    DRIVERS,
    Gateway,
    config_text,
    demo_stdio,
    running_gateway,
    server_block,
    toml_str,
)


# --------------------------------------------------------------------------------------------
# Keys, scopes and principals of the JWT gateway
# --------------------------------------------------------------------------------------------

RSA = rsa_key("rsa-1")
EC = ec_key("ec-1")
ED = ed_key("ed-1")
STRANGER = rsa_key("stranger")  # never in any JWKS

REQUIRED = ["mcp:tools", "mcp:read"]
SCOPE = " ".join(REQUIRED)
ALT_AUDIENCE = "urn:only1mcp:test-alt"
ROLES_CLAIM = "realm_access.roles"  # Keycloak's shape: a dotted path
MAX_TOKEN_BYTES = 4096
BACKEND_SECRET = "backend-own-credential-7f3a"


@dataclass(frozen=True)
class Role:
    """An `[[auth.roles]]` entry (`allowed` in test_auth_rbac.py is the spec's rule for it)."""

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


# --------------------------------------------------------------------------------------------
# The gateway
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
    the gateway picks them up on list_changed: wait until admin's view stops changing.

    The dynamic tool shows in the 2025-era view only: the fixture's 2026 lists reach the
    gateway when it lists them again, which it does not do on list_changed (README,
    limitations). Waiting for it in the 2026 view ran into the timeout every time."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, time.monotonic()
    with Raw(url, ALICE.token()) as raw:
        raw.initialize()
        while time.monotonic() < deadline:
            view = tuple(sorted(n for n in names(raw.list_all("tools"))))
            view += tuple(sorted(n for n in names(raw.list_all("tools", modern=True))))
            view += tuple(sorted(p["name"] for p in raw.list_all("prompts", modern=True)))
            if view != last:
                last, stable_since = view, time.monotonic()
            elif time.monotonic() - stable_since > 3.0 and "fx__test_dynamic_tool" in view:
                return
            time.sleep(0.2)


# --------------------------------------------------------------------------------------------
# Checks of a jwt-mode refusal
# --------------------------------------------------------------------------------------------


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


def send_attack(raw: Raw, url: str, header_token: str | None) -> httpx.Response:
    """The stateless 2026 tools/call of web__echo with the attack's credentials."""
    headers = {"Authorization": f"Bearer {header_token}"} if header_token is not None else {}
    raw.token = None
    return raw.modern("tools/call", {"name": "web__echo", "arguments": {"message": "x"}},
                      headers=headers, url=url)
