"""Real clients of a fleet, and the record of everything they saw.

* 2026-07-28 stateless clients: raw HTTP (httpx), one `tools/call` after another, each
  checked end to end (the echo comes back).
* 2025-era sessions: the official Python SDK (`ClientSession` over Streamable HTTP). The SDK
  opens a GET stream after `initialized`, so every session holds one. Every HTTP response the
  SDK gets (POST, GET, DELETE) is recorded with the session id it was sent with and the node
  that answered (`X-Served-By`). A session answered 404 is ended and the client initializes
  a new one, which is what the spec tells a client to do.
* Bridged `input_required` flows: a 2026 client calls a 2025 backend's elicitation tool
  (`fx`'s `test_elicitation`), gets `input_required` with a `requestState`, and retries with
  its answer in `inputResponses`. One bridged request at a time (`Load.fx_lock`): `fx` is one
  stdio process per node, and its elicitation carries no request id, so with two of its calls
  in flight on a node the gateway cannot tell whose it is and refuses it (docs/protocol.md,
  "a shared stdio backend's ... server-to-client requests"); that is not what this tests.

Every loop is bounded in count and in time; `Load.stop` ends them all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
}
CALL_TIMEOUT_S = 10.0


def now() -> float:
    return time.monotonic()


@dataclass
class Rec:
    """One request as a client saw it. `status` is None when no HTTP answer came."""

    kind: str  # "2026", "2025" (an SDK call), "http" (an SDK HTTP exchange), "bridge1", "bridge2"
    client: str
    t0: float
    t1: float
    status: int | None
    served: str | None = None
    sid: str | None = None  # the Mcp-Session-Id the request carried
    ok: bool = True
    detail: str = ""
    method: str = ""  # HTTP method (kind "http")
    new_sid: str | None = None  # the session id an initialize answer minted


@dataclass
class Recorder:
    recs: list[Rec] = field(default_factory=list)
    sessions: list[tuple[str, str, float]] = field(default_factory=list)  # (client, sid, t)

    def add(self, rec: Rec) -> Rec:
        self.recs.append(rec)
        return rec

    def of(self, *kinds: str) -> list[Rec]:
        return [r for r in self.recs if r.kind in kinds]


def node_of(sid: str | None) -> str | None:
    return sid.split(".", 1)[0] if sid else None


def modern_request(rid: int, method: str, name: str, params: dict[str, Any]) -> tuple[dict[str, str], dict]:
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": MODERN,
        "mcp-method": method,
        "mcp-name": name,
    }
    body = {"jsonrpc": "2.0", "id": rid, "method": method,
            "params": {"name": name, **params, "_meta": META}}
    return headers, body


async def post(c: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any,
               kind: str, client: str, rec: Recorder) -> tuple[Rec, dict | None]:
    """One POST, recorded; returns the record and the JSON body (None if not JSON)."""
    t0 = now()
    try:
        r = await c.post(url, headers=headers, json=body)
    except httpx.HTTPError as e:
        return rec.add(Rec(kind, client, t0, now(), None, ok=False, detail=repr(e),
                           sid=headers.get("mcp-session-id"))), None
    t1 = now()
    try:
        doc = r.json()
    except ValueError:
        doc = None
    return rec.add(Rec(kind, client, t0, t1, r.status_code, r.headers.get("x-served-by"),
                       sid=headers.get("mcp-session-id"), ok=r.status_code == 200,
                       detail="" if r.status_code == 200 else r.text[:300])), doc


async def stateless_call(c: httpx.AsyncClient, url: str, client: str, n: int, rec: Recorder) -> Rec:
    tool = "demo__echo" if n % 2 else "demohttp__echo"
    msg = f"{client}-{n}"
    headers, body = modern_request(n, "tools/call", tool, {"arguments": {"message": msg}})
    r, doc = await post(c, url, headers, body, "2026", client, rec)
    if r.status == 200:
        result = (doc or {}).get("result") or {}
        if result.get("resultType") != "complete" or (result.get("structuredContent") or {}).get("message") != msg:
            r.ok, r.detail = False, f"unexpected answer: {doc!r}"[:300]
    return r


async def bridge_first_leg(c: httpx.AsyncClient, url: str, client: str, n: int,
                           rec: Recorder) -> tuple[Rec, str | None]:
    """The call that a 2025 backend answers with an elicitation: `input_required`."""
    headers, body = modern_request(n, "tools/call", "test_elicitation",
                                   {"arguments": {"message": f"{client}-{n}?"}})
    r, doc = await post(c, url, headers, body, "bridge1", client, rec)
    state = None
    if r.status == 200:
        result = (doc or {}).get("result") or {}
        asked = ((result.get("inputRequests") or {}).get("input") or {}).get("method")
        state = result.get("requestState")
        if result.get("resultType") != "input_required" or asked != "elicitation/create" or not state:
            r.ok, r.detail, state = False, f"not input_required: {doc!r}"[:300], None
    return r, state


async def bridge_retry(c: httpx.AsyncClient, url: str, client: str, n: int, state: str,
                       rec: Recorder) -> Rec:
    """The retry with the client's answer; complete, and the tool saw the answer."""
    who = f"who-{client}-{n}"
    headers, body = modern_request(n, "tools/call", "test_elicitation", {
        "arguments": {"message": f"{client}-{n}?"},
        "inputResponses": {"input": {"action": "accept", "content": {"response": who}}},
        "requestState": state,
    })
    r, doc = await post(c, url, headers, body, "bridge2", client, rec)
    if r.status == 200:
        result = (doc or {}).get("result") or {}
        if result.get("resultType") != "complete" or who not in str(result):
            r.ok, r.detail = False, f"retry not complete with the answer: {doc!r}"[:300]
    return r


