"""The nginx variant (deploy/nginx/mcp-fleet.conf): the same session pinning as HAProxy, and a
node's death seen passively (open-source nginx has no active health checks): a request whose
connection to the dead node fails goes to another node, so stateless calls keep succeeding
and the dead node's sessions get a live node's 404."""

from __future__ import annotations

import anyio

from checks import assert_pinned_and_spread, bad, late, live_sessions, misrouted, pinning_scenario
from clients import Load, Recorder, node_of, now
from harness import NODE_IDS, pyh


def test_nginx_pins_sessions_and_survives_a_dead_node(driver: str, make_fleet) -> None:
    fleet = make_fleet(driver, balancer="nginx")
    assert_pinned_and_spread(pinning_scenario(fleet.url))

    rec = Recorder()
    load = Load(fleet.url, rec, stateless=8, sessions=6, bridges=0)
    t: dict[str, float] = {}
    victim = ""

    async def scenario() -> None:
        nonlocal victim
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                load.start(tg)
                for _ in range(100):
                    if {node_of(s) for s in live_sessions(rec).values()} == set(NODE_IDS):
                        break
                    await anyio.sleep(0.1)
                await anyio.sleep(1.0)
                by_node = [node_of(s) for s in live_sessions(rec).values()]
                victim = max(NODE_IDS, key=by_node.count)
                t["sessions"] = by_node.count(victim)
                t["kill"] = now()
                t["dead"] = await anyio.to_thread.run_sync(fleet.node(victim).kill9)
                await anyio.sleep(3.0)
                load.stop.set()

    pyh.run(scenario)
    kill = t["dead"]
    summary = f"victim {victim} ({t['sessions']:.0f} sessions); {len(rec.recs)} requests"
    assert t["sessions"] >= 1, summary
    slow = [(r.kind, r.sid, r.t1 - r.t0) for r in rec.recs if r.kind != "http" and r.t1 - r.t0 > 5.0]
    assert not slow, f"{summary}: slow: {slow}"
    # Stateless calls sent once the node refuses connections: nginx finds it refusing and
    # moves on. Only in the first 100 ms may a call still meet a connection nginx had kept
    # open to it (the kernel resets those as it tears the dead process's io_uring rings down,
    # a few ms after the process is reaped): a 502, at most once per client.
    modern = late(rec.of("2026"), kill)
    settled = late(modern, kill + 0.1)
    assert len(settled) >= 8 * 10 and not bad(settled), f"{summary}: {bad(settled)}"
    dying = [r for r in modern if not r.ok]
    assert len(dying) <= 8 and all(r.status in (None, 502) for r in dying), f"{summary}: {bad(dying)}"
    assert victim not in {r.served for r in settled}, summary
    # The dead node's sessions: 404 from a live node (its backup servers), never a 5xx.
    dead = [r for r in late(rec.of("http"), kill) if node_of(r.sid) == victim]
    assert dead and all(r.status == 404 and r.served != victim for r in dead), f"{summary}: {bad(dead)}"
    # Sessions elsewhere: no error; every 2xx from the session's node.
    others = [r for r in rec.of("http", "2025") if r.sid and node_of(r.sid) != victim]
    assert not bad(others), f"{summary}: {bad(others)}"
    assert not misrouted(rec.recs), f"{summary}: {misrouted(rec.recs)}"
    # Each client of the dead node started a new session on a live node.
    before = {c: s for c, s, t0 in rec.sessions if t0 < kill}
    for client, sid in before.items():
        if node_of(sid) == victim:
            after = [s for c, s, t0 in rec.sessions if c == client and t0 >= kill]
            assert after and node_of(after[0]) != victim, f"{summary}: {client}: {after}"
