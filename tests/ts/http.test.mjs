// The official TypeScript SDK (Client + StreamableHTTPClientTransport) through the gateway's
// Streamable HTTP front, on both I/O drivers.
//
// One gateway per driver, in front of three backends, all prefixed (`<id>__<tool>`,
// resources as `o1m://<id>/<uri>`):
//   fx    the demo server's conformance fixture over stdio (DEMO_PAGE_SIZE=4: the gateway must
//         follow the backend's tools/list pages)
//   fxh   the same fixture over Streamable HTTP (a separate demo-server process, pages of 3)
//   demo  the plain demo server over stdio (11 tools, pages of 3)
// and proxy.list_page_size = 7, so clients must follow the gateway's own cursors too.
// Each feature test runs against fx and fxh, so both backend transports are covered.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
    DRIVERS,
    Gateway,
    connectHttp,
    fixtureStdio,
    configText,
    listAll,
    serverBlock,
    sleep,
    startDemoHttp,
    textOf,
    tmpDir,
    types,
    waitFor,
} from './harness.mjs';

// What the fixture returns (demo/src/tools.rs, demo/src/fixture.rs).
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4n8YAAAPNAWbDbP9aAAAAAElFTkSuQmCC';
const WAV_B64 = 'UklGRiwAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQgAAACAgICAgICAgA==';
const DEMO_TOOLS = ['echo', 'add', 'now', 'fail', 'image', 'sleep', 'big', 'garbage', 'crash', 'whoami', 'headers'];
const FIXTURE_TOOLS = [
    'test_simple_text', 'test_image_content', 'test_audio_content', 'test_embedded_resource',
    'test_multiple_content_types', 'test_tool_with_logging', 'test_tool_with_progress',
    'test_error_handling', 'test_reconnection', 'test_sampling', 'test_elicitation',
    'test_elicitation_sep1034_defaults', 'test_elicitation_sep1330_enums', 'json_schema_2020_12_tool',
];
const FIXTURES = ['fx', 'fxh'];
// Log lines the fixture sends outside any call (after setLevel, subscribe): the gateway may
// pass them to any session of the shard; they are not part of a call's stream.
const standalone = (m) => /^(Log level set to|Subscribed to|Unsubscribed from) /.test(String(m.params?.data));
const PAGE = 7; // proxy.list_page_size
const T = { timeout: 30000 };

