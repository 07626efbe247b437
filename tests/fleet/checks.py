"""Scenarios and judgements shared by the HAProxy and nginx fleet tests."""

from __future__ import annotations

import anyio
import httpx

from clients import CALL_TIMEOUT_S, Rec, Recorder, node_of, sdk_session, stateless_call
from harness import NODE_IDS, pyh


def bad(recs: list[Rec]) -> list[tuple]:
    """The failed requests among `recs`, in a form that reads well in an assertion."""
    return [(r.kind, r.client, r.method, r.sid, r.status, r.served, r.detail[:400]) for r in recs if not r.ok]


def late(recs: list[Rec], t: float) -> list[Rec]:
    """The requests sent at or after `t`."""
    return [r for r in recs if r.t0 >= t]


def misrouted(recs: list[Rec]) -> list[tuple]:
    """2xx answers to requests with a session id that did not come from the id's node (the
    HTTP exchanges: an SDK call's own record carries no header)."""
    return [(r.kind, r.method, r.sid, r.served) for r in recs
            if r.kind != "2025" and r.sid and r.ok and r.status is not None and r.served != node_of(r.sid)]


def live_sessions(rec: Recorder) -> dict[str, str]:
    """Each SDK client's latest session id."""
    latest: dict[str, str] = {}
    for client, sid, _t in rec.sessions:
        latest[client] = sid
    return latest


def pinning_scenario(url: str, sessions: int = 6, stateless: int = 6, calls: int = 10) -> Recorder:
    """Concurrent SDK sessions (each holding its GET stream) and stateless clients, all
    through `url`; every call must succeed."""
    rec = Recorder()

    async def session(i: int) -> None:
        state: dict = {}
        async with sdk_session(url, f"l{i}", rec, state) as s:
            for n in range(4):
                result = await s.call_tool("demo__echo", {"message": f"l{i}-{n}"})
                assert not result.is_error, result
                await anyio.sleep(0.05)
            await s.list_tools()

    async def modern(i: int) -> None:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as c:
            for n in range(calls):
                r = await stateless_call(c, url, f"s{i}", n, rec)
                assert r.ok, r

    async def body() -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(sessions):
                    tg.start_soon(session, i)
                for i in range(stateless):
                    tg.start_soon(modern, i)

    pyh.run(body)
    return rec


def assert_pinned_and_spread(rec: Recorder, sessions: int = 6, modern_calls: int = 60) -> None:
    http = rec.of("http")
    minted = {r.new_sid for r in http if r.new_sid}
    assert len(minted) == sessions, minted
    for sid in minted:
        node, rand, mac = sid.split(".")
        assert node in NODE_IDS and len(rand) == 22 and len(mac) == 16, sid
    # The node that answered an initialize is the one its new id names.
    assert all(r.served == node_of(r.new_sid) for r in http if r.new_sid), [
        (r.new_sid, r.served) for r in http if r.new_sid]
    # Every answer to a request that carried a session id came from the node it names:
    # notifications/initialized, 4 calls, tools/list, the GET stream, the closing DELETE.
    pinned = [r for r in http if r.sid]
    assert len(pinned) >= sessions * 8, len(pinned)
    wrong = [(r.method, r.sid, r.status, r.served) for r in pinned if r.served != node_of(r.sid)]
    assert not wrong, wrong
    assert not bad(pinned), bad(pinned)
    # Concurrent sessions land on every node (least connections: each holds a GET stream).
    assert {node_of(s) for s in minted} == set(NODE_IDS), minted
    modern = rec.of("2026")
    assert len(modern) == modern_calls and not bad(modern), bad(modern)
    assert {r.served for r in modern} == set(NODE_IDS), {r.served for r in modern}
