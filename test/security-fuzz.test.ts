/**
 * Security: property-based fuzzing (fast-check) of everything that parses input from the
 * network. Arbitrary request targets and registration headers sent over raw sockets to a
 * running proxy never crash it nor leak memory; the parsers themselves (registration,
 * Authorization, HOST:PORT, stream authority, allowlist paths) never throw and return only
 * well-formed results.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { parseAuthorization } from '../src/auth/credentials.js';
import { Allowlist, unsafePath } from '../src/client/allowlist.js';
import { parseAuthority } from '../src/client/native/stream-reply.js';
import type { NatproxProxy } from '../src/index.js';
import {
  decodeRegistration,
  encodeRegistration,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_UPGRADE_TOKEN,
  validateLabelName,
  validateName,
} from '../src/wire/protocol.js';
import { formatHostPort, parseHostPort } from '../src/util/host-port.js';
import { scrapeThrough, startClient, startProxy, startTarget } from './helpers/loopback.js';
import { rawRequest, type RawResult } from './helpers/raw-http.js';

const RUNS = 300;
const LIMITS = { maxNames: 16, maxLabels: 64, maxPorts: 256 };

/** A full garbage collection, so heap sizes before and after can be compared. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Characters that make URL parsers and HTTP parsers work hard. */
const oddChar = fc.constantFrom(
  '%',
  '%2e',
  '%2F',
  '%00',
  '%zz',
  '..',
  '.',
  '/',
  '\\',
  '@',
  ':',
  '#',
  '?',
  '[',
  ']',
  ' ',
  '\t',
  '"',
  "'",
  '<',
  '>',
  '{',
  '}',
  '|',
  '^',
  '`',
  '~',
  '\u0000',
  '\u007f',
  'é',
  '\u202e',
  '😀',
  '\uffff',
  '*',
  '=',
  '&',
);

/** URL-ish strings: a scheme, a host, a port and a path made of odd pieces. */
function urlish(targetPort: number): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.constantFrom('http://', 'http://', 'https://', 'HTTP://', 'ftp://', '//', '', 'http:///'),
      fc.oneof(
        fc.constantFrom('demo', 'demo', 'DEMO', '127.0.0.1', '[::1]', 'unknown', 'demo.', ''),
        fc.constantFrom('a@demo', 'demo@x', 'demo%00', 'de%6do', '[demo]'),
        fc.domain(),
        fc.string({ maxLength: 20 }),
      ),
      fc.oneof(
        fc.constant(`:${targetPort}`),
        fc.constant(''),
        fc.integer({ min: -5, max: 70_000 }).map((port) => `:${port}`),
        fc.string({ maxLength: 6 }).map((port) => `:${port}`),
      ),
      fc.oneof(fc.constant('metrics'), fc.constant('')),
      fc.array(fc.oneof(oddChar, fc.string({ maxLength: 8 })), { maxLength: 12 }),
    )
    .map(
      ([scheme, host, port, prefix, path]) => `${scheme}${host}${port}/${prefix}${path.join('')}`,
    );
}

/** Bytes an HTTP parser accepts in a request target: the rest percent-encoded. */
function httpSafe(text: string): string {
  return text.replace(/[^\x21-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
  );
}

/** Anything as a request target; CR and LF are left to their own property below. */
function requestTarget(targetPort: number): fc.Arbitrary<string> {
  const raw = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 100 }),
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    urlish(targetPort),
  );
  return fc
    .oneof(
      { arbitrary: raw, weight: 1 },
      { arbitrary: raw.map(httpSafe), weight: 2 },
      { arbitrary: urlish(targetPort).map(httpSafe), weight: 3 },
    )
    .map((text) => text.replace(/[\r\n]/g, ''));
}

const method = fc.oneof(
  { arbitrary: fc.constant('GET'), weight: 6 },
  { arbitrary: fc.constantFrom('HEAD', 'CONNECT', 'POST', 'OPTIONS', 'get', 'PRI'), weight: 4 },
);

function requestBytes(verb: string, target: string, extra = ''): Buffer {
  return Buffer.from(
    `${verb} ${target} HTTP/1.1\r\nHost: fuzz\r\n${extra}Connection: close\r\n\r\n`,
    'utf8',
  );
}

/** An HTTP answer (any status natprox gives, never a 500) or a closed socket. */
function assertHandled(result: RawResult, what: string): void {
  assert.equal(result.timedOut, false, `no answer and no close for ${JSON.stringify(what)}`);
  if (result.status === undefined) {
    assert.ok(result.closed, `${JSON.stringify(what)}: garbage back: ${result.text.slice(0, 200)}`);
    return;
  }
  assert.ok(
    result.status >= 200 && result.status < 600 && result.status !== 500,
    `${JSON.stringify(what)} → ${result.status}: ${result.text.slice(0, 300)}`,
  );
}

