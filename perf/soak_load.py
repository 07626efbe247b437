#!/usr/bin/env python3
"""Mixed MCP traffic for perf/soak.sh: both eras, SSE answers, GET streams, error cases.

    soak_load.py URL --duration S --rate R --workers W --streams K --out DIR

Runs for S seconds (or until SIGTERM/SIGINT), then writes its last status and exits 0.
Every HTTP exchange is one request, paced so that all workers together stay under R per
second. Each exchange has an expected outcome; anything else is an error, attributed to the
backend it was meant for (`-` for the gateway itself: initialize, lists, DELETE, streams).

Workers (W threads, each on its own keep-alive connection, reconnecting now and then) pick a
scenario at random:

    session   2025-era: initialize, notifications/initialized, tools/list, tools/call on
              each backend, resources/read, then DELETE (3 in 4) or abandon it (1 in 4)
    modern    2026-07-28 stateless: server/discover, tools/list, tools/call on each backend,
              with `_meta` protocolVersion and the Mcp-Method / Mcp-Name headers
    sse       tools/call of `sleep` with a progressToken on a session: an SSE answer with
              progress notifications, then the result
    errors    an unknown tool (JSON-RPC error, HTTP 200) and a malformed body (HTTP 400)

Stream holders (K threads) open a session, hold a GET SSE stream for 5-60 s while counting
the notifications it carries (list_changed after each reload), close it, and DELETE the
session (or abandon it, 1 in 4).

Files in DIR, for the caller:
    status      one line, rewritten every second: `elapsed requests errors notifications`
    status.json the same with counts per kind and backend, written at the end too
    errors.tsv  one line per failed exchange: `unix_time kind backend detail` (capped)

Standard library only.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import threading
import time
import urllib.parse

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
MAX_ERROR_LINES = 200_000
# A keep-alive connection idle longer than this is replaced before use: the gateway closes
# idle connections after server.idle_timeout_ms (60 s by default), and a request written
# just as it does would fail for the client's reuse, not for anything the gateway did.
# Only the stream holders' connections sit idle (while their GET stream is held).
IDLE_REUSE_S = 30
# Which tool of which backend each call scenario uses; resources come from resources/list.
CALL_BACKENDS = ("demo", "web", "side")


class Stats:
    """Counts per (kind, backend, outcome); the error log; the pacing clock."""

    def __init__(self, out_dir, rate):
        self.lock = threading.Lock()
        self.counts = {}
        self.requests = 0
        self.errors = 0
        self.notifications = 0
        self.error_lines = 0
        self.err_file = open(os.path.join(out_dir, "errors.tsv"), "w", buffering=1)
        self.interval = 1.0 / rate
        self.next_slot = time.monotonic()

    def pace(self):
        """Blocks until this thread may send its next request (global rate bound)."""
        with self.lock:
            now = time.monotonic()
            slot = max(self.next_slot, now)
            self.next_slot = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def record(self, kind, backend, ok, detail=""):
        with self.lock:
            key = f"{kind}|{backend}"
            c = self.counts.setdefault(key, [0, 0])
            c[0 if ok else 1] += 1
            self.requests += 1
            if not ok:
                self.errors += 1
                if self.error_lines < MAX_ERROR_LINES:
                    self.error_lines += 1
                    clean = " ".join(str(detail).split())[:300]
                    self.err_file.write(f"{time.time():.3f}\t{kind}\t{backend}\t{clean}\n")

    def notified(self, n):
        with self.lock:
            self.notifications += n

    def snapshot(self, t0):
        with self.lock:
            return {
                "elapsed": round(time.monotonic() - t0, 1),
                "requests": self.requests,
                "errors": self.errors,
                "notifications": self.notifications,
                "counts": {k: {"ok": v[0], "err": v[1]} for k, v in sorted(self.counts.items())},
            }


class Conn:
    """One keep-alive client connection; reconnects after a failure or when asked to."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/"
        self.conn = None
        self.last_used = 0.0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, body=None, headers=None, timeout=15):
        """(status, headers dict lowercased, body bytes); raises OSError/HTTPException."""
        h = {"accept": "application/json, text/event-stream"}
        if body is not None:
            h["content-type"] = "application/json"
        h.update(headers or {})
        if self.conn is not None and time.monotonic() - self.last_used > IDLE_REUSE_S:
            self.close()
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            self.conn.request(method, self.path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        self.last_used = time.monotonic()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return r.status, hdrs, data


def rpc(id_, method, params=None):
    msg = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg).encode()


