"""End-to-end fixtures: the real gateway binary, real MCP backends, the official Python SDK.

Run through `bash tests/run-all.sh`, which installs the backends under target/test-env and
points these variables at them (the defaults below assume that layout):

    ONLY1MCP_BIN             the gateway binary (target/debug/only1mcp-uring)
    ONLY1MCP_EVERYTHING_BIN  node_modules/.bin/mcp-server-everything (@modelcontextprotocol)
    ONLY1MCP_TIME_BIN        the venv's mcp-server-time

Every gateway runs on 127.0.0.1 with `--port 0 --cores 2`, once per I/O driver (`uring`,
`epoll`). Stopping a gateway is part of the test: it must exit 0 on SIGTERM within 15 s and
leave none of the processes it spawned alive or unreaped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parents[2]
TEST_ENV = REPO / "target" / "test-env"

BIN = Path(os.environ.get("ONLY1MCP_BIN") or REPO / "target" / "debug" / "only1mcp-uring")
EVERYTHING_BIN = Path(
    os.environ.get("ONLY1MCP_EVERYTHING_BIN")
    or TEST_ENV / "node" / "node_modules" / ".bin" / "mcp-server-everything"
)
TIME_BIN = Path(os.environ.get("ONLY1MCP_TIME_BIN") or TEST_ENV / "venv" / "bin" / "mcp-server-time")

DRIVERS = ["uring", "epoll"]
DRIVER_NAMES = {"uring": "io_uring", "epoll": "epoll"}
CORES = 2

READY_RE = re.compile(
    r"^only1mcp-uring listening on (http://127\.0\.0\.1:(\d+)/mcp) \(shards: (\d+), driver: (\S+)\)$"
)
DEMO_READY_RE = re.compile(r"^demo-server listening on (http://127\.0\.0\.1:\d+/mcp)$")

# The eleven tools of the built-in demo server (its tools/list has pages of 3).
DEMO_TOOLS = ["echo", "add", "now", "fail", "image", "sleep", "big", "garbage", "crash", "whoami",
              "headers"]

STOP_TIMEOUT_S = 15.0


# --------------------------------------------------------------------------------------------
# Process bookkeeping (/proc)
# --------------------------------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


def pytest_configure(config: pytest.Config) -> None:
    for path, what in ((BIN, "gateway binary (cargo build)"),):
        if not path.exists():
            raise pytest.UsageError(f"{what} not found at {path}; run `bash tests/run-all.sh`")
    # Orphans of the gateway's children (e.g. a leaked grandchild) are re-parented to this
    # process instead of PID 1, so the leak check sees them and can reap them afterwards.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    state: str
    starttime: int
    cmdline: str


def proc_info(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ... starttime(22) ..." -- comm may contain spaces and parens.
    rest = stat[stat.rindex(")") + 2 :].split()
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = ""
    return ProcInfo(pid, int(rest[1]), rest[0], int(rest[19]), cmdline.strip())


def all_procs() -> list[ProcInfo]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = proc_info(int(entry))
            if info is not None:
                out.append(info)
    return out


def descendants(root: int) -> list[ProcInfo]:
    """Every process below `root` in the ppid tree (children, grandchildren, ...)."""
    by_parent: dict[int, list[ProcInfo]] = {}
    for info in all_procs():
        by_parent.setdefault(info.ppid, []).append(info)
    found, todo = [], [root]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def same_process(info: ProcInfo) -> ProcInfo | None:
    """Current state of the process `info` describes, or None if it is gone (pid reuse safe)."""
    now = proc_info(info.pid)
    if now is None or now.starttime != info.starttime:
        return None
    return now


def leftovers(recorded: list[ProcInfo], parent: int, grace_s: float = 3.0) -> list[ProcInfo]:
    """Recorded descendants of `parent` that were left behind, after up to `grace_s`: any that
    still runs, and any direct child of `parent` that is an unreaped zombie. A grandchild that
    is a zombie died after its own parent and was re-parented to us (the subreaper): it is gone
    as far as `parent` is concerned, and `clean_up` reaps it."""
    def left_now() -> list[ProcInfo]:
        out = []
        for info in recorded:
            now = same_process(info)
            if now is not None and (now.state != "Z" or info.ppid == parent):
                out.append(now)
        return out

    deadline = time.monotonic() + grace_s
    while True:
        left = left_now()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def clean_up(procs: list[ProcInfo], timeout_s: float = 3.0) -> None:
    """Kill what is still alive and reap zombies re-parented to us (we are a subreaper)."""
    for info in procs:
        if same_process(info) is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(info.pid, signal.SIGKILL)
    pending, deadline = list(procs), time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for info in pending:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(info.pid, os.WNOHANG)
        pending = [info for info in pending if same_process(info) is not None]
        if pending:
            time.sleep(0.02)


def backend_pids(gateway_pid: int, marker: str) -> list[ProcInfo]:
    """Live (non-zombie) descendants of the gateway whose command line contains `marker`."""
    return [p for p in descendants(gateway_pid) if marker in p.cmdline and p.state != "Z"]


# --------------------------------------------------------------------------------------------
# Subprocess helpers
# --------------------------------------------------------------------------------------------


def _stdout_lines(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """Drain `proc.stdout` on a thread (so the pipe never fills); lines arrive on the queue."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_line(proc: subprocess.Popen[str], lines: queue.Queue[str | None], pattern: re.Pattern[str],
               timeout_s: float, log: Path) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if m := pattern.match(line):
            return m
    proc.poll()
    raise AssertionError(
        f"{proc.args!r} did not print its ready line within {timeout_s}s "
        f"(exit status {proc.returncode}); stdout: {seen!r}\n--- log tail:\n{tail(log)}"
    )


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[str], timeout_s: float) -> tuple[int, bool]:
    """SIGTERM, wait, SIGKILL after `timeout_s`. Returns (exit status, had to kill)."""
    if proc.poll() is not None:
        return proc.returncode, False
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s), False
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(), True


