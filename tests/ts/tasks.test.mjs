// 2025-11-25 experimental tasks with the official TypeScript SDK client (its
// `client.experimental.tasks` API: callToolStream, getTask, listTasks, cancelTask) through the
// gateway's Streamable HTTP front, on both I/O drivers, to two backends:
//   fx    the demo server's conformance fixture over stdio (task tools, demo/src/tasks*.rs)
//   ev    @modelcontextprotocol/server-everything over stdio, a server nobody here wrote: its
//         `simulate-research-query` requires a task (execution.taskSupport "required")
// The SDK drives the whole task flow itself (tools/call with `task`, tasks/get polling,
// tasks/result); the gateway's task ids are all it ever sees.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
    DRIVERS,
    Gateway,
    NODE_MODULES,
    connectHttp,
    configText,
    fixtureStdio,
    serverBlock,
    tmpDir,
    types,
} from './harness.mjs';

const EVERYTHING = process.env.ONLY1MCP_EVERYTHING_BIN || path.join(NODE_MODULES, '.bin', 'mcp-server-everything');
const T = { timeout: 60000 };

/** Every message of one `callToolStream`, in order. */
async function stream(client, name, args) {
    const out = [];
    const s = client.experimental.tasks.callToolStream({ name, arguments: args }, undefined, { task: { ttl: 60000 } });
    for await (const m of s) out.push(m);
    return out;
}

for (const driver of DRIVERS) {
    describe(`TS SDK experimental tasks through the gateway, driver ${driver}`, () => {
        let dir;
        let gw;
        const open = [];

        before(async () => {
            dir = tmpDir(`tasks-${driver}`);
            const ev = serverBlock('ev', { transport: 'stdio', command: EVERYTHING, args: ['stdio'] });
            gw = new Gateway({ driver, dir, name: 'tasks', config: configText([fixtureStdio('fx', { pageSize: 100 }), ev]) });
            await gw.start();
            await gw.waitHealth({ fx: 'ready', ev: 'ready' });
        });

        after(async () => {
            for (const c of open) await c.close().catch(() => {});
            await gw?.stopAndCheck();
        });

        async function client(setup) {
            const c = await connectHttp(gw.url, { capabilities: { elicitation: {} }, setup });
            open.push(c);
            await c.client.listTools(); // the SDK learns which tools take tasks
            return c.client;
        }

        test('a task-augmented call runs as a task the SDK follows to its result', T, async () => {
            const c = await client();
            const caps = c.getServerCapabilities();
            assert.ok(caps.tasks?.requests?.tools?.call, `tasks advertised: ${JSON.stringify(caps)}`);
            const msgs = await stream(c, 'fx__slow_compute', { seconds: 0.5, label: 'ts' });
            assert.equal(msgs[0].type, 'taskCreated', JSON.stringify(msgs));
            const id = msgs[0].task.taskId;
            assert.ok(!id.includes('task-'), `the backend's own id never shows: ${id}`);
            const last = msgs.at(-1);
            assert.equal(last.type, 'result', JSON.stringify(msgs));
            assert.equal(last.result.content[0].text, 'Computed ts in 0.5 s');
            const task = await c.experimental.tasks.getTask(id);
            assert.equal(task.status, 'completed');
            const listed = await c.experimental.tasks.listTasks();
            assert.deepEqual(listed.tasks.map((t) => t.taskId), [id]);
        });

        test('another session neither lists nor reaches the task', T, async () => {
            const a = await client();
            const b = await client();
            const msgs = await stream(a, 'fx__slow_compute', { seconds: 0, label: 'mine' });
            const id = msgs[0].task.taskId;
            assert.deepEqual((await b.experimental.tasks.listTasks()).tasks, []);
            await assert.rejects(b.experimental.tasks.getTask(id), (e) => e.code === -32602);
            await assert.rejects(b.experimental.tasks.cancelTask(id), (e) => e.code === -32602);
        });

        test('cancelTask stops a running task', T, async () => {
            const c = await client();
            const s = c.experimental.tasks.callToolStream(
                { name: 'fx__slow_compute', arguments: { seconds: 60 } },
                undefined,
                { task: { ttl: 60000 } },
            );
            const first = (await s.next()).value;
            assert.equal(first.type, 'taskCreated');
            const cancelled = await c.experimental.tasks.cancelTask(first.task.taskId);
            assert.equal(cancelled.status, 'cancelled');
            assert.equal((await c.experimental.tasks.getTask(first.task.taskId)).status, 'cancelled');
            await s.return();
        });

        test("server-everything's task-only tool runs through the gateway", T, async () => {
            const c = await client();
            const tools = (await c.listTools()).tools;
            const research = tools.find((t) => t.name === 'ev__simulate-research-query');
            assert.equal(research?.execution?.taskSupport, 'required', JSON.stringify(research));
            const msgs = await stream(c, 'ev__simulate-research-query', { topic: 'gateways' });
            assert.equal(msgs[0].type, 'taskCreated', JSON.stringify(msgs));
            assert.ok(msgs.some((m) => m.type === 'taskStatus'), 'polled while it ran');
            const last = msgs.at(-1);
            assert.equal(last.type, 'result', JSON.stringify(last));
            assert.match(last.result.content[0].text, /Research Report: gateways/);
        });

        test("server-everything's task asks for input: the elicitation reaches this client", T, async () => {
            const asked = [];
            const c = await client((cl) =>
                cl.setRequestHandler(types.ElicitRequestSchema, (req) => {
                    asked.push(req.params);
                    return { action: 'accept', content: { interpretation: 'historical' } };
                }),
            );
            const msgs = await stream(c, 'ev__simulate-research-query', { topic: 'gateways', ambiguous: true });
            assert.equal(asked.length, 1, JSON.stringify(msgs));
            const related = asked[0]._meta?.['io.modelcontextprotocol/related-task']?.taskId;
            assert.equal(related, msgs[0].task.taskId, "the gateway's task id names the task");
            const last = msgs.at(-1);
            assert.equal(last.type, 'result', JSON.stringify(last));
            assert.match(last.result.content[0].text, /Clarification\*\*: historical/);
        });
    });
}
