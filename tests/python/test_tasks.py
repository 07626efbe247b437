"""The 2026 tasks extension `io.modelcontextprotocol/tasks` through the gateway with the
official Python SDK (mcp 2.x), on both drivers, to the demo fixture's task tools
(demo/src/tasks*.rs) over stdio.

The SDK has no tasks client, but its client extension surface is made for one: a
`ClientExtension` declares the extension and claims `resultType: "task"` on `tools/call`; its
resolver polls `tasks/get` through the SDK session (which sets `Mcp-Name` from the request's
`name_param`, as the extension requires). The SDK's `call_tool` then returns the task's result
as if the call had been synchronous.

2025-11-25 experimental tasks are not tested with this SDK: mcp 2.3.0 has their types but
validates a `tools/call` result as `CallToolResult` only, so it refuses the `CreateTaskResult`
of a task-augmented call. tests/ts/tasks.test.mjs covers that era with the TypeScript SDK.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp.client.client import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Request, RequestParams, Result

from conftest import DRIVERS, config_text, demo_stdio, run, running_gateway, text_of

EXTENSION = "io.modelcontextprotocol/tasks"


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


def fixture_config() -> str:
    return config_text(demo_stdio("fx") + 'env = { DEMO_CONFORMANCE = "1", DEMO_PAGE_SIZE = "100" }\n')


class CreatedTask(Result):
    """A 2026 `CreateTaskResult` (flat)."""

    result_type: Literal["task"]
    task_id: str
    status: str


class TaskIdParams(RequestParams):
    task_id: str


class TasksGet(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"


class DetailedTask(Result):
    task_id: str
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Tasks(ClientExtension):
    """The client side of the 2026 tasks extension, on the SDK's extension surface."""

    identifier = EXTENSION

    def __init__(self) -> None:
        self.created: list[str] = []
        self.polls = 0

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self.resolve)]

    async def resolve(self, created: CreatedTask, ctx: ClaimContext) -> CallToolResult:
        self.created.append(created.task_id)
        for _ in range(200):
            self.polls += 1
            task = await ctx.session.send_request(
                TasksGet(params=TaskIdParams(task_id=created.task_id)), DetailedTask
            )
            assert task.task_id == created.task_id
            if task.status in ("completed", "failed", "cancelled"):
                assert task.status == "completed", task
                return CallToolResult.model_validate(task.result)
            await anyio.sleep(0.1)
        raise AssertionError(f"task {created.task_id} never ended")


def test_the_sdks_extension_surface_resolves_a_2026_task_through_the_gateway(
    driver: str, tmp_path: Path
) -> None:
    with running_gateway(driver, fixture_config(), tmp_path, "tasks26", {"fx": "ready"}, []) as gw:

        async def body() -> None:
            tasks = Tasks()
            async with Client(gw.url, mode="auto", extensions=[tasks]) as client:
                caps = client.session.discover_result.capabilities
                assert EXTENSION in (caps.extensions or {}), caps
                result = await client.call_tool("fx__slow_compute", {"seconds": 0.3, "label": "py"})
                assert text_of(result) == "Computed py in 0.3 s"
                assert len(tasks.created) == 1 and tasks.polls >= 2, (tasks.created, tasks.polls)
                assert "task-" not in tasks.created[0], "the backend's own id never shows"
            # Without the extension there is no task: a tool that needs one is refused.
            async with Client(gw.url, mode="auto") as plain:
                with pytest.raises(MCPError) as refused:
                    await plain.call_tool("fx__failing_job", {})
                assert refused.value.error.code == -32021

        run(body)
