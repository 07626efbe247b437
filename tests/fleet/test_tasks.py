"""2026 tasks in a fleet, through the shipped HAProxy and nginx configs: a task id names the
node that created it (`<node_id>.<body>.<tag>`), and the balancer sends `tasks/*` there by the
first field of `Mcp-Name`, as it sends a 2025 session's requests by its id. The backend here is
the demo fixture over stdio, whose tasks live in one node's own process: a follow-up that
reached another node could not be served (that node answers it like an unknown task). The
creating calls themselves spread over the nodes (leastconn)."""

from __future__ import annotations

import time

import httpx
import pytest

from harness import pyh

TASKS = "io.modelcontextprotocol/tasks"
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "fleet-tasks", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}},
}
TK = (
    pyh.server_block("tk", transport="stdio", command="$self", args=["demo-server", "--stdio", "--name", "tk"])
    + 'env = { DEMO_CONFORMANCE = "1", DEMO_PAGE_SIZE = "100" }\n\n'
)


def modern(url: str, method: str, params: dict, name: str | None) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
    }
    if name is not None:
        headers["mcp-name"] = name
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}
    return httpx.post(url, headers=headers, json=body, timeout=10.0)


@pytest.mark.parametrize("balancer", ["haproxy", "nginx"])
def test_task_follow_ups_reach_the_node_that_created_the_task(driver: str, balancer: str, make_fleet) -> None:
    fleet = make_fleet(driver, balancer, extra=TK)
    for node in fleet.nodes:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = {b["id"]: b["state"] for b in node.get("/health").json()["backends"]}
            if states.get("tk") == "ready":
                break
            time.sleep(0.1)
        assert states.get("tk") == "ready", (node.id, states)
    created: list[tuple[str, str]] = []
    for _ in range(9):
        r = modern(fleet.url, "tools/call", {"name": "tk__slow_compute", "arguments": {"seconds": 30}},
                   "tk__slow_compute")
        assert r.status_code == 200, r.text
        task = r.json()["result"]
        assert task["resultType"] == "task", task
        node = task["taskId"].split(".")[0]
        assert node == r.headers["x-served-by"], (task["taskId"], r.headers["x-served-by"])
        created.append((task["taskId"], node))
    assert len({n for _, n in created}) > 1, f"the creating calls spread over the nodes: {created}"
    for task_id, node in created:
        for method in ("tasks/get", "tasks/cancel"):
            r = modern(fleet.url, method, {"taskId": task_id}, task_id)
            assert r.status_code == 200, (method, r.text)
            assert r.headers["x-served-by"] == node, (method, task_id, r.headers["x-served-by"])
            result = r.json().get("result")
            assert result is not None, (method, r.text)
            if method == "tasks/get":
                assert result["status"] == "working", result
