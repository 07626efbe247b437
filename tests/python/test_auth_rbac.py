"""Inbound auth, per-principal RBAC (issue 6; the contract is the auth spec mirrored in
docs/security.md): what each principal may see and use through the JWT gateway (`jwtgw`,
authgw.py; real gateway binary, both drivers), on the 2025-era session and the stateless
2026-07-28 requests alike.

The principals (`MATRIX`) cover the spec's cases: admin (everything), a reader with allow and
deny patterns on servers, tools, prompts and resources, roles given as a space-separated
string, two roles where one role's `deny_servers` beats the other's allow, and a token without
a roles claim (`default_roles`). What each of them should get is computed in Python by
`allowed`, the spec's rule, from admin's full view (`admin_views`, checked to hold items of
every backend and kind, so no comparison is vacuous). Proven here:
- tools/list, prompts/list and resources/list hold exactly what the roles allow, and
  resources/templates/list nothing of a server the roles exclude;
- tools/call, prompts/get and resources/read: allowed ones work, and a denied one gets exactly
  what an unknown one gets (denial does not reveal existence);
- cached views never leak across roles, principals alternating on long-lived sessions, new
  sessions and stateless requests;
- a session is bound to its principal: another principal's valid token (even one with the
  same role) cannot use it, and nothing reaches a backend through it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
from typing import Any

import httpx
import pytest

# Before the imports below: the helpers' asserts then report like the tests' own.
pytest.register_assert_rewrite("authkit", "authgw")

from authgw import (
    ALICE,
    ALICIA,
    BOB,
    GUS,
    MALLORY,
    OLGA,
    JwtGateway,
    Principal,
    Role,
    jwtgw,  # noqa: F401 (a module-scoped fixture: this module's own gateways)
)
from authkit import Raw, assert_backend_untouched, bearer, rpc_error, rpc_result


# --------------------------------------------------------------------------------------------
# Principals and the spec's rule for their roles
# --------------------------------------------------------------------------------------------

MATRIX = [ALICE, BOB, OLGA, MALLORY, GUS]


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


# --------------------------------------------------------------------------------------------
# List views
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


# --------------------------------------------------------------------------------------------
# Calls, gets and reads: denied == unknown
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Cached views
# --------------------------------------------------------------------------------------------


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
# Sessions
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
