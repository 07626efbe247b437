"""Rolling drain through HAProxy under steady load: every node in turn is drained, stopped,
restarted; nothing a client does fails.

First a drain without a stop (`POST /admin/drain`, then `/admin/undrain`) on one node. Then,
for each node: SIGUSR2 (drain), wait until HAProxy sees `/ready` 503 (the node turns NOLB:
it keeps its own sessions, gets no new ones), SIGTERM (it keeps serving for
`server.drain_grace_ms`, then exits 0), restart, wait until HAProxy sees it ready.

"Failed call": a 2026 call or bridged flow that is not answered with its result (none may
fail, ever: HAProxy sends them only to ready nodes).

"Failed session": a 2025 session that gets an error while its node is still serving, that is
for a request sent before the node's own log says `drain grace over` (less 50 ms: the line is
written as the shards are told to stop). Requests sent from then until the process has exited
race the node's stop, as any HTTP/1.1 server's last moment does (a request written on a
connection the node closes unread is lost); they may fail, are counted, and must be few. A
request sent after the exit (or as the node stops) gets 404 (from a live node: the session is gone) and its client
starts a new session: that is the protocol working, not a failure.
"""

from __future__ import annotations

import datetime
import signal
import time

import anyio

from checks import bad, misrouted
from clients import Load, Recorder, node_of, now
from harness import NODE_IDS, HAProxy, Node, pyh

DRAIN_GRACE_MS = 1500
# The node logs `drain grace over` as its shards are told to stop.
LOG_LAG_S = 0.05


def ready_state(node: Node) -> tuple[int, str]:
    r = node.get("/ready")
    return r.status_code, r.json().get("state", "")


def grace_over(node: Node) -> float:
    """When the node stopped serving, by its own log (`drain grace over`), as a monotonic
    time of this process."""
    assert node.proc is not None
    line = next(ln for ln in node.proc.log.read_text().splitlines() if "drain grace over" in ln)
    wall = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
    return wall - (time.time() - time.monotonic())


def test_rolling_drain_loses_nothing(driver: str, make_fleet) -> None:
    fleet = make_fleet(driver, extra_server=f"drain_grace_ms = {DRAIN_GRACE_MS}\n")
    hap = fleet.balancer
    assert isinstance(hap, HAProxy)
    rec = Recorder()
    load = Load(fleet.url, rec, stateless=12)
    # Each incarnation's stop: (stopped serving by its log, process exited).
    stops: dict[str, list[tuple[float, float]]] = {n: [] for n in NODE_IDS}
    draining: dict[str, list[tuple[float, float]]] = {n: [] for n in NODE_IDS}
    events: list[str] = []
    t_back: list[float] = []

    def stop_node(node: Node) -> None:
        assert node.proc is not None
        node.proc.proc.send_signal(signal.SIGTERM)
        status = node.proc.proc.wait(DRAIN_GRACE_MS / 1000 + 15)
        assert status == 0, f"{node.id} exited {status} after SIGTERM\n{pyh.tail(node.proc.log)}"

    async def scenario() -> None:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                load.start(tg)
                for _ in range(100):
                    if {node_of(s) for _c, s, _t in rec.sessions} == set(NODE_IDS):
                        break
                    await anyio.sleep(0.1)
                await anyio.sleep(1.0)

                # A drain without a stop, and back.
                g1 = fleet.node("g1")
                r = await anyio.to_thread.run_sync(lambda: g1.post("/admin/drain"))
                assert r.status_code == 200, r.text
                t0 = await anyio.to_thread.run_sync(hap.wait_status, "g1", "NOLB", 5.0)
                assert await anyio.to_thread.run_sync(ready_state, g1) == (503, "draining")
                await anyio.sleep(1.0)
                r = await anyio.to_thread.run_sync(lambda: g1.post("/admin/undrain"))
                assert r.status_code == 200, r.text
                t1 = await anyio.to_thread.run_sync(hap.wait_status, "g1", "UP", 5.0)
                draining["g1"].append((t0, t1))
                events.append(f"g1 drained {t1 - t0:.1f}s and undrained")

                # Rolling: drain, stop, restart each node in turn.
                for node in fleet.nodes:
                    node.proc.proc.send_signal(signal.SIGUSR2)
                    t0 = await anyio.to_thread.run_sync(hap.wait_status, node.id, "NOLB", 5.0)
                    await anyio.sleep(0.5)
                    await anyio.to_thread.run_sync(stop_node, node)
                    stops[node.id].append((grace_over(node) - LOG_LAG_S, now()))
                    draining[node.id].append((t0, now()))
                    await anyio.to_thread.run_sync(hap.wait_status, node.id, "DOWN", 5.0)
                    await anyio.to_thread.run_sync(node.start)
                    await anyio.to_thread.run_sync(hap.wait_status, node.id, "UP", 10.0)
                    events.append(f"{node.id} drained, stopped after {now() - t0:.1f}s, back")
                    await anyio.sleep(0.5)
                t_back.append(now())
                await anyio.sleep(1.5)
                load.stop.set()

    pyh.run(scenario)
    summary = f"{'; '.join(events)}; {len(rec.recs)} requests"

    # Zero failed calls.
    calls = rec.of("2026", "bridge1", "bridge2")
    assert len(rec.of("2026")) >= 12 * 20, summary
    assert not bad(calls), f"{summary}: {bad(calls)}"

    def phase(sid: str, t: float) -> str:
        """Where `t` falls in the life of the node incarnation that minted `sid`."""
        minted = next(t0 for _c, s, t0 in rec.sessions if s == sid)
        for stopping, exited in stops[node_of(sid)]:
            if minted < stopping:
                return "serving" if t < stopping else "stopping" if t < exited else "gone"
        return "serving"

    session_recs = [r for r in rec.of("http", "2025") if r.sid]
    failed = [r for r in session_recs if not r.ok and phase(r.sid, r.t0) == "serving"]
    assert not failed, f"{summary}: {bad(failed)}"
    after = [r for r in session_recs if not r.ok and phase(r.sid, r.t0) == "gone" and r.status != 404]
    assert not after, f"{summary}: {bad(after)}"
    racing = [r for r in session_recs if not r.ok and phase(r.sid, r.t0) == "stopping" and r.status != 404]
    assert len(racing) <= 2 * len(NODE_IDS), f"{summary}: {bad(racing)}"
    # Every 2xx with a session id came from its node.
    assert not misrouted(rec.recs), f"{summary}: {misrouted(rec.recs)}"
    # No new session was minted on a node while HAProxy had it draining.
    for client, sid, t0 in rec.sessions:
        for start, end in draining[node_of(sid)]:
            assert not (start + 0.1 < t0 < end), f"{summary}: {client} got {sid} on a draining node"
    # Every client kept working: each made a successful call after the last node came back.
    for i in range(load.sessions):
        assert any(r.client == f"l{i}" and r.ok and r.t0 > t_back[0] for r in rec.of("2025")), (
            f"{summary}: client l{i} made no call after the rolling drain")
    # The undrained, restarted nodes all take new work again.
    assert all(ready_state(n) == (200, "ready") for n in fleet.nodes), summary
