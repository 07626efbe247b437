"""gzip list pages with the official SDK (`shards/src/route/lists_gz.rs`): a 5,000-tool
catalogue listed through the gateway on both drivers. httpx, under the SDK's Streamable HTTP
client, sends `Accept-Encoding: gzip` on its own; checked: it does, the large `tools/list`
pages came back gzip on the wire (fewer bytes downloaded than decoded), the SDK reads every
tool exactly once, and the gateway's `only1mcp_list_gzip_answers_total` counted them. The
2026-07-28 era with httpx directly; and a client that refuses gzip (`identity`) gets the
same bytes uncompressed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("authkit")

from authkit import Raw, message_of  # noqa: E402
from conftest import DRIVERS, config_text, list_all_tools, mcp_session, run, running_gateway  # noqa: E402

BIG = (
    '[[servers]]\nid = "big"\ntransport = "stdio"\ncommand = "$self"\n'
    'args = ["demo-server", "--stdio", "--name", "big"]\n'
    'env = { DEMO_EXTRA_TOOLS = "4989", DEMO_PAGE_SIZE = "1000" }\n'
)


def cfg() -> str:
    return config_text(BIG).replace("[proxy]\n", "[proxy]\nlist_page_size = 2000\n")


def metric(base: str, name: str) -> int:
    text = httpx.get(f"{base}/metrics", timeout=5.0).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    raise AssertionError(f"no {name} in /metrics")


@pytest.mark.parametrize("driver", DRIVERS)
def test_sdk_lists_a_5000_tool_catalogue_over_gzip(driver: str, tmp_path) -> None:
    seen: list[dict[str, Any]] = []

    def on_response(response: Any) -> None:
        try:
            method = json.loads(response.request.content).get("method")
        except (ValueError, AttributeError):
            return
        if method == "tools/list":
            seen.append({
                "asked": response.request.headers.get("accept-encoding", ""),
                "encoding": response.headers.get("content-encoding"),
                "vary": response.headers.get("vary"),
                "wire": int(response.headers.get("content-length", "0")),
            })

    async def sdk(url: str) -> list[str]:
        async with mcp_session(url, on_response) as s:
            return [t.name for t in await list_all_tools(s)]

    with running_gateway(driver, cfg(), tmp_path, "gzip", {"big": "ready"}, ["--name big"]) as gw:
        names = run(sdk, gw.url)
        assert len(names) == 5000 and len(set(names)) == 5000
        assert len(seen) == 3, seen  # pages of 2,000, 2,000 and 1,000
        for page in seen:
            assert "gzip" in page["asked"].lower(), page  # httpx offers gzip by default
            assert page["encoding"] == "gzip" and page["vary"] == "accept-encoding", page
        deadline = time.monotonic() + 5
        while metric(gw.base, "only1mcp_list_gzip_answers_total") < 3:
            assert time.monotonic() < deadline, "the gateway did not count its gzip answers"
            time.sleep(0.1)

        with Raw(gw.url) as raw:
            gz = raw.modern("tools/list", {})
            plain = raw.modern("tools/list", {}, headers={"Accept-Encoding": "identity"})
        assert gz.status_code == plain.status_code == 200
        assert gz.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        # Wire bytes: Content-Length is what came over the socket, compressed or not.
        assert int(gz.headers["content-length"]) == gz.num_bytes_downloaded
        assert int(plain.headers["content-length"]) == plain.num_bytes_downloaded
        assert gz.num_bytes_downloaded * 4 < plain.num_bytes_downloaded
        # The ids differ, so compare the results: the same page either way.
        assert message_of(gz)["result"] == message_of(plain)["result"]
        assert len(message_of(gz)["result"]["tools"]) == 2000