def sse_messages(data):
    """The JSON messages of an SSE body (`data:` lines, events separated by blank lines)."""
    out = []
    for event in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [ln[5:].lstrip() for ln in event.split(b"\n") if ln.startswith(b"data:")]
        if lines:
            try:
                out.append(json.loads(b"\n".join(lines)))
            except ValueError:
                out.append({"unparsable": b"\n".join(lines)[:100].decode("latin-1")})
    return out


def answer_of(hdrs, data, want_id):
    """The JSON-RPC answer with id `want_id` in a JSON or SSE body, and the other messages."""
    if hdrs.get("content-type", "").startswith("text/event-stream"):
        msgs = sse_messages(data)
    else:
        msgs = [json.loads(data)]
    answer = next((m for m in msgs if m.get("id") == want_id and "method" not in m), None)
    return answer, [m for m in msgs if m is not answer]


class Worker:
    """A client thread running scenarios on one keep-alive connection."""

    def __init__(self, url, stats, stop, rng, resources):
        self.url, self.stats, self.stop, self.rng = url, stats, stop, rng
        self.resources = resources
        self.conn = Conn(url)
        self.next_id = 0

    def ex(self, kind, backend, method, body=None, headers=None, check=None):
        """One paced exchange; records it; returns (status, hdrs, data) or None on failure."""
        if self.stop.is_set():
            return None
        self.stats.pace()
        try:
            status, hdrs, data = self.conn.request(method, body, headers)
        except (http.client.HTTPException, OSError) as e:
            self.stats.record(kind, backend, False, f"{type(e).__name__}: {e}")
            return None
        problem = None
        try:
            problem = check(status, hdrs, data) if check else None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            problem = f"{type(e).__name__}: {e}"
        if problem:
            self.stats.record(kind, backend, False, f"HTTP {status}: {problem}: {data[:200]!r}")
            return None
        self.stats.record(kind, backend, True)
        return status, hdrs, data

    def new_id(self):
        self.next_id += 1
        return self.next_id

    # --- expectations ---------------------------------------------------------------------

    @staticmethod
    def result_check(want_id, predicate=None):
        def check(status, hdrs, data):
            if status != 200:
                return "not 200"
            answer, _ = answer_of(hdrs, data, want_id)
            if answer is None:
                return "no answer with our id"
            if "result" not in answer:
                return f"error {answer.get('error')}"
            if predicate and not predicate(answer["result"]):
                return "unexpected result"
            return None

        return check

    @staticmethod
    def echo_ok(msg):
        return lambda r: not r.get("isError") and r["content"][0]["text"] == msg

    # --- scenarios ------------------------------------------------------------------------

    def open_session(self, kind="init"):
        """initialize + notifications/initialized; returns the session headers or None."""
        i = self.new_id()
        params = {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "only1mcp-soak", "version": "1"},
        }

        def check(status, hdrs, data):
            if status != 200 or not hdrs.get("mcp-session-id"):
                return "no session"
            return self.result_check(i)(status, hdrs, data)

        r = self.ex(kind, "-", "POST", rpc(i, "initialize", params), check=check)
        if r is None:
            return None
        h = {"mcp-session-id": r[1]["mcp-session-id"], "mcp-protocol-version": LEGACY}
        note = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
        ok = self.ex(
            "initialized", "-", "POST", note, h,
            check=lambda s, _h, _d: None if s in (200, 202) else "not 202",
        )
        return h if ok else None

    def delete(self, h):
        self.ex(
            "delete", "-", "DELETE", None, h,
            check=lambda s, _h, _d: None if s in (200, 202, 204) else "not 2xx",
        )

    def session(self):
        h = self.open_session()
        if h is None:
            return
        i = self.new_id()
        self.ex("list", "-", "POST", rpc(i, "tools/list"), h,
                check=self.result_check(i, lambda r: len(r["tools"]) > 0))
        for b in CALL_BACKENDS:
            i, msg = self.new_id(), f"soak-{self.rng.randrange(1 << 30)}"
            p = {"name": f"{b}__echo", "arguments": {"message": msg}}
            self.ex("call", b, "POST", rpc(i, "tools/call", p), h,
                    check=self.result_check(i, self.echo_ok(msg)))
        i, (b, uri) = self.new_id(), self.rng.choice(self.resources)
        self.ex("read", b, "POST", rpc(i, "resources/read", {"uri": uri}), h,
                check=self.result_check(i, lambda r: r["contents"][0]["text"]))
        if self.rng.random() < 0.75:
            self.delete(h)

    def modern(self):
        i = self.new_id()
        hdr = {"mcp-protocol-version": MODERN, "mcp-method": "server/discover"}
        self.ex("m_discover", "-", "POST", rpc(i, "server/discover", {"_meta": MODERN_META}),
                hdr, check=self.result_check(i, lambda r: MODERN in r["supportedVersions"]))
        i = self.new_id()
        hdr = {"mcp-protocol-version": MODERN, "mcp-method": "tools/list"}
        self.ex("m_list", "-", "POST", rpc(i, "tools/list", {"_meta": MODERN_META}), hdr,
                check=self.result_check(i, lambda r: len(r["tools"]) > 0))
        for b in CALL_BACKENDS:
            i, msg = self.new_id(), f"soak-{self.rng.randrange(1 << 30)}"
            name = f"{b}__echo"
            p = {"name": name, "arguments": {"message": msg}, "_meta": MODERN_META}
            hdr = {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": name}
            self.ex("m_call", b, "POST", rpc(i, "tools/call", p), hdr,
                    check=self.result_check(
                        i, lambda r, m=msg: r.get("resultType") == "complete"
                        and r["content"][0]["text"] == m))

    def sse(self):
        h = self.open_session()
        if h is None:
            return
        b = self.rng.choice(CALL_BACKENDS)
        i, tok = self.new_id(), f"p{self.rng.randrange(1 << 30)}"
        p = {"name": f"{b}__sleep", "arguments": {"ms": 150}, "_meta": {"progressToken": tok}}

        def check(status, hdrs, data):
            if not hdrs.get("content-type", "").startswith("text/event-stream"):
                return "not an SSE answer"
            bad = self.result_check(i)(status, hdrs, data)
            if bad:
                return bad
            _, others = answer_of(hdrs, data, i)
            prog = [m for m in others if m.get("method") == "notifications/progress"
                    and m["params"]["progressToken"] == tok]
            return None if prog else "no progress notification"

        self.ex("sse_call", b, "POST", rpc(i, "tools/call", p), h, check=check)
        self.delete(h)

    def errors(self):
        h = self.open_session()
        if h is None:
            return
        i = self.new_id()
        p = {"name": "demo__no_such_tool", "arguments": {}}

        def unknown(status, hdrs, data):
            answer, _ = answer_of(hdrs, data, i)
            if answer is None or "error" not in answer:
                return "no JSON-RPC error"
            return None

        self.ex("e_unknown", "-", "POST", rpc(i, "tools/call", p), h, check=unknown)

        def malformed(status, hdrs, data):
            if status != 400:
                return "not 400"
            return None if json.loads(data)["error"]["code"] == -32700 else "not -32700"

        self.ex("e_malformed", "-", "POST", b'{"jsonrpc":"2.0","id":1,"method":', h,
                check=malformed)
        self.delete(h)

    def run(self):
        scenarios = [(self.session, 4), (self.modern, 3), (self.sse, 2), (self.errors, 1)]
        pick = [s for s, w in scenarios for _ in range(w)]
        n = 0
        while not self.stop.is_set():
            self.rng.choice(pick)()
            n += 1
            if n % 40 == 0:  # connection churn: a new keep-alive connection now and then
                self.conn.close()
        self.conn.close()


class StreamHolder(Worker):
    """Holds GET SSE streams on sessions, one at a time, and counts their notifications."""

    def hold_one(self):
        h = self.open_session("stream_init")
        if h is None:
            return
        u = urllib.parse.urlsplit(self.url)
        self.stats.pace()
        try:
            s = socket.create_connection((u.hostname, u.port or 80), timeout=10)
        except OSError as e:
            self.stats.record("get_stream", "-", False, f"connect: {e}")
            return
        try:
            req = (
                f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                f"Accept: text/event-stream\r\nMcp-Session-Id: {h['mcp-session-id']}\r\n"
                f"MCP-Protocol-Version: {LEGACY}\r\n\r\n"
            )
            s.sendall(req.encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
                self.stats.record("get_stream", "-", False, head[:200])
                return
            self.stats.record("get_stream", "-", True)
            deadline = time.monotonic() + self.rng.uniform(5, 60)
            s.settimeout(0.5)
            seen = rest.count(b"list_changed")
            while time.monotonic() < deadline and not self.stop.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except OSError as e:
                    self.stats.record("stream_held", "-", False, f"read: {e}")
                    return
                if not chunk:
                    self.stats.record("stream_held", "-", False, "closed by the gateway")
                    return
                seen += chunk.count(b"list_changed")
            self.stats.notified(seen)
            self.stats.record("stream_held", "-", True)
        finally:
            s.close()
        if self.rng.random() < 0.75:
            self.delete(h)

    def run(self):
        while not self.stop.is_set():
            self.hold_one()
        self.conn.close()


def discover_resources(url, stats):
    """(backend, uri) of each backend's `static-text` resource, from resources/list."""
    w = Worker(url, stats, threading.Event(), random.Random(0), [])
    h = w.open_session()
    if h is None:
        raise SystemExit("soak_load.py: cannot open a session to list resources")
    status, hdrs, data = w.conn.request("POST", rpc(99, "resources/list"), h)
    answer, _ = answer_of(hdrs, data, 99)
    out = []
    for r in (answer or {}).get("result", {}).get("resources", []):
        for b in CALL_BACKENDS:
            if "static-text" in r["uri"] and f"/{b}/" in r["uri"]:
                out.append((b, r["uri"]))
    w.delete(h)
    w.conn.close()
    if not out:
        raise SystemExit(f"soak_load.py: no static-text resource listed: {data[:300]!r}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stats = Stats(a.out, a.rate)
    t0 = time.monotonic()
    resources = discover_resources(a.url, stats)
    threads = [
        threading.Thread(
            target=Worker(a.url, stats, stop, random.Random(a.seed * 1000 + k), resources).run,
            daemon=True,
        )
        for k in range(a.workers)
    ] + [
        threading.Thread(
            target=StreamHolder(a.url, stats, stop, random.Random(a.seed * 2000 + k), []).run,
            daemon=True,
        )
        for k in range(a.streams)
    ]
    for t in threads:
        t.start()

    def write_status():
        snap = stats.snapshot(t0)
        line = f"{snap['elapsed']} {snap['requests']} {snap['errors']} {snap['notifications']}\n"
        for name, text in (("status", line), ("status.json", json.dumps(snap, indent=1))):
            tmp = os.path.join(a.out, f".{name}.tmp")
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, os.path.join(a.out, name))

    while not stop.is_set() and time.monotonic() - t0 < a.duration:
        write_status()
        stop.wait(1.0)
    stop.set()
    # Workers finish their exchange in flight (each bounded by the 15 s client timeout).
    for t in threads:
        t.join(timeout=20)
    write_status()
    stats.err_file.close()


if __name__ == "__main__":
    main()
