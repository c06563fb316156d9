import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { sha256Hex } from '../src/auth/secret-hash.js';
import type { StatusReport } from '../src/proxy/status/status-report.js';
import {
  getOrigin,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
} from './helpers/loopback.js';

const CHROMIUM = '/usr/bin/chromium';
const OPS_PASSWORD = 'ops-password-never-shown';
const CLIENT_TOKEN = 'client-token-never-shown';
const opsAuth = `Basic ${Buffer.from(`ops:${OPS_PASSWORD}`).toString('base64')}`;

async function setUp() {
  const target = await startTarget((_req, res) => res.end('up 1\n'), after);
  const { port, url, proxy } = await startProxy(after, {
    operators: [{ username: 'ops', passwordSha256: sha256Hex(OPS_PASSWORD) }],
    clientGrants: [{ tokenSha256: sha256Hex(CLIENT_TOKEN), names: ['raspberrypi'] }],
  });
  const connectClient = () =>
    startClient(after, {
      proxyUrl: new URL(url),
      names: ['raspberrypi'],
      token: CLIENT_TOKEN,
      labels: { location: 'home' },
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
  const client = await connectClient();
  return { port, proxy, targetPort: target.port, client, connectClient };
}

async function report(port: number): Promise<StatusReport> {
  const response = await getOrigin(port, '/api/v1/clients', { authorization: opsAuth });
  assert.equal(response.status, 200);
  return JSON.parse(response.body) as StatusReport;
}

describe('status page', () => {
  let browser: Browser;
  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium package (npm test does it via scripts/ensure-debian-packages.sh)`,
      );
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(() => browser?.close());

  it('shows each client in a real browser and updates the row after a scrape, without reload', async () => {
    const { port, targetPort } = await setUp();
    const context = await browser.newContext({
      httpCredentials: { username: 'ops', password: OPS_PASSWORD },
      viewport: { width: 390, height: 844 },
    });
    after(() => context.close());
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(`http://127.0.0.1:${port}/`);
    const row = page.locator('tr[data-client]', { hasText: 'raspberrypi' });
    await row.waitFor({ state: 'visible', timeout: 5000 });
    assert.match(await row.innerText(), /location=home/);
    assert.match(await row.locator('.last-scrape').innerText(), /none yet/);

    let loads = 0;
    page.on('load', () => (loads += 1));
    const scrape = await scrapeThrough(port, `http://raspberrypi:${targetPort}/metrics`);
    assert.equal(scrape.status, 200);
    await row.locator('.last-scrape', { hasText: '200 ok' }).waitFor({ timeout: 10_000 });
    assert.match(await row.locator('.recent').innerText(), /1 ok/);
    assert.equal(loads, 0, 'the page updated in place, without a full reload');

    const dir = await mkdtemp(join(tmpdir(), 'natprox-status-'));
    const file = join(dir, 'status-page.png');
    await page.screenshot({ path: file, fullPage: true });
    assert.ok((await stat(file)).size > 1000, `screenshot at ${file}`);
    const html = await page.content();
    assert.ok(
      !html.includes(OPS_PASSWORD) && !html.includes(CLIENT_TOKEN),
      'no secret on the page',
    );
    assert.deepEqual(errors, [], 'no script or CSP errors in the page');
  });

  it('lists failed scrapes with their reasons', async () => {
    const { port, targetPort } = await setUp();
    await scrapeThrough(port, `http://raspberrypi:${targetPort + 1}/metrics`);
    await scrapeThrough(port, `http://nobody:${targetPort}/metrics`);
    const page = await getOrigin(port, '/', { authorization: opsAuth, accept: 'text/html' });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.match(page.body, /not on this client&#39;s allowlist/);
    assert.match(page.body, /no client is connected for name &quot;nobody&quot;/);
  });

  it('needs operator credentials, and escapes what clients send', async () => {
    const { port } = await setUp();
    assert.equal((await getOrigin(port, '/', { accept: 'text/html' })).status, 401);
    assert.equal((await getOrigin(port, '/api/v1/clients')).status, 401);
    const page = await getOrigin(port, '/?fragment=1', { authorization: opsAuth });
    assert.doesNotMatch(page.body, /<script/);
  });
});

describe('GET /api/v1/clients', () => {
  it('gives the status page data as JSON', async () => {
    const { port, targetPort } = await setUp();
    await scrapeThrough(port, `http://raspberrypi:${targetPort}/metrics`);
    const response = await getOrigin(port, '/api/v1/clients', { authorization: opsAuth });
    assert.equal(response.status, 200);
    const report = JSON.parse(response.body) as StatusReport;
    assert.equal(report.proxy.clients, 1);
    const [client] = report.clients;
    assert.deepEqual(client?.names, ['raspberrypi']);
    assert.deepEqual(client?.labels, { location: 'home' });
    assert.equal(client?.transport, 'native');
    assert.equal(client?.auth, 'token');
    assert.deepEqual(client?.ports, [targetPort]);
    assert.equal(client?.lastScrape?.status, 200);
    assert.equal(client?.lastScrape?.outcome, 'ok');
    assert.deepEqual(client?.last5m, { ok: 1, failed: 0 });
    assert.equal(client?.bytesRelayed, 'up 1\n'.length);
    assert.ok(!response.body.includes(CLIENT_TOKEN));
  });

  it("a reconnected client keeps its name's counts of the last 5 minutes", async () => {
    const { port, targetPort, client, connectClient } = await setUp();
    const scrape = () => scrapeThrough(port, `http://raspberrypi:${targetPort}/metrics`);
    assert.equal((await scrape()).status, 200);
    assert.equal((await scrape()).status, 200);
    await client.stop(0);
    await connectClient();
    assert.equal((await scrape()).status, 200);
    const [reconnected] = (await report(port)).clients;
    assert.deepEqual(reconnected?.last5m, { ok: 3, failed: 0 });
    assert.equal(reconnected?.bytesRelayed, 3 * 'up 1\n'.length);
    assert.equal(reconnected?.lastScrape?.status, 200);
  });

  it('plain text at / for curl', async () => {
    const { port } = await setUp();
    const text = await getOrigin(port, '/', { authorization: opsAuth });
    assert.match(text.headers['content-type'] ?? '', /text\/plain/);
    assert.match(text.body, /: 1 client connected\n/);
    assert.match(text.body, /raspberrypi\tnative/);
  });
});
