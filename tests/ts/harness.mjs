// Shared helpers of the TypeScript SDK tests (tests/ts/*.test.mjs).
//
// Run through `bash tests/run-all.sh`, which sets:
//   ONLY1MCP_BIN            the gateway binary (target/debug/only1mcp-uring)
//   NODE_PATH               target/test-env/node/node_modules (where @modelcontextprotocol/sdk is)
// Both have defaults that assume that layout, so `node --test tests/ts/*.test.mjs` also works
// from the repository root after one `bash tests/run-all.sh`.
//
// Every process started here listens on 127.0.0.1 with port 0, is stopped with SIGTERM (then
// SIGKILL after a bounded wait) and awaited; every wait is bounded. Stopping a gateway is a check
// of its own: exit status 0 within 15 s of SIGTERM, and no process it spawned still running.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.ONLY1MCP_BIN || path.join(REPO, 'target', 'debug', 'only1mcp-uring');
export const DRIVERS = ['uring', 'epoll'];
const DRIVER_NAMES = { uring: 'io_uring', epoll: 'epoll' };
export const CORES = 2;
const STOP_TIMEOUT_MS = 15000;

const READY_RE = /^only1mcp-uring listening on (http:\/\/127\.0\.0\.1:(\d+)\/mcp) \(shards: (\d+), driver: (\S+)\)$/;
const DEMO_READY_RE = /^demo-server listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)$/;

if (!fs.existsSync(BIN)) {
    throw new Error(`gateway binary not found at ${BIN}; run \`bash tests/run-all.sh\` (or cargo build)`);
}

// ---------------------------------------------------------------------------------------------
// The official TypeScript SDK, from target/test-env/node/node_modules (NODE_PATH). ES modules
// ignore NODE_PATH, so resolve through the package's own export map with a require() rooted
// there (the CommonJS build: one consistent copy of the SDK and its zod schemas).
// ---------------------------------------------------------------------------------------------

function nodeModulesDir() {
    const candidates = [
        ...(process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean),
        path.join(REPO, 'target', 'test-env', 'node', 'node_modules'),
    ];
    for (const dir of candidates) {
        if (fs.existsSync(path.join(dir, '@modelcontextprotocol', 'sdk', 'package.json'))) return dir;
    }
    throw new Error(
        `@modelcontextprotocol/sdk not found in ${candidates.join(', ')}; run \`bash tests/run-all.sh\``,
    );
}