def toml_str(s: str | Path) -> str:
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string


# --------------------------------------------------------------------------------------------
# The gateway under test
# --------------------------------------------------------------------------------------------


@dataclass
class Gateway:
    driver: str
    config: str
    workdir: Path
    name: str
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    base: str = ""
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{self.name}-{self.driver}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Gateway:
        cfg = self.workdir / f"{self.name}-{self.driver}.toml"
        cfg.write_text(self.config)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN), "start", "--config", str(cfg), "--port", "0", "--cores", str(CORES),
                 "--driver", self.driver],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
                cwd=self.workdir,
            )
        try:
            m = _wait_line(self.proc, _stdout_lines(self.proc), READY_RE, 20.0, self.log)
            assert int(m.group(3)) == CORES, m.group(0)
            assert m.group(4) == DRIVER_NAMES[self.driver], m.group(0)
            self.url = m.group(1)
            self.base = self.url.removesuffix("/mcp")
        except BaseException:
            _stop(self.proc, 5.0)
            raise
        return self

    def health(self) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/health", timeout=5.0)
        assert r.headers.get("content-type", "").startswith("application/json"), r.headers
        return r.json()

    def backend(self, server_id: str) -> dict[str, Any]:
        backends = {b["id"]: b for b in self.health()["backends"]}
        assert server_id in backends, f"no backend {server_id!r} in /health: {sorted(backends)}"
        return backends[server_id]

    def wait_health(self, expected: dict[str, str], timeout_s: float = 30.0) -> dict[str, Any]:
        """Poll /health until each listed backend is in the expected state."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, (
                f"gateway exited ({self.proc.returncode if self.proc else '?'})\n{tail(self.log)}"
            )
            with contextlib.suppress(httpx.HTTPError):
                last = self.health()
                states = {b["id"]: b["state"] for b in last["backends"]}
                if all(states.get(k) == v for k, v in expected.items()):
                    return last
            time.sleep(0.1)
        raise AssertionError(
            f"backends did not reach {expected} within {timeout_s}s; last /health: "
            f"{json.dumps(last)}\n--- gateway log tail:\n{tail(self.log)}"
        )

    def stop_and_check(self, expect_children: Sequence[str] = ()) -> None:
        """SIGTERM; assert exit 0 within 15 s and that no spawned process survives.

        `expect_children` are command-line fragments of backends that must be running just
        before shutdown (so the leak check is known to look at real children)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"gateway died during the tests (status {self.proc.returncode})\n{tail(self.log)}")
        spawned = descendants(self.pid)
        missing = [m for m in expect_children if not any(m in p.cmdline for p in spawned)]
        status, killed = _stop(self.proc, STOP_TIMEOUT_S)
        left = leftovers(spawned, self.pid)
        clean_up(spawned)
        problems = [f"no child process matching {m!r} before shutdown" for m in missing]
        if killed:
            problems.append(f"did not exit within {STOP_TIMEOUT_S}s of SIGTERM (killed)")
        elif status != 0:
            problems.append(f"exit status {status} after SIGTERM, expected 0")
        for p in left:
            what = "unreaped zombie" if p.state == "Z" else "still running"
            problems.append(f"child pid {p.pid} {what}: {p.cmdline!r}")
        assert not problems, (
            f"gateway ({self.driver}) shutdown: " + "; ".join(problems)
            + f"\n--- gateway log tail:\n{tail(self.log)}"
        )


