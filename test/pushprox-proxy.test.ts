/**
 * Direction 1: existing PushProx clients connect to natprox proxy. The client here is a
 * test peer that behaves as PushProx's Go client on the wire (test/helpers/pushprox-peers.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  deadPort,
  eventually,
  getOrigin,
  metricValue,
  openScrape,
  scrapeThrough,
  startProxy,
  startRelay,
  startTarget,
  within,
} from './helpers/loopback.js';
import {
  basicAuth,
  GoStyleClient,
  goPost,
  goResponseHead,
  parseMessage,
  parsePolledRequest,
  rawExchange,
  html504Response,
} from './helpers/pushprox-peers.js';
import { sha256 } from './helpers/hashes.js';
import { FakeClock } from './helpers/fake-clock.js';

function startGoClient(options: ConstructorParameters<typeof GoStyleClient>[0]): GoStyleClient {
  const client = new GoStyleClient(options);
  client.start();
  after(() => client.stop());
  return client;
}

async function clientsListed(port: number, name: string): Promise<boolean> {
  const sd = JSON.parse((await getOrigin(port, '/clients')).body) as Array<{
    targets: string[];
    labels: Record<string, string>;
  }>;
  return sd.some(
    (group) =>
      group.targets.includes(name) &&
      group.labels.__meta_natprox_transport === 'pushprox' &&
      group.labels.__meta_natprox_connected === 'true',
  );
}

describe('PushProx clients on natprox proxy', () => {
  it('serves a scrape: WriteProxy request out, pushed response back, listed in /clients and /metrics', async () => {
    const target = await startTarget((req, res) => {
      res.setHeader('content-type', 'text/plain; version=0.0.4');
      res.end(`up_metric 1 ${req.url}\n`);
    }, after);
    const { port } = await startProxy(after);
    const client = startGoClient({ proxyPort: port, fqdn: 'Node-1.Example' });
    await eventually(
      () => clientsListed(port, 'node-1.example'),
      5000,
      'the PushProx client in /clients',
    );

    const result = await within(
      scrapeThrough(port, `http://node-1.example:${target.port}/metrics?a=1`, {
        'x-prometheus-scrape-timeout-seconds': '7.5',
        accept: 'text/plain',
      }),
      5000,
      'the scrape',
    );
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'up_metric 1 /metrics?a=1\n');
    assert.equal(result.headers.id, undefined, 'Id is not passed to the scraper');
    assert.equal(result.headers['x-prometheus-scrape-timeout'], undefined);
    await eventually(() => client.pushStatuses.length === 1, 5000, 'the push answer');
    assert.deepEqual(client.pushStatuses, [200]);

    const metrics = (await getOrigin(port, '/metrics')).body;
    assert.equal(metricValue(metrics, 'natprox_clients_connected', { transport: 'pushprox' }), 1);
    assert.equal(
      metricValue(metrics, 'natprox_tunnel_connects_total', { transport: 'pushprox' }),
      1,
    );
  });

  it('writes the poll answer exactly as Request.WriteProxy does, keeping the FQDN spelling', async () => {
    const { port } = await startProxy(after);
    const client = new GoStyleClient({ proxyPort: port, fqdn: 'Host-A.example' });
    const answer = client.poll();
    await eventually(() => clientsListed(port, 'host-a.example'), 5000, 'the poll to register');
    const scrape = scrapeThrough(port, 'http://host-a.example:9100/metrics?x=y', {
      'x-prometheus-scrape-timeout-seconds': '2',
      accept: 'text/plain',
      'user-agent': 'Prometheus/2.53.0',
    });
    const raw = await within(answer, 5000, 'the poll answer');
    const response = parseMessage(raw);
    assert.ok(typeof response !== 'string');
    assert.match(response.startLine, /^HTTP\/1\.1 200 /);
    const text = response.body.toString('latin1');
    const id = /\r\nId: ([0-9a-f-]{36})\r\n/.exec(text)?.[1];
    assert.ok(id, text);
    assert.equal(
      text,
      'GET http://Host-A.example:9100/metrics?x=y HTTP/1.1\r\n' +
        'Host: Host-A.example:9100\r\n' +
        'User-Agent: Prometheus/2.53.0\r\n' +
        'Accept: text/plain\r\n' +
        `Id: ${id}\r\n` +
        'X-Prometheus-Scrape-Timeout-Seconds: 2\r\n' +
        '\r\n',
    );
    // Answer with a target 500 of our own (HTTP/1.1): passed through untouched.
    const body = 'target says no\n';
    const pushed = await client.push(
      Buffer.from(
        goResponseHead('HTTP/1.1 500 Internal Server Error', {
          id,
          'x-prometheus-scrape-timeout': '1.500000',
          'content-length': String(body.length),
        }) + body,
      ),
    );
    assert.match(pushed.toString(), /^HTTP\/1\.1 200 /);
    const result = await within(scrape, 5000, 'the scrape');
    assert.equal(result.status, 500);
    assert.equal(result.body, body);
  });

  it('target down: 502 with the cause the client reported', async () => {
    const { port } = await startProxy(after);
    startGoClient({ proxyPort: port, fqdn: 'down' });
    await eventually(() => clientsListed(port, 'down'), 5000, 'the client');
    const result = await within(
      scrapeThrough(port, `http://down:${await deadPort()}/metrics`),
      5000,
      'the scrape',
    );
    assert.equal(result.status, 502, result.body);
    assert.equal(result.headers['x-natprox-error'], 'NATPROX_TARGET_FAILED');
    assert.match(result.body, /ECONNREFUSED/);
    assert.match(result.body, /PushProx client reported/);
  });

  it('timeout: 504 at the deadline; the late push gets 404 and changes nothing', async () => {
    // Without the header the deadline would be 30 s: a 504 within 10 s is the header's.
    const { port, proxy } = await startProxy(after, { defaultScrapeTimeoutMs: 30_000 });
    const client = new GoStyleClient({ proxyPort: port, fqdn: 'slow' });
    const answer = client.poll();
    await eventually(() => clientsListed(port, 'slow'), 5000, 'the poll');
    const started = Date.now();
    const scrape = scrapeThrough(port, 'http://slow:9100/m', {
      'x-prometheus-scrape-timeout-seconds': '0.3',
    });
    const request = parsePolledRequest(
      (parseMessage(await within(answer, 5000, 'poll')) as { body: Buffer }).body,
    );
    assert.ok(typeof request !== 'string');
    assert.equal(request.timeoutSeconds, 0.3);
    const result = await within(scrape, 10_000, 'the 504 at the 0.3 s deadline');
    assert.equal(result.status, 504, result.body);
    assert.ok(Date.now() - started >= 250, 'not before the deadline');
    const late = await client.push(
      Buffer.from(
        goResponseHead('HTTP/1.1 200 OK', { id: request.id, 'content-length': '5' }) + 'late\n',
      ),
    );
    assert.match(late.toString(), /^HTTP\/1\.1 404 /);
    assert.equal(proxy.activeScrapes, 0);
  });

  it('cancelled scrape: nothing is left; a later push for it gets 404; the next scrape works', async () => {
    let release: (() => void) | undefined;
    const target = await startTarget((req, res) => {
      if (req.url === '/hold') release = () => res.end('held\n');
      else res.end('fresh\n');
    }, after);
    const { port, proxy } = await startProxy(after);
    const client = startGoClient({ proxyPort: port, fqdn: 'cancel' });
    await eventually(() => clientsListed(port, 'cancel'), 5000, 'the client');
    const open = openScrape({ port }, `http://cancel:${target.port}/hold`);
    await eventually(() => release !== undefined, 5000, 'the target to get the request');
    open.req.destroy();
    await eventually(() => proxy.activeScrapes === 0, 5000, 'the scrape to be torn down');
    release?.();
    await eventually(() => client.pushStatuses.length === 1, 5000, 'the push');
    assert.equal(client.pushStatuses[0], 404);
    const next = await within(
      scrapeThrough(port, `http://cancel:${target.port}/next`),
      5000,
      'next',
    );
    assert.equal(next.status, 200);
  });

  it('client restart: the restarted client is served at once', async () => {
    const target = await startTarget((_req, res) => res.end('ok\n'), after);
    const { port } = await startProxy(after);
    const first = new GoStyleClient({ proxyPort: port, fqdn: 'restart' });
    first.start();
    await eventually(() => clientsListed(port, 'restart'), 5000, 'the first client');
    await first.stop();
    const second = startGoClient({ proxyPort: port, fqdn: 'restart' });
    const result = await within(
      scrapeThrough(port, `http://restart:${target.port}/`),
      5000,
      'scrape',
    );
    assert.equal(result.status, 200);
    await eventually(() => second.pushStatuses.length === 1, 5000, 'the push answer');
    assert.deepEqual(second.pushStatuses, [200]);
  });

  it('a poll cut off by an intermediary (HTML 504) is never handed a scrape', async () => {
    const target = await startTarget((_req, res) => res.end('after cut\n'), after);
    const { port } = await startProxy(after);
    const relay = await startRelay({ port }, after);
    // The client re-polls only after 300 ms: a scrape in between must wait for that poll.
    const client = startGoClient({ proxyPort: relay.port, fqdn: 'behind-lb', retryDelayMs: 300 });
    await eventually(() => clientsListed(port, 'behind-lb'), 5000, 'the client');
    await eventually(() => relay.cutWith(html504Response()) > 0, 5000, 'a poll to cut');
    await eventually(() => client.pollErrors.length > 0, 5000, 'the client to see the 504');
    assert.match(client.pollErrors[0] as string, /status 504/);
    const result = await within(
      scrapeThrough(port, `http://behind-lb:${target.port}/`),
      5000,
      'scrape',
    );
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'after cut\n');
  });

  it('100 concurrent scrapes through one PushProx client', async () => {
    const target = await startTarget((req, res) => res.end(`body ${req.url}\n`), after);
    const { port } = await startProxy(after, { limits: { maxStreamsPerClient: 200 } });
    startGoClient({ proxyPort: port, fqdn: 'busy' });
    await eventually(() => clientsListed(port, 'busy'), 5000, 'the client');
    const results = await within(
      Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          scrapeThrough(port, `http://busy:${target.port}/m${i}`),
        ),
      ),
      20_000,
      '100 scrapes',
    );
    results.forEach((result, i) => {
      assert.equal(result.status, 200, result.body);
      assert.equal(result.body, `body /m${i}\n`);
    });
  });
});

describe('PushProx poll body limit on natprox proxy', () => {
  it('a poll body over 1024 bytes (one FQDN is far shorter) gets 413 naming the limit', async () => {
    const { port } = await startProxy(after);
    const raw = await rawExchange(port, goPost(port, '/poll', 'a'.repeat(1025)), {
      timeoutMs: 5000,
    });
    const answer = raw.toString();
    assert.match(answer, /^HTTP\/1\.1 413 /, answer);
    assert.match(answer, /the poll body \(one FQDN\) is over the limit of 1024 bytes/);
  });
});

describe('PushProx jam rules on natprox proxy', () => {
  it('no poll and none recently: 503 at once, and it leaves /clients after the re-poll grace', async () => {
    const clock = new FakeClock();
    const { port } = await startProxy(after, {
      longPoll: { repollGraceMs: 300, clock },
    });
    const client = new GoStyleClient({ proxyPort: port, fqdn: 'gone' });
    let pollSocket: import('node:net').Socket | undefined;
    const answer = client.poll((socket) => {
      pollSocket = socket;
    });
    answer.catch(() => {});
    await eventually(() => clientsListed(port, 'gone'), 5000, 'the poll');
    pollSocket?.destroy();
    assert.equal(await clientsListed(port, 'gone'), true, 'listed between polls');
    // The poll's end reaches the proxy, then the grace runs from it: listed up to its end.
    await eventually(() => clock.pending > 0, 5000, 'the lapse timer');
    await clock.advance(300);
    assert.equal(await clientsListed(port, 'gone'), true, 'not before the grace');
    await clock.advance(1);
    await eventually(async () => !(await clientsListed(port, 'gone')), 5000, 'lapse');
    // At once: the scrape's deadline is 30 s; an answer that waited for it misses 10 s by far.
    const result = await within(
      scrapeThrough(port, 'http://gone:9100/metrics', {
        'x-prometheus-scrape-timeout-seconds': '30',
      }),
      10_000,
      'the 503',
    );
    assert.equal(result.status, 503, result.body);
  });

  it('a client that keeps a poll waiting stays listed past the re-poll grace; long polls outlive the header timeouts', async () => {
    const target = await startTarget((_req, res) => res.end('still here\n'), after);
    const clock = new FakeClock();
    const { port } = await startProxy(after, {
      longPoll: { repollGraceMs: 200, clock },
      timeouts: { headersMs: 200 },
    });
    startGoClient({ proxyPort: port, fqdn: 'patient' });
    await eventually(() => clientsListed(port, 'patient'), 5000, 'the client');
    // Far past the re-poll grace on the session's clock: the waiting poll keeps it listed.
    await clock.advance(60_000);
    assert.equal(await clientsListed(port, 'patient'), true);
    // The header timeouts are Node's own timers, on real time: the poll outlives several.
    await new Promise((resolve) => setTimeout(resolve, 900));
    assert.equal(await clientsListed(port, 'patient'), true);
    const result = await within(
      scrapeThrough(port, `http://patient:${target.port}/`),
      5000,
      'scrape',
    );
    assert.equal(result.status, 200, result.body);
  });

  it('several waiting polls for one name are all valid', async () => {
    const target = await startTarget((req, res) => res.end(`r ${req.url}\n`), after);
    const { port } = await startProxy(after);
    const client = new GoStyleClient({ proxyPort: port, fqdn: 'multi' });
    const answers = [client.poll(), client.poll(), client.poll()];
    await eventually(() => clientsListed(port, 'multi'), 5000, 'the polls');
    const scrapes = [0, 1, 2].map((i) => scrapeThrough(port, `http://multi:${target.port}/s${i}`));
    const raws = await within(Promise.all(answers), 5000, 'all three polls answered');
    for (const raw of raws) {
      const response = parseMessage(raw);
      assert.ok(typeof response !== 'string');
      assert.match(response.startLine, /^HTTP\/1\.1 200 /, 'no poll expired another');
      const request = parsePolledRequest(response.body);
      assert.ok(typeof request !== 'string');
      const body = `r ${request.url.pathname}\n`;
      await client.push(
        Buffer.from(
          goResponseHead('HTTP/1.1 200 OK', {
            id: request.id,
            'content-length': String(body.length),
          }) + body,
        ),
      );
    }
    const results = await within(Promise.all(scrapes), 5000, 'scrapes');
    assert.deepEqual(
      results.map((r) => r.body),
      ['r /s0\n', 'r /s1\n', 'r /s2\n'],
    );
  });

  it('a push for an unknown or finished Id gets 404 and changes nothing', async () => {
    const { port } = await startProxy(after);
    const client = new GoStyleClient({ proxyPort: port, fqdn: 'ids' });
    const answer = client.poll();
    await eventually(() => clientsListed(port, 'ids'), 5000, 'the poll');
    const unknown = await client.push(
      Buffer.from(
        goResponseHead('HTTP/1.1 200 OK', { id: 'no-such-id', 'content-length': '2' }) + 'x\n',
      ),
    );
    assert.match(unknown.toString(), /^HTTP\/1\.1 404 /);
    assert.match(unknown.toString(), /changed nothing/);
    const scrape = scrapeThrough(port, 'http://ids:9100/m');
    const request = parsePolledRequest((parseMessage(await answer) as { body: Buffer }).body);
    assert.ok(typeof request !== 'string');
    const push = (): Promise<Buffer> =>
      client.push(
        Buffer.from(
          goResponseHead('HTTP/1.1 200 OK', { id: request.id, 'content-length': '3' }) + 'ok\n',
        ),
      );
    assert.match((await push()).toString(), /^HTTP\/1\.1 200 /);
    assert.equal((await within(scrape, 5000, 'scrape')).body, 'ok\n');
    assert.match((await push()).toString(), /^HTTP\/1\.1 404 /, 'a second push for a finished Id');
  });

  it('tokens: polls and pushes need a Basic token that grants the FQDN', async () => {
    const target = await startTarget((_req, res) => res.end('authorized\n'), after);
    const { port } = await startProxy(after, {
      clientGrants: [{ tokenSha256: sha256('secret-token'), names: ['home-*'] }],
    });
    const poll = (fqdn: string, authorization?: string): Promise<string> =>
      new GoStyleClient({ proxyPort: port, fqdn, ...(authorization ? { authorization } : {}) })
        .poll()
        .then((raw) => raw.toString());
    assert.match(
      await within(poll('home-1'), 5000, 'no token'),
      /^HTTP\/1\.1 401 [^]*requires a client token/,
    );
    assert.match(
      await within(poll('home-1', basicAuth('home-1', 'wrong')), 5000, 'wrong'),
      /^HTTP\/1\.1 401 [^]*not known/,
    );
    assert.match(
      await within(poll('work-1', basicAuth('work-1', 'secret-token')), 5000, 'not granted'),
      /^HTTP\/1\.1 403 [^]*may not serve "work-1"/,
    );
    const client = startGoClient({
      proxyPort: port,
      fqdn: 'home-1',
      authorization: basicAuth('home-1', 'secret-token'),
    });
    await eventually(() => clientsListed(port, 'home-1'), 5000, 'the client');
    const result = await within(
      scrapeThrough(port, `http://home-1:${target.port}/`),
      5000,
      'scrape',
    );
    assert.equal(result.status, 200, result.body);
    await eventually(() => client.pushStatuses.length === 1, 5000, 'the push answer');
    assert.deepEqual(client.pushStatuses, [200]);
    // A push without the token is refused and delivers nothing.
    const intruder = new GoStyleClient({ proxyPort: port, fqdn: 'home-1' });
    const refused = await intruder.push(
      Buffer.from(goResponseHead('HTTP/1.1 200 OK', { id: 'x', 'content-length': '0' })),
    );
    assert.match(refused.toString(), /^HTTP\/1\.1 401 /);
  });

  it("a push whose token does not grant the scrape's name: 403, the scrape still gets the real push", async () => {
    const { port } = await startProxy(after, {
      clientGrants: [
        { tokenSha256: sha256('home-token'), names: ['home-*'] },
        { tokenSha256: sha256('work-token'), names: ['work-*'] },
      ],
    });
    const home = new GoStyleClient({
      proxyPort: port,
      fqdn: 'home-2',
      authorization: basicAuth('home-2', 'home-token'),
    });
    const work = new GoStyleClient({
      proxyPort: port,
      fqdn: 'work-2',
      authorization: basicAuth('work-2', 'work-token'),
    });
    const answer = home.poll();
    await eventually(() => clientsListed(port, 'home-2'), 5000, 'the poll');
    const scrape = scrapeThrough(port, 'http://home-2:9100/m');
    const request = parsePolledRequest(
      (parseMessage(await within(answer, 5000, 'poll')) as { body: Buffer }).body,
    );
    assert.ok(typeof request !== 'string');
    const forged = await work.push(
      Buffer.from(
        goResponseHead('HTTP/1.1 200 OK', { id: request.id, 'content-length': '7' }) + 'forged\n',
      ),
    );
    assert.match(forged.toString(), /^HTTP\/1\.1 403 [^]*may not serve "home-2"/);
    const real = await home.push(
      Buffer.from(
        goResponseHead('HTTP/1.1 200 OK', { id: request.id, 'content-length': '5' }) + 'real\n',
      ),
    );
    assert.match(real.toString(), /^HTTP\/1\.1 200 /);
    assert.equal((await within(scrape, 5000, 'scrape')).body, 'real\n');
  });
});