export const NODE_MODULES = nodeModulesDir();
const requireSdk = createRequire(path.join(NODE_MODULES, 'only1mcp-ts-tests.cjs'));
export const { Client } = requireSdk('@modelcontextprotocol/sdk/client/index.js');
export const { StreamableHTTPClientTransport } = requireSdk('@modelcontextprotocol/sdk/client/streamableHttp.js');
export const { StdioClientTransport } = requireSdk('@modelcontextprotocol/sdk/client/stdio.js');
export const types = requireSdk('@modelcontextprotocol/sdk/types.js');
export const SDK_VERSION = JSON.parse(
    fs.readFileSync(path.join(NODE_MODULES, '@modelcontextprotocol', 'sdk', 'package.json'), 'utf8'),
).version;

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` (sync or async) until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor(probe, { timeoutMs = 10000, stepMs = 50, what = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        last = await probe();
        if (last) return last;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(stepMs);
    }
}

/** Rejects if `promise` does not settle within `ms`. */
export function within(ms, promise, what = 'operation') {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function tail(file, lines = 40) {
    try {
        return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
        return '(no log)';
    }
}

export function tmpDir(name) {
    return fs.mkdtempSync(path.join(os.tmpdir(), `only1mcp-ts-${name}-`));
}

const tomlStr = (s) => JSON.stringify(String(s)); // a JSON string is a valid TOML basic string

/** One `[[servers]]` block; values: string, boolean, number, string array, or {k: v} (inline table). */
export function serverBlock(id, keys) {
    const lines = ['[[servers]]', `id = ${tomlStr(id)}`];
    for (const [key, value] of Object.entries(keys)) {
        if (Array.isArray(value)) lines.push(`${key} = [${value.map(tomlStr).join(', ')}]`);
        else if (typeof value === 'boolean' || typeof value === 'number') lines.push(`${key} = ${value}`);
        else if (value && typeof value === 'object') {
            const kv = Object.entries(value).map(([k, v]) => `${k} = ${tomlStr(v)}`);
            lines.push(`${key} = { ${kv.join(', ')} }`);
        } else lines.push(`${key} = ${tomlStr(value)}`);
    }
    return lines.join('\n') + '\n';
}

/** A gateway config; `listPageSize` sets proxy.list_page_size (the pages clients see). */
export function configText(servers, { driver, listPageSize } = {}) {
    const server = ['[server]', 'host = "127.0.0.1"'];
    if (driver) server.push(`driver = ${tomlStr(driver)}`);
    const proxy = ['[proxy]', 'tool_separator = "__"', 'request_timeout_ms = 20000'];
    if (listPageSize !== undefined) proxy.push(`list_page_size = ${listPageSize}`);
    return `${server.join('\n')}\n\n${proxy.join('\n')}\n\n${servers.join('\n')}`;
}

/** The demo server's conformance fixture as a stdio backend (the gateway binary, `$self`). */
export function fixtureStdio(id, { pageSize = 4, extraArgs = [] } = {}) {
    return serverBlock(id, {
        transport: 'stdio',
        command: '$self',
        args: ['demo-server', '--stdio', '--name', id, ...extraArgs],
        env: { DEMO_CONFORMANCE: '1', DEMO_PAGE_SIZE: String(pageSize) },
    });
}

// ---------------------------------------------------------------------------------------------
// Processes (/proc bookkeeping, bounded stop)
// ---------------------------------------------------------------------------------------------

function procInfo(pid) {
    let stat;
    try {
        stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
        return null;
    }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let cmdline = '';
    try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
        /* gone */
    }
    return { pid, state: rest[0], ppid: Number(rest[1]), starttime: rest[19], cmdline };
}

/** Every process below `root` in the ppid tree. */
export function descendants(root) {
    const byParent = new Map();
    for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const info = procInfo(Number(entry));
        if (!info) continue;
        if (!byParent.has(info.ppid)) byParent.set(info.ppid, []);
        byParent.get(info.ppid).push(info);
    }
    const found = [];
    const todo = [root];
    while (todo.length) {
        for (const child of byParent.get(todo.pop()) || []) {
            found.push(child);
            todo.push(child.pid);
        }
    }
    return found;
}

/** Recorded processes that still run (pid-reuse safe), after up to `graceMs`. */
export async function stillRunning(recorded, graceMs = 3000) {
    const alive = () =>
        recorded.filter((p) => {
            const now = procInfo(p.pid);
            return now && now.starttime === p.starttime && now.state !== 'Z';
        });
    const deadline = Date.now() + graceMs;
    let left = alive();
    while (left.length && Date.now() < deadline) {
        await sleep(50);
        left = alive();
    }
    return left;
}

function killQuietly(pid, signal = 'SIGKILL') {
    try {
        process.kill(pid, signal);
    } catch {
        /* already gone */
    }
}

// Every child started here, killed (SIGKILL) if the test process exits with any still running.
const LIVE = new Set();
process.on('exit', () => {
    for (const child of LIVE) if (child.exitCode === null && child.signalCode === null) killQuietly(child.pid);
});

function track(child) {
    LIVE.add(child);
    child.on('exit', () => LIVE.delete(child));
    return child;
}

async function waitExit(child, ms) {
    if (child.exitCode !== null || child.signalCode !== null) return true;
    let timer;
    const timedOut = new Promise((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
    });
    const exited = once(child, 'exit').then(() => true);
    return Promise.race([exited, timedOut]).finally(() => clearTimeout(timer));
}

/** SIGTERM, wait `ms`, SIGKILL. Returns {code, signal, killed}. */
async function stopChild(child, ms) {
    let killed = false;
    if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        if (!(await waitExit(child, ms))) {
            killed = true;
            child.kill('SIGKILL');
            await waitExit(child, 5000);
        }
    }
    return { code: child.exitCode, signal: child.signalCode, killed };
}

/** Spawns `args` of the gateway binary and resolves with the first stdout line matching `re`. */
async function spawnUntilReady(args, re, { log, env, timeoutMs = 20000 }) {
    const err = fs.openSync(log, 'w');
    const child = track(
        spawn(BIN, args, { stdio: ['ignore', 'pipe', err], env: { ...process.env, ...env } }),
    );
    fs.closeSync(err);
    const lines = readline.createInterface({ input: child.stdout });
    const seen = [];
    try {
        const match = await within(
            timeoutMs,
            new Promise((resolve, reject) => {
                lines.on('line', (line) => {
                    seen.push(line);
                    const m = re.exec(line);
                    if (m) resolve(m);
                });
                child.on('exit', (code, sig) => reject(new Error(`exited (${code ?? sig}) before its ready line`)));
                child.on('error', reject);
            }),
            `${path.basename(BIN)} ${args.join(' ')} ready line`,
        );
        lines.on('line', () => {}); // keep draining stdout
        return { child, match };
    } catch (e) {
        await stopChild(child, 5000);
        throw new Error(`${e.message}; stdout: ${JSON.stringify(seen)}\n--- log tail:\n${tail(log)}`);
    }
}

/** The built-in demo server over Streamable HTTP on a free port (`env` e.g. DEMO_CONFORMANCE). */
export async function startDemoHttp(dir, name, env = {}) {
    const log = path.join(dir, `${name}.log`);
    const { child, match } = await spawnUntilReady(
        ['demo-server', '--http', '127.0.0.1:0', '--name', name],
        DEMO_READY_RE,
        { log, env, timeoutMs: 10000 },
    );
    return {
        url: match[1],
        log,
        async stop() {
            await stopChild(child, 5000);
        },
    };
}

export class Gateway {
    constructor({ driver, config, dir, name }) {
        Object.assign(this, { driver, config, dir, name });
        this.log = path.join(dir, `${name}-${driver}.log`);
        this.cfg = path.join(dir, `${name}-${driver}.toml`);
    }

    async start() {
        fs.writeFileSync(this.cfg, this.config);
        const { child, match } = await spawnUntilReady(
            ['start', '--config', this.cfg, '--port', '0', '--cores', String(CORES), '--driver', this.driver],
            READY_RE,
            { log: this.log },
        );
        this.child = child;
        if (Number(match[3]) !== CORES || match[4] !== DRIVER_NAMES[this.driver]) {
            await stopChild(child, 5000);
            throw new Error(`unexpected ready line ${JSON.stringify(match[0])} for driver ${this.driver}`);
        }
        this.url = match[1];
        this.base = this.url.replace(/\/mcp$/, '');
        return this;
    }

    async health() {
        const r = await fetch(`${this.base}/health`, { signal: AbortSignal.timeout(5000) });
        return r.json();
    }

    /** Polls /health until each listed backend is in the expected state. */
    async waitHealth(expected, timeoutMs = 30000) {
        let last = {};
        try {
            return await waitFor(
                async () => {
                    if (this.child.exitCode !== null) throw new Error(`gateway exited (${this.child.exitCode})`);
                    try {
                        last = await this.health();
                    } catch {
                        return false;
                    }
                    const states = Object.fromEntries((last.backends || []).map((b) => [b.id, b.state]));
                    return Object.entries(expected).every(([k, v]) => states[k] === v) && last;
                },
                { timeoutMs, stepMs: 100, what: `backends ${JSON.stringify(expected)}` },
            );
        } catch (e) {
            throw new Error(`${e.message}; last /health: ${JSON.stringify(last)}\n--- gateway log:\n${tail(this.log)}`);
        }
    }

    /** SIGTERM; throws unless it exits 0 within 15 s and leaves no spawned process running. */
    async stopAndCheck(expectChildren = []) {
        if (!this.child) return;
        const child = this.child;
        this.child = null;
        const problems = [];
        if (child.exitCode !== null || child.signalCode !== null) {
            problems.push(`gateway died during the tests (${child.exitCode ?? child.signalCode})`);
        }
        const spawned = descendants(child.pid);
        for (const m of expectChildren) {
            if (!spawned.some((p) => p.cmdline.includes(m))) problems.push(`no child matching ${JSON.stringify(m)} before shutdown`);
        }
        const { code, signal, killed } = await stopChild(child, STOP_TIMEOUT_MS);
        if (killed) problems.push(`did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM (killed)`);
        else if (code !== 0 && !problems.length) problems.push(`exit ${code ?? signal} after SIGTERM, expected 0`);
        const left = await stillRunning(spawned);
        for (const p of left) {
            problems.push(`child pid ${p.pid} still running: ${JSON.stringify(p.cmdline)}`);
            killQuietly(p.pid);
        }
        if (problems.length) {
            throw new Error(`gateway (${this.driver}) shutdown: ${problems.join('; ')}\n--- gateway log:\n${tail(this.log)}`);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SDK clients
// ---------------------------------------------------------------------------------------------

/** Records every JSON-RPC message the transport hands to the SDK (before the SDK sees it). */
function recordWire(transport) {
    const wire = [];
    let inner;
    Object.defineProperty(transport, 'onmessage', {
        configurable: true,
        get: () =>
            inner &&
            ((msg, extra) => {
                wire.push(msg);
                return inner(msg, extra);
            }),
        set: (fn) => {
            inner = fn;
        },
    });
    return wire;
}

/** A connected SDK client. `setup(client)` runs before connect (request/notification handlers). */
async function connect(transport, { capabilities = {}, name = 'only1mcp-ts-test', setup } = {}) {
    const wire = recordWire(transport);
    const client = new Client({ name, version: '1.0.0' }, { capabilities });
    const errors = [];
    client.onerror = (e) => errors.push(e);
    if (setup) setup(client);
    await within(15000, client.connect(transport), 'initialize');
    return { client, transport, wire, errors };
}

export async function connectHttp(url, opts = {}) {
    // Every HTTP exchange of the transport, to tell which streams were opened.
    const http = [];
    const recordingFetch = async (input, init) => {
        const response = await fetch(input, init);
        http.push({ method: init?.method ?? 'GET', status: response.status, type: response.headers.get('content-type') });
        return response;
    };
    const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch });
    const conn = await connect(transport, opts);
    conn.http = http;
    conn.close = async () => {
        await within(5000, transport.terminateSession().catch(() => {}), 'DELETE session').catch(() => {});
        await within(5000, conn.client.close(), 'client close');
    };
    return conn;
}

/** `only1mcp-uring stdio --config cfg` under the SDK's StdioClientTransport. */
export async function connectStdio(cfg, log, opts = {}) {
    const transport = new StdioClientTransport({
        command: BIN,
        args: ['stdio', '--config', cfg, '--cores', String(CORES)],
        stderr: 'pipe',
    });
    const out = fs.createWriteStream(log);
    transport.stderr.pipe(out);
    const conn = await connect(transport, opts);
    const pid = transport.pid;
    conn.pid = pid;
    conn.close = async () => {
        // The SDK ends stdin, then SIGTERM after 2 s, SIGKILL after 4 s; the gateway should exit
        // on EOF, so every recorded descendant must be gone afterwards.
        const spawned = pid ? descendants(pid) : [];
        const self = pid ? procInfo(pid) : null;
        await within(10000, conn.client.close(), 'stdio client close');
        const left = await stillRunning(self ? [self, ...spawned] : spawned);
        for (const p of left) killQuietly(p.pid);
        out.end();
        if (left.length) throw new Error(`left running after close: ${left.map((p) => p.cmdline).join('; ')}`);
    };
    return conn;
}

/** A list method (listTools, ...), following nextCursor to the last page (at most 100 pages).
 *  `pages`, if given, receives the size of each page. */
export async function listAll(client, method, key, pages = []) {
    const items = [];
    let cursor;
    while (pages.length < 100) {
        const result = await client[method](cursor ? { cursor } : undefined);
        items.push(...result[key]);
        pages.push(result[key].length);
        cursor = result.nextCursor;
        if (!cursor) return items;
    }
    throw new Error(`${method} pagination does not end`);
}

export const textOf = (result) =>
    result.content
        .filter((b) => b.type === 'text')
        .map((b) => b.text)
        .join('');
