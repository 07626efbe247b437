#!/usr/bin/env python3
"""Open many MCP sessions (and GET streams) on a Streamable HTTP endpoint, for perf/compare.sh.

    mcp_sessions.py open URL N
        initialize + notifications/initialized N times over keep-alive connections; prints
        `VERSION <negotiated protocol version>`, then one session id per line.

    mcp_sessions.py hold URL N --streams M --conns K [--go-dir DIR] [--hold SECONDS]
        the same without printing the ids, in phases, each announced on stdout:
        `SESSIONS_OPEN n seconds`; then M standalone GET SSE streams on the first M sessions,
        one socket each, kept open: `STREAMS_OPEN ok of M`; then K idle keep-alive connections
        that each sent one `ping` on a session: `CONNS_OPEN ok of K`; then `HOLDING`, and it
        waits until SECONDS pass (default 120) or it is killed. With --go-dir, phase 2 starts
        once DIR/go2 exists and phase 3 once DIR/go3 exists (the caller measures in between).

Standard library only; exits non-zero with a message on stderr on the first failure.
"""

import argparse
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "only1mcp-perf-sessions", "version": "1"},
    },
}
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def fail(msg):
    print(f"mcp_sessions.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


class Client:
    """One keep-alive connection."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.conn = None

    def post(self, body, sid=None, version=None):
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        }
        if sid:
            headers["mcp-session-id"] = sid
        if version:
            headers["mcp-protocol-version"] = version
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request("POST", self.path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r.getheader("mcp-session-id"), data
            except (http.client.HTTPException, OSError) as e:
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise RuntimeError(f"POST {self.path}: {e}") from e
        raise AssertionError("unreachable")

    def session(self):
        status, sid, data = self.post(json.dumps(INIT).encode())
        if status != 200 or not sid:
            raise RuntimeError(f"initialize: HTTP {status}, session {sid!r}: {data[:200]!r}")
        m = re.search(rb'"protocolVersion"\s*:\s*"([^"]+)"', data)
        version = m.group(1).decode() if m else ""
        status, _, data = self.post(INITIALIZED, sid, version)
        if status not in (200, 202):
            raise RuntimeError(f"notifications/initialized: HTTP {status}: {data[:200]!r}")
        return sid, version


def open_sessions(url, n, threads=4):
    """N sessions over `threads` keep-alive connections; returns (ids, version)."""
    out = [None] * n
    errors = []

    def work(k):
        c = Client(url)
        try:
            for i in range(k, n, threads):
                out[i] = c.session()
        except Exception as e:  # reported by the caller
            errors.append(str(e))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(min(threads, n))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        fail(f"{len(errors)} connection(s) failed, first: {errors[0]}")
    return [s for s, _ in out], out[0][1] if out else ""


def open_stream(url, sid, version):
    """A GET SSE stream on its own socket; returns the socket once the 200 head arrived."""
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port or 80), timeout=10)
    req = (
        f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\n"
        f"Accept: text/event-stream\r\nMcp-Session-Id: {sid}\r\n"
        f"MCP-Protocol-Version: {version}\r\n\r\n"
    )
    s.sendall(req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    first = head.split(b"\r\n", 1)[0]
    if b" 200 " not in first + b" " or b"text/event-stream" not in head.lower():
        s.close()
        raise RuntimeError(f"GET stream: {head[:300]!r}")
    return s


def idle_conn(url, sid, version):
    """A keep-alive connection that sent one ping on session `sid` and now idles."""
    c = Client(url)
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    status, _, data = c.post(body, sid, version)
    if status != 200 or c.conn is None:
        raise RuntimeError(f"ping: HTTP {status}: {data[:200]!r}")
    return c.conn


def wait_go(go_dir, phase, limit=300.0):
    if not go_dir:
        return
    path = f"{go_dir}/go{phase}"
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            fail(f"{path} did not appear within {limit:.0f} s")
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["open", "hold"])
    ap.add_argument("url")
    ap.add_argument("n", type=int)
    ap.add_argument("--streams", type=int, default=0)
    ap.add_argument("--conns", type=int, default=0)
    ap.add_argument("--go-dir", default="")
    ap.add_argument("--hold", type=float, default=120.0)
    a = ap.parse_args()

    t0 = time.monotonic()
    ids, version = open_sessions(a.url, a.n)
    if a.mode == "open":
        print(f"VERSION {version}")
        print("\n".join(ids), flush=True)
        return
    print(f"SESSIONS_OPEN {len(ids)} {time.monotonic() - t0:.1f}", flush=True)
    wait_go(a.go_dir, 2)
    socks, errors = [], []
    for sid in ids[: a.streams]:
        try:
            socks.append(open_stream(a.url, sid, version))
        except Exception as e:
            errors.append(str(e))
    print(f"STREAMS_OPEN {len(socks)} of {a.streams}", flush=True)
    if errors:
        print(f"STREAM_ERRORS {len(errors)} first: {errors[0]}", flush=True)
    wait_go(a.go_dir, 3)
    conns, errors = [], []
    for i in range(a.conns):
        try:
            conns.append(idle_conn(a.url, ids[(a.streams + i) % len(ids)], version))
        except Exception as e:
            errors.append(str(e))
    print(f"CONNS_OPEN {len(conns)} of {a.conns}", flush=True)
    if errors:
        print(f"CONN_ERRORS {len(errors)} first: {errors[0]}", flush=True)
    print("HOLDING", flush=True)
    deadline = time.monotonic() + a.hold
    while time.monotonic() < deadline:
        time.sleep(0.5)
    # Report streams the server closed meanwhile (readable with EOF).
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    closed += 1
                    break
        except BlockingIOError:
            pass
    print(f"STREAMS_CLOSED_BY_SERVER {closed}", flush=True)


if __name__ == "__main__":
    main()
