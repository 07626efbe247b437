"""Fleet tests: three gateway nodes behind the shipped balancer configs (docs/fleet.md).

Run by `bash tests/run-all.sh` as its own step after the Python tests:

    ONLY1MCP_BIN=target/debug/only1mcp-uring target/test-env/venv/bin/python -m pytest tests/fleet

Needs `haproxy` (2.6+) and `nginx` on PATH or in /usr/sbin, and `redis-server` for
test_rate_limit_redis.py (run-all.sh installs them with apt-get when it runs as root). Nodes listen on 127.0.0.2-4, the balancer on 127.0.0.1; every
process is stopped and reaped by PID at the end of its test, also when the test fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import BIN, Fleet, pyh

DRIVERS = pyh.DRIVERS

# The demo server over Streamable HTTP, one process per test session, shared by the nodes.
demo_http = pyh.demo_http


def pytest_configure(config: pytest.Config) -> None:
    if not BIN.exists():
        raise pytest.UsageError(f"gateway binary not found at {BIN}; run `bash tests/run-all.sh`")
    for tool in ("haproxy", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise pytest.UsageError(f"`{tool}` not found; the fleet tests need it (apt-get install {tool})")
    # Orphans of what the tests start are re-parented here, so they can be reaped by PID.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(pyh.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_fleet(demo_http: pyh.DemoHttp, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """Starts fleets for one test; stops and reaps every process of them at its end."""
    fleets: list[Fleet] = []

    def make(driver: str, balancer: str = "haproxy", extra_server: str = "", extra: str = "",
             before: Callable[[Fleet], None] | None = None) -> Fleet:
        """`before` runs once the fleet exists, before its processes start (to add one)."""
        workdir = tmp_path / f"fleet{len(fleets)}-{driver}-{balancer}"
        workdir.mkdir()
        fleet = Fleet(driver, workdir, demo_http.url, extra_server, extra)
        fleets.append(fleet)
        if before is not None:
            before(fleet)
        return fleet.start(balancer)

    yield make
    problems = [p for f in fleets for p in f.close()]
    assert not problems, "; ".join(problems)


@pytest.fixture(scope="module", params=DRIVERS)
def fleet(request: pytest.FixtureRequest, demo_http: pyh.DemoHttp,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One fleet behind HAProxy per driver, shared by the read-only tests of a module."""
    workdir = tmp_path_factory.mktemp(f"fleet-{request.param}")
    f = Fleet(request.param, workdir, demo_http.url)
    try:
        yield f.start("haproxy")
    finally:
        problems = f.close()
    assert not problems, "; ".join(problems)
