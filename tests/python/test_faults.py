"""Misbehaving backends behind the gateway, on both drivers (conftest.fault_config):

- slow:   the demo server over stdio with `timeout_ms = 300`
- broken: a stdio command that does not exist
- flaky:  the demo server over stdio, for `garbage` (non-JSON line) and `crash` (exits)
- steady: a healthy demo server, the control that must keep working
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from mcp import MCPError

from conftest import (
    MISSING_COMMAND,
    Gateway,
    backend_pids,
    list_all_tools,
    mcp_session,
    run,
    same_process,
    text_of,
)


def assert_backend_error(err: MCPError, server: str, code: int) -> None:
    assert err.code == code, err.error
    assert f"`{server}`" in err.message, err.message
    assert err.data == {"blame": "backend", "server": server}, err.error


def test_timeout_names_the_backend_and_others_keep_working(fault_gateway: Gateway) -> None:
    async def body() -> float:
        async with mcp_session(fault_gateway.url) as session:
            start = time.monotonic()
            with pytest.raises(MCPError) as err:
                await session.call_tool("slow__sleep", {"ms": 5000})
            elapsed = time.monotonic() - start
            assert_backend_error(err.value, "slow", -32001)
            assert "300 ms" in err.value.message, err.value.message
            # Right after: the other backends, in the same session.
            assert text_of(await session.call_tool("steady__whoami", {})) == "steady"
            echoed = await session.call_tool("steady__echo", {"message": "still here"})
            assert echoed.structured_content == {"message": "still here"}
            assert text_of(await session.call_tool("flaky__add", {"a": 1, "b": 2})) == "3"
            return elapsed

    elapsed = run(body)
    assert elapsed < 2.0, f"timeout of 300 ms took {elapsed:.2f}s to surface"


def test_missing_command_is_down_and_gateway_stays_up(fault_gateway: Gateway) -> None:
    broken = fault_gateway.backend("broken")
    assert broken["state"] == "down", broken
    assert MISSING_COMMAND in (broken["reason"] or ""), broken
    assert broken["tools"] == 0
    health = fault_gateway.health()
    assert health["status"] == "degraded", health
    assert {b["id"]: b["state"] for b in health["backends"]}["steady"] == "ready"

    async def body() -> list[str]:
        async with mcp_session(fault_gateway.url) as session:
            names = [t.name for t in await list_all_tools(session)]
            assert text_of(await session.call_tool("steady__whoami", {})) == "steady"
            return names

    names = run(body)
    assert not [n for n in names if n.startswith("broken__")]
    assert "steady__whoami" in names and "slow__sleep" in names
    assert fault_gateway.proc is not None and fault_gateway.proc.poll() is None


def test_call_to_down_backend_names_it(fault_gateway: Gateway) -> None:
    async def body() -> None:
        async with mcp_session(fault_gateway.url) as session:
            with pytest.raises(MCPError) as err:
                await session.call_tool("broken__whoami", {})
            assert_backend_error(err.value, "broken", -32000)

    run(body)


def test_garbage_line_is_ignored(fault_gateway: Gateway) -> None:
    async def body() -> None:
        async with mcp_session(fault_gateway.url) as session:
            for i in range(3):
                result = await session.call_tool("flaky__garbage", {})
                assert result.is_error is False
                assert text_of(result) == "garbage sent"
                # The stdio stream is still in step: the next answer belongs to the next call.
                echoed = await session.call_tool("flaky__echo", {"message": f"after garbage {i}"})
                assert echoed.structured_content == {"message": f"after garbage {i}"}

    run(body)
    assert fault_gateway.backend("flaky")["state"] == "ready"


def test_crash_is_reported_then_backend_restarts(fault_gateway: Gateway) -> None:
    gw = fault_gateway
    before = backend_pids(gw.pid, "--name flaky")
    assert len(before) == 1, before
    old = before[0]

    async def crash() -> None:
        async with mcp_session(gw.url) as session:
            with pytest.raises(MCPError) as err:
                await session.call_tool("flaky__crash", {})
            assert_backend_error(err.value, "flaky", -32000)
            # Other backends are unaffected.
            assert text_of(await session.call_tool("steady__whoami", {})) == "steady"

    run(crash)

    async def whoami() -> str:
        async with mcp_session(gw.url) as session:
            return text_of(await session.call_tool("flaky__whoami", {}))

    deadline = time.monotonic() + 15.0
    last: Any = None
    while True:
        if gw.backend("flaky")["state"] == "ready":
            try:
                if run(whoami) == "flaky":
                    break
            except MCPError as err:
                last = err.error
        assert time.monotonic() < deadline, f"flaky did not come back within 15 s: {last} {gw.backend('flaky')}"
        time.sleep(0.2)

    after = backend_pids(gw.pid, "--name flaky")
    assert len(after) == 1 and after[0].pid != old.pid, (old, after)
    # The crashed process was reaped, not left as a zombie.
    assert same_process(old) is None, f"crashed backend pid {old.pid} still present: {same_process(old)}"
