"""A 2026 client's tasks (extension `io.modelcontextprotocol/tasks`) carried by the gateway to
a backend it reaches through its 2025-11-25 session, with the official Python SDK (mcp 2.x) on
both drivers: the demo fixture with `DEMO_MODERN=0` (2025 experimental tasks only) over stdio,
and @modelcontextprotocol/server-everything (a 2025 server nobody here wrote) whose
`simulate-research-query` requires a task and, when ambiguous, asks for a clarification.

As in test_tasks.py, the SDK's client extension surface is the tasks client: a
`ClientExtension` declares the extension and claims `resultType: "task"`; its resolver polls
`tasks/get` and, when the task asks for input (`inputRequests`), answers with `tasks/update`,
the answer made by the same elicitation callback the client declared. The backend only ever
sees 2025 tasks: `params.task`, `tasks/get`, `tasks/result` (whose stream carries its
elicitation) and the answer to that elicitation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Request, RequestParams, Result

from conftest import (
    DRIVERS,
    EVERYTHING_BIN,
    config_text,
    demo_stdio,
    run,
    running_gateway,
    server_block,
    text_of,
)

EXTENSION = "io.modelcontextprotocol/tasks"


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


def legacy_fixture_config() -> str:
    env = 'env = { DEMO_CONFORMANCE = "1", DEMO_PAGE_SIZE = "100", DEMO_MODERN = "0" }\n'
    return config_text(demo_stdio("fx") + env)


class CreatedTask(Result):
    result_type: Literal["task"]
    task_id: str
    status: str


class TaskIdParams(RequestParams):
    task_id: str


class TasksGet(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"


class UpdateParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any]


class TasksUpdate(Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateParams
    name_param = "taskId"


class DetailedTask(Result):
    task_id: str
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


class Ack(Result):
    result_type: str | None = None


asked: list[str] = []


async def on_elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    asked.append(params.message)
    props = params.requested_schema.get("properties", {})
    values: dict[str, Any] = {"confirm": True, "interpretation": "historical"}
    return types.ElicitResult(action="accept", content={k: values.get(k, "v") for k in props})


class Tasks(ClientExtension):
    identifier = EXTENSION

    def __init__(self) -> None:
        self.created: list[str] = []
        self.updates = 0

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self.resolve)]

    async def resolve(self, created: CreatedTask, ctx: ClaimContext) -> CallToolResult:
        self.created.append(created.task_id)
        answered: set[str] = set()
        for _ in range(300):
            task = await ctx.session.send_request(
                TasksGet(params=TaskIdParams(task_id=created.task_id)), DetailedTask
            )
            assert task.task_id == created.task_id
            if task.status in ("completed", "failed", "cancelled"):
                assert task.status == "completed", task
                return CallToolResult.model_validate(task.result)
            fresh = {k: r for k, r in (task.input_requests or {}).items() if k not in answered}
            if task.status == "input_required" and fresh:
                responses = {}
                for key, req in fresh.items():
                    assert req["method"] == "elicitation/create", req
                    related = req["params"]["_meta"]["io.modelcontextprotocol/related-task"]
                    assert related["taskId"] == created.task_id, req
                    params = types.ElicitRequestFormParams.model_validate(req["params"])
                    answer = await on_elicit(None, params)
                    responses[key] = answer.model_dump(by_alias=True, exclude_none=True)
                    answered.add(key)
                await ctx.session.send_request(
                    TasksUpdate(
                        params=UpdateParams(task_id=created.task_id, input_responses=responses)
                    ),
                    Ack,
                )
                self.updates += 1
                continue
            await anyio.sleep(0.1)
        raise AssertionError(f"task {created.task_id} never ended")


def test_a_2026_sdk_client_runs_tasks_on_a_2025_only_backend(driver: str, tmp_path: Path) -> None:
    config = legacy_fixture_config()
    with running_gateway(driver, config, tmp_path, "tasksbridge", {"fx": "ready"}, []) as gw:

        async def body() -> None:
            tasks = Tasks()
            asked.clear()
            async with Client(
                gw.url, mode="auto", extensions=[tasks], elicitation_callback=on_elicit
            ) as client:
                caps = client.session.discover_result.capabilities
                assert EXTENSION in (caps.extensions or {}), caps
                listed = {t.name: t for t in (await client.list_tools()).tools}
                assert "fx__failing_job" in listed, "a tool that requires a task is listed"
                result = await client.call_tool("fx__slow_compute", {"seconds": 0.3, "label": "py"})
                assert text_of(result) == "Computed py in 0.3 s"
                # The backend asks for confirmation on its tasks/result stream; the client
                # answers it as the task's input request.
                result = await client.call_tool("fx__confirm_delete", {"filename": "x.txt"})
                assert text_of(result) == "Deleted x.txt"
                assert asked == ["Delete x.txt?"], asked
                assert tasks.updates == 1
                assert len(tasks.created) == 2
                assert all("task-" not in t for t in tasks.created), "the backend's id never shows"
            # Without the extension a tool that requires a task is refused by the gateway.
            async with Client(gw.url, mode="auto") as plain:
                with pytest.raises(MCPError) as refused:
                    await plain.call_tool("fx__failing_job", {})
                assert refused.value.error.code == -32021

        run(body)


def test_server_everythings_task_asks_a_2026_sdk_client_through_the_gateway(
    driver: str, tmp_path: Path
) -> None:
    if not EVERYTHING_BIN.exists():
        pytest.fail(f"backend {EVERYTHING_BIN} is not installed; run `bash tests/run-all.sh`")
    config = config_text(
        server_block("ev", transport="stdio", command=str(EVERYTHING_BIN), args=["stdio"])
    )
    with running_gateway(driver, config, tmp_path, "tasksbridgeev", {"ev": "ready"}, []) as gw:

        async def body() -> None:
            tasks = Tasks()
            asked.clear()
            async with Client(
                gw.url, mode="auto", extensions=[tasks], elicitation_callback=on_elicit
            ) as client:
                listed = {t.name: t for t in (await client.list_tools()).tools}
                research = listed["ev__simulate-research-query"]
                assert research.execution is not None
                assert research.execution.task_support == "required", research
                result = await client.call_tool(
                    "ev__simulate-research-query", {"topic": "gateways", "ambiguous": True}
                )
                text = text_of(result)
                assert "Research Report: gateways" in text, text
                assert "Clarification**: historical" in text, text
                assert len(asked) == 1 and tasks.updates == 1, (asked, tasks.updates)

        run(body)
