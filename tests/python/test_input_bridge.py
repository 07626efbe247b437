"""A 2026-07-28 backend's `input_required` reaches a 2025 session of the official Python SDK
client as the server-to-client requests it knows (its elicitation, sampling and roots
callbacks answer them), and the call completes with the backend's result. The backends speak
2026-07-28 only: the demo server's conformance fixture (`DEMO_LEGACY=0`) and an official-SDK
server whose tools ask through resolvers (`peers/mrtr_resolver_server.py`). Both drivers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway, server_block, text_of

PEER = Path(__file__).parent / "peers" / "mrtr_resolver_server.py"


def config() -> str:
    return config_text(
        demo_stdio("fx") + 'env = { DEMO_CONFORMANCE = "1", DEMO_LEGACY = "0" }\n',
        server_block("sdk", transport="stdio", command=sys.executable, args=[str(PEER)]),
    )


class Asked:
    def __init__(self) -> None:
        self.requests: list[str] = []


def callbacks(asked: Asked) -> dict[str, Any]:
    async def on_elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.requests.append(f"elicit:{params.message}")
        props = params.requested_schema.get("properties", {})
        values = {"name": "Ada", "color": "blue"}
        return types.ElicitResult(action="accept", content={k: values.get(k, "v") for k in props})

    async def on_sample(_ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.requests.append("sample")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="Paris"), model="test-model",
            stop_reason="endTurn",
        )

    async def on_roots(_ctx: Any) -> types.ListRootsResult:
        asked.requests.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri="file:///work", name="work")])

    return dict(elicitation_callback=on_elicit, sampling_callback=on_sample, list_roots_callback=on_roots)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_2026_backends_questions_reach_a_2025_sdk_session_through_its_callbacks(
    driver: str, tmp_path: Path
) -> None:
    async def body(url: str) -> None:
        asked = Asked()
        async with streamable_http_client(url) as (r, w), \
                ClientSession(r, w, **callbacks(asked)) as session:
            await session.initialize()
            cases = [
                ("fx__test_input_required_result_elicitation", "Hello, Ada!",
                 ["elicit:What is your name?"]),
                ("fx__test_input_required_result_sampling", "Sampling result: Paris", ["sample"]),
                ("fx__test_input_required_result_list_roots", "Found 1 root(s)", ["roots"]),
                ("fx__test_input_required_result_multi_round",
                 "Multi-round complete for Ada who likes blue",
                 ["elicit:Step 1: What is your name?", "elicit:Step 2: What is your favorite color?"]),
                ("sdk__greet", "Hello, Ada!", ["elicit:What is your name?"]),
                ("sdk__capital", "The LLM says: Paris", ["sample"]),
                ("sdk__roots", "1 root(s)", ["roots"]),
                ("sdk__everything", "Ada, Paris, 1 root(s)", None),
            ]
            for tool, want, want_asked in cases:
                asked.requests.clear()
                result = await session.call_tool(tool, {})
                assert not result.is_error, (tool, result)
                assert text_of(result) == want, (tool, result)
                if want_asked is not None:
                    assert asked.requests == want_asked, (tool, asked.requests)
                else:
                    assert sorted(asked.requests) == ["elicit:What is your name?", "roots", "sample"], \
                        asked.requests

        # A session without the callbacks declares no such capability: the backends are
        # told so, and refuse with -32021 rather than ask.
        async with streamable_http_client(url) as (r, w), ClientSession(r, w) as bare:
            await bare.initialize()
            for tool in ("fx__test_input_required_result_elicitation", "sdk__greet"):
                with pytest.raises(MCPError) as err:
                    await bare.call_tool(tool, {})
                assert err.value.error.code == -32021, (tool, err.value.error)

    with running_gateway(driver, config(), tmp_path, "bridge", {"fx": "ready", "sdk": "ready"},
                         ["--name fx", "mrtr_resolver_server.py"]) as gw:
        run(body, gw.url)
