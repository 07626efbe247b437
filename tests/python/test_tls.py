"""TLS termination on the listener (`[server.tls]`), on both drivers: a certificate made in
the test (self-signed, for 127.0.0.1), the official MCP SDK connecting over https with that
certificate as its only trust anchor, and a plain-HTTP or untrusting client failing.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import subprocess
import time
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from conftest import BIN, DRIVERS, demo_stdio, config_text, run, text_of, _stop

READY = re.compile(r"only1mcp-uring listening on (https://127\.0\.0\.1:\d+/mcp)")


def self_signed(dir: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "only1mcp-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = dir / "cert.pem", dir / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("driver", DRIVERS)
def test_mcp_over_tls_with_the_official_sdk(driver: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    cfg = tmp_path / "tls.toml"
    cfg.write_text(
        f'[server.tls]\ncert = "{cert}"\nkey = "{key}"\n[metrics]\nsocket_enabled = false\n'
        + config_text(demo_stdio("demo")).replace('[server]\nhost = "127.0.0.1"\n', "")
    )
    log = tmp_path / "gw.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [str(BIN), "start", "--config", str(cfg), "--port", "0", "--cores", "2",
             "--driver", driver],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = READY.search(line)
        assert m, f"{line!r}\n{log.read_text()}"
        url = m.group(1)
        base = url.removesuffix("/mcp")
        trust = ssl.create_default_context(cafile=str(cert))
        # Wait for the backend, over TLS.
        deadline = time.monotonic() + 20
        while True:
            h = httpx.get(f"{base}/health", verify=trust, timeout=5).json()
            if h["status"] == "ok" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert h["status"] == "ok", h

        async def body() -> tuple[list[str], str]:
            client = httpx.AsyncClient(verify=trust, timeout=10)
            async with client, streamable_http_client(url, http_client=client) as (r, w), \
                    ClientSession(r, w) as session:
                await session.initialize()
                tools = [t.name for t in (await session.list_tools()).tools]
                echoed = await session.call_tool("demo__echo", {"message": "over tls"})
                return tools, text_of(echoed)

        tools, echoed = run(body)
        assert "demo__echo" in tools and echoed == "over tls"
        # A client that does not trust the certificate refuses the connection...
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health", timeout=5)
        # ... and plain HTTP to the TLS port gets no HTTP answer.
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            httpx.get(f"{base.replace('https', 'http')}/health", timeout=5)
        # The gateway is still serving after both.
        assert httpx.get(f"{base}/health", verify=trust, timeout=5).status_code == 200
    finally:
        status, killed = _stop(proc, 15)
    assert not killed and status == 0, log.read_text()
