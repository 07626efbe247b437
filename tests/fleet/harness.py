"""The processes of a fleet test: three gateway nodes, a balancer (HAProxy or nginx with the
shipped config), the shared key file and the demo HTTP backend.

Nodes listen on 127.0.0.2, 127.0.0.3 and 127.0.0.4 (one address per node, as on a real
network), each on a port picked free at fleet creation and kept across restarts, because the
balancer's config names it. The balancers run the files under deploy/ unchanged: HAProxy
reads the node addresses from environment variables its config expands; nginx's file has
its placeholder addresses replaced (open-source nginx expands no variables in `server`).

Every process started here is registered with the `Fleet`, which stops it at the end
(SIGTERM, SIGKILL after a bound) and reaps it and whatever it spawned, also when a test
fails half-way.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]

# The Python suite's harness (process bookkeeping, demo server, SDK session helper), loaded
# under its own name so it does not clash with this directory's conftest.
_spec = importlib.util.spec_from_file_location("o1m_pyharness", REPO / "tests" / "python" / "conftest.py")
assert _spec is not None and _spec.loader is not None
pyh = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = pyh
_spec.loader.exec_module(pyh)

BIN: Path = pyh.BIN
HAPROXY_CFG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
NGINX_CONF = REPO / "deploy" / "nginx" / "mcp-fleet.conf"
NGINX_PLACEHOLDERS = ("192.0.2.11:8080", "192.0.2.12:8080", "192.0.2.13:8080")

NODE_IDS = ("g1", "g2", "g3")
NODE_HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
CORES = 2
# Every request to a node names a loopback Host: the nodes' listeners are loopback ones, and
# the DNS-rebinding guard accepts `127.0.0.1` and `localhost` there.
HOST_HEADER = {"host": "127.0.0.1"}

READY_RE = re.compile(
    r"^only1mcp-uring listening on (http://([0-9.]+):(\d+)/mcp) \(shards: (\d+), driver: (\S+)\)$"
)

# How long a node gets after SIGTERM before it is killed (its drain grace is far shorter).
STOP_TIMEOUT_S = 15.0


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def write_key_file(path: Path, keys: list[tuple[str, bytes]]) -> Path:
    """The cluster key file: `<key_id> <base64 key>` per line, first key signs; mode 0600."""
    path.write_text("".join(f"{kid} {base64.b64encode(k).decode()}\n" for kid, k in keys))
    path.chmod(0o600)
    return path


def node_config(node_id: str, key_file: Path, demo_url: str, workdir: Path, extra_server: str = "",
                extra: str = "") -> str:
    """One node's config: the same for every node but `node_id`. Three backends: the demo
    server over stdio (`demo`), the shared demo HTTP server (`demohttp`), and a 2025-only demo
    with the conformance fixture (`fx`, unprefixed) whose elicitation tools the gateway bridges
    to 2026 clients as `input_required`."""
    return (
        f'[server]\nhost = "127.0.0.1"\n{extra_server}\n'
        f"[cluster]\nnode_id = {pyh.toml_str(node_id)}\nkey_file = {pyh.toml_str(key_file)}\n\n"
        # Each node its own metrics socket (the default path is one per user and machine).
        f"[metrics]\nsocket = {pyh.toml_str(workdir / f'{node_id}.sock')}\n\n"
        '[proxy]\ntool_separator = "__"\nrequest_timeout_ms = 20000\n\n'
        + extra
        + pyh.demo_stdio("demo")
        + "\n"
        + pyh.server_block("demohttp", transport="http", url=demo_url)
        + "\n"
        + pyh.server_block(
            "fx", transport="stdio", command="$self", args=["demo-server", "--stdio", "--name", "fx"],
            prefix=False,
        )
        + 'env = { DEMO_CONFORMANCE = "1", DEMO_MODERN = "0" }\n'
    )


NODE_BACKENDS = {"demo": "ready", "demohttp": "ready", "fx": "ready"}
NODE_CHILDREN = ["--name demo", "--name fx"]


@dataclass
class Proc:
    """A process this test started, stopped and reaped by PID at the end."""

    name: str
    proc: subprocess.Popen[Any]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int | None = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> tuple[int, bool]:
        """Signal (`None`: it was signalled already), wait up to `timeout_s`, SIGKILL after.
        Kills and reaps what it spawned. Returns (exit status, had to kill)."""
        spawned = pyh.descendants(self.proc.pid)
        killed = False
        if self.proc.poll() is None:
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait()
        pyh.clean_up(spawned)
        return self.proc.returncode, killed


@dataclass
class Node:
    """One gateway node of the fleet."""

    id: str
    host: str
    port: int
    driver: str
    workdir: Path
    config: str
    register: Callable[[Proc], None]
    proc: Proc | None = None
    starts: int = 0

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.addr}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def start(self, wait_backends: bool = True) -> Node:
        self.starts += 1
        cfg = self.workdir / f"{self.id}.toml"
        cfg.write_text(self.config)
        log = self.workdir / f"{self.id}-{self.starts}.log"
        with open(log, "wb") as err:
            p = subprocess.Popen(
                [str(BIN), "start", "--config", str(cfg), "--host", self.host, "--port", str(self.port),
                 "--cores", str(CORES), "--driver", self.driver],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                cwd=self.workdir,
            )
        self.proc = Proc(f"node {self.id}", p, log)
        self.register(self.proc)
        m = pyh._wait_line(p, pyh._stdout_lines(p), READY_RE, 20.0, log)
        assert (m.group(2), int(m.group(3))) == (self.host, self.port), m.group(0)
        assert m.group(5) == pyh.DRIVER_NAMES[self.driver], m.group(0)
        if wait_backends:
            self.wait_backends()
        return self

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers=HOST_HEADER, timeout=5.0, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        headers = {**HOST_HEADER, **kw.pop("headers", {})}
        return httpx.post(f"{self.base}{path}", headers=headers, timeout=5.0, **kw)

    def wait_backends(self, timeout_s: float = 30.0) -> None:
        deadline, last = time.monotonic() + timeout_s, {}
        while time.monotonic() < deadline:
            assert self.alive(), f"node {self.id} exited\n{pyh.tail(self.proc.log)}"
            with contextlib.suppress(httpx.HTTPError, ValueError):
                last = self.get("/health").json()
                states = {b["id"]: b["state"] for b in last["backends"]}
                if all(states.get(k) == v for k, v in NODE_BACKENDS.items()):
                    return
            time.sleep(0.1)
        raise AssertionError(f"node {self.id}: backends not ready: {json.dumps(last)}\n{pyh.tail(self.proc.log)}")

    def kill9(self) -> float:
        """SIGKILL the node (no goodbye to anyone), reap it and its children; returns when it
        refuses connections. (With io_uring the kernel tears the dead process's rings down
        after it is reaped: for a few ms its listener still completes handshakes, and what it
        accepted then is reset.)"""
        assert self.proc is not None
        self.proc.stop(signal.SIGKILL, 5.0)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), 0.5).close()
            except ConnectionRefusedError:
                return time.monotonic()
            except OSError:
                pass  # reset or timed out: the dying listener took the handshake, then dropped it
            time.sleep(0.001)
        raise AssertionError(f"node {self.id} still accepts connections 5 s after SIGKILL")

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a /metrics counter over the series matching `labels`."""
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if not line.startswith(name) or line.startswith("#"):
                continue
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] != name:
                continue
            if all(f'{k}="{v}"' in series for k, v in labels.items()):
                total += float(value)
        return total


