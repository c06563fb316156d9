/**
 * Security: floods. Refused requests by the thousand cost a few log lines and one entry on
 * the status page; one connection cannot queue unlimited work (pipelined requests), one
 * tunnel cannot send unlimited frames that carry no scrape data, and one scraper
 * credential cannot hold all of a client's streams. Each flood leaves other peers served.
 */
import assert from 'node:assert/strict';
import http, { type ServerResponse } from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { logProxyEvents } from '../src/observability/proxy-logging.js';
import type { NatproxProxy } from '../src/index.js';
import { CONTROL_CHECK_MS } from '../src/proxy/native/control-budget.js';
import {
  FLOOD_ADDRESS,
  pipelineFlood,
  requestText,
  windowUpdateFlood,
} from '../bench/lib/floods.js';
import {
  deadPort,
  eventually,
  getOrigin,
  openScrape,
  readBody,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';
import { sha256 } from './helpers/hashes.js';

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

const PROM = basic('prom', 'prom-secret');
const OTHER = basic('other', 'other-secret');
const scrapers = [
  { username: 'prom', passwordSha256: sha256('prom-secret') },
  { username: 'other', passwordSha256: sha256('other-secret') },
];

/** The proxy's log as written (bytes) and parsed (lines), with a short repeat interval. */
function captureLog(proxy: NatproxProxy, repeatIntervalMs: number) {
  let bytes = 0;
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  logProxyEvents(proxy.events, pino({ level: 'info' }, sink), repeatIntervalMs);
  return { lines, bytes: () => bytes };
}

/** `count` scrapes without credentials over `connections` keep-alive connections, one at a time each. */
async function unauthenticated(port: number, count: number, connections: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let sent = 0;
  const one = async (): Promise<void> => {
    while (sent < count) {
      sent += 1;
      const result = await scrapeThrough(port, 'http://anything:9100/metrics', {}, agent);
      assert.equal(result.status, 407);
    }
  };
  await Promise.all(Array.from({ length: connections }, one));
  agent.destroy();
}

describe('refused requests in the log and on the status page', () => {
  it('a flood without scraper credentials logs one line and a count per interval; a real error stays in recentErrors', async () => {
    const dead = await deadPort();
    const { proxy, port, url } = await startProxy(after, { scrapers });
    const log = captureLog(proxy, 200);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['home'],
      allow: [{ host: '127.0.0.1', port: dead }],
    });

    const real = await scrapeThrough(port, `http://home:${dead}/metrics`, {
      'proxy-authorization': PROM,
    });
    assert.equal(real.status, 502, real.body);

    const FLOOD = 600;
    await unauthenticated(port, FLOOD, 8);
    const counted = (): number =>
      log.lines
        .filter((l) => l.outcome === 'unauthorized')
        .reduce((sum, l) => sum + (typeof l.count === 'number' ? l.count : 1), 0);
    await eventually(() => counted() === FLOOD, 3000, 'every refusal counted in the log');

    const refusedLines = log.lines.filter((l) => l.outcome === 'unauthorized');
    assert.ok(refusedLines.length <= 10, `${refusedLines.length} log lines for ${FLOOD} refusals`);
    assert.equal(refusedLines[0]?.msg, 'scrape failed');
    const repeated = refusedLines.find((l) => l.msg === 'scrape failed, repeated');
    assert.ok(repeated, 'a line with the count of repeats');
    assert.equal(repeated.intervalMs, 200);
    assert.ok(log.bytes() < 8 * 1024, `${log.bytes()} bytes of log for ${FLOOD} refusals`);
    // The real error was logged in full.
    assert.ok(log.lines.some((l) => l.outcome === 'target_error' && l.msg === 'scrape failed'));

    const report = await getOrigin(port, '/api/v1/clients', { authorization: PROM });
    assert.equal(report.status, 200, report.body);
    const errors = (
      JSON.parse(report.body) as {
        recentErrors: Array<{ outcome: string; count: number; name: string }>;
      }
    ).recentErrors;
    assert.deepEqual(
      errors.map((e) => [e.outcome, e.count]),
      [
        ['unauthorized', FLOOD],
        ['target_error', 1],
      ],
    );
  });
});

