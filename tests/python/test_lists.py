"""Large merged lists, written from the shared pre-rendered bytes (`shards/src/route/lists.rs`:
pages of 16 KiB or more are not copied per request), through the real binary on both drivers,
in both eras. Eight demo servers give 88 tools (about 22 KiB of JSON): the whole list and an
80-tool page take the shared path, a 30-tool page the copy path. Checked: the official SDK
reads every tool exactly once through the cursor walk; on the wire, `Content-Length` is the
body's length and the body is one valid JSON-RPC response; the 2026-07-28 answer carries its
`resultType`/`ttlMs`/`cacheScope` around the shared bytes.
"""

from __future__ import annotations

import json

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

pytest.register_assert_rewrite("authkit")

from authkit import Raw, rpc_result  # noqa: E402
from conftest import DRIVERS, config_text, demo_stdio, list_all_tools, run, running_gateway  # noqa: E402

IDS = [f"d{i}" for i in range(8)]


def cfg(page_size: int) -> str:
    text = config_text(*(demo_stdio(i) for i in IDS))
    return text.replace("[proxy]\n", f"[proxy]\nlist_page_size = {page_size}\n")




@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("page_size", [0, 80, 30])
def test_large_lists_are_whole_and_valid_in_both_eras(driver: str, page_size: int, tmp_path) -> None:
    async def sdk(url: str) -> list[str]:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            return [t.name for t in await list_all_tools(s)]

    expected = {i: "ready" for i in IDS}
    with running_gateway(driver, cfg(page_size), tmp_path, f"lists{page_size}", expected,
                         ["--name d0"]) as gw:
        names = run(sdk, gw.url)
        assert len(names) == 88 and len(set(names)) == 88, names
        with Raw(gw.url) as raw:
            r = raw.modern("tools/list", {})
            assert r.status_code == 200, r.text[:300]
            # On the wire: gzip for these large pages (httpx offers it), so the raw byte count.
            assert int(r.headers["content-length"]) == r.num_bytes_downloaded
            # The page's items alone pass SHARED_MIN (16 KiB) on the shared path, not on the other.
            shared = page_size in (0, 80)
            assert (len(r.content) > 16 * 1024 + 200) == shared, len(r.content)
            msg = json.loads(r.content)
            result = msg["result"]
            assert result["resultType"] == "complete" and result["cacheScope"] == "public"
            assert isinstance(result["ttlMs"], int)
            want = 88 if page_size == 0 else page_size
            assert len(result["tools"]) == want
            assert ("nextCursor" in result) == (page_size not in (0,))
            seen = [t["name"] for t in rpc_result(r)["tools"]]
            cursor = result.get("nextCursor")
            while cursor:
                page = rpc_result(raw.modern("tools/list", {"cursor": cursor}))
                seen += [t["name"] for t in page["tools"]]
                cursor = page.get("nextCursor")
            assert sorted(seen) == sorted(names)
