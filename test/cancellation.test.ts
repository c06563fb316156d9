import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { NatproxError } from '../src/errors.js';
import type { ClientSession, ScrapeResponse } from '../src/proxy/client-session.js';
import { ProxyEvents } from '../src/proxy/proxy-events.js';
import { ScrapeHandler, type ScrapePolicy } from '../src/proxy/scrape-handler.js';
import { SessionRegistry } from '../src/proxy/session-registry.js';
import { StreamCounter } from '../src/proxy/stream-counter.js';
import type { CancelSignal } from '../src/util/scrape-cancel.js';

const POLICY: ScrapePolicy = {
  defaultScrapeTimeoutMs: 10_000,
  maxScrapeTimeoutMs: 10_000,
  maxStreamsPerClient: 10,
  maxStreamsPerScraper: undefined,
  maxResponseBytes: 1 << 20,
  maxRequestBytes: 1 << 20,
};

/**
 * A client session that never answers and hands over the signal each scrape gets: what a
 * transport sees when a scrape is cancelled.
 */
function silentSession(): { session: ClientSession; signals: CancelSignal[] } {
  const signals: CancelSignal[] = [];
  const session: ClientSession = {
    id: 'silent',
    transport: 'native',
    registration: { names: ['demo'], labels: {}, ports: [], version: 'test' },
    remoteAddress: '127.0.0.1',
    connectedAt: new Date(),
    grantKey: undefined,
    closed: false,
    scrape: (_request, signal) => {
      signals.push(signal);
      return new Promise<ScrapeResponse>((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    },
    close: () => {},
    onClose: () => {},
  };
  return { session, signals };
}

async function proxyWith(
  session: ClientSession,
): Promise<{ port: number; events: ProxyEvents; close: () => void }> {
  const registry = new SessionRegistry();
  registry.add(session);
  const events = new ProxyEvents();
  const handler = new ScrapeHandler({
    registry,
    events,
    policy: () => POLICY,
    streams: new StreamCounter(),
  });
  const server = http.createServer((req, res) => handler.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    events,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe("a scrape's cancellation reaches the client session as its cancel signal", () => {
  it('the scraper closing its request aborts it with NATPROX_SCRAPE_CANCELLED', async (t) => {
    const { session, signals } = silentSession();
    const proxy = await proxyWith(session);
    t.after(proxy.close);
    const finished = new Promise((resolve) => proxy.events.once('scrapeFinished', resolve));
    const req = http.get({
      host: '127.0.0.1',
      port: proxy.port,
      path: 'http://demo:9100/metrics',
    });
    req.on('error', () => {});
    for (let i = 0; i < 200 && signals.length === 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const [signal] = signals;
    assert.ok(signal);
    assert.equal(signal.aborted, false);
    const aborted = new Promise<void>((resolve) =>
      signal.addEventListener('abort', () => resolve()),
    );
    req.destroy();
    await aborted;
    assert.ok(signal.reason instanceof NatproxError);
    assert.equal(signal.reason.code, 'NATPROX_SCRAPE_CANCELLED');
    assert.deepEqual(
      await finished.then((info) => (info as { outcome: string; status: number }).outcome),
      'cancelled',
    );
  });

  it('the deadline aborts it with NATPROX_SCRAPE_TIMEOUT, and the scraper gets 504', async (t) => {
    const { session, signals } = silentSession();
    const proxy = await proxyWith(session);
    t.after(proxy.close);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.get(
        {
          host: '127.0.0.1',
          port: proxy.port,
          path: 'http://demo:9100/metrics',
          headers: { 'x-prometheus-scrape-timeout-seconds': '0.05' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
    });
    assert.equal(answer.status, 504);
    const [signal] = signals;
    assert.ok(signal?.reason instanceof NatproxError);
    assert.equal(signal.reason.code, 'NATPROX_SCRAPE_TIMEOUT');
    assert.match(answer.body, /did not finish within/);
  });
});