@contextlib.contextmanager
def running_gateway(driver: str, config: str, workdir: Path, name: str,
                    expected: dict[str, str], children: list[str]) -> Iterator[Gateway]:
    gw = Gateway(driver, config, workdir, name).start()
    try:
        gw.wait_health(expected)
    except BaseException:
        with contextlib.suppress(BaseException):
            gw.stop_and_check()
        raise
    try:
        yield gw
    except BaseException:
        # The test failed: still stop the gateway and clean up, but report the test's error.
        with contextlib.suppress(BaseException):
            gw.stop_and_check()
        raise
    gw.stop_and_check(children)


# --------------------------------------------------------------------------------------------
# Backends and configs
# --------------------------------------------------------------------------------------------


@dataclass
class DemoHttp:
    url: str
    name: str


@pytest.fixture(scope="session")
def demo_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoHttp]:
    """The built-in demo server over Streamable HTTP, as a separate process on a free port."""
    workdir = tmp_path_factory.mktemp("demo-http")
    log = workdir / "demo-http.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [str(BIN), "demo-server", "--http", "127.0.0.1:0", "--name", "demohttp"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
        )
    try:
        m = _wait_line(proc, _stdout_lines(proc), DEMO_READY_RE, 10.0, log)
        yield DemoHttp(url=m.group(1), name="demohttp")
    finally:
        _stop(proc, 5.0)


def server_block(server_id: str, **keys: Any) -> str:
    lines = ["[[servers]]", f"id = {toml_str(server_id)}"]
    for key, value in keys.items():
        if isinstance(value, list):
            lines.append(f"{key} = [{', '.join(toml_str(v) for v in value)}]")
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f"{key} = {toml_str(value)}")
    return "\n".join(lines) + "\n"


def config_text(*servers: str, request_timeout_ms: int = 20000) -> str:
    head = (
        '[server]\nhost = "127.0.0.1"\n\n'
        f'[proxy]\ntool_separator = "__"\nrequest_timeout_ms = {request_timeout_ms}\n\n'
    )
    return head + "\n".join(servers)


def demo_stdio(server_id: str, **extra: Any) -> str:
    return server_block(server_id, transport="stdio", command="$self",
                        args=["demo-server", "--stdio", "--name", server_id], **extra)


def main_config(demo_url: str) -> str:
    for path in (EVERYTHING_BIN, TIME_BIN):
        if not path.exists():
            pytest.fail(f"backend {path} is not installed; run `bash tests/run-all.sh`")
    return config_text(
        server_block("everything", transport="stdio", command=str(EVERYTHING_BIN), args=["stdio"]),
        server_block("time", transport="stdio", command=str(TIME_BIN), args=["--local-timezone", "UTC"]),
        server_block("demohttp", transport="http", url=demo_url),
        demo_stdio("demo"),
    )


