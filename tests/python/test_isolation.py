"""Two client sessions at once through the gateway never see each other's messages.

Two official-SDK sessions run concurrently (asyncio.gather), each calling the demo fixture's
`test_tool_with_progress`, `test_tool_with_logging` and `test_elicitation` (all three at once
within the session too, for several rounds). Each client uses its own progress tokens (explicit
`_meta.progressToken`s, plus the SDK's own request-id tokens, which collide between the two
sessions on purpose), its own elicitation messages and its own elicitation answers. Each client
must see exactly its own progress notifications (three per call: 0, 50, 100, with its token),
exactly its own log lines (three per logging call) and exactly its own elicitation requests, and
each call's result must carry that client's answer.

The backend is the demo fixture over Streamable HTTP (`transport = "http"`): there every message
a backend sends about a call travels on that call's own POST response stream, so the gateway can
attribute each one to the call, and so to the client, that caused it. A shared *stdio* backend
cannot be used for this: its log lines (`notifications/message`) and its requests to the client
(`elicitation/create`) carry no request id or token of the call that caused them, so when several
calls are in flight on one stdio connection nothing on the wire says which call, and so which
client, they belong to. (The gateway attributes such a message only when exactly one of the calls
in flight can have sent it, a call waiting on the answer to its own request cannot, and refuses
to guess otherwise: the elicitation then fails with "the gateway cannot tell which client this
request is for (no call in flight, or several that could have sent it)".)

Each gateway runs once with one shard (both sessions certainly on the same shard, so they share
one upstream session to the backend, where cross-talk would happen) and once with two shards
(sessions on either shard, requests handed to the owner), on both drivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import (
    BIN,
    DEMO_READY_RE,
    DRIVER_NAMES,
    DRIVERS,
    READY_RE,
    Gateway,
    _stdout_lines,
    _stop,
    _wait_line,
    config_text,
    run,
    server_block,
    text_of,
)

ROUNDS = 3
CLIENTS = ("alpha", "bravo")
LOG_LINES = ["Tool execution started", "Tool processing data", "Tool execution completed"]


# --------------------------------------------------------------------------------------------
# Backend and gateway
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo server's conformance fixture over Streamable HTTP, on a free port."""
    workdir = tmp_path_factory.mktemp("fixture-http")
    log = workdir / "fixture-http.log"
    env = {"DEMO_CONFORMANCE": "1", "DEMO_PAGE_SIZE": "100"}
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [str(BIN), "demo-server", "--http", "127.0.0.1:0", "--name", "fixture"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, **env},
        )
    try:
        m = _wait_line(proc, _stdout_lines(proc), DEMO_READY_RE, 10.0, log)
        yield m.group(1)
    finally:
        _stop(proc, 5.0)


@dataclass
class ShardsGateway(Gateway):
    """conftest.Gateway with a chosen shard count (conftest's always uses two)."""

    cores: int = 2

    def start(self) -> ShardsGateway:
        cfg = self.workdir / f"{self.name}-{self.driver}.toml"
        cfg.write_text(self.config)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN), "start", "--config", str(cfg), "--port", "0", "--cores", str(self.cores),
                 "--driver", self.driver],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
                cwd=self.workdir,
            )
        try:
            m = _wait_line(self.proc, _stdout_lines(self.proc), READY_RE, 20.0, self.log)
            assert int(m.group(3)) == self.cores, m.group(0)
            assert m.group(4) == DRIVER_NAMES[self.driver], m.group(0)
            self.url = m.group(1)
            self.base = self.url.removesuffix("/mcp")
        except BaseException:
            _stop(self.proc, 5.0)
            raise
        return self


@pytest.fixture(scope="module", params=[(d, c) for d in DRIVERS for c in (1, 2)],
                ids=lambda p: f"{p[0]}-{p[1]}shard")
