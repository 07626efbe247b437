"""`Mcp-Param-*` headers (2026-07-28, SEP-2243) with the official Python SDK on both sides of
the gateway, both drivers.

The SDK's 2026 `Client` mirrors a listed tool's `x-mcp-header` arguments into `Mcp-Param-*`
headers, which the gateway checks; behind the gateway, a real SDK server
(`backends/mirrored_http_server.py`, `MCPServer` over Streamable HTTP) refuses a call whose
headers disagree with its body, so its answer proves the gateway sent it the headers of its
own tool (`locate`, which the gateway shows renamed as `py__where`) computed from the body. The
demo server's conformance fixture (`test_header_param`) is the second backend.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp.client.client import Client

from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway, server_block, text_of

BACKEND = Path(__file__).parent / "backends" / "mirrored_http_server.py"
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def mirrored_backend(tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "mirrored.log", "wb")
    proc = subprocess.Popen([sys.executable, str(BACKEND), str(port)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the SDK server did not start")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def config(backend_url: str) -> str:
    return config_text(
        server_block("py", transport="http", url=backend_url)
        + '[servers.rename]\nlocate = "where"\n',
        demo_stdio("demo") + 'env = { DEMO_CONFORMANCE = "1" }\n',
    )


def test_sdk_client_and_sdk_server_agree_through_a_renaming_gateway(
        driver: str, tmp_path: Path, mirrored_backend: str) -> None:
    with running_gateway(driver, config(mirrored_backend), tmp_path, "mcpparams",
                         {"py": "ready", "demo": "ready"}, []) as gw:
        async def body() -> None:
            async with Client(gw.url, mode="auto") as client:
                assert client.session.discover_result is not None, "not a 2026 session"
                tools = {t.name: t for t in (await client.list_tools()).tools}
                schema = tools["py__where"].input_schema["properties"]
                assert schema["region"]["x-mcp-header"] == "Region", schema
                # Non-ASCII (Base64 on the wire both ways), an integer, an unmirrored one.
                result = await client.call_tool("py__where",
                                                {"region": "Zürich", "shard": 7, "note": "n"})
                assert text_of(result) == "region=Zürich shard=7 note=n", result
                result = await client.call_tool("demo__test_header_param", {"region": "eu-1"})
                assert text_of(result) == "Region: eu-1", result

        run(body)


def test_a_header_that_disagrees_is_refused_with_the_request_id(
        driver: str, tmp_path: Path, mirrored_backend: str) -> None:
    with running_gateway(driver, config(mirrored_backend), tmp_path, "mcpparams",
                         {"py": "ready", "demo": "ready"}, []) as gw:
        def post(rid: int, args: dict, headers: dict[str, str]) -> httpx.Response:
            body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                    "params": {"name": "py__where", "arguments": args, "_meta": META}}
            return httpx.post(gw.url, content=json.dumps(body), timeout=10.0, headers={
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2026-07-28",
                "mcp-method": "tools/call",
                "mcp-name": "py__where",
                **headers,
            })

        ok = post(1, {"region": "eu", "shard": 3}, {"Mcp-Param-Region": "eu", "Mcp-Param-Shard": "3.0"})
        assert ok.status_code == 200, ok.text
        assert "region=eu shard=3" in ok.text
        for rid, args, headers, why in [
            (2, {"region": "eu"}, {}, "Mcp-Param-Region is missing"),
            (3, {"region": "eu"}, {"Mcp-Param-Region": "us"}, "does not match"),
            (4, {"region": "eu", "shard": 3}, {"Mcp-Param-Region": "eu", "Mcp-Param-Shard": "4"},
             "Mcp-Param-Shard does not match"),
            (5, {"region": "eu"}, {"Mcp-Param-Region": "eu", "Mcp-Param-Shard": "1"},
             "Mcp-Param-Shard is sent but the argument is not"),
            (6, {"region": "eu"}, {"Mcp-Param-Region": "=?base64?ZXU?="}, "not valid"),
        ]:
            r = post(rid, args, headers)
            assert r.status_code == 400, (rid, r.text)
            err = r.json()
            assert err["id"] == rid and err["error"]["code"] == -32020, err
            assert why in err["error"]["message"], err
            # The gateway's answer, not the backend's (whose messages are worded otherwise).
            assert "(x-mcp-header)" in err["error"]["message"], err