class Balancer:
    """A load balancer in front of the nodes; `url` is the fleet's MCP endpoint."""

    name = "balancer"
    url: str

    def start(self) -> None:
        raise NotImplementedError

    def status(self) -> dict[str, str]:
        raise NotImplementedError


@dataclass
class HAProxy(Balancer):
    """HAProxy with deploy/haproxy/haproxy.cfg as shipped; node addresses from the environment."""

    workdir: Path
    nodes: list[Node]
    register: Callable[[Proc], None]
    port: int = 0
    proc: Proc | None = None
    name: str = "haproxy"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "haproxy.sock"

    @property
    def url(self) -> str:  # type: ignore[override]
        return f"http://127.0.0.1:{self.port}/mcp"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "O1M_LISTEN": f"127.0.0.1:{self.port}",
               "O1M_HAPROXY_SOCKET": str(self.socket_path)}
        for node in self.nodes:
            env[f"O1M_{node.id.upper()}"] = node.addr
        return env

    def start(self) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.port = self.port or free_port("127.0.0.1")
        check = subprocess.run([haproxy, "-c", "-f", str(HAPROXY_CFG)], env=self.env(),
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"haproxy -c refused the shipped config:\n{check.stdout}{check.stderr}"
        log = self.workdir / "haproxy.log"
        with open(log, "wb") as out:
            p = subprocess.Popen([haproxy, "-db", "-f", str(HAPROXY_CFG)], env=self.env(),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.proc = Proc("haproxy", p, log)
        self.register(self.proc)
        deadline = time.monotonic() + 10
        while not self.socket_path.exists():
            assert p.poll() is None, f"haproxy exited ({p.returncode})\n{pyh.tail(log)}"
            assert time.monotonic() < deadline, f"haproxy did not open its socket\n{pyh.tail(log)}"
            time.sleep(0.05)

    def command(self, cmd: str) -> str:
        """One runtime-API command (the CLI socket refuses a connection now and then while
        it is busy: retried for up to a second)."""
        for attempt in range(50):
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(5)
                    s.connect(str(self.socket_path))
                    s.sendall(cmd.encode() + b"\n")
                    chunks = []
                    while chunk := s.recv(65536):
                        chunks.append(chunk)
                return b"".join(chunks).decode()
            except ConnectionRefusedError:
                if attempt == 49:
                    raise
                time.sleep(0.02)
        raise AssertionError("unreachable")

    def status(self) -> dict[str, str]:
        """Each node's state as HAProxy sees it: UP, NOLB (draining), DOWN, or a transition
        such as `UP 1/2` (first failed check)."""
        rows = csv.DictReader(io.StringIO(self.command("show stat").lstrip("# ")))
        return {r["svname"]: r["status"] for r in rows
                if r["pxname"] == "mcp_nodes" and r["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_status(self, node_id: str, want: str, timeout_s: float = 10.0) -> float:
        """Polls every 10 ms until `node_id` is in state `want`; returns the monotonic time."""
        deadline, last = time.monotonic() + timeout_s, {}
        while time.monotonic() < deadline:
            last = self.status()
            if last.get(node_id) == want:
                return time.monotonic()
            time.sleep(0.02)
        raise AssertionError(f"haproxy: {node_id} not {want} within {timeout_s}s: {last}\n{pyh.tail(self.proc.log)}")


@dataclass
class Nginx(Balancer):
    """nginx with deploy/nginx/mcp-fleet.conf, node addresses and listen port filled in."""

    workdir: Path
    nodes: list[Node]
    register: Callable[[Proc], None]
    port: int = 0
    proc: Proc | None = None
    name: str = "nginx"

    @property
    def url(self) -> str:  # type: ignore[override]
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = self.port or free_port("127.0.0.1")
        prefix = self.workdir / "nginx"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        fleet = NGINX_CONF.read_text()
        for placeholder, node in zip(NGINX_PLACEHOLDERS, self.nodes, strict=True):
            assert placeholder in fleet, f"{placeholder} not in {NGINX_CONF}"
            fleet = fleet.replace(placeholder, node.addr)
        assert "listen 8080;" in fleet
        fleet = fleet.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        (prefix / "mcp-fleet.conf").write_text(fleet)
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"worker_processes 1;\nerror_log {prefix}/error.log warn;\npid {prefix}/nginx.pid;\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {prefix}/tmp/body;\n"
            f"  proxy_temp_path {prefix}/tmp/proxy;\n  include {prefix}/mcp-fleet.conf;\n}}\n"
        )
        args = [nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
        check = subprocess.run([*args[:-2], "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"nginx -t refused the shipped config:\n{check.stderr}"
        log = prefix / "stderr.log"
        with open(log, "wb") as out:
            p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.proc = Proc("nginx", p, log)
        self.register(self.proc)
        deadline = time.monotonic() + 10
        while True:
            assert p.poll() is None, f"nginx exited ({p.returncode})\n{pyh.tail(prefix / 'error.log')}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.05)

    def status(self) -> dict[str, str]:
        return {}


@dataclass
class Fleet:
    """Three nodes and a balancer; `close()` stops and reaps everything it started."""

    driver: str
    workdir: Path
    demo_url: str
    extra_server: str = ""
    extra: str = ""  # more sections, the same on every node
    nodes: list[Node] = field(default_factory=list)
    balancer: Balancer | None = None
    procs: list[Proc] = field(default_factory=list)
    key_file: Path | None = None
    keys: list[tuple[str, bytes]] = field(default_factory=list)

    def register(self, proc: Proc) -> None:
        self.procs.append(proc)

    def start(self, balancer: str = "haproxy") -> Fleet:
        self.keys = [("k1", os.urandom(32))]
        self.key_file = write_key_file(self.workdir / "cluster.keys", self.keys)
        for node_id, host in zip(NODE_IDS, NODE_HOSTS, strict=True):
            cfg = node_config(node_id, self.key_file, self.demo_url, self.workdir, self.extra_server,
                              self.extra)
            self.nodes.append(Node(node_id, host, free_port(host), self.driver, self.workdir, cfg,
                                   self.register))
        for node in self.nodes:
            node.start(wait_backends=False)
        for node in self.nodes:
            node.wait_backends()
        cls = HAProxy if balancer == "haproxy" else Nginx
        self.balancer = cls(self.workdir, self.nodes, self.register)
        self.balancer.start()
        if isinstance(self.balancer, HAProxy):
            for node in self.nodes:
                self.balancer.wait_status(node.id, "UP")
        return self

    @property
    def url(self) -> str:
        assert self.balancer is not None
        return self.balancer.url

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def close(self) -> list[str]:
        """Stops the balancer, then every node (SIGTERM, all at once), then anything else;
        returns problems (a node that had to be killed, or left a child behind)."""
        problems: list[str] = []
        ordered = [p for p in self.procs if not p.name.startswith("node")]
        ordered += [p for p in self.procs if p.name.startswith("node")]
        live = [p for p in ordered if p.alive()]
        spawned = {id(p): pyh.descendants(p.proc.pid) for p in live}
        for p in live:
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGTERM)
        for p in live:
            _, killed = p.stop(None)
            if killed:
                problems.append(f"{p.name} did not exit within {STOP_TIMEOUT_S}s of SIGTERM")
            left = pyh.leftovers(spawned[id(p)], p.proc.pid)
            pyh.clean_up(spawned[id(p)])
            problems += [f"{p.name}: child {c.pid} left behind: {c.cmdline!r}" for c in left]
        return problems
