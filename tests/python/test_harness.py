"""Self-checks of the leak detector the gateway fixtures rely on (no gateway involved): a
parent that dies on SIGTERM and leaves a running child, or an unreaped zombie, is caught."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import _stop, clean_up, descendants, leftovers, same_process


def _wait_for_descendants(pid: int, count: int) -> list:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        found = [p for p in descendants(pid) if p.state != "Z"]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} did not get {count} children: {descendants(pid)}")


def test_leak_check_sees_a_surviving_grandchild() -> None:
    # sh runs two sleeps; SIGTERM kills only sh, so both sleeps are left running.
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"])
    spawned: list = []
    try:
        spawned = _wait_for_descendants(proc.pid, 2)
        status, killed = _stop(proc, 5.0)
        assert not killed and status != 0
        left = leftovers(spawned, proc.pid, grace_s=0.3)
        assert sorted(p.pid for p in left) == sorted(p.pid for p in spawned)
        assert all(p.state != "Z" for p in left)
    finally:
        clean_up(spawned)
    assert [p for p in spawned if same_process(p)] == []


def test_leak_check_sees_an_unreaped_zombie() -> None:
    # The child exits at once; its parent never waits for it, then is terminated.
    code = "import os, time\nif os.fork() == 0:\n    os._exit(0)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    spawned: list = []
    try:
        deadline = time.monotonic() + 10.0
        while not (spawned := descendants(proc.pid)) or spawned[0].state != "Z":
            assert time.monotonic() < deadline, descendants(proc.pid)
            time.sleep(0.02)
        _stop(proc, 5.0)
        left = leftovers(spawned, proc.pid, grace_s=0.3)
        assert [p.state for p in left] == ["Z"], left
    finally:
        clean_up(spawned)
    assert [p for p in spawned if same_process(p)] == []
