"""Inbound auth, after a principal is known (issue 6; the contract is the auth spec mirrored in
docs/security.md): per-principal rate limits and the audit log. Real gateway binary, both
drivers, `api_key` mode (keys made in the test, authkit.py).

- Rate limits: one principal gets `burst` requests, then 429 with an integer Retry-After >= 1
  and is served again once it has passed; another principal is not affected; a per-tool limit
  counts per principal and tool, independently of the other tools.
- The audit log: one JSON line per request with the documented fields, for allowed, RBAC
  denied, rate-limited and unauthenticated requests, never the key itself; it rotates by
  `max_bytes`/`keep` into whole JSON lines.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# Before the imports below: the helpers' asserts then report like the tests' own.
pytest.register_assert_rewrite("authkit", "authgw")

from authkit import Audit, Raw, api_key, api_key_block, role_block, rpc_error, rpc_result
from conftest import DRIVERS, Gateway, config_text, demo_stdio, running_gateway, toml_str


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
