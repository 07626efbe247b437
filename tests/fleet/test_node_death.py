"""`kill -9` of one node under steady load through HAProxy, and its restart.

Load: 16 stateless 2026 clients, 8 SDK sessions (each holding a GET stream) and a stream of
bridged `input_required` flows. What must hold (each assertion names it):

* every 2026 call sent after HAProxy marked the node DOWN succeeds;
* a request of the dead node's sessions sent after the kill gets 404 (never a 5xx, never a
  hang), and the client's new session lands on a live node;
* sessions on the other nodes see no error at all;
* every 2xx answer to a request with a session id came from the node the id names;
* a bridged retry whose first leg was on the dead node completes on another node;
* the restarted node answers 404 for its own pre-crash ids (and counts them `unknown`).

Requests that meet the dying node may fail before HAProxy marks it DOWN: one in flight (the
node died with it, and a request that reached a node is never re-sent), or one HAProxy wrote
on a connection it had open to the node while the kernel tore it down (with io_uring the dead
process's sockets linger a few ms after it is reaped). They get a 502 or a closed connection
from the balancer, never anything else, and are bounded in number and time.
"""

from __future__ import annotations

import anyio
import httpx

from checks import bad, late, live_sessions, misrouted
from clients import CALL_TIMEOUT_S, Load, Rec, Recorder, bridge_first_leg, bridge_retry, node_of, now
from harness import HOST_HEADER, NODE_IDS, HAProxy, pyh

PLAIN = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
LIST = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}