MAIN_BACKENDS = {"everything": "ready", "time": "ready", "demohttp": "ready", "demo": "ready"}
MAIN_CHILDREN = [str(EVERYTHING_BIN), str(TIME_BIN), "--name demo"]

MISSING_COMMAND = "/nonexistent/only1mcp-test-no-such-server"


def fault_config() -> str:
    return config_text(
        demo_stdio("slow", timeout_ms=300),
        server_block("broken", transport="stdio", command=MISSING_COMMAND, args=["--stdio"]),
        demo_stdio("flaky"),
        demo_stdio("steady"),
    )


FAULT_BACKENDS = {"slow": "ready", "broken": "down", "flaky": "ready", "steady": "ready"}
FAULT_CHILDREN = ["--name slow", "--name flaky", "--name steady"]


@pytest.fixture(scope="session", params=DRIVERS)
def gateway(request: pytest.FixtureRequest, demo_http: DemoHttp,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway per driver in front of everything + time + demo (http) + demo (stdio)."""
    workdir = tmp_path_factory.mktemp(f"gw-main-{request.param}")
    with running_gateway(request.param, main_config(demo_http.url), workdir, "main",
                         MAIN_BACKENDS, MAIN_CHILDREN) as gw:
        yield gw


@pytest.fixture(scope="session", params=DRIVERS)
def fault_gateway(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway per driver with misbehaving backends: slow (300 ms timeout), broken
    (command missing), flaky (for garbage/crash) and steady (a healthy control)."""
    workdir = tmp_path_factory.mktemp(f"gw-fault-{request.param}")
    with running_gateway(request.param, fault_config(), workdir, "fault", FAULT_BACKENDS,
                         FAULT_CHILDREN) as gw:
        yield gw


# --------------------------------------------------------------------------------------------
# Client helpers
# --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def mcp_session(url: str, on_response: Callable[[Any], Any] | None = None
                      ) -> AsyncIterator[ClientSession]:
    """An initialized official-SDK session over Streamable HTTP. `on_response` sees every
    HTTP response of the transport (to read headers such as Mcp-Session-Id)."""
    http_client = None
    if on_response is not None:
        from mcp.shared._httpx_utils import create_mcp_http_client

        async def hook(response: Any) -> None:
            on_response(response)

        http_client = create_mcp_http_client()
        http_client.event_hooks["response"].append(hook)
    async with contextlib.AsyncExitStack() as stack:
        if http_client is not None:
            await stack.enter_async_context(http_client)
        read, write = await stack.enter_async_context(
            streamable_http_client(url, http_client=http_client)
        )
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


def run(fn: Callable[..., Any], *args: Any) -> Any:
    """anyio.run, re-raising a lone exception out of the task-group wrappers (so a failed
    assertion inside an SDK session reads as that assertion, not as an ExceptionGroup)."""
    try:
        return anyio.run(fn, *args)
    except BaseException as exc:
        leaf: BaseException = exc
        while isinstance(getattr(leaf, "exceptions", None), tuple) and len(leaf.exceptions) == 1:
            leaf = leaf.exceptions[0]
        if leaf is exc:
            raise
        raise leaf from None


async def list_all_tools(session: ClientSession) -> list[Any]:
    """tools/list, following nextCursor until the last page."""
    from mcp.types import PaginatedRequestParams

    tools, cursor, pages = [], None, 0
    while True:
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        result = await session.list_tools(params=params)
        tools.extend(result.tools)
        pages += 1
        cursor = result.next_cursor
        if not cursor:
            return tools
        assert pages < 100, "tools/list pagination does not end"


def text_of(result: Any) -> str:
    """Concatenated text of a CallToolResult's text blocks."""
    return "".join(block.text for block in result.content if block.type == "text")
