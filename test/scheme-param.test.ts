import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { takeSchemeParam } from '../src/client/scheme-param.js';
import {
  eventually,
  getOrigin,
  scrapeThrough,
  spawnNatprox,
  startProxy,
} from './helpers/loopback.js';
import { createTestCa } from './helpers/tls-fixtures.js';

describe('_scheme=https (PushProx convention)', () => {
  it('is taken off the query; other parameters stay in order', () => {
    assert.deepEqual(takeSchemeParam('/metrics'), { scheme: undefined, pathAndQuery: '/metrics' });
    assert.deepEqual(takeSchemeParam('/metrics?_scheme=https'), {
      scheme: 'https',
      pathAndQuery: '/metrics',
    });
    assert.deepEqual(takeSchemeParam('/federate?match[]=up&_scheme=https&x=1'), {
      scheme: 'https',
      pathAndQuery: '/federate?match[]=up&x=1',
    });
    assert.equal(takeSchemeParam('/m?_scheme=ftp').invalid, 'ftp');
  });

  it('makes the client fetch the target over https, verifying its certificate', async () => {
    const ca = createTestCa();
    after(() => ca.remove());
    const cert = ca.issue('target', ['demo']);
    let seenPath = '';
    const target = https.createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      seenPath = req.url ?? '';
      res.end('secure_metric 1\n');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    after(() => {
      target.closeAllConnections();
      target.close();
    });
    const targetPort = (target.address() as AddressInfo).port;
    const { port } = await startProxy(after);
    // The client process trusts the test CA through Node's NODE_EXTRA_CA_CERTS.
    spawnNatprox(
      [
        'client',
        '--proxy-url',
        `http://127.0.0.1:${port}`,
        '--name',
        'demo',
        '--name',
        'other',
        '--allow',
        String(targetPort),
      ],
      after,
      { NODE_EXTRA_CA_CERTS: ca.certFile },
    );
    await eventually(
      async () => (await getOrigin(port, '/clients')).body.includes('demo'),
      10_000,
      'the client to connect',
    );
    const ok = await scrapeThrough(port, `http://demo:${targetPort}/metrics?_scheme=https&a=1`);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.body, 'secure_metric 1\n');
    assert.equal(seenPath, '/metrics?a=1', 'the target does not see _scheme');

    // The certificate is checked against the scraped NAME, not the local address.
    const wrongName = await scrapeThrough(port, `http://other:${targetPort}/metrics?_scheme=https`);
    assert.equal(wrongName.status, 502, wrongName.body);
    assert.match(wrongName.body, /ERR_TLS_CERT_ALTNAME_INVALID/);

    const plain = await scrapeThrough(port, `http://demo:${targetPort}/metrics`);
    assert.equal(plain.status, 502, 'plain http to a TLS port fails with a cause');
    const bad = await scrapeThrough(port, `http://demo:${targetPort}/metrics?_scheme=gopher`);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /_scheme must be http or https/);
  });
});
