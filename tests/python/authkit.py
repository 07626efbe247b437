"""Test kit for the gateway's inbound auth (tests/python/test_auth_*.py).

Everything secret is made here, in the test process, at run time: RSA 2048, EC P-256 and
Ed25519 key pairs (`cryptography`), tokens signed with them (`PyJWT`), hand-made hostile
tokens (`alg: none`, HS256 keyed with the RSA public key PEM, tampered payloads), API keys
and their SHA-256. Nothing is read from disk or the network.

Also here:
- `JwksServer`: a JWKS document served over HTTP on 127.0.0.1 by a `http.server` thread,
  whose key set can change while the gateway runs (rotation) and which records when it was
  fetched (so the unknown-`kid` refetch and its rate limit can be asserted).
- `DemoHttpBackend`: the built-in demo server over HTTP as a test-owned process started with
  `DEMO_VERBOSE=1`, so every JSON-RPC request that reaches it is logged to its stderr as
  `demo-server: request <method> <name>`: the backend's own record of what reached it.
- `Raw`: a raw httpx client for the HTTP front (both eras), and `sdk_session`: the official
  SDK's client with an `Authorization` header.
- `parse_challenge`: a `WWW-Authenticate` parser (scheme + auth-params), and the checks
  every auth test file uses: `challenge`, `rpc_result`, `rpc_error`,
  `assert_backend_untouched`, `names`.

The JWT gateway most of the tests run against (its keys, roles, principals and fixture) is
in authgw.py.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import BIN, DEMO_READY_RE, _stdout_lines, _stop, _wait_line, toml_str

# The gateway's canonical resource URI in the tests. It need not be reachable: the gateway
# compares `aud` with it and builds the metadata URL from its origin.
RESOURCE = "https://gateway.test/mcp"
METADATA_URL = "https://gateway.test/.well-known/oauth-protected-resource/mcp"
ISSUER = "https://idp.test/realms/acme"

MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
}


# --------------------------------------------------------------------------------------------
# Keys and tokens
# --------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@dataclass
class SigningKey:
    """A key pair with its JWK `kid` and JWS `alg`."""

    kid: str
    alg: str
    private: Any
    public: Any

    def jwk(self) -> dict[str, Any]:
        to_jwk = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.alg]
        out = dict(to_jwk.to_jwk(self.public, as_dict=True))
        out.update(kid=self.kid, alg=self.alg, use="sig")
        return out

    def sign(self, claims: dict[str, Any], alg: str | None = None, **header: Any) -> str:
        """A JWS over `claims` with this key (`alg` may name another algorithm of the same
        key type, e.g. PS256 for an RSA key)."""
        return jwt.encode(claims, self.private, algorithm=alg or self.alg,
                          headers={"kid": self.kid, **header})

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)


def rsa_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid, "RS256", private, private.public_key())


def ec_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(kid, "ES256", private, private.public_key())


def ed_key(kid: str) -> SigningKey:
    private = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(kid, "EdDSA", private, private.public_key())


def claims(sub: str, *, roles: Any = None, scope: str | None = None, aud: Any = RESOURCE,
           iss: str = ISSUER, exp_in: int = 600, nbf_in: int | None = None,
           roles_path: str = "roles", **extra: Any) -> dict[str, Any]:
    """Standard claims for `sub`; `roles` goes under the dotted `roles_path`."""
    now = int(time.time())
    out: dict[str, Any] = {"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + exp_in}
    if nbf_in is not None:
        out["nbf"] = now + nbf_in
    if scope is not None:
        out["scope"] = scope
    if roles is not None:
        node = out
        *parents, last = roles_path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = roles
    out.update(extra)
    return out


def unsigned_token(claims_: dict[str, Any], kid: str) -> str:
    """`alg: none`, empty signature: the classic unsigned token."""
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64url_json(claims_)}."


def hs256_with_public_pem(key: SigningKey, claims_: dict[str, Any]) -> str:
    """HS256 keyed with the RSA public key's PEM: the RS/HS key-confusion attack. Made by
    hand (PyJWT refuses a PEM as an HMAC secret, rightly)."""
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{b64url_json(claims_)}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def hs256(secret: str, claims_: dict[str, Any], kid: str | None = None) -> str:
    header = {"kid": kid} if kid else None
    return jwt.encode(claims_, secret, algorithm="HS256", headers=header)


def tampered(token: str, **changes: Any) -> str:
    """`token` with claims changed and the original signature kept."""
    head, payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    return f"{head}.{b64url_json(body)}.{sig}"


def api_key() -> tuple[str, str]:
    """A new API key (`openssl rand -hex 32` style) and its SHA-256 (lowercase hex)."""
    key = secrets.token_hex(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# The JWKS endpoint
# --------------------------------------------------------------------------------------------


class JwksServer:
    """Serves `{"keys": [...]}` at `/jwks.json` on 127.0.0.1 and records each fetch
    (monotonic time)."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self._lock = threading.Lock()
        self._keys = list(keys)
        self._fetches: list[float] = []
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] != "/jwks.json":
                    self.send_error(404)
                    return
                with server_ref._lock:
                    server_ref._fetches.append(time.monotonic())
                    body = json.dumps({"keys": [k.jwk() for k in server_ref._keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/jwks.json"

    def set_keys(self, keys: list[SigningKey]) -> None:
        with self._lock:
            self._keys = list(keys)

    def fetches(self) -> list[float]:
        with self._lock:
            return list(self._fetches)

    def wait_fetches(self, n: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.fetches()) < n:
            assert time.monotonic() < deadline, f"the JWKS was fetched {len(self.fetches())} times, expected >= {n}"
            time.sleep(0.05)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --------------------------------------------------------------------------------------------
# A demo HTTP backend that logs what reaches it
# --------------------------------------------------------------------------------------------


@dataclass
class DemoHttpBackend:
    url: str
    log: Path
    proc: subprocess.Popen[str]

    def requests(self, method: str | None = None) -> list[tuple[str, str]]:
        """(method, name) of every JSON-RPC request that reached this backend so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            m = re.match(r"^demo-server: request (\S+) (\S+)$", line)
            if m and (method is None or m.group(1) == method):
                out.append((m.group(1), m.group(2)))
        return out

    def calls(self) -> list[str]:
        """Tool names of the tools/call requests that reached this backend."""
        return [name for _, name in self.requests("tools/call")]


@contextlib.contextmanager
def demo_http_backend(workdir: Path, name: str) -> Any:
    log = workdir / f"{name}-backend.log"
    env = {**os.environ, "DEMO_VERBOSE": "1"}
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [str(BIN), "demo-server", "--http", "127.0.0.1:0", "--name", name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )
    try:
        m = _wait_line(proc, _stdout_lines(proc), DEMO_READY_RE, 10.0, log)
        yield DemoHttpBackend(m.group(1), log, proc)
    finally:
        _stop(proc, 5.0)


# --------------------------------------------------------------------------------------------
# Config pieces
# --------------------------------------------------------------------------------------------


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(toml_str(v) for v in values) + "]"


def role_block(name: str, **patterns: list[str]) -> str:
    lines = ["[[auth.roles]]", f"name = {toml_str(name)}"]
    lines += [f"{k} = {toml_list(v)}" for k, v in patterns.items()]
    return "\n".join(lines) + "\n"


def api_key_block(name: str, sha256: str, roles: list[str]) -> str:
    return (f"[[auth.api_keys]]\nname = {toml_str(name)}\nsha256 = {toml_str(sha256)}\n"
            f"roles = {toml_list(roles)}\n")


# --------------------------------------------------------------------------------------------
# HTTP clients
# --------------------------------------------------------------------------------------------


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def message_of(response: httpx.Response, request_id: Any = None) -> dict[str, Any]:
    """The JSON-RPC message of a JSON or SSE response (the one answering `request_id`)."""
    ctype = response.headers.get("content-type", "")
    if ctype.startswith("text/event-stream"):
        for block in response.text.split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in block.splitlines() if line.startswith("data:"))
            if data:
                msg = json.loads(data)
                if "id" in msg and (request_id is None or msg["id"] == request_id) and (
                        "result" in msg or "error" in msg):
                    return msg
        raise AssertionError(f"no response for id {request_id} in the stream: {response.text[:2000]}")
    return response.json()


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """`Bearer a="x", b=y` -> ("Bearer", {"a": "x", "b": "y"})."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    for m in re.finditer(r'\s*([A-Za-z0-9_-]+)=("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*(,|$)', rest):
        key = m.group(1)
        assert key not in params, f"auth-param {key!r} twice in {value!r}"
        params[key] = m.group(3) if m.group(3) is not None else m.group(2)
    return scheme, params


class Raw:
    """Raw JSON-RPC over the gateway's HTTP front with one keep-alive connection."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 20.0) -> None:
        self.url = url
        self.token = token
        self.client = httpx.Client(timeout=timeout)
        self.session_id: str | None = None
        self._next = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _id(self) -> int:
        self._next += 1
        return self._next

    def post(self, body: dict[str, Any], headers: dict[str, str] | None = None,
             token: str | None = None, url: str | None = None) -> httpx.Response:
        h = {**MCP_HEADERS, **bearer(token if token is not None else self.token), **(headers or {})}
        return self.client.post(url or self.url, json=body, headers=h)

    def initialize(self) -> httpx.Response:
        """A 2025-era session: initialize + notifications/initialized."""
        r = self.post({"jsonrpc": "2.0", "id": self._id(), "method": "initialize",
                       "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {},
                                  "clientInfo": {"name": "authkit", "version": "1"}}})
        if r.status_code == 200:
            self.session_id = r.headers.get("mcp-session-id")
            assert self.session_id, f"initialize without Mcp-Session-Id: {r.headers}"
            n = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"},
                          headers=self.session_headers())
            assert n.status_code in (200, 202), (n.status_code, n.text)
        return r

    def session_headers(self, session_id: str | None = None) -> dict[str, str]:
        return {"Mcp-Session-Id": session_id or self.session_id or "",
                "MCP-Protocol-Version": LEGACY_VERSION}

    def legacy(self, method: str, params: dict[str, Any] | None = None, *,
               token: str | None = None, session_id: str | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
        """A request in the 2025-era session."""
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self._id(), "method": method}
        if params is not None:
            body["params"] = params
        return self.post(body, headers={**self.session_headers(session_id), **(headers or {})},
                         token=token)

    def modern(self, method: str, params: dict[str, Any] | None = None, *,
               token: str | None = None, headers: dict[str, str] | None = None,
               url: str | None = None) -> httpx.Response:
        """A stateless 2026-07-28 request (`_meta`, `Mcp-Method`, `Mcp-Name`)."""
        p = dict(params or {})
        p["_meta"] = MODERN_META
        h = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
        name = p.get("name") if method in ("tools/call", "prompts/get") else p.get("uri")
        if method in ("tools/call", "prompts/get", "resources/read") and name is not None:
            h["Mcp-Name"] = name
        h.update(headers or {})
        body = {"jsonrpc": "2.0", "id": self._id(), "method": method, "params": p}
        return self.post(body, headers=h, token=token, url=url)

    def list_all(self, kind: str, *, modern: bool = False) -> list[dict[str, Any]]:
        """Every item of `<kind>/list` (tools, prompts, resources, resources/templates)."""
        method = f"{kind}/list"
        key = {"resources/templates": "resourceTemplates"}.get(kind, kind)
        items, cursor = [], None
        for _ in range(100):
            params = {"cursor": cursor} if cursor else {}
            r = self.modern(method, params) if modern else self.legacy(method, params)
            assert r.status_code == 200, (method, r.status_code, r.text)
            msg = message_of(r)
            assert "result" in msg, (method, msg)
            items.extend(msg["result"][key])
            cursor = msg["result"].get("nextCursor")
            if not cursor:
                return items
        raise AssertionError(f"{method} pagination does not end")


@contextlib.asynccontextmanager
async def sdk_session(url: str, token: str) -> AsyncIterator[ClientSession]:
    """An initialized official-SDK session whose every HTTP request carries the token."""
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with contextlib.AsyncExitStack() as stack:
        http_client = await stack.enter_async_context(
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}))
        read, write = await stack.enter_async_context(
            streamable_http_client(url, http_client=http_client))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


@dataclass
class Audit:
    """The audit log file: every line parsed as JSON."""

    path: Path

    def lines(self, strict: bool = False) -> list[dict[str, Any]]:
        """Every complete line, parsed (each must be one JSON object). `strict`: the file
        must also end with a newline (call it once the gateway is idle)."""
        if not self.path.exists():
            return []
        text = self.path.read_text()
        if strict:
            assert text == "" or text.endswith("\n"), "the audit log ends in a partial line"
        elif not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a line being written: not yet
        out = []
        for line in text.splitlines():
            obj = json.loads(line)
            assert isinstance(obj, dict), f"audit line is not a JSON object: {line!r}"
            out.append(obj)
        return out

    def wait_for(self, pred: Any, what: str, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.lines():
                if pred(line):
                    return line
            assert time.monotonic() < deadline, (
                f"no audit line for {what} within {timeout_s}s; lines: {self.lines()[-20:]}")
            time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Checks shared by the auth tests
# --------------------------------------------------------------------------------------------


def names(items: list[dict[str, Any]]) -> list[str]:
    return [t["name"] for t in items]


def challenge(r: httpx.Response) -> tuple[str, dict[str, str]]:
    values = r.headers.get_list("www-authenticate")
    assert len(values) == 1, f"expected one WWW-Authenticate header, got {values!r}"
    scheme, params = parse_challenge(values[0])
    assert scheme.lower() == "bearer", values[0]
    return scheme, params


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