@contextlib.asynccontextmanager
async def sdk_session(url: str, client: str, rec: Recorder, state: dict[str, Any]
                      ) -> AsyncIterator[ClientSession]:
    """An initialized SDK session whose every HTTP exchange is recorded (kind "http")."""

    async def on_request(request: Any) -> None:
        request.extensions["o1m_t0"] = state["last_t0"] = now()

    async def on_response(response: Any) -> None:
        req = response.request
        sid = req.headers.get("mcp-session-id")
        minted = response.headers.get("mcp-session-id") if sid is None else None
        if minted:
            state["sid"] = minted
            rec.sessions.append((client, minted, now()))
        if req.method == "POST":
            state["last_post_status"] = response.status_code
        rec.add(Rec("http", client, req.extensions.get("o1m_t0", now()), now(), response.status_code,
                    response.headers.get("x-served-by"), sid=sid, ok=response.status_code < 300,
                    method=req.method, new_sid=minted))

    http = create_mcp_http_client()
    http.event_hooks["request"].append(on_request)
    http.event_hooks["response"].append(on_response)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(http)
        read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(
            ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_S))
        await session.initialize()
        yield session


@dataclass
class Load:
    """Steady load through `url`: stateless clients, SDK sessions, bridged flows."""

    url: str
    rec: Recorder
    stateless: int = 16
    sessions: int = 8
    bridges: int = 1
    pace_s: float = 0.1
    max_calls: int = 2000
    max_s: float = 120.0
    stop: anyio.Event = field(default_factory=anyio.Event)
    fx_lock: anyio.Lock = field(default_factory=anyio.Lock)

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        self.deadline = now() + self.max_s
        for i in range(self.stateless):
            tg.start_soon(self._stateless, f"s{i}")
        for i in range(self.sessions):
            tg.start_soon(self._session, f"l{i}")
        for i in range(self.bridges):
            tg.start_soon(self._bridge, f"b{i}")

    def running(self) -> bool:
        return not self.stop.is_set() and now() < self.deadline

    async def _stateless(self, client: str) -> None:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as c:
            for n in range(self.max_calls):
                if not self.running():
                    return
                await stateless_call(c, self.url, client, n, self.rec)
                await anyio.sleep(self.pace_s)

    async def _bridge(self, client: str) -> None:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as c:
            for n in range(self.max_calls):
                if not self.running():
                    return
                async with self.fx_lock:
                    first, state = await bridge_first_leg(c, self.url, client, n, self.rec)
                if state is not None:
                    await anyio.sleep(self.pace_s)
                    async with self.fx_lock:
                        await bridge_retry(c, self.url, client, n, state, self.rec)
                await anyio.sleep(self.pace_s)

    async def _session(self, client: str) -> None:
        """One SDK client: a session, calls until its session is gone (404), a new session."""
        calls = 0
        for _generation in range(50):
            if not self.running() or calls >= self.max_calls:
                return
            state: dict[str, Any] = {}
            try:
                async with sdk_session(self.url, client, self.rec, state) as s:
                    while self.running() and calls < self.max_calls:
                        calls += 1
                        if not await self._sdk_call(s, client, calls, state):
                            break
                        await anyio.sleep(self.pace_s)
            except anyio.get_cancelled_exc_class():
                raise
            except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - the SDK raises groups
                self.rec.add(Rec("2025", client, state.get("last_t0", now()), now(), None, sid=state.get("sid"),
                                 ok=False, detail=f"session ended by {e!r}"[:300]))
                await anyio.sleep(self.pace_s)

    async def _sdk_call(self, s: ClientSession, client: str, n: int, state: dict[str, Any]) -> bool:
        """One echo through the SDK; False when the session is gone (answered 404)."""
        msg = f"{client}-{n}"
        sid, t0 = state.get("sid"), now()
        try:
            result = await s.call_tool("demo__echo", {"message": msg})
        except Exception as e:  # noqa: BLE001 - MCPError, or a transport error as the SDK surfaces it
            gone = state.get("last_post_status") == 404
            self.rec.add(Rec("2025", client, t0, now(), state.get("last_post_status"), sid=sid, ok=False,
                             detail=f"{e!r}"[:300]))
            return not gone
        text = "".join(b.text for b in result.content if b.type == "text")
        ok = not result.is_error and text == msg
        self.rec.add(Rec("2025", client, t0, now(), 200, sid=sid, ok=ok,
                         detail="" if ok else f"unexpected: {result!r}"[:300]))
        return True