def test_kill_9_one_node_under_load(driver: str, make_fleet) -> None:
    fleet = make_fleet(driver)
    hap = fleet.balancer
    assert isinstance(hap, HAProxy)
    rec = Recorder()
    load = Load(fleet.url, rec)
    t: dict[str, float] = {}
    held: list[tuple[int, str]] = []
    pre_crash: list[str] = []
    probes: list[Rec] = []

    async def scenario() -> None:
        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                load.start(tg)
                # Warm up until every node holds a live session.
                for _ in range(100):
                    if {node_of(s) for s in live_sessions(rec).values()} == set(NODE_IDS):
                        break
                    await anyio.sleep(0.1)
                await anyio.sleep(1.0)
                by_node = [node_of(s) for s in live_sessions(rec).values()]
                victim = max(NODE_IDS, key=by_node.count)
                t["victim_sessions"] = by_node.count(victim)
                node = fleet.node(victim)
                async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S, headers=HOST_HEADER) as c:
                    # Bridged flows parked on the victim (asked there directly: leastconn sends
                    # new work to the nodes with fewer streams), retried after it died.
                    for n in range(3):
                        async with load.fx_lock:
                            first, state = await bridge_first_leg(c, node.url, "held", n, rec)
                        assert first.ok and first.served == victim and state, first
                        held.append((n, state))
                    pre_crash.extend(sid for _c, sid, _t in rec.sessions if node_of(sid) == victim)
                    t["kill"] = now()
                    t["dead"] = await anyio.to_thread.run_sync(node.kill9)
                    t["down"] = await anyio.to_thread.run_sync(hap.wait_status, victim, "DOWN", 5.0)
                    await anyio.sleep(2.0)
                    for n, state in held:
                        async with load.fx_lock:
                            await bridge_retry(c, fleet.url, "held", n, state, rec)
                    t["restart"] = now()
                    await anyio.to_thread.run_sync(node.start)
                    t["up"] = await anyio.to_thread.run_sync(hap.wait_status, victim, "UP", 10.0)
                    for sid in pre_crash:
                        r0 = now()
                        r = await c.post(fleet.url, headers={**PLAIN, "mcp-session-id": sid}, json=LIST)
                        probes.append(Rec("probe", "p", r0, now(), r.status_code, r.headers.get("x-served-by"),
                                          sid=sid, ok=r.status_code == 404, detail=r.text[:200]))
                await anyio.sleep(1.5)
                load.stop.set()
        t["victim"] = victim  # type: ignore[assignment]

    pyh.run(scenario)
    victim: str = t["victim"]  # type: ignore[assignment]
    kill, dead, down, restart = t["kill"], t["dead"], t["down"], t["restart"]
    summary = (f"victim {victim} ({t['victim_sessions']} sessions), marked DOWN "
               f"{down - kill:.2f}s after the kill; {len(rec.recs)} requests")
    assert t["victim_sessions"] >= 1 and down - kill < 2.0, summary

    # Nothing hung: every request was answered well within the client's timeout.
    slow = [(r.kind, r.sid, r.t1 - r.t0) for r in rec.recs if r.kind != "http" and r.t1 - r.t0 > 5.0]
    assert not slow, f"{summary}: slow: {slow}"

    # 2026: every call sent after HAProxy marked the node DOWN succeeded.
    modern = rec.of("2026")
    assert len(late(modern, down)) >= 16 * 10, summary
    assert not bad(late(modern, down)), f"{summary}: {bad(late(modern, down))}"
    # Before that, calls that met the dying node (in flight, or sent on a connection HAProxy
    # had open to it while the kernel tore it down) may fail, as a 502 or a closed connection
    # from the balancer, and at most once per client; nothing else does.
    early = [r for r in modern if r.t0 < down and not r.ok]
    assert all(r.status in (None, 502) for r in early), f"{summary}: {bad(early)}"
    assert len(early) <= 16 and all(r.t1 > kill for r in early), f"{summary}: {bad(early)}"

    http = rec.of("http")
    # Every 2xx answer to a request with a session id came from the node the id names.
    assert not misrouted(rec.recs), f"{summary}: {misrouted(rec.recs)}"
    # Sessions on the other nodes: no error, ever (HTTP exchanges and calls).
    others = [r for r in rec.recs if r.kind in ("http", "2025") and r.sid and node_of(r.sid) != victim]
    assert not bad(others), f"{summary}: {bad(others)}"
    # The dead node's sessions: sent after it died -> 404 from a live node while it was
    # dead (from itself once restarted), never a 5xx.
    orphans = [r for r in http if r.sid and node_of(r.sid) == victim and r.sid in pre_crash and r.t0 >= dead]
    assert orphans, f"{summary}: no request of the dead node's sessions after the kill"
    wrong = [(r.method, r.status, r.served) for r in orphans
             if r.status != 404 or (r.t1 < restart and r.served == victim)]
    assert not wrong, f"{summary}: {wrong}"
    # Each client whose session was on the victim started a new one on a live node.
    for client, sid in {c: s for c, s, t0 in rec.sessions if t0 < kill}.items():
        if node_of(sid) != victim:
            continue
        after = [(s, t0) for c, s, t0 in rec.sessions if c == client and t0 >= kill]
        assert after, f"{summary}: client {client} of {sid} never started a new session"
        assert node_of(after[0][0]) != victim or after[0][1] >= restart, f"{summary}: {after}"
    # Initializes (no session id yet) failed only while the node was dying.
    inits = [r for r in http if r.sid is None and not (r.t0 < down and r.t1 > kill)]
    assert not bad(inits), f"{summary}: {bad(inits)}"

    # Bridged flows: every retry after the mark-down completed; the held ones on another node.
    assert not bad(late(rec.of("bridge1", "bridge2"), down)), f"{summary}: {bad(late(rec.of('bridge1', 'bridge2'), down))}"
    retried = [r for r in rec.of("bridge2") if r.client == "held"]
    assert len(retried) == len(held) >= 1, f"{summary}: held {len(held)}"
    assert all(r.ok and r.served not in (None, victim) for r in retried), f"{summary}: {bad(retried)}"

    # The restarted node: its pre-crash ids are 404 from itself, counted as `unknown`.
    assert probes and all(r.ok and r.served == victim for r in probes), f"{summary}: {bad(probes)}"
    node = fleet.node(victim)
    unknown = 0.0
    for _ in range(50):
        unknown = node.metric("only1mcp_session_ids_refused_total", reason="unknown")
        if unknown >= len(probes):
            break
        anyio.run(anyio.sleep, 0.1)
    assert unknown >= len(probes), f"{summary}: unknown={unknown}"