def isolation_gateway(request: pytest.FixtureRequest, fixture_http: str,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    driver, cores = request.param
    workdir = tmp_path_factory.mktemp(f"gw-isolation-{driver}-{cores}")
    config = config_text(server_block("fx", transport="http", url=fixture_http))
    gw = ShardsGateway(driver, config, workdir, f"isolation{cores}", cores=cores).start()
    try:
        gw.wait_health({"fx": "ready"})
        yield gw
    except BaseException:
        with contextlib.suppress(BaseException):
            gw.stop_and_check()
        raise
    gw.stop_and_check()


# --------------------------------------------------------------------------------------------
# One client
# --------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """Everything one client session received from the server."""

    who: str
    progress: list[tuple[str | int, float]] = field(default_factory=list)  # (token, progress)
    callback_progress: dict[int, list[float]] = field(default_factory=dict)  # per SDK-token call
    logs: list[Any] = field(default_factory=list)
    elicitations: list[str] = field(default_factory=list)
    other: list[Any] = field(default_factory=list)


def answer_for(message: str) -> str:
    """The answer a client gives to an elicitation: derived from the question, so it is
    distinct per client and per round (`alpha question 2` -> `alpha answer 2`)."""
    return message.replace(" question ", " answer ")


@contextlib.asynccontextmanager
async def client(url: str, seen: Seen) -> AsyncIterator[ClientSession]:
    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        seen.logs.append(params.data)

    async def on_elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.elicitations.append(params.message)
        await asyncio.sleep(0.02)  # keep the call open a little, so calls overlap
        return types.ElicitResult(action="accept", content={"response": answer_for(params.message)})

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ProgressNotification):
            seen.progress.append((message.params.progress_token, message.params.progress))
        elif not isinstance(message, types.LoggingMessageNotification):
            seen.other.append(message)

    async with streamable_http_client(url) as (read, write), ClientSession(
        read, write, logging_callback=on_log, elicitation_callback=on_elicit, message_handler=on_message,
    ) as session:
        await session.initialize()
        yield session


async def one_client(url: str, who: str, start: asyncio.Barrier) -> tuple[Seen, dict[str, list[str]]]:
    seen = Seen(who)
    results: dict[str, list[str]] = {"progress": [], "callback": [], "logging": [], "elicitation": []}
    async with client(url, seen) as session:
        await session.set_logging_level("info")
        await start.wait()  # both sessions are up: from here on everything overlaps
        seen.logs.clear()  # (a backend may say "Log level set to: info"; not part of this test)
        for i in range(ROUNDS):
            async def with_callback() -> str:
                got: list[float] = []

                async def cb(progress: float, _total: float | None, _msg: str | None) -> None:
                    got.append(progress)

                r = await session.call_tool("fx__test_tool_with_progress", {}, progress_callback=cb)
                seen.callback_progress[len(seen.callback_progress)] = got
                return text_of(r)

            progress, callback, logging, elicitation = await asyncio.gather(
                session.call_tool("fx__test_tool_with_progress", {}, meta={"progressToken": f"{who}-token-{i}"}),
                with_callback(),
                session.call_tool("fx__test_tool_with_logging", {}),
                session.call_tool("fx__test_elicitation", {"message": f"{who} question {i}"}),
            )
            results["progress"].append(text_of(progress))
            results["callback"].append(callback)
            results["logging"].append(text_of(logging))
            results["elicitation"].append(text_of(elicitation))
    return seen, results


async def two_clients(url: str) -> list[tuple[Seen, dict[str, list[str]]]]:
    start = asyncio.Barrier(len(CLIENTS))
    return await asyncio.wait_for(
        asyncio.gather(*(one_client(url, who, start) for who in CLIENTS)), timeout=60,
    )


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The logging capability is deprecated")
def test_concurrent_sessions_see_only_their_own_progress_logs_and_elicitations(
        isolation_gateway: Gateway) -> None:
    outcome = run(two_clients, isolation_gateway.url)
    for seen, results in outcome:
        who = seen.who
        # Results: each call returned this client's own outcome.
        assert results["logging"] == ["Tool with logging executed successfully"] * ROUNDS
        assert results["elicitation"] == [
            f'User response: action=accept, content={{"response":"{who} answer {i}"}}' for i in range(ROUNDS)
        ], results["elicitation"]
        # The backend echoes the token it saw: a gateway token, never the client's own.
        for token in results["progress"] + results["callback"]:
            assert token and token != "no progress token", results
            assert who not in token, f"client token reached the shared backend: {token!r}"

        # Elicitation requests: exactly this client's questions, one per round.
        assert sorted(seen.elicitations) == [f"{who} question {i}" for i in range(ROUNDS)], seen.elicitations

        # Progress: per explicit token exactly 0, 50, 100; nothing with another client's token.
        explicit = [(t, p) for t, p in seen.progress if isinstance(t, str)]
        for i in range(ROUNDS):
            mine = [p for t, p in explicit if t == f"{who}-token-{i}"]
            assert mine == [0, 50, 100], (i, seen.progress)
        assert len(explicit) == 3 * ROUNDS, f"foreign progress tokens: {explicit}"
        # The SDK's own tokens (request ids, the same numbers in both sessions): each callback
        # got exactly 0, 50, 100, and the session saw 3 such notifications per call, no more.
        assert list(seen.callback_progress.values()) == [[0, 50, 100]] * ROUNDS, seen.callback_progress
        assert len(seen.progress) - len(explicit) == 3 * ROUNDS, seen.progress

        # Logs: exactly three lines per logging call, none of the other client's calls.
        assert seen.logs == LOG_LINES * ROUNDS, seen.logs
        assert seen.other == [], seen.other
