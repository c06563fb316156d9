/**
 * Many scrapes share one tunnel without mixing their bodies; bodies stream (the first bytes
 * reach the scraper before the target has finished); and a scraper that stops reading
 * stalls the target's writes instead of making natprox buffer the body.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  openScrape,
  scrapeThrough,
  startClient,
  startProxy,
  startTarget,
  within,
} from './helpers/loopback.js';

const KIB = 1024;
const MIB = 1024 * KIB;

/** The body served for /echo/I: the path, then padding of a size and pattern that vary with I. */
function echoBody(path: string, i: number): string {
  const size = (i * 7919 + 13) % (200 * KIB);
  const unit = `<${i}>`;
  return `${path}\n${unit.repeat(Math.ceil(size / unit.length)).slice(0, size)}`;
}

/** Collects a response: resolves `first` with the first chunk and `done` with everything. */
function collect(res: IncomingMessage): { first: Promise<Buffer>; done: Promise<Buffer> } {
  const chunks: Buffer[] = [];
  let onFirst: (chunk: Buffer) => void = () => {};
  const first = new Promise<Buffer>((resolve) => {
    onFirst = resolve;
  });
  const done = new Promise<Buffer>((resolve, reject) => {
    res.on('data', (chunk: Buffer) => {
      if (chunks.length === 0) onFirst(chunk);
      chunks.push(chunk);
    });
    res.once('error', reject);
    res.once('aborted', () => reject(new Error('response aborted')));
    res.once('end', () => resolve(Buffer.concat(chunks)));
  });
  return { first, done };
}

describe('concurrency and streaming', () => {
  it('200 concurrent scrapes each get exactly their own body back', async () => {
    const target = await startTarget((req, res) => {
      const path = req.url ?? '';
      const i = Number(/^\/echo\/(\d+)$/.exec(path)?.[1] ?? -1);
      const body = Buffer.from(echoBody(path, i));
      res.writeHead(200, { 'content-type': 'text/plain' });
      // Some bodies in one piece, others in several writes.
      if (i % 3 === 0) {
        res.end(body);
        return;
      }
      const third = Math.ceil(body.length / 3);
      res.write(body.subarray(0, third));
      setImmediate(() => {
        res.write(body.subarray(third, 2 * third));
        res.end(body.subarray(2 * third));
      });
    }, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });

    const count = 200;
    const results = await within(
      Promise.all(
        Array.from({ length: count }, (_, i) =>
          scrapeThrough(port, `http://demo:${target.port}/echo/${i}`, {
            'x-prometheus-scrape-timeout-seconds': '30',
          }),
        ),
      ),
      20_000,
      `${count} concurrent scrapes`,
    );

    let totalBytes = 0;
    results.forEach((result, i) => {
      const expected = echoBody(`/echo/${i}`, i);
      assert.equal(result.status, 200, `scrape ${i}: ${result.body.slice(0, 200)}`);
      totalBytes += result.body.length;
      if (result.body !== expected) {
        assert.fail(
          `scrape ${i}: got ${result.body.length} bytes starting ${JSON.stringify(result.body.slice(0, 40))}, ` +
            `expected ${expected.length} bytes starting ${JSON.stringify(expected.slice(0, 40))}`,
        );
      }
    });
    assert.ok(totalBytes > 10 * MIB, `only ${totalBytes} bytes relayed; the padding did not vary`);
  });

  it('streams: the scraper gets the first chunk before the target has finished', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let targetFinished = false;
    const target = await startTarget((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('# HELP first_chunk arrives on its own\n');
      void released.then(() => {
        res.end('rest_of_the_body 1\n', () => {
          targetFinished = true;
        });
      });
    }, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });

    const scrape = openScrape({ port }, `http://demo:${target.port}/metrics`, {
      'x-prometheus-scrape-timeout-seconds': '30',
    });
    after(() => scrape.req.destroy());
    const res = await within(scrape.response, 3000, 'the response head');
    assert.equal(res.statusCode, 200);
    const body = collect(res);
    const first = await within(body.first, 3000, 'the first chunk while the target waits');
    assert.equal(first.toString(), '# HELP first_chunk arrives on its own\n');
    assert.equal(targetFinished, false);

    release();
    const all = await within(body.done, 3000, 'the rest of the body');
    assert.equal(all.toString(), '# HELP first_chunk arrives on its own\nrest_of_the_body 1\n');
  });

  it('back-pressure: a scraper that stops reading stalls the target; resuming delivers it all', async () => {
    const total = 64 * MIB;
    const chunkSize = 64 * KIB;
    let written = 0;
    let waitingForDrain = false;
    const targetHash = createHash('sha256');
    let targetDone: () => void = () => {};
    const targetFinished = new Promise<void>((resolve) => {
      targetDone = resolve;
    });
    const target = await startTarget((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(total),
      });
      let k = 0;
      const writeMore = (): void => {
        waitingForDrain = false;
        while (written < total) {
          // Every chunk differs, so a lost, repeated or reordered chunk changes the hash.
          const chunk = Buffer.alloc(chunkSize, `${k}:${k * 31}|`);
          k += 1;
          targetHash.update(chunk);
          written += chunk.length;
          if (!res.write(chunk)) {
            waitingForDrain = true;
            res.once('drain', writeMore);
            return;
          }
        }
        res.end(() => targetDone());
      };
      writeMore();
    }, after);
    const { port, url } = await startProxy(after);
    await startClient(after, {
      proxyUrl: new URL(url),
      names: ['demo'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });

    const scrape = openScrape({ port }, `http://demo:${target.port}/big`, {
      'x-prometheus-scrape-timeout-seconds': '60',
    });
    after(() => scrape.req.destroy());
    const res = await within(scrape.response, 3000, 'the response head');
    res.pause();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(total));

    // Nothing reads: after about a second the target must be stuck well short of the end.
    await sleep(1000);
    const writtenWhilePaused = written;
    assert.ok(writtenWhilePaused > 0, 'the target never started writing');
    assert.ok(
      writtenWhilePaused < 32 * MIB,
      `the target wrote ${(writtenWhilePaused / MIB).toFixed(1)} MiB while the scraper read nothing`,
    );
    assert.equal(waitingForDrain, true, 'the target is not waiting for drain');

    const scraperHash = createHash('sha256');
    let received = 0;
    const ended = new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        scraperHash.update(chunk);
      });
      res.once('end', resolve);
      res.once('error', reject);
      res.once('aborted', () => reject(new Error(`aborted after ${received} bytes`)));
    });
    res.resume();
    await within(ended, 30_000, `the whole body (received ${received} bytes so far)`);
    await within(targetFinished, 3000, 'the target to finish');
    assert.equal(received, total);
    assert.equal(scraperHash.digest('hex'), targetHash.digest('hex'));
    console.log(
      `back-pressure: target wrote ${(writtenWhilePaused / MIB).toFixed(1)} MiB of ${total / MIB} MiB while unread`,
    );
  });
});
