#!/usr/bin/env python3
"""One `kill -9` of a fleet node as a 2025-era client sees it (perf/fleet.sh).

The client (raw HTTP, Python standard library only) opens a session through the balancer,
calls `demo__echo` every 10 ms, and the node its session id names is killed. It reports, in
ms after the kill: its first failed request, the first successful `initialize` of its new
session and the first successful call on it; what every failed request was answered; and
when HAProxy marked the node DOWN (from its runtime API socket).

Usage: fleet_kill.py BALANCER_URL HAPROXY_SOCKET NODE=PID [NODE=PID ...]
Prints one line: KILL node=.. first_error_ms=.. reinit_ms=.. call_ok_ms=.. down_ms=.. errors=..
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fleet-kill", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
DEADLINE_S = 20.0


class Client:
    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: dict, sid: str | None) -> tuple[int, dict[str, str], bytes]:
        """One POST on a keep-alive connection (a new one after an error); status 0 = no answer."""
        headers = dict(HEADERS)
        if sid:
            headers["mcp-session-id"] = sid
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            self.conn.request("POST", self.path, json.dumps(body), headers)
            r = self.conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except (OSError, http.client.HTTPException):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return 0, {}, b""

    def session(self) -> str | None:
        status, headers, _ = self.post(INIT, None)
        sid = headers.get("mcp-session-id")
        if status != 200 or not sid:
            return None
        self.post(INITIALIZED, sid)
        return sid

    def call(self, sid: str, n: int) -> int:
        body = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                "params": {"name": "demo__echo", "arguments": {"message": f"m{n}"}}}
        status, _, data = self.post(body, sid)
        if status == 200 and f'"m{n}"'.encode() not in data:
            return -1
        return status


def haproxy_status(sock: str, node: str) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(sock)
        s.sendall(b"show stat\n")
        text = b""
        while chunk := s.recv(65536):
            text += chunk
    for line in text.decode().splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "mcp_nodes" and f[1] == node:
            return f[17]
    return "?"


def main() -> None:
    url, sock = sys.argv[1], sys.argv[2]
    pids = dict(a.split("=", 1) for a in sys.argv[3:])
    c = Client(url)
    sid = c.session()
    assert sid, "initialize through the balancer failed"
    node = sid.split(".", 1)[0]
    for n in range(50):  # 0.5 s of calls before the kill
        assert c.call(sid, n) == 200, "calls before the kill failed"
        time.sleep(0.01)

    down: dict[str, float] = {}

    def watch(t0: float) -> None:
        while time.monotonic() - t0 < DEADLINE_S:
            if haproxy_status(sock, node).startswith("DOWN"):
                down["t"] = time.monotonic()
                return
            time.sleep(0.005)

    t_kill = time.monotonic()
    os.kill(int(pids[node]), signal.SIGKILL)
    watcher = threading.Thread(target=watch, args=(t_kill,), daemon=True)
    watcher.start()
    first_error = reinit = call_ok = None
    errors: list[int] = []
    n = 1000
    while time.monotonic() - t_kill < DEADLINE_S and call_ok is None:
        n += 1
        status = c.call(sid, n) if sid else 0
        if status == 200:
            if reinit is not None:
                call_ok = time.monotonic()
        else:
            errors.append(status)
            first_error = first_error or time.monotonic()
            new = c.session()
            if new:
                reinit = reinit or time.monotonic()
                sid = new
        time.sleep(0.01)
    watcher.join(DEADLINE_S)

    def ms(t: float | None) -> str:
        return "n/a" if t is None else f"{(t - t_kill) * 1000:.0f}"

    print(f"KILL node={node} first_error_ms={ms(first_error)} reinit_ms={ms(reinit)} "
          f"call_ok_ms={ms(call_ok)} down_ms={ms(down.get('t'))} "
          f"errors={','.join(map(str, errors)) or 'none'}")


if __name__ == "__main__":
    main()
