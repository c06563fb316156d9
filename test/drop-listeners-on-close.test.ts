import assert from 'node:assert/strict';
import http2, { type ClientHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { dropListenersOnClose } from '../src/tunnel/drop-listeners-on-close.js';

describe('dropListenersOnClose', () => {
  it('leaves a closed stream without listeners, after its other close listeners ran', async () => {
    const server = http2.createServer((_req, res) => res.end('ok\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    after(() => server.close());
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    after(() => session.close());

    const stream: ClientHttp2Stream = session.request({ ':path': '/' });
    dropListenersOnClose(stream);
    const seen: string[] = [];
    stream.on('response', () => seen.push('response'));
    stream.on('data', () => {});
    stream.on('close', () => seen.push('close, registered after'));
    assert.ok(stream.eventNames().length >= 3);

    await new Promise((resolve) => stream.on('close', resolve));
    assert.deepEqual(seen, ['response', 'close, registered after']);
    assert.deepEqual(stream.eventNames(), [], 'listeners left on the closed stream');
  });
});
