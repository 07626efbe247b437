#!/usr/bin/env python3
"""Capture the real `tools/list` of popular MCP servers as benchmark fixtures (issue 7).

Each server below is installed at a pinned version under target/context-servers/ (npm packages
into target/context-servers/npm, PyPI packages into the venv target/context-servers/py), started
over stdio with the official MCP Python SDK, sent `initialize` + `tools/list` (every
`nextCursor` page is followed), and its tools are written, exactly as the server sent them on
the wire, to perf/context/fixtures/<server>.json:

    {"server": ..., "package": ..., "version": ..., "captured": "<UTC date>",
     "tools": [...], "serverInfo": {...}, "protocolVersion": ..., "env": [...], "command": [...]}

Run it with the Python that has the `mcp` SDK:

    target/test-env/venv/bin/python perf/context/capture.py              # all servers
    target/test-env/venv/bin/python perf/context/capture.py --only git    # one (repeatable)
    target/test-env/venv/bin/python perf/context/capture.py --no-install  # use what is installed
    target/test-env/venv/bin/python perf/context/capture.py --no-install --gateway-config OUT.toml

`--gateway-config OUT.toml` captures nothing: it writes a gateway config with one stdio
`[[servers]]` entry per pinned server (id = fixture name, so the gateway exposes
`<server>__<tool>`), launched exactly as the capture launches it, with fresh work dirs under
$TMPDIR/only1mcp-agent-bench/ (the scripted-agent benchmark, `cargo bench --bench agent`).

Nothing a server is given touches the network or a real account: tools/list needs neither.
Tokens are dummies, directories and the git repository are made fresh under
$TMPDIR/only1mcp-context-capture/ (fixed names, so any path a server echoes into a description
is the same on every capture), and no browser is started (only tools/list is sent).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp import types as mcp_types
    from mcp.client.stdio import stdio_client
    from mcp.shared.message import SessionMessage
    from mcp.types.jsonrpc import JSONRPCResponse
except ImportError as exc:  # pragma: no cover - environment problem
    sys.exit(f"capture.py needs the official MCP Python SDK (`mcp`): {exc}\n"
             "run it with target/test-env/venv/bin/python")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = HERE / "fixtures"
INSTALL_ROOT = REPO / "target" / "context-servers"
NPM_DIR = INSTALL_ROOT / "npm"
PY_VENV = INSTALL_ROOT / "py"
WORK = Path(tempfile.gettempdir()) / "only1mcp-context-capture"
AGENT_WORK = Path(tempfile.gettempdir()) / "only1mcp-agent-bench"
# Per-request timeout of every server behind the benchmark's gateway: a tool that tries the
# network (there may be none) fails in bounded time.
GATEWAY_TIMEOUT_MS = 15_000

# Reproducible installs. npm: the servers are pinned exactly and every transitive dependency is
# resolved as the registry stood at NPM_BEFORE (`npm install --before`), so the zod and
# @modelcontextprotocol/sdk that turn the servers' schemas into JSON Schema are the same on every
# capture. PyPI: the whole venv is pinned (pip freeze of the capture venv).
NPM_BEFORE = "2026-11-24T00:00:00Z"
PY_LOCK = """
annotated-types==0.8.0 anyio==4.16.0 attrs==26.1.0 beautifulsoup4==4.15.0 certifi==2026.10.19.post1
cffi==2.1.1 charset-normalizer==3.5.2 click==8.5.1 cryptography==50.0.2 gitdb==4.0.12
GitPython==3.2.1 h11==0.16.0 html5lib==1.1 httpcore==1.0.9 httpcore2==2.16.2 httpx==0.28.1
httpx2==2.16.2 idna==3.20 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 lxml==6.1.3
markdownify==1.2.3 mcp==2.3.0 mcp-types==2.3.0 opentelemetry-api==1.45.2 Protego==0.7.0
pycparser==3.12 pydantic==2.14.4 pydantic_core==2.50.5 PyJWT==2.15.1 python-multipart==0.0.34
readabilipy==0.3.0 referencing==0.37.0 regex==2026.11.19 requests==2.34.2 rpds-py==2026.9.1
six==1.17.0 smmap==5.0.3 socksio==1.0.0 soupsieve==4.1.3 sse-starlette==3.7.0 starlette==1.10.0
truststore==0.10.5 typing-inspection==0.4.5 typing_extensions==4.16.0 tzdata==2026.6
tzlocal==5.4.5 urllib3==2.8.0 uvicorn==0.54.0 webencodings==0.6.1
""".split()

STARTUP_TIMEOUT_S = 90
MIN_SERVERS = 8
MIN_TOOLS = 200


@dataclass
class Server:
    name: str            # fixture name: fixtures/<name>.json
    kind: str            # "npm" or "pypi"
    package: str
    version: str         # exact pin
    bin: str | None = None       # npm: key of package.json "bin" (None = the only one); pypi: console script
    args: list[str] = field(default_factory=list)   # "{work}" is replaced by the server's work dir
    env: dict[str, str] = field(default_factory=dict)
    setup: str | None = None     # "git-repo": make an empty git repository at {work}/repo
    npm_extra: dict[str, str] = field(default_factory=dict)  # more top-level deps for its npm tree


SERVERS: list[Server] = [
    Server("everything", "npm", "@modelcontextprotocol/server-everything", "2026.8.31",
           args=["stdio"]),
    Server("filesystem", "npm", "@modelcontextprotocol/server-filesystem", "2026.8.31",
           args=["{work}/root"]),
    Server("memory", "npm", "@modelcontextprotocol/server-memory", "2026.8.31",
           env={"MEMORY_FILE_PATH": "{work}/memory.jsonl"}),
    Server("github", "npm", "@modelcontextprotocol/server-github", "2025.4.8",
           env={"GITHUB_PERSONAL_ACCESS_TOKEN": "dummy-token-not-used-by-tools-list"}),
    Server("git", "pypi", "mcp-server-git", "2026.10.19", bin="mcp-server-git",
           args=["--repository", "{work}/repo"], setup="git-repo"),
    Server("fetch", "pypi", "mcp-server-fetch", "2026.10.24", bin="mcp-server-fetch"),
    Server("time", "pypi", "mcp-server-time", "2026.10.19", bin="mcp-server-time",
           args=["--local-timezone", "UTC"]),
    Server("playwright", "npm", "@playwright/mcp", "0.0.83",
           args=["--headless", "--isolated", "--output-dir", "{work}/out"]),
    Server("puppeteer", "npm", "@modelcontextprotocol/server-puppeteer", "2025.5.12",
           env={"PUPPETEER_SKIP_DOWNLOAD": "1"}),
    # Beyond the eight the issue names: popular official / reference servers, needed to pass 200
    # tools (the eight above list 109).
    Server("chrome-devtools", "npm", "chrome-devtools-mcp", "1.11.0",
           args=["--headless", "--isolated", "--no-usage-statistics"]),
    # No connection string: mongodb-mcp-server lists its tools without one.
    Server("mongodb", "npm", "mongodb-mcp-server", "3.0.4",
           env={"MDB_MCP_TELEMETRY": "disabled"}),
    Server("notion", "npm", "@notionhq/notion-mcp-server", "2.5.2",
           env={"NOTION_TOKEN": "ntn_dummy_token_not_used_by_tools_list"}),
    # server-gitlab imports zod without declaring it; npm then hoists zod 4 (a peer of its
    # zod-to-json-schema), which that zod-to-json-schema cannot read: every inputSchema comes out
    # as {"$schema": ...} with no "type", and the SDK rejects the listing. Give it the zod range its
    # sibling server-github (same repo, same era) declares.
    Server("gitlab", "npm", "@modelcontextprotocol/server-gitlab", "2025.4.25",
           env={"GITLAB_PERSONAL_ACCESS_TOKEN": "dummy-token-not-used-by-tools-list"},
           npm_extra={"zod": "^3.22.4"}),
    Server("slack", "npm", "@modelcontextprotocol/server-slack", "2025.4.25",
           env={"SLACK_BOT_TOKEN": "xoxb-dummy-not-used-by-tools-list", "SLACK_TEAM_ID": "T00000000"}),
    Server("google-maps", "npm", "@modelcontextprotocol/server-google-maps", "0.6.2",
           env={"GOOGLE_MAPS_API_KEY": "dummy-key-not-used-by-tools-list"}),
    # Tried and left out:
    # - @azure-devops/mcp@2.10.0: needs keytar's native module, whose install script downloads a
    #   prebuilt binary from outside the package registry (not reachable here): dies at startup
    #   with "Cannot find module '../build/Release/keytar.node'".
    # - @modelcontextprotocol/server-sequential-thinking@2026.8.31 (1 tool) and
    #   @modelcontextprotocol/server-brave-search@0.6.2 (2 tools): captured fine, dropped because
    #   tasks.json gives every fixture >= 3 of its 50 tasks, which caps the set at 16 servers,
    #   and these two add the least.
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- install

def node_binary() -> str:
    for cand in (REPO / "target/test-env/node/bin/node", REPO / "target/test-env/node/node"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("node")
    if not found:
        sys.exit("no `node` on PATH and none in target/test-env/node")
    return found


def npm_package_dir(srv: Server) -> Path | None:
    """Where the pinned npm package is installed, if it is."""
    pj = NPM_DIR / srv.name / "node_modules" / srv.package / "package.json"
    if pj.is_file() and json.loads(pj.read_text())["version"] == srv.version:
        return pj.parent
    return None


def _norm(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


def py_versions() -> dict[str, str]:
    """{normalized distribution name: version} of the capture venv (empty if there is none)."""
    py = PY_VENV / "bin" / "python"
    if not py.exists():
        return {}
    r = subprocess.run([str(py), "-c", "import importlib.metadata as m,json;"
                        "print(json.dumps({d.metadata['Name']:d.version for d in m.distributions()}))"],
                       capture_output=True, text=True, check=True)
    return {_norm(k): v for k, v in json.loads(r.stdout).items()}


def run(cmd: list[str], **kw: Any) -> None:
    log("+ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def npm_manifest(srv: Server) -> dict[str, Any]:
    return {"name": f"only1mcp-context-{srv.name}", "private": True,
            "dependencies": {srv.package: srv.version, **srv.npm_extra}}


def ensure_installed(servers: list[Server]) -> None:
    # Each npm server gets its own directory and dependency tree, as `npx -y PKG@VERSION` would give
    # it. One shared tree is wrong: a server's zod and the SDK's zod can end up as two copies, and
    # then the SDK's zod-to-JSON-Schema silently drops `.describe()` texts.
    npm = shutil.which("npm")
    for srv in servers:
        if srv.kind != "npm":
            continue
        d = NPM_DIR / srv.name
        pj = d / "package.json"
        if npm_package_dir(srv) and pj.is_file() and json.loads(pj.read_text()) == npm_manifest(srv):
            continue
        if not npm:
            sys.exit("npm not on PATH")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        pj.write_text(json.dumps(npm_manifest(srv), indent=2) + "\n")
        # --ignore-scripts: no postinstall may fetch a browser (puppeteer's would try).
        env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1", PUPPETEER_SKIP_CHROMIUM_DOWNLOAD="1")
        run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error",
             f"--before={NPM_BEFORE}"], cwd=d, env=env)
    py_pins = [f"{s.package}=={s.version}" for s in SERVERS if s.kind == "pypi"] + PY_LOCK
    have = py_versions()
    if any(have.get(_norm(p.split("==")[0])) != p.split("==")[1] for p in py_pins):
        if not (PY_VENV / "bin" / "python").exists():
            run([sys.executable, "-m", "venv", str(PY_VENV)])
        run([str(PY_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", *py_pins])
    have = py_versions()
    for s in servers:
        ok = npm_package_dir(s) is not None if s.kind == "npm" else have.get(_norm(s.package)) == s.version
        if not ok:
            sys.exit(f"{s.package}@{s.version} is not installed (run without --no-install)")


# --------------------------------------------------------------------------- launch

def make_empty_git_repo(path: Path) -> None:
    """An empty repository laid out by hand (what `git init` makes), so no git binary is needed."""
    g = path / ".git"
    for d in ("objects/info", "objects/pack", "refs/heads", "refs/tags", "info"):
        (g / d).mkdir(parents=True, exist_ok=True)
    (g / "HEAD").write_text("ref: refs/heads/main\n")
    (g / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n")
    (g / "description").write_text("only1mcp context capture\n")


def prepare_work(srv: Server, work: Path) -> None:
    """The server's fresh work dir: `root/` (filesystem's allowed root), `out/` (Playwright's
    output) and, for git, an empty repository at `repo/`."""
    (work / "root").mkdir(parents=True, exist_ok=True)
    (work / "out").mkdir(parents=True, exist_ok=True)
    if srv.setup == "git-repo":
        make_empty_git_repo(work / "repo")


def launch_params(srv: Server, work: Path) -> tuple[StdioServerParameters, list[str]]:
    """(SDK stdio parameters, the command as recorded in the fixture)."""
    def sub(v: str) -> str:
        return v.replace("{work}", str(work))

    args = [sub(a) for a in srv.args]
    env = {k: sub(v) for k, v in srv.env.items()}
    if srv.kind == "npm":
        pdir = npm_package_dir(srv)
        assert pdir is not None
        meta = json.loads((pdir / "package.json").read_text())
        bins = meta["bin"] if isinstance(meta["bin"], dict) else {meta["name"]: meta["bin"]}
        entry = bins[srv.bin] if srv.bin else next(iter(bins.values()))
        command = node_binary()
        argv = [str((pdir / entry).resolve()), *args]
        recorded = ["node", f"{srv.package}@{srv.version}:{entry}", *srv.args]
    else:
        command = str(PY_VENV / "bin" / (srv.bin or srv.package))
        argv = args
        recorded = [srv.bin or srv.package, *srv.args]
    params = StdioServerParameters(command=command, args=argv, env=env, cwd=str(work))
    return params, recorded


# --------------------------------------------------------------------------- gateway config

def toml_str(v: str) -> str:
    """A TOML basic string (JSON's escapes are all valid TOML escapes)."""
    return json.dumps(v, ensure_ascii=False)


def write_gateway_config(servers: list[Server], out: Path) -> None:
    """One stdio `[[servers]]` entry per server, launched as the capture launches it (installed
    command, argv, dummy env), each in a fresh work dir under AGENT_WORK. Only `[[servers]]`
    entries: the caller adds `[proxy]` and the rest."""
    missing = [f"{s.package}@{s.version}" for s in servers if s.kind == "npm" and npm_package_dir(s) is None]
    have = py_versions()
    missing += [f"{s.package}=={s.version}" for s in servers
                if s.kind == "pypi" and have.get(_norm(s.package)) != s.version]
    if missing:
        sys.exit(f"not installed: {', '.join(missing)}\n"
                 "install them with: target/test-env/venv/bin/python perf/context/capture.py")
    shutil.rmtree(AGENT_WORK, ignore_errors=True)
    lines = [f"# Written by perf/context/capture.py --gateway-config: {len(servers)} pinned MCP servers,",
             f"# work dirs under {AGENT_WORK}. Regenerated on every run; do not edit.", ""]
    for srv in servers:
        work = AGENT_WORK / srv.name
        prepare_work(srv, work)
        # The tasks' paths (/srv/app/..., /home/dev/only1mcp) are absolute and lie outside the
        # filesystem root and the git repository given here; those servers answer with a tool
        # error, which the benchmark counts as the tool reached. Nothing is created outside
        # AGENT_WORK.
        params, _ = launch_params(srv, work)
        lines += ["[[servers]]",
                  f"id = {toml_str(srv.name)}",
                  'transport = "stdio"',
                  f"command = {toml_str(params.command)}",
                  f"args = [{', '.join(toml_str(a) for a in params.args)}]"]
        if params.env:
            lines.append("env = { " + ", ".join(f"{k} = {toml_str(v)}" for k, v in sorted(params.env.items())) + " }")
        lines += [f"cwd = {toml_str(str(params.cwd))}", f"timeout_ms = {GATEWAY_TIMEOUT_MS}", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    log(f"wrote {out}: {len(servers)} servers, work dirs under {AGENT_WORK}")


# --------------------------------------------------------------------------- capture

async def capture_one(srv: Server, work: Path) -> dict[str, Any]:
    params, recorded = launch_params(srv, work)
    raw_results: list[dict[str, Any]] = []   # every JSON-RPC result, exactly as decoded off the wire
    errlog_path = work / "stderr.log"
    with open(errlog_path, "w") as errlog, anyio.fail_after(STARTUP_TIMEOUT_S):
        async with stdio_client(params, errlog=errlog) as (read_stream, write_stream):
            tap_send, tap_recv = anyio.create_memory_object_stream[Any](0)

            async def tap() -> None:
                async with tap_send:
                    async for item in read_stream:
                        if isinstance(item, SessionMessage) and isinstance(item.message, JSONRPCResponse):
                            raw_results.append(item.message.result)
                        await tap_send.send(item)

            async with anyio.create_task_group() as tg:
                tg.start_soon(tap)
                async with ClientSession(
                    tap_recv, write_stream,
                    client_info=mcp_types.Implementation(name="only1mcp-context-capture", version="1"),
                ) as session:
                    init = await session.initialize()
                    init_raw = next(r for r in raw_results if "protocolVersion" in r)
                    tools: list[dict[str, Any]] = []
                    cursor: str | None = None
                    seen: set[str] = set()
                    while True:
                        before = len(raw_results)
                        page = await session.list_tools(
                            params=mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                        raw = next(r for r in raw_results[before:] if "tools" in r)
                        if [t["name"] for t in raw["tools"]] != [t.name for t in page.tools]:
                            raise RuntimeError("raw tools/list page and the SDK's parse disagree")
                        tools.extend(raw["tools"])
                        cursor = raw.get("nextCursor")
                        if not cursor:
                            break
                        if cursor in seen or len(seen) > 1000:
                            raise RuntimeError(f"tools/list pagination loops (cursor {cursor!r})")
                        seen.add(cursor)
                tg.cancel_scope.cancel()
    names = [t["name"] for t in tools]
    if len(set(names)) != len(names):
        raise RuntimeError(f"duplicate tool names: {sorted(n for n in names if names.count(n) > 1)}")
    if not tools:
        raise RuntimeError("server listed no tools")
    return {
        "server": srv.name,
        "package": srv.package,
        "version": srv.version,
        "captured": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "tools": tools,
        "serverInfo": init_raw.get("serverInfo"),
        "protocolVersion": init.protocol_version,
        "env": sorted(srv.env),
        "command": recorded,
        **({"extraNpmDependencies": srv.npm_extra} if srv.npm_extra else {}),
    }


def tools_bytes(tools: list[dict[str, Any]]) -> int:
    """Size of the tools array as compact UTF-8 JSON (what a client would put in its context)."""
    return len(json.dumps(tools, ensure_ascii=False, separators=(",", ":")).encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", metavar="SERVER", help="capture only this server (repeatable)")
    ap.add_argument("--no-install", action="store_true", help="do not npm/pip install missing pins")
    ap.add_argument("--out", type=Path, default=FIXTURES, help="fixture directory (default: %(default)s)")
    ap.add_argument("--list", action="store_true", help="print the pinned servers and exit")
    ap.add_argument("--gateway-config", type=Path, metavar="OUT.toml",
                    help="capture nothing: write a gateway config running the pinned servers over stdio")
    opts = ap.parse_args()

    if opts.list:
        for s in SERVERS:
            print(f"{s.name:16} {s.kind:5} {s.package}@{s.version}")
        return 0
    servers = SERVERS
    if opts.only:
        unknown = set(opts.only) - {s.name for s in SERVERS}
        if unknown:
            sys.exit(f"unknown server(s): {', '.join(sorted(unknown))}")
        servers = [s for s in SERVERS if s.name in opts.only]
    if not opts.no_install:
        ensure_installed(servers)
    if opts.gateway_config:
        write_gateway_config(servers, opts.gateway_config)
        return 0

    opts.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(WORK, ignore_errors=True)
    failures: list[str] = []
    for srv in servers:
        work = WORK / srv.name
        prepare_work(srv, work)
        log(f"capturing {srv.name} ({srv.package}@{srv.version}) ...")
        try:
            fixture = anyio.run(capture_one, srv, work)
        except BaseException as exc:  # noqa: BLE001 - report every server, then fail
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(srv.name)
            err = (work / "stderr.log").read_text(errors="replace")[-2000:] if (work / "stderr.log").exists() else ""
            log(f"  FAILED: {exc!r}\n  server stderr (tail):\n{err}")
            continue
        (opts.out / f"{srv.name}.json").write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n")

    # Table over every pinned server's fixture now in the directory (so --only still prints the whole set).
    rows = []
    for srv in SERVERS:
        path = opts.out / f"{srv.name}.json"
        if not path.exists():
            continue
        fx = json.loads(path.read_text())
        rows.append((fx["server"], f'{fx["package"]}@{fx["version"]}', len(fx["tools"]), tools_bytes(fx["tools"])))
    w = max(len(r[1]) for r in rows) if rows else 10
    print(f"| server | package | tools | bytes (tools JSON) |\n|---|---|--:|--:|")
    for name, pkg, n, b in rows:
        print(f"| {name} | {pkg:{w}} | {n} | {b} |")
    total_tools = sum(r[2] for r in rows)
    total_bytes = sum(r[3] for r in rows)
    print(f"| **total ({len(rows)} servers)** | | **{total_tools}** | **{total_bytes}** |")

    if failures:
        log(f"FAILED: {', '.join(failures)}")
        return 1
    if not opts.only and (len(rows) < MIN_SERVERS or total_tools < MIN_TOOLS):
        log(f"FAILED: need >= {MIN_SERVERS} servers and >= {MIN_TOOLS} tools, have {len(rows)} and {total_tools}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
