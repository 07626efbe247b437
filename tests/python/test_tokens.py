"""Token accounting (`[metrics] tokens`) through the real binary, both drivers, with the
official MCP Python SDK as the client and the reference Prometheus parser on the scrape.

The exact count of one answer is checked in Rust against tiktoken-rs (`src/tokens.rs`; the
Python `tiktoken` package fetches its tables from the network, which tests do not reach).
Here: every list and call a client was served is counted once, under the right method,
server and tool; a bigger answer counts more tokens by about the size of the added text;
the search meta tools are counted as the gateway's own answers; error answers are not
counted; and with the option off (the default) the families do not exist.
"""

from __future__ import annotations

import time

import httpx
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway

SERVED = "only1mcp_tokens_served"
COUNTED = "only1mcp_token_counted_responses"


def scrape(base: str) -> dict:
    r = httpx.get(f"{base}/metrics", timeout=5.0)
    assert r.status_code == 200, r.text
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample(fams: dict, family: str, **labels: str) -> float:
    if family not in fams:
        return 0.0
    return sum(s.value for s in fams[family].samples
               if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()))


async def traffic(url: str) -> int:
    """Runs the traffic; returns how often the long echo's words appear in its result."""
    async def session(mode: str):
        client = httpx.AsyncClient(headers={"X-MCP-Discovery": mode}, timeout=20)
        return client, streamable_http_client(url, http_client=client)

    client, transport = await session("full")
    async with client, transport as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        await s.list_tools()
        await s.call_tool("demo__echo", {"message": "x"})
        long = await s.call_tool("demo__echo", {"message": "word " * 200})
        copies = long.model_dump_json(by_alias=True).count("word " * 199)
        with pytest.raises(MCPError):
            await s.call_tool("demo__nope", {})
    client, transport = await session("search")
    async with client, transport as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        assert [t.name for t in (await s.list_tools()).tools][0] == "search_tools"
        await s.call_tool("search_tools", {"query": "add two numbers"})
        await s.call_tool("call_tool", {"name": "demo__add", "arguments": {"a": 1, "b": 2}})
    return copies


@pytest.mark.parametrize("driver", DRIVERS)
def test_tokens_served_are_counted_per_list_and_per_call(driver: str, tmp_path) -> None:
    cfg = '[metrics]\ntokens = "o200k"\n\n' + config_text(demo_stdio("demo"))
    with running_gateway(driver, cfg, tmp_path, "tok", {"demo": "ready"}, ["--name demo"]) as gw:
        copies = run(traffic, gw.url)
        assert copies >= 1
        # The tokenizer thread counts asynchronously, and /metrics is rendered every 500 ms.
        deadline = time.monotonic() + 10
        while True:
            fams = scrape(gw.base)
            done = sample(fams, COUNTED, method="tools/call", server="demo", name="add") >= 1
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Shards report their request counters every 500 ms: let the next report land.
        time.sleep(1.2)
        fams = scrape(gw.base)

        def tokens(**labels: str) -> float:
            return sample(fams, SERVED, encoding="o200k", **labels)

        def answers(**labels: str) -> float:
            return sample(fams, COUNTED, encoding="o200k", **labels)

        # Every list served ok is counted once (the SDK may list on its own, so compare with
        # the request counter rather than a guess).
        lists_ok = sum(s.value for s in fams["only1mcp_requests"].samples
                       if s.labels.get("method") == "tools/list" and s.labels.get("outcome") == "ok"
                       and s.name.endswith("_total"))
        assert lists_ok >= 2
        assert answers(method="tools/list", server="") == lists_ok
        # The full list of the demo server's 11 tools is far more than the three meta tools.
        assert tokens(method="tools/list") > 11 * 20 * lists_ok / 2

        assert answers(method="tools/call", server="demo", name="echo") == 2
        echo = tokens(method="tools/call", server="demo", name="echo")
        # Two echo answers, "x" and 200 words (in the result `copies` times): the words are
        # about 200 o200k tokens a copy, the rest of each answer a few dozen.
        assert 200 * copies < echo < 200 * copies + 2 * 60, (echo, copies)
        assert answers(method="tools/call", name="nope") == 0, "an error answer is not counted"

        assert answers(method="tools/call", server="", name="search_tools") == 1
        assert tokens(method="tools/call", server="", name="search_tools") > 10
        # call_tool is counted under the tool it called.
        assert answers(method="tools/call", server="demo", name="add") == 1
        assert answers(name="call_tool") == 0
        assert sample(fams, "only1mcp_token_accounting_dropped") == 0


@pytest.mark.parametrize("driver", DRIVERS)
def test_token_accounting_is_off_by_default(driver: str, tmp_path) -> None:
    with running_gateway(driver, config_text(demo_stdio("demo")), tmp_path, "notok",
                         {"demo": "ready"}, ["--name demo"]) as gw:
        run(traffic, gw.url)
        fams = scrape(gw.base)
        assert SERVED not in fams and COUNTED not in fams
