import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findGrant, nameMatches, type ClientGrant } from '../src/auth/client-grants.js';
import { isAuthorized, parseAuthorization, type Credential } from '../src/auth/credentials.js';
import {
  matchesSha256,
  sha256Hashing,
  sha256Hex,
  type SecretHashing,
} from '../src/auth/secret-hash.js';
import { resolveClientSettings } from '../src/config/client-settings.js';

function nodeSha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function basic(userPass: string): string {
  return `Basic ${Buffer.from(userPass, 'utf8').toString('base64')}`;
}

describe('parseAuthorization', () => {
  it('parses Basic user:password', () => {
    assert.deepEqual(parseAuthorization(basic('prometheus:s3cret')), {
      kind: 'basic',
      username: 'prometheus',
      password: 's3cret',
    });
  });

  it('splits Basic at the first colon: the password may contain colons', () => {
    assert.deepEqual(parseAuthorization(basic('user:pa:ss:')), {
      kind: 'basic',
      username: 'user',
      password: 'pa:ss:',
    });
  });

  it('allows an empty user or an empty password, and UTF-8', () => {
    assert.deepEqual(parseAuthorization(basic(':pw')), {
      kind: 'basic',
      username: '',
      password: 'pw',
    });
    assert.deepEqual(parseAuthorization(basic('u:')), {
      kind: 'basic',
      username: 'u',
      password: '',
    });
    assert.deepEqual(parseAuthorization(basic('jörg:pässwörd')), {
      kind: 'basic',
      username: 'jörg',
      password: 'pässwörd',
    });
  });

  it('parses Bearer tokens, trimming surrounding spaces', () => {
    assert.deepEqual(parseAuthorization('Bearer abc.def-ghi'), {
      kind: 'bearer',
      token: 'abc.def-ghi',
    });
    assert.deepEqual(parseAuthorization('Bearer   tok  '), { kind: 'bearer', token: 'tok' });
  });

  it('accepts the scheme in any case (RFC 9110: schemes are case-insensitive)', () => {
    const expected = { kind: 'basic', username: 'user', password: 'pass' };
    for (const scheme of ['basic', 'BASIC', 'bAsIc']) {
      assert.deepEqual(parseAuthorization(`${scheme} dXNlcjpwYXNz`), expected, scheme);
    }
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      assert.deepEqual(
        parseAuthorization(`${scheme} tok`),
        { kind: 'bearer', token: 'tok' },
        scheme,
      );
    }
  });

  it('returns undefined for absent or empty headers', () => {
    assert.equal(parseAuthorization(undefined), undefined);
    assert.equal(parseAuthorization(''), undefined);
  });

  it('returns undefined for a scheme with no credentials', () => {
    for (const value of ['Basic', 'Bearer', 'Basic ', 'Bearer ', 'Bearer    ']) {
      assert.equal(parseAuthorization(value), undefined, JSON.stringify(value));
    }
  });

  it('returns undefined for other schemes', () => {
    for (const value of [
      'Digest username="u"',
      'Negotiate abc',
      'Token abc',
      'Basicx dXNlcjpwYXNz',
    ]) {
      assert.equal(parseAuthorization(value), undefined, value);
    }
  });

  it('returns undefined for Basic without a colon', () => {
    assert.equal(parseAuthorization(basic('useronly')), undefined);
    assert.equal(parseAuthorization('Basic dXNlcg=='), undefined); // "user"
  });

  it('returns undefined for Basic whose payload is not base64 and decodes to no colon', () => {
    assert.equal(parseAuthorization('Basic !!!!'), undefined);
    assert.equal(parseAuthorization('Basic user:pass'), undefined); // not encoded at all
  });

  // BUG: Node's lenient base64 decoder skips characters outside the alphabet, so a
  // payload with garbage in it is still accepted as credentials.
  it('returns undefined for Basic with characters outside the base64 alphabet', () => {
    for (const value of ['Basic dXNlcjpwYXNz*&^', 'Basic dXNl!cjpwYXNz', 'Basic dXNl cjpwYXNz']) {
      assert.equal(parseAuthorization(value), undefined, value);
    }
  });
});

