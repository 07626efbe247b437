// list_changed through the gateway to the TypeScript SDK, on both drivers.
//
// The backend (`late`, the demo fixture over stdio) is started through `sh -c 'sleep 1; exec ...'`
// so that it initializes about 1 s after the gateway is up: the client is connected (with its
// GET stream open) before the backend arrives, and before the fixture's test_dynamic_tool /
// test_dynamic_prompt / test://dynamic-resource appear ~2 s after the backend's initialize.
// The client sends nothing while it waits, so the notifications can only come on the session's
// standalone GET stream, where the gateway relays catalog changes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
    BIN,
    DRIVERS,
    Gateway,
    configText,
    connectHttp,
    listAll,
    serverBlock,
    textOf,
    tmpDir,
    types,
    waitFor,
} from './harness.mjs';

for (const driver of DRIVERS) {
    describe(`TS SDK list_changed on the GET stream, driver ${driver}`, () => {
        let dir;
        let gw;
        let conn;

        before(async () => {
            dir = tmpDir(`listchanged-${driver}`);
            const config = configText([
                serverBlock('late', {
                    transport: 'stdio',
                    command: '/bin/sh',
                    args: ['-c', 'sleep 1; exec "$0" demo-server --stdio --name late', BIN],
                    env: { DEMO_CONFORMANCE: '1', DEMO_PAGE_SIZE: '100' },
                }),
            ]);
            gw = await new Gateway({ driver, config, dir, name: 'listchanged' }).start();
        });

        after(async () => {
            try {
                if (conn) await conn.close().catch(() => {});
                if (gw) await gw.stopAndCheck(['--name late']);
            } finally {
                if (dir) fs.rmSync(dir, { recursive: true, force: true });
            }
        });

        const changed = { tools: 0, prompts: 0, resources: 0 };
        const toolNames = async () => (await listAll(conn.client, 'listTools', 'tools')).map((t) => t.name);

        test('list_changed on the GET stream when the backend arrives', { timeout: 30000 }, async () => {
            conn = await connectHttp(gw.url, {
                setup: (c) => {
                    c.setNotificationHandler(types.ToolListChangedNotificationSchema, () => { changed.tools++; });
                    c.setNotificationHandler(types.PromptListChangedNotificationSchema, () => { changed.prompts++; });
                    c.setNotificationHandler(types.ResourceListChangedNotificationSchema, () => { changed.resources++; });
                },
            });
            // The SDK opened the standalone GET stream after notifications/initialized.
            await waitFor(() => conn.http.some((x) => x.method === 'GET' && x.status === 200), { timeoutMs: 5000, what: 'GET stream' });
            const get = conn.http.find((x) => x.method === 'GET');
            assert.match(get.type, /^text\/event-stream/, JSON.stringify(conn.http));

            const initial = await toolNames();
            assert.ok(!initial.includes('late__test_simple_text'), `connected too late to observe the backend arrive: ${initial}`);
            // Idle (no request in flight) until the notification: it can only come on the GET stream.
            await waitFor(() => changed.tools > 0, { timeoutMs: 15000, what: 'tools/list_changed' });
            const names = await waitFor(async () => {
                const now = await toolNames();
                return now.includes('late__test_simple_text') && now;
            }, { timeoutMs: 5000, what: 'late__ tools listed after list_changed' });
            assert.ok(names.includes('late__test_tool_with_progress'), names.join(' '));
            await waitFor(() => changed.prompts > 0 && changed.resources > 0, { timeoutMs: 5000, what: 'prompts/resources list_changed' });
            const prompts = (await listAll(conn.client, 'listPrompts', 'prompts')).map((p) => p.name);
            assert.ok(prompts.includes('late__test_simple_prompt'), prompts.join(' '));
            const r = await conn.client.callTool({ name: 'late__test_simple_text', arguments: {} });
            assert.equal(textOf(r), 'This is a simple text response for testing.');
            assert.deepEqual(conn.errors, []);
        });

        test('list_changed when test_dynamic_tool appears, ~2 s after the backend\'s initialize', {
            timeout: 30000,
        }, async () => {
            assert.ok(conn, 'the previous test did not connect');
            const { client, errors } = conn;
            // Re-list on every tools/list_changed until the dynamic tool is there (bounded: the
            // backend arrived ~1 s after the gateway, its dynamic tool is due 2 s after that).
            let seen = changed.tools;
            let names = await toolNames();
            const deadline = Date.now() + 8000;
            while (!names.includes('late__test_dynamic_tool')) {
                assert.ok(Date.now() < deadline, `no list_changed brought test_dynamic_tool; last list: ${names}`);
                await waitFor(() => changed.tools > seen, {
                    timeoutMs: Math.max(1, deadline - Date.now()),
                    what: `another tools/list_changed (tools now: ${names})`,
                });
                seen = changed.tools;
                names = await toolNames();
            }
            const result = await client.callTool({ name: 'late__test_dynamic_tool', arguments: {} });
            assert.equal(textOf(result), 'This tool was added dynamically.');
            const prompts = (await listAll(client, 'listPrompts', 'prompts')).map((p) => p.name);
            assert.ok(prompts.includes('late__test_dynamic_prompt'), prompts.join(' '));
            const resources = (await listAll(client, 'listResources', 'resources')).map((r) => r.uri);
            assert.ok(resources.includes('o1m://late/test://dynamic-resource'), resources.join(' '));
            assert.deepEqual(errors, []);
        });
    });
}