describe('fuzzing a running proxy over raw sockets', () => {
  let proxy: NatproxProxy;
  let port: number;
  let targetPort: number;
  const teardowns: Array<() => unknown> = [];
  const teardown = (fn: () => unknown): void => {
    teardowns.push(fn);
  };

  before(async () => {
    const target = await startTarget((_req, res) => res.end('fuzz_target 1\n'), teardown);
    targetPort = target.port;
    const started = await startProxy(teardown, {
      timeouts: { headersMs: 1000, idleMs: 1000, tlsHandshakeMs: 1000 },
    });
    proxy = started.proxy;
    port = started.port;
    await startClient(teardown, {
      proxyUrl: new URL(started.url),
      allow: [{ host: '127.0.0.1', port: targetPort, pathPrefixes: ['/metrics'] }],
    });
  });
  after(async () => {
    for (const fn of teardowns.reverse()) await fn();
  });

  async function assertStillServing(): Promise<void> {
    const result = await scrapeThrough(port, `http://demo:${targetPort}/metrics`);
    assert.equal(result.status, 200, result.body);
    assert.equal(result.body, 'fuzz_target 1\n');
    assert.equal(proxy.registry.size, 1, 'the client is still connected');
  }

  it('arbitrary request targets (any method) get an answer or a close; the proxy keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(method, requestTarget(targetPort), async (verb, target) => {
        const result = await rawRequest(port, requestBytes(verb, target), { timeoutMs: 3000 });
        assertHandled(result, `${verb} ${target}`);
      }),
      { numRuns: RUNS },
    );
    await assertStillServing();
    assert.equal(proxy.activeScrapes, 0, 'no stream left open');
  });

  it('request targets with CR, LF and NUL anywhere get an answer or a close', async () => {
    const withControl = fc
      .array(fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '\u0000', ' '), fc.string()), {
        maxLength: 10,
      })
      .map((parts) => parts.join(''));
    await fc.assert(
      fc.asyncProperty(withControl, async (target) => {
        const result = await rawRequest(port, requestBytes('GET', target), { timeoutMs: 3000 });
        // Bytes after a premature end of the head are a body or a second request: the
        // proxy may answer either, or close.
        assert.equal(
          result.timedOut,
          false,
          `no answer and no close for ${JSON.stringify(target)}`,
        );
        if (result.status !== undefined) assert.notEqual(result.status, 500, result.text);
      }),
      { numRuns: RUNS },
    );
    await assertStillServing();
  });

  it('arbitrary registration headers on tunnel requests get 400/401, never a tunnel or a crash', async () => {
    const { proxy: guarded, port: guardedPort } = await startProxy(teardown, {
      clientGrants: [{ tokenSha256: createHash('sha256').update('t').digest('hex'), names: ['x'] }],
      timeouts: { headersMs: 1000 },
    });
    const headerValue = fc.oneof(
      fc.string({ maxLength: 300 }).map((text) => text.replace(/[\r\n]/g, '')),
      fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? '').toString('base64url')),
      fc
        .record({
          names: fc.oneof(
            fc.array(fc.oneof(fc.string(), fc.domain()), { maxLength: 20 }),
            fc.anything(),
          ),
          labels: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.anything()),
          ports: fc.oneof(fc.array(fc.integer({ min: -10, max: 70_000 })), fc.anything()),
          version: fc.anything(),
        })
        .map((value) => Buffer.from(JSON.stringify(value) ?? '').toString('base64url')),
    );
    await fc.assert(
      fc.asyncProperty(headerValue, async (value) => {
        const request = Buffer.from(
          `GET ${TUNNEL_PATH} HTTP/1.1\r\nHost: fuzz\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_UPGRADE_TOKEN}\r\n${REGISTRATION_HEADER}: ${value}\r\nAuthorization: Bearer wrong\r\n\r\n`,
          'utf8',
        );
        const result = await rawRequest(guardedPort, request, { timeoutMs: 3000 });
        assertHandled(result, value);
        assert.ok(
          result.status === undefined || result.status === 400 || result.status === 401,
          `${value} → ${result.status}: ${result.text.slice(0, 200)}`,
        );
      }),
      { numRuns: RUNS },
    );
    assert.equal(guarded.registry.size, 0);
  });

  it('memory: thousands of fuzzed requests do not grow the heap without bound', async () => {
    const batch = async (seed: number): Promise<void> => {
      const samples = fc.sample(fc.tuple(method, requestTarget(targetPort)), {
        numRuns: 400,
        seed,
      });
      for (let i = 0; i < samples.length; i += 20) {
        await Promise.all(
          samples
            .slice(i, i + 20)
            .map(([verb, target]) =>
              rawRequest(port, requestBytes(verb, target), { timeoutMs: 3000 }),
            ),
        );
      }
      for (let i = 0; i < 50; i += 1) {
        await scrapeThrough(port, `http://demo:${targetPort}/metrics?i=${i}`);
      }
    };
    await batch(1); // warm up: JIT, caches, pools
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    for (let seed = 2; seed < 6; seed += 1) await batch(seed);
    collectGarbage();
    const grown = process.memoryUsage().heapUsed - before;
    // 1,600 requests and 200 scrapes: a leak of even 10 KiB each would pass 16 MiB.
    assert.ok(grown < 16 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB`);
    assert.equal(proxy.activeScrapes, 0);
    await assertStillServing();
  });
});

describe('fuzzing the parsers', () => {
  function assertRegistration(value: ReturnType<typeof decodeRegistration>, input: string): void {
    if (typeof value === 'string') {
      assert.ok(value.length > 0, `empty error for ${input}`);
      return;
    }
    assert.ok(Array.isArray(value.names) && value.names.length > 0, input);
    assert.ok(value.names.length <= LIMITS.maxNames, input);
    for (const name of value.names) assert.equal(validateName(name), undefined, name);
    assert.ok(Object.keys(value.labels).length <= LIMITS.maxLabels, input);
    for (const [key, label] of Object.entries(value.labels)) {
      assert.equal(validateLabelName(key), undefined, key);
      assert.equal(typeof label, 'string', key);
    }
    assert.ok(value.ports.length <= LIMITS.maxPorts);
    for (const p of value.ports) assert.ok(Number.isInteger(p) && p > 0 && p < 65536, `${p}`);
    assert.equal(typeof value.version, 'string');
    assert.ok(value.version.length <= 64);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'prototype polluted');
  }

  it('decodeRegistration on arbitrary strings never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.base64String()), (s) => {
        assertRegistration(decodeRegistration(s, LIMITS), s);
      }),
      { numRuns: RUNS },
    );
    assert.equal(typeof decodeRegistration(undefined, LIMITS), 'string');
  });

  it('decodeRegistration on base64url of arbitrary JSON never throws and returns only valid registrations', () => {
    const json = fc.oneof(
      fc.jsonValue(),
      fc.record({
        names: fc.oneof(
          fc.array(fc.oneof(fc.domain(), fc.string(), fc.constant('__proto__')), { maxLength: 20 }),
          fc.jsonValue(),
        ),
        labels: fc.oneof(
          fc.dictionary(
            fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'job')),
            fc.jsonValue(),
          ),
          fc.jsonValue(),
        ),
        ports: fc.oneof(
          fc.array(fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.double(), fc.string())),
          fc.jsonValue(),
        ),
        version: fc.jsonValue(),
      }),
    );
    fc.assert(
      fc.property(json, (value) => {
        const text = JSON.stringify(value) ?? 'null';
        assertRegistration(
          decodeRegistration(Buffer.from(text).toString('base64url'), LIMITS),
          text,
        );
      }),
      { numRuns: RUNS },
    );
    // A literal __proto__ key in the JSON does not pollute anything.
    const polluting = Buffer.from(
      '{"names":["a"],"labels":{"__proto__":{"polluted":"yes"}},"ports":[1]}',
    ).toString('base64url');
    assertRegistration(decodeRegistration(polluting, LIMITS), 'proto');
  });

  it('decodeRegistration round-trips every valid registration', () => {
    const registration = fc.record({
      names: fc.uniqueArray(
        fc.domain().filter((d) => validateName(d) === undefined),
        { minLength: 1, maxLength: LIMITS.maxNames },
      ),
      labels: fc.dictionary(fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_]{0,10}$/), fc.string(), {
        maxKeys: 10,
        noNullPrototype: true,
      }),
      ports: fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 20 }),
      version: fc.string({ maxLength: 64 }),
    });
    fc.assert(
      fc.property(registration, (value) => {
        const decoded = decodeRegistration(encodeRegistration(value), LIMITS);
        assert.notEqual(typeof decoded, 'string', String(decoded));
        assert.deepEqual(decoded, { ...value, ports: [...value.ports].sort((a, b) => a - b) });
      }),
      { numRuns: RUNS },
    );
  });

  it('parseAuthorization never throws, returns only well-formed credentials, and round-trips', () => {
    const header = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc
        .tuple(fc.constantFrom('Basic ', 'Bearer ', 'basic ', 'BEARER  ', 'Basic', ''), fc.string())
        .map(([scheme, rest]) => scheme + rest),
      fc.tuple(fc.constantFrom('Basic ', 'basic '), fc.base64String()).map(([s, b]) => s + b),
    );
    fc.assert(
      fc.property(header, (value) => {
        const parsed = parseAuthorization(value);
        if (parsed === undefined) return;
        if (parsed.kind === 'bearer') {
          assert.ok(parsed.token.length > 0);
        } else {
          assert.equal(parsed.kind, 'basic');
          assert.equal(typeof parsed.username, 'string');
          assert.equal(typeof parsed.password, 'string');
          assert.ok(!parsed.username.includes(':'), 'the user ends at the first colon');
        }
      }),
      { numRuns: RUNS },
    );
    assert.equal(parseAuthorization(undefined), undefined);

    const user = fc.string().filter((u) => !u.includes(':'));
    fc.assert(
      fc.property(user, fc.string(), (username, password) => {
        const value = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
        assert.deepEqual(parseAuthorization(value), { kind: 'basic', username, password });
      }),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._~+/=-]{1,80}$/), (token) => {
        assert.deepEqual(parseAuthorization(`Bearer ${token}`), { kind: 'bearer', token });
      }),
      { numRuns: RUNS },
    );
  });

  it('parseHostPort never throws; a parsed result has a port in 0-65535 and round-trips', () => {
    const text = fc.oneof(
      fc.string(),
      fc
        .tuple(
          fc.oneof(
            fc.domain(),
            fc.ipV4(),
            fc.ipV6().map((ip) => `[${ip}]`),
            fc.string(),
          ),
          fc.constantFrom(':', '::', ''),
          fc.oneof(fc.nat(99_999).map(String), fc.string({ maxLength: 6 })),
        )
        .map(([host, sep, p]) => `${host}${sep}${p}`),
    );
    fc.assert(
      fc.property(text, fc.option(fc.constantFrom('127.0.0.1', '::1')), (value, fallback) => {
        const parsed = parseHostPort(value, fallback ?? undefined);
        if (typeof parsed === 'string') {
          assert.ok(parsed.length > 0);
          return;
        }
        assert.ok(Number.isInteger(parsed.port) && parsed.port >= 0 && parsed.port <= 65535);
        assert.equal(typeof parsed.host, 'string');
        const again = parseHostPort(formatHostPort(parsed.host, parsed.port));
        if (parsed.host !== '') assert.deepEqual(again, parsed, value);
      }),
      { numRuns: RUNS },
    );
  });

  it('the client side: parseAuthority and the allowlist path check never throw and never let a ".." through', () => {
    const allowlist = new Allowlist([
      { host: '127.0.0.1', port: 9100, pathPrefixes: ['/metrics'] },
    ]);
    const path = fc.oneof(
      fc.string(),
      fc
        .array(
          fc.oneof(oddChar, fc.constantFrom('metrics', '/metrics'), fc.string({ maxLength: 4 })),
          {
            maxLength: 12,
          },
        )
        .map((parts) => `/${parts.join('')}`),
      // Segment by segment, so dot segments under the prefix come up often.
      fc
        .tuple(
          fc.array(
            fc.constantFrom(
              '..',
              '.',
              '%2e%2e',
              '%2E.',
              '.%2e',
              'x',
              '',
              '%00',
              '%5C..',
              'metrics',
            ),
            { maxLength: 5 },
          ),
          fc.constantFrom('/', '%2F', '%2f', '\\'),
        )
        .map(([segments, separator]) => `/metrics/${segments.join(separator)}`),
    );
    fc.assert(
      fc.property(fc.string(), path, (authority, p) => {
        const { name, port } = parseAuthority(authority);
        assert.equal(typeof name, 'string');
        assert.ok(Number.isInteger(port) && port >= 0 && port <= 65535);
        const decision = allowlist.check(9100, p);
        if (!decision.allowed) {
          assert.ok(decision.reason.length > 0);
          return;
        }
        assert.equal(unsafePath(p), undefined);
        const decoded = decodeURIComponent(p);
        assert.ok(decoded === '/metrics' || decoded.startsWith('/metrics/'), `${p} allowed`);
        const segments = decoded.split('/');
        assert.ok(!segments.includes('..') && !segments.includes('.'), `${p} allowed`);
        assert.ok(!/[\\\0]/.test(decoded), `${p} allowed`);
      }),
      { numRuns: RUNS },
    );
  });
});