describe('sha256Hex and matchesSha256', () => {
  it('sha256Hex is the lowercase hex SHA-256 of the UTF-8 text', () => {
    for (const secret of ['', 'token', 'pässwörd', 'with\nnewline']) {
      assert.equal(sha256Hex(secret), nodeSha256(secret));
    }
    assert.equal(
      sha256Hex('abc'),
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('matches the right secret and only it', () => {
    const hash = nodeSha256('s3cret');
    assert.equal(matchesSha256('s3cret', hash), true);
    assert.equal(matchesSha256('s3cret ', hash), false);
    assert.equal(matchesSha256('s3cret\n', hash), false);
    assert.equal(matchesSha256('S3cret', hash), false);
    assert.equal(matchesSha256('', hash), false);
  });

  it('returns false (and does not throw) for stored hashes of the wrong length or not hex', () => {
    const hash = nodeSha256('s3cret');
    assert.equal(matchesSha256('s3cret', hash.slice(0, 62)), false);
    assert.equal(matchesSha256('s3cret', `${hash}00`), false);
    assert.equal(matchesSha256('s3cret', ''), false);
    assert.equal(matchesSha256('s3cret', 'z'.repeat(64)), false);
  });
});

describe('token files: one trailing newline is stripped before hashing', () => {
  async function tokenFrom(content: string): Promise<string | undefined> {
    const dir = await mkdtemp(join(tmpdir(), 'natprox-auth-'));
    try {
      const file = join(dir, 'token');
      await writeFile(file, content);
      const settings = resolveClientSettings({
        'proxy-url': 'http://127.0.0.1:8080',
        allow: ['9100'],
        'token-file': file,
      });
      return settings.client.token;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('"tok\\n" is the token "tok", whose hash the proxy stores', async () => {
    const token = await tokenFrom('tok\n');
    assert.equal(token, 'tok');
    assert.equal(matchesSha256(token as string, nodeSha256('tok')), true);
  });

  it('a CRLF line end is stripped too', async () => {
    assert.equal(await tokenFrom('tok\r\n'), 'tok');
  });

  it('only one newline is stripped', async () => {
    assert.equal(await tokenFrom('tok\n\n'), 'tok\n');
  });

  it('a file without a newline is used as is', async () => {
    assert.equal(await tokenFrom('tok'), 'tok');
  });

  it('an empty file (or one newline) is an error', async () => {
    await assert.rejects(tokenFrom('\n'), /--token-file: the token file .* is empty/);
    await assert.rejects(tokenFrom(''), /--token-file: the token file .* is empty/);
  });
});

describe('isAuthorized', () => {
  const allowed: Credential[] = [
    { username: 'prometheus', passwordSha256: nodeSha256('pw1') },
    { username: 'grafana', passwordSha256: nodeSha256('pw2') },
    { bearerSha256: nodeSha256('bearer-token') },
  ];

  it('accepts each matching credential', () => {
    assert.equal(isAuthorized(allowed, parseAuthorization(basic('prometheus:pw1'))), true);
    assert.equal(isAuthorized(allowed, parseAuthorization(basic('grafana:pw2'))), true);
    assert.equal(isAuthorized(allowed, parseAuthorization('Bearer bearer-token')), true);
  });

  it('refuses a wrong password, or a password of another user', () => {
    assert.equal(isAuthorized(allowed, parseAuthorization(basic('prometheus:pw2'))), false);
    assert.equal(isAuthorized(allowed, parseAuthorization(basic('prometheus:PW1'))), false);
    assert.equal(isAuthorized(allowed, parseAuthorization(basic('nobody:pw1'))), false);
  });

  it('does not mix kinds: a bearer token is not a password and vice versa', () => {
    assert.equal(isAuthorized(allowed, parseAuthorization('Bearer pw1')), false);
    assert.equal(
      isAuthorized(allowed, parseAuthorization(basic('prometheus:bearer-token'))),
      false,
    );
    assert.equal(isAuthorized(allowed, parseAuthorization(basic(':bearer-token'))), false);
  });

  it('refuses a missing credential and anything against an empty list', () => {
    assert.equal(isAuthorized(allowed, undefined), false);
    assert.equal(isAuthorized([], { kind: 'bearer', token: 'bearer-token' }), false);
  });

  // Timing cannot be measured reliably in a test, so this counts the work instead: the same
  // digests and constant-time comparisons, of fixed-length digests, whatever part is wrong.
  it('does the same hashing and comparing whichever part of the credential is wrong', () => {
    const work = (header: string) => {
      const calls = { digests: 0, comparisons: [] as string[] };
      const counting: SecretHashing = {
        digest: (text) => {
          calls.digests += 1;
          return sha256Hashing.digest(text);
        },
        equal: (a, b) => {
          calls.comparisons.push(`${a.length}/${b.length}`);
          return sha256Hashing.equal(a, b);
        },
      };
      const ok = isAuthorized(allowed, parseAuthorization(header), counting);
      return { ok, ...calls };
    };
    const cases = {
      'right name, right password': work(basic('prometheus:pw1')),
      'right name, wrong password': work(basic('prometheus:wrong')),
      'wrong name, right password': work(basic('nobody:pw1')),
      'wrong name, wrong password': work(basic('nobody:wrong')),
      "another user's password": work(basic('grafana:pw1')),
      'right bearer token': work('Bearer bearer-token'),
      'wrong bearer token': work('Bearer wrong'),
    };
    const expected = {
      digests: 2 + allowed.length,
      comparisons: Array.from({ length: 2 * allowed.length }, () => '32/32'),
    };
    for (const [what, { ok, ...calls }] of Object.entries(cases)) {
      assert.deepEqual(calls, expected, what);
      assert.equal(ok, what.startsWith('right name, right') || what === 'right bearer token', what);
    }
  });
});

describe('client token grants', () => {
  const grants: ClientGrant[] = [
    { tokenSha256: nodeSha256('token-home'), names: ['home-*', 'raspberrypi'] },
    { tokenSha256: nodeSha256('token-office'), names: ['office.example'] },
    { tokenSha256: nodeSha256('token-any'), names: ['*'] },
  ];

  it('findGrant returns the grant whose token hash matches', () => {
    assert.equal(findGrant(grants, 'token-home'), grants[0]);
    assert.equal(findGrant(grants, 'token-office'), grants[1]);
    assert.equal(findGrant(grants, 'token-any'), grants[2]);
  });

  it('findGrant returns undefined for an unknown or near-miss token', () => {
    assert.equal(findGrant(grants, 'token-homE'), undefined);
    assert.equal(findGrant(grants, 'token-home\n'), undefined);
    assert.equal(findGrant(grants, ''), undefined);
    assert.equal(findGrant([], 'token-home'), undefined);
  });

  it('findGrant returns the first grant when two share a token', () => {
    const dup: ClientGrant[] = [
      { tokenSha256: nodeSha256('t'), names: ['a'] },
      { tokenSha256: nodeSha256('t'), names: ['b'] },
    ];
    assert.equal(findGrant(dup, 't'), dup[0]);
  });

  it('exact names match only themselves', () => {
    assert.equal(nameMatches(['raspberrypi'], 'raspberrypi'), true);
    for (const name of ['raspberrypi2', 'xraspberrypi', 'raspberry', 'raspberrypi.lan']) {
      assert.equal(nameMatches(['raspberrypi'], name), false, name);
    }
  });

  it('dots in patterns are literal', () => {
    assert.equal(nameMatches(['office.example'], 'office.example'), true);
    assert.equal(nameMatches(['office.example'], 'officexexample'), false);
  });

  it('* globs match any run of name characters, anchored at both ends', () => {
    assert.equal(nameMatches(['home-*'], 'home-1'), true);
    assert.equal(nameMatches(['home-*'], 'home-kitchen.lan'), true);
    assert.equal(nameMatches(['home-*'], 'home-'), true);
    assert.equal(nameMatches(['home-*'], 'home'), false);
    assert.equal(nameMatches(['home-*'], 'myhome-1'), false);
    assert.equal(nameMatches(['home-*'], 'office-1'), false);
    assert.equal(nameMatches(['*.example'], 'a.example'), true);
    assert.equal(nameMatches(['*.example'], 'a.example.evil'), false);
    assert.equal(nameMatches(['*'], 'anything-at.all'), true);
  });

  it('a token cannot register a name its grant does not cover', () => {
    const home = findGrant(grants, 'token-home');
    assert.ok(home);
    assert.equal(nameMatches(home.names, 'home-1'), true);
    assert.equal(nameMatches(home.names, 'raspberrypi'), true);
    assert.equal(nameMatches(home.names, 'office.example'), false);
    assert.equal(nameMatches(home.names, 'gateway'), false);
    const office = findGrant(grants, 'token-office');
    assert.ok(office);
    assert.equal(nameMatches(office.names, 'home-1'), false);
  });

  it('no patterns grant nothing', () => {
    assert.equal(nameMatches([], 'home-1'), false);
  });
});
