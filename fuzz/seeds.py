#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, taken from the tests and the demo server.

Reads the JSON-RPC messages, HTTP requests, header values, tokens, JWKS documents and config
files that the Rust tests (tests/, shards/src, src/), the Python tests (tests/python) and the
demo server (demo/src) use, and writes them, framed for each target, as files named by their
SHA-1 (libFuzzer's naming) into OUT/<target>/ (default: fuzz/seeds). A run then starts from
the seeds plus the committed corpus and minimises both into fuzz/corpus (fuzz/run.sh).

Usage: python3 fuzz/seeds.py [OUT]
"""

import ast
import base64
import hashlib
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "seeds"
PER_TARGET = 300


def sources(exts, dirs):
    for d in dirs:
        for p in sorted((ROOT / d).rglob("*")):
            if p.suffix in exts and p.is_file() and "target" not in p.parts:
                yield p


def rust_strings(text):
    """Rust string literal contents: raw strings as written, plain ones unescaped."""
    for m in re.finditer(r'b?r(#+)"(.*?)"\1', text, re.S):
        yield m.group(2)
    for m in re.finditer(r'(?<![r#\w])b?"((?:[^"\\]|\\.)*)"', text, re.S):
        s = m.group(1)
        s = re.sub(r"\\\n\s*", "", s)
        s = (s.replace('\\"', '"').replace("\\n", "\n").replace("\\r", "\r")
             .replace("\\t", "\t").replace("\\\\", "\\"))
        yield s


def json_objects(text):
    """Every JSON object that starts somewhere in `text`, as (its text, its value)."""
    dec = json.JSONDecoder()
    for i, c in enumerate(text):
        if c != "{":
            continue
        try:
            v, end = dec.raw_decode(text, i)
        except ValueError:
            continue
        if isinstance(v, dict):
            yield text[i:end], v


def python_dicts(path):
    try:
        tree = ast.parse(path.read_text())
    except (SyntaxError, UnicodeDecodeError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            try:
                v = ast.literal_eval(node)
            except (ValueError, SyntaxError, TypeError):
                continue
            try:
                yield json.dumps(v), v
            except (TypeError, ValueError):
                continue


messages, results, http_texts, tomls, b64_values = {}, {}, set(), set(), set()
for p in sources({".rs"}, ["tests", "shards/src", "src", "demo/src"]):
    text = p.read_text(errors="replace")
    for s in rust_strings(text):
        if re.match(r"(GET|POST|DELETE|PUT|HEAD|OPTIONS) ", s):
            http_texts.add(s)
        if "=?base64?" in s:
            b64_values.add(s)
        if re.search(r"^\s*\[[a-z_.\[\]]+\]\s*$", s, re.M) and "=" in s:
            tomls.add(s)
        for raw, v in json_objects(s):
            if "jsonrpc" in v:
                messages.setdefault(raw, v)
            elif any(k in v for k in ("tools", "prompts", "resources", "resourceTemplates")):
                results.setdefault(raw, v)
for p in sources({".py"}, ["tests/python"]):
    for raw, v in python_dicts(p):
        if "jsonrpc" in v:
            messages.setdefault(raw, v)
        elif any(k in v for k in ("tools", "prompts", "resources")):
            results.setdefault(raw, v)
for p in sources({".toml"}, ["config"]):
    tomls.add(p.read_text())
for block in re.findall(r"```toml\n(.*?)```", (ROOT / "docs/configuration.md").read_text(), re.S):
    tomls.add(block)

msgs = sorted(messages)
responses = [m for m in msgs if "result" in messages[m] or "error" in messages[m]]
requests = [m for m in msgs if "method" in messages[m]]
corpus = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    corpus.setdefault(target, {})[hashlib.sha1(data).hexdigest()] = data


def fill(s):
    """Replaces format! placeholders of a Rust HTTP string with plausible values."""
    return re.sub(r"\{[^{}]*\}", "127.0.0.1:8080", s)


for m in msgs:
    for t in ("envelope", "envelope_differential", "scan_members"):
        add(t, m)
    add("envelope_differential", json.dumps(messages[m], indent=1))
# Batches (2025-03-26 sessions): the messages in arrays, alone, in pairs, and bad elements.
for i, m in enumerate(msgs):
    add("batch", "[" + m + "]")
    add("batch", "[ " + m + " , " + msgs[(i + 1) % len(msgs)] + " ]")
for bad in ("[]", " [ ] ", "[1,\"x\",[],null]", "[[{}]]", "[{},", "[1] x", "[" + "1," * 20 + "1]"):
    add("batch", bad)
for m in responses + requests:
    add("backend_message", m)
    add("backend_message", m + "\r")

# HTTP requests: the tests' own, and every request body framed each way.
heads = [fill(h) for h in http_texts]
base = ("POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ncontent-type: application/json\r\n"
        "accept: application/json, text/event-stream\r\n")
extra = ["", "mcp-session-id: 0123456789abcdef0123456789abcdef\r\n",
         "mcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: =?base64?SGVsbG8=?=\r\n",
         "authorization: Bearer the-api-key\r\nx-tenant: t1\r\n", "expect: 100-continue\r\n",
         "connection: close\r\nlast-event-id: 3-7\r\norigin: http://localhost\r\n"]
for i, m in enumerate(requests[:60]):
    b = m.encode()
    e = extra[i % len(extra)]
    length = (base + e + f"content-length: {len(b)}\r\n\r\n").encode() + b
    half = len(b) // 2
    chunked = (base + e + "transfer-encoding: chunked\r\n\r\n").encode() + \
        f"{half:x}\r\n".encode() + b[:half] + f"\r\n{len(b) - half:x};ext=1\r\n".encode() + \
        b[half:] + b"\r\n0\r\n\r\n"
    heads.append(length.decode())
    for req in (length, chunked, length + chunked):
        add("http_request", b"\x00" + req)
        add("http_request", bytes([7 + i % 50]) + req)
    add("http_head", length)
# Chunk sizes at and past the body limit and the integer widths.
for size in ("4000", "ffffffff", "fffffffffffffff0", "10000000000000000", "0;a=b", "1 ", "+1"):
    req = (base + "transfer-encoding: chunked\r\n\r\n" + f"1\r\nx\r\n{size}\r\nx\r\n0\r\n\r\n").encode()
    add("http_request", b"\x00" + req)
    add("http_request", b"\x05" + req)
for h in heads:
    add("http_head", h)
    add("http_request", b"\x00" + h.encode())
add("http_head", "GET /mcp HTTP/1.1\r\nhost: a\r\naccept: text/event-stream\r\n"
    "authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsIm9yZyI6eyJpZCI6N319.x\r\n\r\n")

# Backend responses: JSON, chunked, SSE (until close and chunked).
for i, m in enumerate(responses[:60]):
    b = m.encode()
    sid = "mcp-session-id: s-1\r\n" if i % 2 else ""
    json_resp = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{sid}content-length: {len(b)}\r\n\r\n".encode() + b
    chunked = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{len(b):x}\r\n".encode() + b + b"\r\n0\r\n\r\n"
    ev = b"event: message\r\nid: 1-" + str(i).encode() + b"\r\ndata: " + b + b"\r\n\r\n"
    sse = f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{sid}connection: close\r\n\r\n".encode() + b": ping\n\n" + ev
    sse_chunked = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" + \
        f"{len(ev):x}\r\n".encode() + ev + b"\r\n0\r\n\r\n"
    for resp in (json_resp, chunked, sse, sse_chunked):
        add("http_response", b"\x00" + resp)
        add("http_response", bytes([3 + i % 60]) + resp)
    add("sse", b"\x00" + ev + b"data: a\ndata: b\n\n")
    add("sse", bytes([5 + i % 60]) + b": c\n\n" + ev)
for ep in ("/messages/?session_id=1", "messages?x", "http://127.0.0.1:9/m", "http://elsewhere/m"):
    add("sse", b"\x00event: endpoint\ndata: " + ep.encode() + b"\n\n")
    add("sse", b"\x09event: endpoint\r\ndata: " + ep.encode() + b"\r\n\r\n")

# stdio: a child's stdout, several messages per read, CRLF and blank lines mixed in.
for i in range(0, min(len(msgs), 120), 3):
    group = msgs[i:i + 3]
    add("stdio_lines", bytes([i % 64]) + ("\n".join(group) + "\n").encode())
    add("stdio_lines", bytes([1 + i % 63]) + ("\r\n\n".join(group) + "\r\n").encode())
add("stdio_lines", b"\x10" + b"x" * 300 + b"\n" + msgs[0].encode() + b"\n")

# Header values.
for v in sorted(b64_values):
    for part in re.findall(r"=\?base64\?[^\"?]*\?=", v) or [v]:
        add("mcp_headers", part)
for name in ("demo2__whoami", "a__b", "日本語", " padded ", "test://static/resource/1", "x\r\ny"):
    add("mcp_headers", name)
    add("mcp_headers", "=?base64?" + base64.b64encode(name.encode()).decode() + "?=")
for sid in ("0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef",
            " 0123456789abcdef0123456789abcdef ", "1-2", "18446744073709551615-0", "x-1"):
    add("session_id", sid)

# Cursors: list size, page size, then the cursor value as JSON.
for n, p, v in ((10, 3, '"o1m-3"'), (10, 0, '"o1m-0"'), (5, 5, '"o1m-5"'), (0, 0, '"o1m-0"'),
                (39, 7, '"o1m-35"'), (3, 1, '"abc"'), (3, 1, "null"), (3, 1, "7"),
                (3, 1, '"o1m-\\u0031"')):
    add("cursor", bytes([n, p]) + v.encode())

# requestState, in a retry and alone.
for s in ("o1m1.0.5.0123456789abcdef", "o1m1.3.18446744073709551615.ffffffffffffffff",
          "o1m1.0.1", "elsewhere-state"):
    add("request_state", s)
    add("request_state", json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "a__b", "requestState": s, "inputResponses": {"input": {"action": "accept"}}}}))

# Tokens: the raw header (even first byte), or header and claims to sign (odd).
for v in ("Bearer the-api-key", "bearer  the-api-key ", "Bearer a.b.c", "Basic dXNlcjpwYXNz",
          "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0."):
    add("jwt", b"\x00" + v.encode())
claims = {"sub": "alice", "iss": "https://idp", "aud": "http://127.0.0.1:8080/mcp",
          "exp": 4102444800, "realm": {"roles": ["reader", "ops"]}, "scope": "mcp mcp:read"}
for hdr in ({"alg": "HS256", "typ": "JWT"}, {"alg": "HS256", "kid": "k1"}, {"alg": "RS256"}):
    for c in (claims, dict(claims, exp=1), dict(claims, aud=["x", "http://127.0.0.1:8080/mcp"]),
              dict(claims, scp=["mcp"], scope=None), dict(claims, nbf=4102444000)):
        add("jwt", b"\x01" + json.dumps(hdr).encode() + b"\n" + json.dumps(c).encode())

# JWKS documents.
for s in (ROOT / "shards/src/auth/keys.rs").read_text().split('br#"')[1:]:
    add("jwks", s.split('"#')[0])
add("jwks", '{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"o1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}')
add("jwks", '{"keys":[{"kty":"RSA","kid":"r2","use":"enc","n":"AQAB","e":"AQAB"}]}')

# Config files.
for t in sorted(tomls):
    add("config", t)

# List results.
for raw, v in sorted(results.items()):
    add("backend_lists", raw)
add("backend_lists", json.dumps({
    "tools": [{"name": "t1", "inputSchema": {"type": "object"}}, {"name": "a__b"}],
    "prompts": [{"name": "p1"}], "resources": [{"uri": "file:///a", "name": "a"}],
    "resourceTemplates": [{"uriTemplate": "file:///{x}", "name": "x"}], "nextCursor": "n1"}))

for target, files in sorted(corpus.items()):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(files.items())[:PER_TARGET]:
        (d / name).write_bytes(data)
    print(f"{target}: {min(len(files), PER_TARGET)} seeds")
