/**
 * However long the proxy was away, a client is back within seconds of it listening again:
 * the reconnect delay stops growing at a few seconds while the proxy cannot be reached.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { NatproxClient } from '../src/index.js';
import { deadPort, startProxy, startTarget } from './helpers/loopback.js';

/** Both transports: the native tunnel and PushProx long polling. */
const TRANSPORTS = ['native', 'pushprox'] as const;
/** The promise: connected within this long of the proxy accepting again. */
const BACK_WITHIN_MS = 5000;
/** Failed attempts before the proxy comes back: the old backoff was at 8 s ± 30% by then. */
const FAILED_ATTEMPTS = 5;

describe('reconnect after a long proxy outage (default backoff)', () => {
  it('each transport is back within 5 s of the proxy listening again', async () => {
    const target = await startTarget((_req, res) => res.end('ok\n'), after);
    const results = await Promise.all(
      TRANSPORTS.map(async (transport) => {
        const port = await deadPort();
        const client = new NatproxClient({
          proxyUrl: new URL(`http://127.0.0.1:${port}`),
          names: [`outage-${transport}`],
          allow: [{ host: '127.0.0.1', port: target.port }],
          transport,
        });
        const delays: number[] = [];
        const proxyDue = new Promise<void>((resolve) =>
          client.events.on('state', (state) => {
            if (state.state !== 'reconnecting') return;
            delays.push(state.delayMs);
            if (delays.length === FAILED_ATTEMPTS) resolve();
          }),
        );
        client.start();
        after(() => client.stop(0));
        await proxyDue;
        await startProxy(after, { listen: { host: '127.0.0.1', port } });
        const listeningAt = performance.now();
        await client.waitConnected(15_000);
        return { transport, backMs: performance.now() - listeningAt, delays };
      }),
    );
    for (const { transport, backMs, delays } of results) {
      console.log(
        `${transport}: delays ${delays.join(', ')} ms; connected ${backMs.toFixed(0)} ms after the proxy listened`,
      );
      assert.ok(
        backMs <= BACK_WITHIN_MS,
        `${transport}: back ${backMs.toFixed(0)} ms after the proxy listened`,
      );
    }
  });
});
