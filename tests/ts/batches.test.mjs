// JSON-RPC batches from the official TypeScript SDK's StreamableHTTPClientTransport, whose
// `send` takes one message or an array of them, on a session that negotiated 2025-03-26 (the
// one revision with batches), on both drivers. The SDK's `Client` sends one message per
// request, so the transport is driven directly: initialize, initialized, then batches; what
// comes back is parsed by the SDK (`JSONRPCMessageSchema`) whether it is one JSON array or
// an SSE stream.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
    DRIVERS,
    Gateway,
    StreamableHTTPClientTransport,
    configText,
    serverBlock,
    tmpDir,
    waitFor,
} from './harness.mjs';

const T = { timeout: 30000 };

for (const driver of DRIVERS) {
    describe(`TS SDK transport sends batches, driver ${driver}`, () => {
        let gw;
        let transport;
        const got = [];
        const errors = [];
        const answer = (id) => waitFor(() => got.find((m) => m.id === id && ('result' in m || 'error' in m)), {
            timeoutMs: 15000,
            what: `the answer to ${id}`,
        });

        before(async () => {
            const dir = tmpDir(`batches-${driver}`);
            const demo = serverBlock('demo', {
                transport: 'stdio',
                command: '$self',
                args: ['demo-server', '--stdio', '--name', 'demo'],
            });
            gw = await new Gateway({ driver, config: configText([demo], { driver }), dir, name: 'batches' }).start();
            await gw.waitHealth({ demo: 'ready' });
            transport = new StreamableHTTPClientTransport(new URL(gw.url));
            transport.onmessage = (m) => got.push(m);
            transport.onerror = (e) => errors.push(e);
            await transport.start();
            await transport.send({
                jsonrpc: '2.0',
                id: 0,
                method: 'initialize',
                params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'ts-batch', version: '1' } },
            });
            const init = await answer(0);
            assert.equal(init.result.protocolVersion, '2025-03-26');
            assert.ok(transport.sessionId, 'session id kept by the transport');
            transport.setProtocolVersion('2025-03-26');
            await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
        });

        after(async () => {
            if (transport) await transport.close().catch(() => {});
            if (gw) await gw.stopAndCheck();
        });

        test('a batch answered as one JSON array', T, async () => {
            await transport.send([
                { jsonrpc: '2.0', id: 1, method: 'ping' },
                { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'demo__echo', arguments: { message: 'batched' } } },
                { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'demo__add', arguments: { a: 2, b: 3 } } },
            ]);
            assert.deepEqual((await answer(1)).result, {});
            assert.equal((await answer(2)).result.content[0].text, 'batched');
            assert.equal((await answer(3)).result.content[0].text, '5');
            assert.deepEqual(errors, []);
        });

        test('a batch with a streamed element answered on SSE', T, async () => {
            await transport.send([
                {
                    jsonrpc: '2.0',
                    id: 10,
                    method: 'tools/call',
                    params: { name: 'demo__sleep', arguments: { ms: 100 }, _meta: { progressToken: 'tp' } },
                },
                { jsonrpc: '2.0', id: 11, method: 'ping' },
            ]);
            assert.equal((await answer(10)).result.content[0].text, 'slept 100ms');
            assert.deepEqual((await answer(11)).result, {});
            const progress = got.filter((m) => m.method === 'notifications/progress' && m.params.progressToken === 'tp');
            assert.equal(progress.length, 2, JSON.stringify(got));
            assert.deepEqual(errors, []);
        });
    });
}
