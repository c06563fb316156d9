import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dialTunnel } from '../src/client/native/tunnel-dialer.js';
import { startProxy } from './helpers/loopback.js';

const INTERVAL_MS = 100;
const WINDOW_MS = 2000;

describe('heartbeats on a real idle tunnel', () => {
  it('carry one ping per interval, from the client, and keep the tunnel up', async () => {
    const heartbeat = { intervalMs: INTERVAL_MS, maxMissed: 2 };
    const { proxy, url } = await startProxy(after, { heartbeat });
    const tunnel = await dialTunnel({
      proxyUrl: new URL(url),
      registration: { names: ['idle'], labels: {}, ports: [9], version: 'test' },
      handshakeTimeoutMs: 5000,
      heartbeat,
      onStream: (stream) => stream.close(),
    });
    after(() => tunnel.destroy());
    const session = tunnel.session;
    let fromProxy = 0;
    let fromClient = 0;
    session.on('ping', () => {
      fromProxy += 1;
    });
    // Count the client's own pings where its heartbeat sends them.
    const ping = session.ping.bind(session) as (...args: unknown[]) => boolean;
    session.ping = ((...args: unknown[]) => {
      fromClient += 1;
      return ping(...args);
    }) as typeof session.ping;

    const startedAt = performance.now();
    await sleep(WINDOW_MS);
    const intervals = (performance.now() - startedAt) / INTERVAL_MS;
    const total = fromProxy + fromClient;
    // Both ends pinging every interval would make about 2 x intervals; a received ping
    // proves the peer alive, so the other end skips its own.
    assert.ok(
      total <= intervals * 1.4,
      `${total} pings (${fromProxy} from the proxy, ${fromClient} from the client) in ${intervals.toFixed(1)} intervals`,
    );
    assert.ok(total >= intervals * 0.5, `heartbeats kept running: ${total} pings`);
    // The client pings; the proxy (one process for many tunnels) only answers, and pings
    // only when a whole interval passed in silence (a timer drifting now and then).
    assert.ok(
      fromProxy <= intervals * 0.15,
      `the proxy sent ${fromProxy} pings in ${intervals.toFixed(1)} intervals; the client ${fromClient}`,
    );
    assert.equal(proxy.registry.lookup('idle')?.closed, false, 'the proxy still serves the tunnel');
    const state = await Promise.race([tunnel.closed, sleep(0, 'open')]);
    assert.equal(state, 'open', 'the client kept the tunnel');
  });
});
