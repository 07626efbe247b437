"""The per-shard response cache and single-flight batcher (`[cache]`) through the real binary,
both drivers. Backend calls are counted by the gateway's own `only1mcp_backend_calls_total`
(every call that reached the demo backend), so "served from the cache" means "the backend
was not called".

- The official Python SDK on one 2025-era session (one owner shard): a read-only idempotent
  tool and a resource are fetched from the backend once; eight identical calls in flight
  become one backend call (`only1mcp_coalesced_requests_total` 7); a tool error, a tool not
  annotated idempotent, and other arguments are not served from the cache.
- Stateless 2026-07-28 requests over one keep-alive connection (one shard) with three API
  keys: two principals of one role share entries, another role never gets them.
- Entries expire after `ttl_ms` and die with a config reload; the cache is off by default.
"""

from __future__ import annotations

import hashlib
import time

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.openmetrics.parser import text_string_to_metric_families

pytest.register_assert_rewrite("authkit")

from authkit import Raw, rpc_result  # noqa: E402
from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway, text_of  # noqa: E402

CACHE = '[cache]\nenabled = true\ntools = true\n'


def scrape(base: str, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(f"{base}/metrics", timeout=5.0, headers=headers)
    assert r.status_code == 200, r.text
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def total(fams: dict, family: str, **labels: str) -> float:
    if family not in fams:
        return 0.0
    return sum(s.value for s in fams[family].samples
               if s.name.endswith("_total") or s.name == family
               if all(s.labels.get(k) == v for k, v in labels.items()))


def settled(base: str, token: str | None = None) -> dict:
    """The scrape after the shards' next 500 ms report (`/metrics` needs the same auth)."""
    time.sleep(1.2)
    return scrape(base, token)


def calls(fams: dict, tool: str, method: str = "tools/call") -> float:
    return total(fams, "only1mcp_backend_calls", server="demo", method=method, tool=tool)


@pytest.mark.parametrize("driver", DRIVERS)
def test_cacheable_results_are_served_once_and_identical_calls_coalesce(driver: str, tmp_path) -> None:
    # DEMO_CONFORMANCE: the demo server also serves its fixture's resources.
    cfg = CACHE + config_text(demo_stdio("demo") + 'env = { DEMO_CONFORMANCE = "1" }\n')

    async def body(url: str) -> dict:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            out: dict = {}
            out["sums"] = [text_of(await s.call_tool("demo__add", {"a": 1, "b": 2})) for _ in range(3)]
            out["other"] = text_of(await s.call_tool("demo__add", {"a": 1, "b": 3}))
            for _ in range(2):  # not idempotent: never cached
                await s.call_tool("demo__now", {})
                # a tool error is not cached
                assert (await s.call_tool("demo__big", {"kb": 0})).is_error
            uri = next(r.uri for r in (await s.list_resources()).resources if "static-text" in str(r.uri))
            out["reads"] = [(await s.read_resource(uri)).contents[0].text for _ in range(3)]
            results: list = [None] * 8

            async def one(i: int) -> None:
                res = await s.call_tool("demo__big", {"kb": 1, "delay_ms": 400})
                results[i] = text_of(res)

            async with anyio.create_task_group() as tg:
                for i in range(8):
                    tg.start_soon(one, i)
            out["big"] = results
            return out

    with running_gateway(driver, cfg, tmp_path, "cache", {"demo": "ready"}, ["--name demo"]) as gw:
        out = run(body, gw.url)
        fams = settled(gw.base)
        assert out["sums"] == ["3", "3", "3"] and out["other"] == "4"
        assert calls(fams, "add") == 2, "1+2 once, 1+3 once"
        assert calls(fams, "now") == 2
        assert calls(fams, "big") == 2 + 1, "two tool errors, then eight identical calls as one"
        assert len(set(out["reads"])) == 1 and out["reads"][0]
        assert calls(fams, "", "resources/read") == 1
        assert out["big"] == ["x" * 1024] * 8
        assert total(fams, "only1mcp_coalesced_requests", method="tools/call") == 7
        assert total(fams, "only1mcp_cache_hits", method="tools/call") == 2
        assert total(fams, "only1mcp_cache_hits", method="resources/read") == 2
        # Misses: add x2, big(kb=0) x2, the 8 concurrent bigs; reads: 1.
        assert total(fams, "only1mcp_cache_misses", method="tools/call") == 2 + 2 + 8
        assert total(fams, "only1mcp_cache_entries") == 4  # add(1,2), add(1,3), big(kb=1), the read


SUPPORT_A, SUPPORT_B, OPS = "k-support-a-0123456789", "k-support-b-0123456789", "k-ops-0123456789"


def auth_config() -> str:
    def key(name: str, secret: str, role: str) -> str:
        return (f'[[auth.api_keys]]\nname = "{name}"\n'
                f'sha256 = "{hashlib.sha256(secret.encode()).hexdigest()}"\nroles = ["{role}"]\n')

    return ('[auth]\nmode = "api_key"\n' + key("alice", SUPPORT_A, "support")
            + key("bob", SUPPORT_B, "support") + key("olga", OPS, "ops")
            + '[[auth.roles]]\nname = "support"\n[[auth.roles]]\nname = "ops"\n')


@pytest.mark.parametrize("driver", DRIVERS)
def test_entries_are_shared_within_a_role_and_never_across_roles(driver: str, tmp_path) -> None:
    cfg = auth_config() + CACHE + config_text(demo_stdio("demo"))
    with running_gateway(driver, cfg, tmp_path, "cacherbac", {"demo": "ready"}, ["--name demo"]) as gw:
        with Raw(gw.url) as raw:  # one connection: one shard, so one cache
            def add(token: str) -> str:
                r = raw.modern("tools/call", {"name": "demo__add", "arguments": {"a": 2, "b": 2}},
                               token=token)
                return rpc_result(r)["content"][0]["text"]

            assert [add(SUPPORT_A), add(SUPPORT_B), add(OPS), add(OPS)] == ["4"] * 4
        fams = settled(gw.base, OPS)
        assert calls(fams, "add") == 2, "one call per role: alice fills, bob hits; olga fills her own"
        assert total(fams, "only1mcp_cache_hits", method="tools/call") == 2


@pytest.mark.parametrize("driver", DRIVERS)
def test_entries_expire_and_die_with_a_reload(driver: str, tmp_path) -> None:
    cfg = CACHE.replace("tools = true\n", "tools = true\nttl_ms = 300\n") + config_text(demo_stdio("demo"))

    async def add(url: str, n: int, pause: float) -> None:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            for _ in range(n):
                await s.call_tool("demo__add", {"a": 5, "b": 5})
                await anyio.sleep(pause)

    with running_gateway(driver, cfg, tmp_path, "cachettl", {"demo": "ready"}, ["--name demo"]) as gw:
        run(add, gw.url, 2, 0.5)
        assert calls(settled(gw.base), "add") == 2, "the entry expired after 300 ms"
        # A long TTL, applied by a reload, which also empties the cache.
        path = tmp_path / f"cachettl-{driver}.toml"
        reloads = total(scrape(gw.base), "only1mcp_config_reloads")
        path.write_text(cfg.replace("ttl_ms = 300", "ttl_ms = 60000"))
        deadline = time.monotonic() + 15
        while total(scrape(gw.base), "only1mcp_config_reloads") == reloads:
            assert time.monotonic() < deadline, "the reload was not applied"
            time.sleep(0.2)
        run(add, gw.url, 2, 0.0)
        assert calls(settled(gw.base), "add") == 3, "one fill after the reload, then a hit"


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_cache_is_off_by_default(driver: str, tmp_path) -> None:
    async def add(url: str) -> None:
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            for _ in range(2):
                await s.call_tool("demo__add", {"a": 1, "b": 1})

    with running_gateway(driver, config_text(demo_stdio("demo")), tmp_path, "nocache",
                         {"demo": "ready"}, ["--name demo"]) as gw:
        run(add, gw.url)
        fams = settled(gw.base)
        assert calls(fams, "add") == 2
        assert "only1mcp_cache_hits" not in fams