for (const driver of DRIVERS) {
    describe(`TS SDK over Streamable HTTP, driver ${driver}`, () => {
        let dir;
        let demo;
        let gw;
        const clients = [];

        /** A connected client, closed in `after` if the test did not close it. */
        async function open(opts) {
            const conn = await connectHttp(gw.url, opts);
            clients.push(conn);
            return conn;
        }

        before(async () => {
            dir = tmpDir(`http-${driver}`);
            demo = await startDemoHttp(dir, 'fxh', { DEMO_CONFORMANCE: '1', DEMO_PAGE_SIZE: '3' });
            const config = configText([
                fixtureStdio('fx', { pageSize: 4 }),
                serverBlock('fxh', { transport: 'http', url: demo.url }),
                serverBlock('demo', { transport: 'stdio', command: '$self', args: ['demo-server', '--stdio', '--name', 'demo'] }),
            ], { listPageSize: PAGE });
            gw = await new Gateway({ driver, config, dir, name: 'http' }).start();
            await gw.waitHealth({ fx: 'ready', fxh: 'ready', demo: 'ready' });
        });

        after(async () => {
            for (const c of clients) await c.close().catch(() => {});
            try {
                if (gw) await gw.stopAndCheck(['--name fx', '--name demo']);
            } finally {
                if (demo) await demo.stop();
                if (dir) fs.rmSync(dir, { recursive: true, force: true });
            }
        });

        test('initialize: gateway identity, merged capabilities, negotiated version', T, async () => {
            const { client, transport, errors } = await open();
            assert.equal(client.getServerVersion().name, 'only1mcp-uring');
            const caps = client.getServerCapabilities();
            for (const cap of ['tools', 'prompts', 'resources', 'logging', 'completions']) {
                assert.ok(caps[cap], `capability ${cap} missing: ${JSON.stringify(caps)}`);
            }
            assert.equal(caps.resources.subscribe, true);
            assert.equal(caps.tools.listChanged, true);
            assert.equal(transport.protocolVersion, types.LATEST_PROTOCOL_VERSION);
            assert.ok(transport.sessionId, 'no Mcp-Session-Id');
            await client.ping();
            assert.deepEqual(errors, []);
        });

        test('tools/list: every page, every backend, namespaced, no duplicates', T, async () => {
            const { client } = await open();
            // The catalog may still grow (the fixture's dynamic tool): take two equal listings
            // in a row, with /health read in between (bounded).
            let pages;
            let tools;
            let health;
            for (let attempt = 0; ; attempt++) {
                assert.ok(attempt < 20, 'the catalog never settled');
                pages = [];
                tools = await listAll(client, 'listTools', 'tools', pages);
                health = await gw.health();
                const again = await listAll(client, 'listTools', 'tools');
                if (JSON.stringify(again) === JSON.stringify(tools)) break;
                await sleep(200);
            }
            const names = tools.map((t) => t.name);
            // Full pages of list_page_size, then the rest.
            assert.ok(pages.length > 1, `one page only: ${pages}`);
            assert.deepEqual(pages.slice(0, -1), pages.slice(0, -1).map(() => PAGE), `page sizes ${pages}`);
            assert.ok(pages.at(-1) >= 1 && pages.at(-1) <= PAGE, `page sizes ${pages}`);
            assert.equal(new Set(names).size, names.length, `duplicates: ${names}`);
            const byBackend = {};
            for (const name of names) {
                const [server, tool] = name.split('__');
                (byBackend[server] ||= new Set()).add(tool);
            }
            assert.deepEqual(Object.keys(byBackend).sort(), ['demo', 'fx', 'fxh']);
            assert.deepEqual([...byBackend.demo].sort(), [...DEMO_TOOLS].sort());
            for (const id of FIXTURES) {
                // The fixture serves the demo tools too (and may grow: superset check).
                const missing = [...DEMO_TOOLS, ...FIXTURE_TOOLS].filter((t) => !byBackend[id].has(t));
                assert.deepEqual(missing, [], `${id} lacks tools`);
            }
            assert.equal(health.tools, names.length);
            // Schemas pass through untouched.
            const schemaTool = tools.find((t) => t.name === 'fx__json_schema_2020_12_tool');
            assert.equal(schemaTool.inputSchema.$schema, 'https://json-schema.org/draft/2020-12/schema');
            assert.deepEqual(schemaTool.inputSchema.properties.address, { $ref: '#/$defs/address' });
        });

        for (const id of FIXTURES) {
            describe(`backend ${id}`, () => {
                test('tools/call: text, image, audio, embedded resource, mixed, isError', T, async () => {
                    const { client, errors } = await open();
                    const call = (name, args = {}) => client.callTool({ name: `${id}__${name}`, arguments: args });

                    const simple = await call('test_simple_text');
                    assert.deepEqual(simple.content, [{ type: 'text', text: 'This is a simple text response for testing.' }]);
                    assert.ok(!simple.isError);

                    const image = await call('test_image_content');
                    assert.deepEqual(image.content, [{ type: 'image', data: PNG_B64, mimeType: 'image/png' }]);

                    const audio = await call('test_audio_content');
                    assert.deepEqual(audio.content, [{ type: 'audio', data: WAV_B64, mimeType: 'audio/wav' }]);

                    const embedded = await call('test_embedded_resource');
                    assert.deepEqual(embedded.content, [{
                        type: 'resource',
                        resource: {
                            uri: `o1m://${id}/test://embedded-resource`,
                            mimeType: 'text/plain',
                            text: 'This is an embedded resource content.',
                        },
                    }]);

                    const mixed = await call('test_multiple_content_types');
                    assert.deepEqual(mixed.content.map((b) => b.type), ['text', 'image', 'resource']);
                    assert.equal(mixed.content[0].text, 'Multiple content types test:');
                    assert.equal(mixed.content[1].data, PNG_B64);
                    assert.equal(mixed.content[2].resource.text, '{"test":"data","value":123}');

                    const failed = await call('test_error_handling');
                    assert.equal(failed.isError, true);
                    assert.equal(textOf(failed), 'This tool intentionally returns an error for testing');

                    const echoed = await call('echo', { message: 'über "quoted" \\ ✓' });
                    assert.deepEqual(echoed.structuredContent, { message: 'über "quoted" \\ ✓' });
                    assert.deepEqual(errors, []);
                });

                test('progress: onprogress gets 0/50/100 with the client token, no gateway token leaks', T, async () => {
                    const { client, wire, errors } = await open();
                    const seen = [];
                    const result = await client.callTool(
                        { name: `${id}__test_tool_with_progress`, arguments: {} },
                        undefined,
                        { onprogress: (p) => seen.push(p) },
                    );
                    assert.deepEqual(seen.map((p) => [p.progress, p.total]), [[0, 100], [50, 100], [100, 100]]);
                    assert.deepEqual(seen.map((p) => p.message), [0, 50, 100].map((n) => `Completed step ${n} of 100`));
                    // The SDK uses the request id as the token: every progress notification on the
                    // wire must carry exactly that token (the gateway's own token swapped back).
                    const response = wire.filter((m) => m.result?.content).at(-1);
                    assert.equal(textOf(response.result), textOf(result));
                    const progress = wire.filter((m) => m.method === 'notifications/progress');
                    assert.equal(progress.length, 3, JSON.stringify(progress));
                    for (const n of progress) assert.equal(n.params.progressToken, response.id, JSON.stringify(n));
                    // The backend saw a gateway token, never the client's raw token (it echoes it).
                    assert.notEqual(textOf(result), String(response.id));
                    assert.notEqual(textOf(result), 'no progress token');
                    // The SDK reports unknown progress tokens through onerror.
                    assert.deepEqual(errors.map(String), []);

                    // Without onprogress the backend gets no token and nothing is relayed.
                    const before = wire.length;
                    const plain = await client.callTool({ name: `${id}__test_tool_with_progress`, arguments: {} });
                    assert.equal(textOf(plain), 'no progress token');
                    assert.deepEqual(wire.slice(before).filter((m) => m.method === 'notifications/progress'), []);
                });

                test('logging: setLoggingLevel, then 3 info messages on the call', T, async () => {
                    const logs = [];
                    const { client, wire, errors } = await open({
                        setup: (c) => c.setNotificationHandler(types.LoggingMessageNotificationSchema, (n) => {
                            logs.push(n.params);
                        }),
                    });
                    await client.setLoggingLevel('info');
                    const from = wire.length;
                    const result = await client.callTool({ name: `${id}__test_tool_with_logging`, arguments: {} });
                    assert.equal(textOf(result), 'Tool with logging executed successfully');
                    const want = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];
                    const onCall = wire.slice(from).filter((m) => m.method === 'notifications/message' && !standalone(m));
                    assert.deepEqual(onCall.map((m) => m.params.data), want);
                    assert.ok(onCall.every((m) => m.params.level === 'info'), JSON.stringify(onCall));
                    await waitFor(() => logs.filter((l) => want.includes(l.data)).length >= 3, { timeoutMs: 2000, what: 'log handler' });
                    assert.deepEqual(logs.filter((l) => want.includes(l.data)).map((l) => l.data), want);

                    // Above the messages' level: the backend filters them out.
                    await client.setLoggingLevel('error');
                    const quiet = wire.length;
                    await client.callTool({ name: `${id}__test_tool_with_logging`, arguments: {} });
                    assert.deepEqual(wire.slice(quiet).filter((m) => m.method === 'notifications/message' && !standalone(m)), []);
                    await client.setLoggingLevel('info'); // shared upstream session: leave it as found
                    assert.deepEqual(errors, []);
                });

                test('elicitation: the client request handler answers elicitation/create', T, async () => {
                    const asked = [];
                    const { client, errors } = await open({
                        capabilities: { elicitation: { form: {} } },
                        setup: (c) => c.setRequestHandler(types.ElicitRequestSchema, (req) => {
                            asked.push(req.params);
                            return { action: 'accept', content: { response: `ts answer for ${id}` } };
                        }),
                    });
                    const result = await client.callTool({
                        name: `${id}__test_elicitation`,
                        arguments: { message: `What is your name (${id})?` },
                    });
                    assert.equal(
                        textOf(result),
                        `User response: action=accept, content={"response":"ts answer for ${id}"}`,
                    );
                    assert.equal(asked.length, 1);
                    assert.equal(asked[0].message, `What is your name (${id})?`);
                    assert.equal(asked[0].mode, 'form');
                    assert.deepEqual(asked[0].requestedSchema.required, ['response']);

                    // A declined elicitation reaches the backend as such.
                    const declined = await open({
                        capabilities: { elicitation: { form: {} } },
                        setup: (c) => c.setRequestHandler(types.ElicitRequestSchema, () => ({ action: 'decline' })),
                    });
                    const d = await declined.client.callTool({ name: `${id}__test_elicitation`, arguments: { message: 'no?' } });
                    assert.equal(textOf(d), 'User response: action=decline, content={}');
                    assert.deepEqual([...errors, ...declined.errors], []);
                });

                test('sampling: the client request handler answers sampling/createMessage', T, async () => {
                    const asked = [];
                    const { client, errors } = await open({
                        capabilities: { sampling: {} },
                        setup: (c) => c.setRequestHandler(types.CreateMessageRequestSchema, (req) => {
                            asked.push(req.params);
                            const prompt = req.params.messages[0].content.text;
                            return { model: 'ts-test-model', role: 'assistant', content: { type: 'text', text: `echo:${prompt}` } };
                        }),
                    });
                    const result = await client.callTool({ name: `${id}__test_sampling`, arguments: { prompt: `hi ${id}` } });
                    assert.equal(textOf(result), `LLM response: echo:hi ${id}`);
                    assert.equal(asked.length, 1);
                    assert.equal(asked[0].maxTokens, 100);
                    assert.deepEqual(asked[0].messages, [{ role: 'user', content: { type: 'text', text: `hi ${id}` } }]);
                    assert.deepEqual(errors, []);
                });

                test('resources: list (all pages), templates, read text, blob and template', T, async () => {
                    const { client } = await open();
                    const resources = await listAll(client, 'listResources', 'resources');
                    const mine = resources.filter((r) => r.uri.startsWith(`o1m://${id}/`)).map((r) => r.uri);
                    for (const uri of ['static-text', 'static-binary', 'watched-resource']) {
                        assert.ok(mine.includes(`o1m://${id}/test://${uri}`), `${uri} not in ${mine}`);
                    }
                    const text = await client.readResource({ uri: `o1m://${id}/test://static-text` });
                    assert.deepEqual(text.contents, [{
                        uri: `o1m://${id}/test://static-text`,
                        mimeType: 'text/plain',
                        text: 'This is the content of the static text resource.',
                    }]);
                    const blob = await client.readResource({ uri: `o1m://${id}/test://static-binary` });
                    assert.equal(blob.contents[0].blob, PNG_B64);
                    assert.equal(blob.contents[0].mimeType, 'image/png');

                    const templates = await listAll(client, 'listResourceTemplates', 'resourceTemplates');
                    assert.ok(
                        templates.some((t) => t.uriTemplate === `o1m://${id}/test://template/{id}/data`),
                        JSON.stringify(templates),
                    );
                    const viaTemplate = await client.readResource({ uri: `o1m://${id}/test://template/42/data` });
                    assert.deepEqual(JSON.parse(viaTemplate.contents[0].text), { id: '42', templateTest: true, data: 'Data for ID: 42' });

                    await assert.rejects(client.readResource({ uri: `o1m://${id}/test://no-such-thing` }), (e) => {
                        assert.equal(e.code, -32002, String(e));
                        return true;
                    });
                });

                test('prompts: list (all pages) and get, with and without arguments', T, async () => {
                    const { client } = await open();
                    const prompts = await listAll(client, 'listPrompts', 'prompts');
                    const mine = prompts.map((p) => p.name).filter((n) => n.startsWith(`${id}__`));
                    for (const p of ['test_simple_prompt', 'test_prompt_with_arguments', 'test_prompt_with_embedded_resource', 'test_prompt_with_image']) {
                        assert.ok(mine.includes(`${id}__${p}`), `${p} not in ${mine}`);
                    }
                    const simple = await client.getPrompt({ name: `${id}__test_simple_prompt` });
                    assert.deepEqual(simple.messages, [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }]);
                    const withArgs = await client.getPrompt({
                        name: `${id}__test_prompt_with_arguments`,
                        arguments: { arg1: 'alpha', arg2: 'beta' },
                    });
                    assert.equal(withArgs.messages[0].content.text, "Prompt with arguments: arg1='alpha', arg2='beta'");
                    const embedded = await client.getPrompt({
                        name: `${id}__test_prompt_with_embedded_resource`,
                        arguments: { resourceUri: 'test://static-text' },
                    });
                    assert.equal(embedded.messages[0].content.type, 'resource');
                    assert.equal(embedded.messages[0].content.resource.text, 'Embedded resource content for testing.');
                });

                test('completion/complete: prompt argument and resource template', T, async () => {
                    const { client } = await open();
                    const forPrompt = await client.complete({
                        ref: { type: 'ref/prompt', name: `${id}__test_prompt_with_arguments` },
                        argument: { name: 'arg1', value: 'te' },
                    });
                    assert.deepEqual(forPrompt.completion.values, ['test', 'testValue1', 'testValue2']);
                    const forTemplate = await client.complete({
                        ref: { type: 'ref/resource', uri: `o1m://${id}/test://template/{id}/data` },
                        argument: { name: 'id', value: '' },
                    });
                    assert.ok(Array.isArray(forTemplate.completion.values) && forTemplate.completion.values.length > 0,
                        JSON.stringify(forTemplate));
                });

                test('resources/subscribe: notifications/resources/updated for the namespaced URI', T, async () => {
                    const updates = [];
                    const { client } = await open({
                        setup: (c) => c.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
                            updates.push(n.params.uri);
                        }),
                    });
                    const uri = `o1m://${id}/test://watched-resource`;
                    assert.deepEqual(await client.subscribeResource({ uri }), {});
                    // The fixture reports the watched resource as updated every 3 s.
                    await waitFor(() => updates.length > 0, { timeoutMs: 10000, what: 'resources/updated' });
                    assert.ok(updates.every((u) => u === uri), JSON.stringify(updates));
                    assert.deepEqual(await client.unsubscribeResource({ uri }), {});
                });

                // The demo server is dual-era: a 2025 client must see what the backend's 2025
                // session offers (test_dynamic_tool, added 2 s after initialize) and nothing
                // only its stateless side has.
                test('a 2025 client gets the backend\'s 2025 catalog: test_dynamic_tool, no 2026-only tools', T, async () => {
                    const { client } = await open();
                    const mine = async () => (await listAll(client, 'listTools', 'tools'))
                        .map((t) => t.name).filter((n) => n.startsWith(`${id}__`));
                    // The backend initialized when the gateway started (seconds ago: the tests
                    // above ran since); its dynamic tool was due 2 s after that. Allow 3 s more.
                    let names = await mine();
                    const deadline = Date.now() + 3000;
                    while (!names.includes(`${id}__test_dynamic_tool`) && Date.now() < deadline) {
                        await sleep(250);
                        names = await mine();
                    }
                    const only2026 = names.filter((n) => /__test_(input_required_result_|missing_capability|trigger_|streaming_elicitation|logging_tool)/.test(n));
                    assert.deepEqual(only2026, [], 'tools a 2025 session of the backend does not have');
                    assert.ok(names.includes(`${id}__test_dynamic_tool`), `no ${id}__test_dynamic_tool in ${names}`);
                    const r = await client.callTool({ name: `${id}__test_dynamic_tool`, arguments: {} });
                    assert.equal(textOf(r), 'This tool was added dynamically.');
                });
            });
        }
    });
}
