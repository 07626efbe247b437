// A 2025-11-25 client's experimental tasks on a backend that speaks only 2026-07-28 (the tasks
// extension), with the official TypeScript SDK client (`client.experimental.tasks`: callToolStream,
// getTask, listTasks, cancelTask) through the gateway's Streamable HTTP front, on both I/O drivers,
// to the demo server's conformance fixture with DEMO_LEGACY=0:
//   fx    over stdio
//   fh    over HTTP
// The SDK learns from tools/list that the tools take tasks (the gateway offers them as
// `optional`) and drives the whole flow itself; the gateway bridges it to 2026 tasks/get,
// tasks/update and tasks/cancel (shards/src/route/tasks/to_modern*.rs).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DRIVERS, Gateway, configText, connectHttp, serverBlock, startDemoHttp, tmpDir, types } from './harness.mjs';

const T = { timeout: 60000 };
const MODERN_ONLY = { DEMO_CONFORMANCE: '1', DEMO_LEGACY: '0', DEMO_PAGE_SIZE: '100' };

/** Every message of one `callToolStream` (task use decided by the SDK from tools/list). */
async function stream(client, name, args) {
    const out = [];
    for await (const m of client.experimental.tasks.callToolStream({ name, arguments: args })) out.push(m);
    return out;
}

for (const driver of DRIVERS) {
    describe(`TS SDK experimental tasks on a 2026-only backend, driver ${driver}`, () => {
        let dir;
        let gw;
        let web;
        const open = [];

        before(async () => {
            dir = tmpDir(`tasks-bridge-${driver}`);
            web = await startDemoHttp(dir, 'fh', MODERN_ONLY);
            const fx = serverBlock('fx', {
                transport: 'stdio',
                command: '$self',
                args: ['demo-server', '--stdio', '--name', 'fx'],
                env: MODERN_ONLY,
            });
            const fh = serverBlock('fh', { transport: 'http', url: web.url });
            gw = new Gateway({ driver, dir, name: 'tasks-bridge', config: configText([fx, fh]) });
            await gw.start();
            await gw.waitHealth({ fx: 'ready', fh: 'ready' });
        });

        after(async () => {
            for (const c of open) await c.close().catch(() => {});
            await gw?.stopAndCheck();
            await web?.stop();
        });

        async function client(setup) {
            const c = await connectHttp(gw.url, { capabilities: { elicitation: {} }, setup });
            open.push(c);
            await c.client.listTools(); // the SDK learns which tools take tasks
            return c.client;
        }

        for (const server of ['fx', 'fh']) {
            test(`${server}: a tool the SDK runs as a task, followed to its result`, T, async () => {
                const c = await client();
                assert.ok(c.getServerCapabilities().tasks?.requests?.tools?.call, 'tasks advertised');
                const tools = (await c.listTools()).tools;
                const slow = tools.find((t) => t.name === `${server}__slow_compute`);
                assert.equal(slow?.execution?.taskSupport, 'optional', JSON.stringify(slow));
                const msgs = await stream(c, `${server}__slow_compute`, { seconds: 0.5, label: 'ts' });
                assert.equal(msgs[0].type, 'taskCreated', JSON.stringify(msgs));
                const id = msgs[0].task.taskId;
                assert.ok(!id.includes('task-'), `the backend's own id never shows: ${id}`);
                const last = msgs.at(-1);
                assert.equal(last.type, 'result', JSON.stringify(msgs));
                assert.equal(last.result.content[0].text, 'Computed ts in 0.5 s');
                assert.equal((await c.experimental.tasks.getTask(id)).status, 'completed');
                const listed = await c.experimental.tasks.listTasks();
                assert.deepEqual(listed.tasks.map((t) => t.taskId), [id]);
            });

            test(`${server}: the task's elicitation reaches this client and its answer the backend`, T, async () => {
                const asked = [];
                const c = await client((cl) =>
                    cl.setRequestHandler(types.ElicitRequestSchema, (req) => {
                        asked.push(req.params);
                        return { action: 'accept', content: { confirm: true } };
                    }),
                );
                const msgs = await stream(c, `${server}__confirm_delete`, { filename: 'f.txt' });
                assert.equal(asked.length, 1, JSON.stringify(msgs));
                assert.equal(asked[0].message, 'Delete f.txt?');
                const related = asked[0]._meta?.['io.modelcontextprotocol/related-task']?.taskId;
                assert.equal(related, msgs[0].task.taskId, "the gateway's task id names the task");
                const last = msgs.at(-1);
                assert.equal(last.type, 'result', JSON.stringify(last));
                assert.equal(last.result.content[0].text, 'Deleted f.txt');
            });

            test(`${server}: cancelTask stops a running task; another session cannot reach it`, T, async () => {
                const c = await client();
                const other = await client();
                const s = c.experimental.tasks.callToolStream({ name: `${server}__slow_compute`, arguments: { seconds: 60 } });
                const first = (await s.next()).value;
                assert.equal(first.type, 'taskCreated', JSON.stringify(first));
                const id = first.task.taskId;
                await assert.rejects(other.experimental.tasks.getTask(id), (e) => e.code === -32602);
                await assert.rejects(other.experimental.tasks.cancelTask(id), (e) => e.code === -32602);
                const cancelled = await c.experimental.tasks.cancelTask(id);
                assert.equal(cancelled.status, 'cancelled');
                assert.equal((await c.experimental.tasks.getTask(id)).status, 'cancelled');
                await s.return();
            });
        }
    });
}
