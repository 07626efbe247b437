"""Inbound auth, where the verification keys come from (issue 6; the contract is the auth
spec mirrored in docs/security.md). Real gateway binary, both drivers, one gateway per
source; keys, secrets and tokens are made in the test (authkit.py), the JWKS is served by a
thread in this process.

- JWKS rotation: a key added to the JWKS after start is refused while unknown, then accepted
  once an unknown-`kid` refetch picked it up; a flood of ever-new unknown `kid`s is all 401
  and refetches the JWKS at most once per `jwks_min_refetch_s`; API keys work in `jwt` mode
  too.
- HS256 with a shared secret the gateway reads from the environment (`secret_env`, never the
  config file): its tokens work, every other token is a 401.
- `api_key` mode: a key works through the official SDK; a wrong, altered or missing key (or a
  JWT, or a key in the query string) is a 401 with the API-key challenge and nothing reaches
  the backend; the config holds only the SHA-256 of a key, and `validate` refuses a plaintext
  key or a malformed digest.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# Before the imports below: the helpers' asserts then report like the tests' own.
pytest.register_assert_rewrite("authkit", "authgw")

from authgw import (
    ALICE,
    RSA,
    STRANGER,
    assert_401,
    send_attack,
    wait_accepted,
    web_server,
)
from authkit import (
    ISSUER,
    RESOURCE,
    DemoHttpBackend,
    JwksServer,
    Raw,
    SigningKey,
    api_key,
    api_key_block,
    assert_backend_untouched,
    challenge,
    claims,
    demo_http_backend,
    hs256,
    hs256_with_public_pem,
    names,
    role_block,
    rpc_result,
    rsa_key,
    sdk_session,
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
    text_of,
    toml_str,
)


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

HS_SECRET_ENV = "O1M_TEST_JWT_SECRET"
HS_SECRET = secrets.token_urlsafe(48)
os.environ[HS_SECRET_ENV] = HS_SECRET  # the gateways started below inherit it


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