/** Writes `count` pipelined requests in one write; resolves with the answers and whether the proxy closed. */
function pipelined(
  port: number,
  request: string,
  count: number,
  from = '127.0.0.1',
): Promise<{ answers: number; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from }, () =>
      socket.write(request.repeat(count)),
    );
    let text = '';
    let settled = false;
    const answers = (): number => text.split('HTTP/1.1 ').length - 1;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ answers: answers(), closed });
    };
    const timer = setTimeout(() => finish(false), 3000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (answers() === count) finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

describe('work one connection can make', () => {
  it('pipelining past max_pipelined_requests closes the connection; up to it all are answered; other scrapes go on', async () => {
    const target = await startTarget((_req, res) => res.end('up 1\n'), after);
    const { proxy, port, url } = await startProxy(after, { limits: { maxPipelinedRequests: 16 } });
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const cutOff: string[] = [];
    proxy.events.on('connectionCutOff', (info) => {
      cutOff.push(info.reason);
      assert.equal(info.address, FLOOD_ADDRESS);
    });
    const healthy = requestText('/-/healthy');

    const within16 = await pipelined(port, healthy, 16);
    assert.deepEqual(within16, { answers: 16, closed: false });

    const flood = await pipelined(port, healthy, 2000, FLOOD_ADDRESS);
    assert.equal(flood.closed, true, `answered ${flood.answers} of 2000 and stayed open`);
    assert.ok(flood.answers <= 16, `${flood.answers} answers`);
    assert.equal(cutOff.length, 1);
    assert.match(cutOff[0] ?? '', /max_pipelined_requests/);
    // Its address is refused for a while (flood_block); other addresses are not.
    assert.deepEqual(await pipelined(port, healthy, 1, FLOOD_ADDRESS), {
      answers: 0,
      closed: true,
    });
    assert.deepEqual(await pipelined(port, healthy, 1), { answers: 1, closed: false });

    // Four peers pipelining without pause: a scrape on another connection is still prompt.
    const floods = Array.from({ length: 4 }, () => pipelineFlood(port, healthy));
    after(() => floods.forEach((f) => f.stop()));
    // (The floods run in this process too: the bench measures the latency, in processes of their own.)
    for (let i = 0; i < 10; i += 1) {
      const started = performance.now();
      const scrape = await scrapeThrough(port, `http://demo:${target.port}/metrics`);
      assert.equal(scrape.status, 200, scrape.body);
      const tookMs = performance.now() - started;
      assert.ok(tookMs < 2000, `a scrape took ${Math.round(tookMs)} ms during the flood`);
    }
    await eventually(
      () => floods.every((f) => f.closedByProxy > 0),
      2000,
      'every flooding connection closed',
    );
  });

  it('a tunnel flooding WINDOW_UPDATE frames is closed; a large body on another tunnel is not', async () => {
    const BIG = 24 * 1024 * 1024;
    let stuck = 0;
    const target = await startTarget((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': String(BIG) });
        res.end(Buffer.alloc(BIG, 'x'));
      } else if (req.url === '/unread') {
        // Writes until nothing more fits on the way to a scraper that does not read.
        res.writeHead(200, { 'content-length': String(BIG) });
        const chunk = Buffer.alloc(64 * 1024, 'y');
        let sent = 0;
        const pump = (): void => {
          while (sent < BIG && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              stuck += 1;
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      } else {
        res.end('up 1\n');
      }
    }, after);
    const { proxy, port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const disconnected = new Map<string, string>();
    proxy.events.on('tunnelDisconnected', (session, reason) =>
      disconnected.set(session.registration.names.join(','), reason),
    );

    const flood = windowUpdateFlood(port, 'flooder');
    after(() => flood.stop());
    await eventually(() => disconnected.has('flooder'), 3000, 'the flooding tunnel to be closed');
    flood.stop();
    assert.match(disconnected.get('flooder') ?? '', /tunnel flood/);
    assert.match(disconnected.get('flooder') ?? '', /max_tunnel_control_bytes_per_second/);

    // Scrapes whose scraper stops reading leave DATA in the tunnel that is never read:
    // that is the scrapes' data, not a flood.
    const unread = [1, 2, 3].map(() => openScrape({ port }, `http://demo:${target.port}/unread`));
    for (const scrape of unread) (await within(scrape.response, 5000, 'an unread scrape')).pause();
    await eventually(() => stuck >= 3, 5000, 'the unread scrapes to fill every buffer');
    for (const scrape of unread) scrape.req.destroy();
    await eventually(() => proxy.activeScrapes === 0, 5000, 'the unread scrapes cancelled');

    const big = openScrape({ port }, `http://demo:${target.port}/big`);
    const response = await within(big.response, 5000, 'the large body');
    assert.equal(response.statusCode, 200, `${disconnected.get('demo')}`);
    assert.equal((await within(readBody(response), 10_000, 'the large body')).length, BIG);
    // Scrapes for a few of the budget's checks (every CONTROL_CHECK_MS) after all that.
    const until = performance.now() + 4 * CONTROL_CHECK_MS;
    for (let i = 0; i < 1000 && performance.now() < until; i += 1) {
      const small = await scrapeThrough(port, `http://demo:${target.port}/metrics`);
      assert.equal(small.status, 200, small.body);
    }
    assert.equal(disconnected.has('demo'), false, disconnected.get('demo'));
  });
});

describe('max_streams_per_scraper', () => {
  it('one credential holding its share of a client gets 429; another credential still gets through', async () => {
    const held: ServerResponse[] = [];
    const target = await startTarget((req, res) => {
      if (req.url === '/hold') held.push(res);
      else res.end('up 1\n');
    }, after);
    // 4 streams per client: one credential may hold 3 of them (the default, 3/4).
    const { proxy, port, url } = await startProxy(after, {
      scrapers,
      limits: { maxStreamsPerClient: 4 },
    });
    await startClient(after, {
      proxyUrl: new URL(url),
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const hold = `http://demo:${target.port}/hold`;
    const holding = [1, 2, 3].map(() =>
      openScrape({ port }, hold, { 'proxy-authorization': PROM }),
    );
    await eventually(() => held.length === 3, 5000, 'three scrapes held at the target');

    const fourth = await scrapeThrough(port, `http://demo:${target.port}/metrics`, {
      'proxy-authorization': PROM,
    });
    assert.equal(fourth.status, 429, fourth.body);
    assert.match(fourth.body, /max_streams_per_scraper/);
    // The same credential spelled another way is the same scraper.
    const respelled = await scrapeThrough(port, `http://demo:${target.port}/metrics`, {
      'proxy-authorization': PROM.replace('Basic ', 'basic  '),
    });
    assert.equal(respelled.status, 429, respelled.body);

    const other = await scrapeThrough(port, `http://demo:${target.port}/metrics`, {
      'proxy-authorization': OTHER,
    });
    assert.equal(other.status, 200, other.body);

    for (const res of held) res.end('held 1\n');
    for (const scrape of holding) {
      const response = await within(scrape.response, 5000, 'a held scrape');
      assert.equal(response.statusCode, 200);
      await readBody(response);
    }
    await eventually(() => proxy.activeScrapes === 0, 2000, 'streams released');
    const again = await scrapeThrough(port, `http://demo:${target.port}/metrics`, {
      'proxy-authorization': PROM,
    });
    assert.equal(again.status, 200, again.body);
  });
});
